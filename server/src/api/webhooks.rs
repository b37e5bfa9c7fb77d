//! Webhooks over REST: create, list, get, update, delete, toggle, rotate the secret, and the
//! delivery log with each delivery's attempts.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookline_core::entities::{attempt, webhook};
use hookline_core::{AttemptResult, DeliveryView, NewWebhook, Page, PageRequest, WebhookPatch};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use super::extract::{Caller, JsonBody, Query};
use super::{ApiError, time};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", post(create).get(list))
        .route("/webhooks/{id}", get(read).patch(update).delete(remove))
        .route("/webhooks/{id}/toggle", post(toggle))
        .route("/webhooks/{id}/rotate-secret", post(rotate_secret))
        .route("/webhooks/{id}/replay", post(replay))
        .route("/webhooks/{id}/deliveries", get(deliveries))
        .route("/webhooks/{id}/test", post(send_test))
        .route("/deliveries/{id}", get(delivery))
        .route("/deliveries/{id}/resend", post(resend))
}

#[derive(Serialize)]
pub struct WebhookView {
    id: String,
    tenant_type: String,
    tenant_id: String,
    url: String,
    description: String,
    event_types: Option<Vec<String>>,
    enabled: bool,
    disabled_reason: Option<String>,
    disabled_at: Option<String>,
    health: Health,
    /// Set for a webhook made as a subscription of a target and a filter.
    target_id: Option<String>,
    filter_id: Option<String>,
    /// The application that made this store-level webhook, if one did.
    application_id: Option<String>,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

#[derive(Serialize)]
struct Health {
    consecutive_failures: i32,
    failing_since: Option<String>,
    last_success_at: Option<String>,
}

impl From<webhook::Model> for WebhookView {
    fn from(w: webhook::Model) -> Self {
        WebhookView {
            event_types: w.event_filter(),
            id: w.id,
            tenant_type: w.tenant_type,
            tenant_id: w.tenant_id,
            url: w.url,
            description: w.description,
            enabled: w.enabled,
            disabled_reason: w.disabled_reason,
            disabled_at: w.disabled_at.map(time),
            health: Health {
                consecutive_failures: w.consecutive_failures,
                failing_since: w.failing_since.map(time),
                last_success_at: w.last_success_at.map(time),
            },
            target_id: w.target_id,
            filter_id: w.filter_id,
            application_id: w.application_id,
            created_at: time(w.created_at),
            updated_at: time(w.updated_at),
            secret: None,
        }
    }
}

#[derive(Deserialize)]
struct CreateBody {
    tenant_type: Option<String>,
    tenant_id: Option<String>,
    url: String,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    description: String,
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    let tenant = caller.tenant(body.tenant_type.as_deref(), body.tenant_id.as_deref())?;
    let created = state
        .services
        .create_webhook(
            &caller.0,
            NewWebhook {
                tenant,
                url: body.url,
                description: body.description,
                event_types: body.event_types,
            },
        )
        .await?;
    let mut view = WebhookView::from(created.webhook);
    view.secret = Some(created.secret);
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize)]
struct ListQuery {
    tenant_type: Option<String>,
    tenant_id: Option<String>,
    limit: Option<u64>,
    cursor: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<WebhookView>>, ApiError> {
    let tenant = caller.tenant(q.tenant_type.as_deref(), q.tenant_id.as_deref())?;
    let page = PageRequest { limit: q.limit, cursor: q.cursor };
    let found = state.services.list_webhooks(&caller.0, &tenant, &page).await?;
    Ok(Json(found.map(WebhookView::from)))
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(state.services.webhook(&caller.0, &id).await?.into()))
}

/// Tells a field that is absent from one that is `null`: `"event_types": null` means all.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct UpdateBody {
    url: Option<String>,
    description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    event_types: Option<Option<Vec<String>>>,
    enabled: Option<bool>,
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Result<Json<WebhookView>, ApiError> {
    let patch = WebhookPatch { url: body.url, description: body.description, event_types: body.event_types };
    let mut updated = state.services.update_webhook(&caller.0, &id, patch).await?;
    if let Some(enabled) = body.enabled {
        updated = state.services.set_webhook_enabled(&caller.0, &id, enabled).await?;
    }
    Ok(Json(updated.into()))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.delete_webhook(&caller.0, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ToggleBody {
    enabled: bool,
}

async fn toggle(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ToggleBody>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(state.services.set_webhook_enabled(&caller.0, &id, body.enabled).await?.into()))
}

#[derive(Serialize)]
struct SecretView {
    secret: String,
}

async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    Ok(Json(SecretView { secret: state.services.rotate_secret(&caller.0, &id).await? }))
}

#[derive(Serialize)]
struct Replayed {
    replayed: u64,
}

/// Queues again what the webhook skipped while it was off.
async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Replayed>, ApiError> {
    Ok(Json(Replayed { replayed: state.services.replay_skipped(&caller.0, &id).await? }))
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<u64>,
    cursor: Option<String>,
}

async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<DeliveryView>>, ApiError> {
    let page = PageRequest { limit: q.limit, cursor: q.cursor };
    Ok(Json(state.services.list_deliveries(&caller.0, &id, &page).await?))
}

/// One delivery with its attempts. Its fields are the log row's, except that the number of
/// attempts is `attempt_count` here: `attempts` is the list.
#[derive(Serialize)]
struct DeliveryDetail {
    id: String,
    event_id: String,
    event_type: String,
    status: String,
    attempt_count: i32,
    last_status_code: Option<i32>,
    last_duration_ms: Option<i32>,
    next_attempt_at: Option<i64>,
    created_at: i64,
    webhook_id: String,
    /// `null` once the payload retention removed it (see `payload_pruned_at`).
    payload: Box<RawValue>,
    /// When the payload retention removed the payload and the attempts' response bodies and
    /// headers; `null` while they are kept.
    payload_pruned_at: Option<String>,
    attempts: Vec<AttemptView>,
}

#[derive(Serialize)]
struct AttemptView {
    id: String,
    trigger: String,
    started_at: String,
    duration_ms: i32,
    url: String,
    request_headers: serde_json::Value,
    response_status: Option<i32>,
    response_headers: Option<serde_json::Value>,
    response_body: Option<String>,
    error_class: Option<String>,
    error_message: Option<String>,
}

impl From<attempt::Model> for AttemptView {
    fn from(a: attempt::Model) -> Self {
        AttemptView {
            id: a.id,
            trigger: a.trigger,
            started_at: time(a.started_at),
            duration_ms: a.duration_ms,
            url: a.url,
            request_headers: serde_json::from_str(&a.request_headers).unwrap_or_default(),
            response_status: a.response_status,
            response_headers: a.response_headers.and_then(|h| serde_json::from_str(&h).ok()),
            response_body: a.response_body,
            error_class: a.error_class,
            error_message: a.error_message,
        }
    }
}

async fn delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let (delivery, event, attempts) = state.services.delivery_detail(&caller.0, &id).await?;
    let payload = RawValue::from_string(event.payload).map_err(|_| ApiError::not_found("delivery"))?;
    let payload_pruned_at = event.payload_pruned_at.map(time);
    let webhook_id = delivery.webhook_id.clone();
    let row = DeliveryView::from(delivery);
    Ok(Json(DeliveryDetail {
        id: row.id,
        event_id: row.event_id,
        event_type: row.event_type,
        status: row.status,
        attempt_count: row.attempts,
        last_status_code: row.last_status_code,
        last_duration_ms: row.last_duration_ms,
        next_attempt_at: row.next_attempt_at,
        created_at: row.created_at,
        webhook_id,
        payload,
        payload_pruned_at,
        attempts: attempts.into_iter().map(AttemptView::from).collect(),
    }))
}

#[derive(Deserialize, Default)]
struct TestBody {
    event_type: Option<String>,
}

/// Sends the catalog's example of an event type (by default the first one the webhook
/// subscribes to) to this webhook alone, now; answers with the attempt's result.
async fn send_test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<AttemptResult>, ApiError> {
    let body: TestBody = if body.iter().all(u8::is_ascii_whitespace) {
        TestBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!("The body is not valid JSON for this request: {e}."))
        })?
    };
    Ok(Json(state.services.send_test_event(&caller.0, &id, body.event_type).await?))
}

/// One more attempt of a delivery, now, recorded as manual.
async fn resend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AttemptResult>, ApiError> {
    Ok(Json(state.services.resend(&caller.0, &id).await?))
}
