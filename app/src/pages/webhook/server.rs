//! One webhook's server functions: its state, switch, settings, signing secret, test event,
//! delivery log with each delivery's attempts, the last day's health, and the events skipped
//! while it was off. The webhook list of Settings › API uses the same ones for a row.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use hookline_domain::Health;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub description: String,
    pub event_types: Option<Vec<String>>,
    pub enabled: bool,
    pub health: Health,
    /// `health`'s sentence, made once on the server.
    pub health_text: String,
    pub ordering: bool,
    pub rate_limit: Option<i32>,
    /// The payload conditions as pretty-printed JSON.
    pub conditions: Option<String>,
    pub include_fields: Option<Vec<String>>,
}

impl WebhookRow {
    pub fn events_summary(&self) -> String {
        match &self.event_types {
            None => "All events".to_string(),
            Some(types) if types.len() <= 3 => types.join(", "),
            Some(types) => format!("{}, {} and {} more", types[0], types[1], types.len() - 2),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub id: String,
    pub event_id: String,
    pub time: String,
    pub event_type: String,
    pub status: String,
    pub http_status: Option<i32>,
    pub duration_ms: Option<i32>,
    pub attempts: i32,
    pub next_attempt: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryLog {
    pub items: Vec<DeliveryRow>,
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptInfo {
    pub started: String,
    pub trigger: String,
    pub duration_ms: i32,
    pub url: String,
    pub request_headers: Vec<(String, String)>,
    pub response_status: Option<i32>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryInfo {
    pub row: DeliveryRow,
    pub event_id: String,
    pub payload: String,
    /// What the log says instead of the payload once the payload retention removed it.
    pub payload_removed: Option<String>,
    pub attempts: Vec<AttemptInfo>,
}

/// What the delivery log is narrowed to: status, event type, and dates (YYYY-MM-DD, UTC,
/// `to` inclusive).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogFilter {
    pub status: Option<String>,
    pub event_type: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The result of a resend or a test event, as the dashboard shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptOutcome {
    pub delivery_id: String,
    pub succeeded: bool,
    pub summary: String,
}

/// One hour of the health chart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HourBar {
    /// "14:00" (UTC).
    pub hour: String,
    pub succeeded: u64,
    pub failed: u64,
}

#[cfg(feature = "ssr")]
pub(crate) use ssr::{delivery_row, outcome, webhook_row};

#[cfg(feature = "ssr")]
mod ssr {
    use super::{AttemptOutcome, DeliveryRow, WebhookRow};
    use crate::format::human_time;

    /// A webhook as a row of a list or the head of its page, with its health in words.
    pub fn webhook_row(w: hookline_core::entities::webhook::Model) -> WebhookRow {
        let health = w.health();
        let health_text = health.sentence();
        let conditions = hookline_domain::conditions::Conditions::from_stored(w.conditions.as_deref())
            .and_then(|c| serde_json::to_string_pretty(&c.to_value()).ok());
        let include_fields =
            hookline_domain::include_fields::IncludeFields::from_stored(w.include_fields.as_deref())
                .map(|f| f.paths());
        WebhookRow {
            ordering: w.ordering,
            rate_limit: w.rate_limit,
            conditions,
            include_fields,
            event_types: w.event_filter(),
            id: w.id,
            url: w.url,
            description: w.description,
            enabled: w.enabled,
            health,
            health_text,
        }
    }

    pub fn delivery_row(d: hookline_core::DeliveryView) -> DeliveryRow {
        DeliveryRow {
            id: d.id,
            event_id: d.event_id,
            time: human_time(d.created_at),
            event_type: d.event_type,
            status: d.status.as_str().to_string(),
            http_status: d.last_status_code,
            duration_ms: d.last_duration_ms,
            attempts: d.attempts,
            next_attempt: d.next_attempt_at.map(human_time),
        }
    }

    pub fn outcome(r: hookline_core::AttemptResult) -> AttemptOutcome {
        let status = r.response_status.map(|s| format!("HTTP {s}")).unwrap_or_else(|| "No response".into());
        let summary = match &r.error {
            None => format!("Delivered: {status} in {} ms.", r.duration_ms),
            Some(e) => format!("Failed: {e} ({} ms).", r.duration_ms),
        };
        AttemptOutcome { delivery_id: r.delivery_id, succeeded: r.succeeded, summary }
    }
}

/// Turns deliveries to the webhook on or off; answers whether they are on now.
#[server(prefix = "/ui", endpoint = "toggle_webhook")]
pub async fn switch_webhook(id: String, enabled: bool) -> Result<bool, AppError> {
    let user = crate::session::signed_in().await?;
    let updated = crate::session::services()?.set_webhook_enabled(&user.scope(), &id, enabled).await?;
    Ok(updated.enabled)
}

#[server(prefix = "/ui", endpoint = "webhook")]
pub async fn webhook_detail(id: String) -> Result<WebhookRow, AppError> {
    let user = crate::session::signed_in().await?;
    let found = crate::session::services()?.webhook(&user.scope(), &id).await;
    if matches!(found, Err(hookline_core::Error::NotFound(_))) {
        // Also when the page itself is rendered: an unknown webhook is a 404 page.
        if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
            res.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    Ok(webhook_row(found?))
}

/// Changes a webhook's URL, description, event types (`events` as in `create_webhook`) and
/// delivery control (ordering, rate limit, conditions, fields sent).
#[server(prefix = "/ui", endpoint = "update_webhook")]
pub async fn update_webhook(
    id: String,
    url: String,
    description: Option<String>,
    events: Option<String>,
    event_types: Option<Vec<String>>,
    control: Option<super::delivery_control::ControlForm>,
) -> Result<WebhookRow, AppError> {
    let user = crate::session::signed_in().await?;
    let control = super::delivery_control::control_from_form(control).map_err(crate::error::refused)?;
    let event_types = match events.as_deref() {
        Some("selected") => Some(event_types.unwrap_or_default()),
        _ => None,
    };
    let patch = hookline_core::WebhookPatch {
        url: Some(url),
        description: Some(description.unwrap_or_default()),
        event_types: Some(event_types),
    };
    Ok(webhook_row(
        crate::session::services()?.update_webhook_with(&user.scope(), &id, patch, control).await?,
    ))
}

#[server(prefix = "/ui", endpoint = "delete_webhook")]
pub async fn delete_webhook(id: String) -> Result<(), AppError> {
    let user = crate::session::signed_in().await?;
    let services = crate::session::services()?;
    let found = services.webhook(&user.scope(), &id).await?;
    services.delete_webhook(&user.scope(), &id).await?;
    // Back to the list of the webhook's store; an admin's list names it in the address.
    let back = if user.scope().is_admin() {
        let store = serde_urlencoded::to_string([("store", found.tenant_id.as_str())]).unwrap_or_default();
        format!("/settings/api?{store}")
    } else {
        "/settings/api".into()
    };
    leptos_axum::redirect(&back);
    Ok(())
}

#[server(prefix = "/ui", endpoint = "reveal_secret")]
pub async fn reveal_secret(id: String) -> Result<String, AppError> {
    let user = crate::session::signed_in().await?;
    Ok(crate::session::services()?.current_secret(&user.scope(), &id).await?)
}

/// Rotates the signing secret; the old one keeps signing for the grace period. Returns how
/// long that is, for the page to say.
#[server(prefix = "/ui", endpoint = "rotate_secret")]
pub async fn rotate_secret(id: String) -> Result<String, AppError> {
    let user = crate::session::signed_in().await?;
    let services = crate::session::services()?;
    services.rotate_secret(&user.scope(), &id).await?;
    let hours = services.settings.secret_grace.as_secs() / 3600;
    Ok(format!("New secret created. The previous one keeps signing deliveries for {hours} hours."))
}

#[server(prefix = "/ui", endpoint = "send_test")]
pub async fn send_test_event(id: String) -> Result<AttemptOutcome, AppError> {
    let user = crate::session::signed_in().await?;
    Ok(ssr::outcome(crate::session::services()?.send_test_event(&user.scope(), &id, None).await?))
}

/// The webhook's delivery log, newest first, 25 a page.
#[server(prefix = "/ui", endpoint = "deliveries")]
pub async fn webhook_delivery_log(
    webhook_id: String,
    cursor: Option<String>,
    status: Option<String>,
    event_type: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<DeliveryLog, AppError> {
    use crate::format::date_bound;
    // Flat arguments: an all-empty struct would not survive the form encoding.
    let filter = LogFilter { status, event_type, from, to };
    let user = crate::session::signed_in().await?;
    let page = hookline_core::PageRequest { limit: Some(25), cursor };
    let narrowed = hookline_core::DeliveryFilter {
        status: filter.status,
        event_type: filter.event_type,
        from: date_bound("from", filter.from, false)?,
        to: date_bound("to", filter.to, true)?,
        ..Default::default()
    };
    let found = crate::session::services()?
        .list_deliveries_filtered(&user.scope(), &webhook_id, &narrowed, &page)
        .await?;
    Ok(DeliveryLog {
        items: found.items.into_iter().map(delivery_row).collect(),
        next_cursor: found.next_cursor,
    })
}

/// One delivery with its event's payload and every attempt.
#[server(prefix = "/ui", endpoint = "delivery")]
pub async fn delivery_with_attempts(delivery_id: String) -> Result<DeliveryInfo, AppError> {
    use crate::format::human_time;
    let user = crate::session::signed_in().await?;
    let services = crate::session::services()?;
    let (delivery, webhook, event, attempts) = services.delivery_detail(&user.scope(), &delivery_id).await?;
    let payload_removed = event.payload_pruned_at.map(|at| services.payload_removed_note(at));
    let pairs = |json: Option<String>| -> Vec<(String, String)> {
        json.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default()
    };
    let payload = serde_json::from_str::<serde_json::Value>(&event.payload)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or(event.payload);
    Ok(DeliveryInfo {
        row: delivery_row(hookline_core::DeliveryView::of(delivery, Some(&webhook))),
        event_id: event.id,
        payload,
        payload_removed,
        attempts: attempts
            .into_iter()
            .map(|a| AttemptInfo {
                started: human_time(a.started_at),
                trigger: a.trigger.to_string(),
                duration_ms: a.duration_ms,
                url: a.url,
                request_headers: pairs(Some(a.request_headers)),
                response_status: a.response_status,
                response_headers: pairs(a.response_headers),
                response_body: a.response_body,
                error: match (a.error_class, a.error_message) {
                    (Some(class), Some(message)) => Some(format!("{class}: {message}")),
                    (Some(class), None) => Some(class.to_string()),
                    _ => None,
                },
            })
            .collect(),
    })
}

#[server(prefix = "/ui", endpoint = "resend")]
pub async fn resend_delivery(delivery_id: String) -> Result<AttemptOutcome, AppError> {
    let user = crate::session::signed_in().await?;
    Ok(ssr::outcome(crate::session::services()?.resend(&user.scope(), &delivery_id).await?))
}

/// Successes and failures per hour over the last day.
#[server(prefix = "/ui", endpoint = "health")]
pub async fn hourly_health(id: String) -> Result<Vec<HourBar>, AppError> {
    let user = crate::session::signed_in().await?;
    let hours = crate::session::services()?.hourly_health(&user.scope(), &id).await?;
    Ok(hours
        .into_iter()
        .map(|(start, succeeded, failed)| HourBar {
            hour: hookline_core::iso8601(start)[11..16].to_string(),
            succeeded,
            failed,
        })
        .collect())
}

/// How many events were not delivered while the webhook was off.
#[server(prefix = "/ui", endpoint = "skipped")]
pub async fn skipped_while_off(id: String) -> Result<u64, AppError> {
    let user = crate::session::signed_in().await?;
    Ok(crate::session::services()?.skipped_count(&user.scope(), &id).await?)
}

#[server(prefix = "/ui", endpoint = "replay")]
pub async fn replay_skipped(id: String) -> Result<u64, AppError> {
    let user = crate::session::signed_in().await?;
    Ok(crate::session::services()?.replay_skipped(&user.scope(), &id).await?)
}
