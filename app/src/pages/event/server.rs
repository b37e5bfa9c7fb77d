//! The event page's server function: the event, "why didn't it arrive?" for each webhook of
//! its tenant (`Services::explain`), and its ordering key's timeline a page at a time
//! (`Services::ordering_key_timeline`). A merchant sees its store's events, an admin any;
//! anything else is the not-found page.

use hookline_domain::Outcome;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// What happened with one webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExplainRow {
    pub webhook_id: String,
    pub url: String,
    pub description: String,
    pub outcome: Outcome,
    pub detail: String,
    pub at: Option<String>,
    pub delivery_id: Option<String>,
    pub blocking_event_id: Option<String>,
}

/// One event of the ordering key's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyEventRow {
    pub id: String,
    pub event_type: String,
    pub sequence: i64,
    pub received: String,
    /// (webhook id, delivery status), by webhook.
    pub deliveries: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventPageData {
    pub id: String,
    pub event_type: String,
    /// "store store-a".
    pub tenant: String,
    pub received: String,
    pub sequence: i64,
    pub ordering_key: Option<String>,
    /// Pretty-printed; `None` once the payload retention removed it.
    pub payload: Option<String>,
    pub webhooks: Vec<ExplainRow>,
    /// More webhooks than the page shows (the API pages through all of them).
    pub more_webhooks: bool,
    pub timeline: Vec<KeyEventRow>,
    pub timeline_next: Option<String>,
}

/// The event `id` explained; `key_cursor` pages through its ordering key's timeline.
#[server(prefix = "/ui", endpoint = "event_explained")]
pub async fn event_explained(id: String, key_cursor: Option<String>) -> Result<EventPageData, AppError> {
    use crate::format::human_time;
    use crate::session::{services, signed_in};
    use hookline_core::{PageRequest, Tenant};
    /// The most webhooks the page lists (a tenant has at most `HOOKLINE_MAX_WEBHOOKS_PER_TENANT`).
    const WEBHOOKS_SHOWN: u64 = 250;
    /// The ordering key's events per page.
    const TIMELINE_PAGE: u64 = 25;
    let user = signed_in().await?;
    let scope = user.scope();
    let services = services()?;
    let found =
        services.explain(&scope, &id, &PageRequest { limit: Some(WEBHOOKS_SHOWN), cursor: None }).await;
    if matches!(found, Err(hookline_core::Error::NotFound(_))) {
        // Also when the page itself is rendered: an unknown event is a 404 page.
        if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
            res.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    let found = found?;
    let ev = found.event;
    let tenant = Tenant { kind: ev.tenant_type, id: ev.tenant_id.clone() };
    let (timeline, timeline_next) = match &ev.ordering_key {
        Some(key) => {
            let page =
                PageRequest { limit: Some(TIMELINE_PAGE), cursor: key_cursor.filter(|c| !c.is_empty()) };
            let page = services.ordering_key_timeline(&scope, &tenant, key, &page).await?;
            let rows = page
                .items
                .into_iter()
                .map(|e| KeyEventRow {
                    received: human_time(e.received_at),
                    deliveries: e
                        .deliveries
                        .into_iter()
                        .map(|d| (d.webhook_id, d.status.as_str().to_string()))
                        .collect(),
                    id: e.id,
                    event_type: e.event_type,
                    sequence: e.sequence,
                })
                .collect();
            (rows, page.next_cursor)
        }
        None => (Vec::new(), None),
    };
    let payload = ev.payload_pruned_at.is_none().then(|| {
        serde_json::from_str::<serde_json::Value>(&ev.payload)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| ev.payload.clone())
    });
    Ok(EventPageData {
        tenant: format!("{} {}", ev.tenant_type, ev.tenant_id),
        received: human_time(ev.received_at),
        sequence: ev.sequence,
        ordering_key: ev.ordering_key,
        payload,
        more_webhooks: found.webhooks.next_cursor.is_some(),
        webhooks: found
            .webhooks
            .items
            .into_iter()
            .map(|w| ExplainRow {
                outcome: w.outcome,
                at: w.at.map(human_time),
                webhook_id: w.webhook_id,
                url: w.url,
                description: w.description,
                detail: w.detail,
                delivery_id: w.delivery_id,
                blocking_event_id: w.blocking_event_id,
            })
            .collect(),
        timeline,
        timeline_next,
        id: ev.id,
        event_type: ev.event_type,
    })
}
