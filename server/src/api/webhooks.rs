//! Webhooks over REST: create, list, get, update, delete, toggle, rotate the secret, and the
//! delivery log with each delivery's attempts.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use hookline_core::entities::{attempt, webhook};
use hookline_core::{DeliveryControl, DeliveryView, NewWebhook, WebhookPatch};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::conditions::{Conditions, stored_conditions, stored_include_fields};
use super::extract::{Caller, JsonBody, Query, read_body};
use super::vocabulary::{AttemptErrorClass, AttemptTrigger, DeliveryStatus, DisabledReason, TenantType};
use super::{ApiError, ErrorBody, Page, PageQuery, TenantPageQuery, time};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create, list))
        .routes(routes!(read, update, remove))
        .routes(routes!(toggle))
        .routes(routes!(rotate_secret))
        .routes(routes!(replay))
        .routes(routes!(send_test))
        .routes(routes!(deliveries))
        .routes(routes!(delivery))
        .routes(routes!(resend))
}

/// A webhook: where a tenant's events go.
#[derive(Serialize, ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookView {
    id: String,
    #[schema(value_type = TenantType)]
    tenant_type: String,
    tenant_id: String,
    url: String,
    description: String,
    /// The event types it receives; `null` for every event type.
    #[schema(required = true)]
    event_types: Option<Vec<String>>,
    enabled: bool,
    /// Why it is off; `null` while it is on.
    #[schema(required = true, value_type = Option<DisabledReason>)]
    disabled_reason: Option<String>,
    #[schema(required = true, format = DateTime)]
    disabled_at: Option<String>,
    health: Health,
    /// Set for a webhook made as a subscription of a target and a filter.
    #[schema(required = true)]
    target_id: Option<String>,
    #[schema(required = true)]
    filter_id: Option<String>,
    /// The application that made this store-level webhook, if one did.
    #[schema(required = true)]
    application_id: Option<String>,
    /// Deliveries of one `ordering_key` go one at a time, in publish order.
    ordering: bool,
    /// Requests per second at most; `null` for no limit.
    #[schema(required = true, minimum = 1, maximum = 10000)]
    rate_limit: Option<i32>,
    /// Payload conditions an event must meet to be delivered; `null` for none.
    #[schema(required = true, value_type = Option<Conditions>)]
    conditions: Option<serde_json::Value>,
    /// The payload paths sent (a projection of the payload, which the signature covers);
    /// `null` for the whole payload.
    #[schema(required = true)]
    include_fields: Option<Vec<String>>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// The signing secret: only in the answer that creates the webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    secret: Option<String>,
}

/// How the webhook's receiver has been answering.
#[derive(Serialize, ToSchema)]
struct Health {
    /// Failed attempts in a row.
    consecutive_failures: i32,
    /// When the current streak of failures began; `null` without one.
    #[schema(required = true, format = DateTime)]
    failing_since: Option<String>,
    #[schema(required = true, format = DateTime)]
    last_success_at: Option<String>,
}

impl From<webhook::Model> for WebhookView {
    fn from(w: webhook::Model) -> Self {
        WebhookView {
            event_types: w.event_filter(),
            conditions: stored_conditions(w.conditions.as_deref()),
            include_fields: stored_include_fields(w.include_fields.as_deref()),
            ordering: w.ordering,
            rate_limit: w.rate_limit,
            id: w.id,
            tenant_type: w.tenant_type.to_string(),
            tenant_id: w.tenant_id,
            url: w.url,
            description: w.description,
            enabled: w.enabled,
            disabled_reason: w.disabled_reason.map(|r| r.to_string()),
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

/// A new webhook.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewWebhook)]
struct CreateBody {
    /// Omit with a store's or application's key: the key's own tenant.
    #[schema(value_type = Option<TenantType>)]
    tenant_type: Option<String>,
    /// Omit with a store's or application's key.
    tenant_id: Option<String>,
    /// Where deliveries are sent: `https://`, and not a private address unless allowed.
    url: String,
    /// The event types it receives; `null` or absent for every event type.
    #[serde(default)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    description: String,
    /// Deliver the events of one `ordering_key` one at a time, in publish order (default false).
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    ordering: Option<serde_json::Value>,
    /// Requests per second at most, 1 to 10000; `null` or absent for no limit.
    #[serde(default)]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 10000)]
    rate_limit: Option<serde_json::Value>,
    /// Payload conditions (docs/conditions.md); `null` or absent for none.
    #[serde(default)]
    #[schema(value_type = Option<Conditions>)]
    conditions: Option<serde_json::Value>,
    /// Send only these payload paths (1 to 50); `null` or absent for the whole payload.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    include_fields: Option<serde_json::Value>,
}

/// Create a webhook; the answer carries its signing secret
#[utoipa::path(
    post,
    path = "/webhooks",
    operation_id = "createWebhook",
    tag = "Webhooks",
    request_body = CreateBody,
    responses(
        (status = 201, description = "The webhook, with its secret", body = WebhookView),
        (status = 403, description = "The key cannot manage webhooks of this tenant", body = ErrorBody),
        (status = 409, description = "The tenant has as many webhooks as it may", body = ErrorBody),
        (status = 422, description = "No such tenant, an unknown event type or a URL that is refused", body = ErrorBody),
    ),
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    let tenant = caller.tenant(body.tenant_type.as_deref(), body.tenant_id.as_deref())?;
    let control = DeliveryControl {
        ordering: body.ordering,
        rate_limit: body.rate_limit,
        conditions: body.conditions,
        include_fields: body.include_fields,
    };
    let created = state
        .services
        .create_webhook_with(
            &caller.0,
            NewWebhook {
                tenant,
                url: body.url,
                description: body.description,
                event_types: body.event_types,
            },
            control,
        )
        .await?;
    let mut view = WebhookView::from(created.webhook);
    view.secret = Some(created.secret);
    Ok((StatusCode::CREATED, Json(view)))
}

/// A tenant's webhooks
#[utoipa::path(
    get,
    path = "/webhooks",
    operation_id = "listWebhooks",
    tag = "Webhooks",
    params(TenantPageQuery),
    responses(
        (status = 200, description = "A page of webhooks, oldest first", body = Page<WebhookView>),
        (status = 403, description = "The key cannot see this tenant's webhooks", body = ErrorBody),
    ),
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantPageQuery>,
) -> Result<Json<Page<WebhookView>>, ApiError> {
    let tenant = q.tenant(&caller)?;
    let found = state.services.list_webhooks(&caller.0, &tenant, &q.page()).await?;
    Ok(Json(Page::of(found, WebhookView::from)))
}

/// One webhook
#[utoipa::path(
    get,
    path = "/webhooks/{id}",
    operation_id = "getWebhook",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The webhook's id")),
    responses(
        (status = 200, description = "The webhook", body = WebhookView),
        (status = 404, description = "No such webhook, or not one this key sees", body = ErrorBody),
    ),
)]
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

/// What to change; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[schema(as = WebhookPatch)]
struct UpdateBody {
    url: Option<String>,
    description: Option<String>,
    /// The event types it receives; `null` for every event type.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    event_types: Option<Option<Vec<String>>>,
    enabled: Option<bool>,
    /// Deliver the events of one `ordering_key` one at a time, in publish order.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>)]
    ordering: Option<serde_json::Value>,
    /// Requests per second at most, 1 to 10000; `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 10000)]
    rate_limit: Option<serde_json::Value>,
    /// Payload conditions (docs/conditions.md); `null` removes them.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Conditions>)]
    conditions: Option<serde_json::Value>,
    /// Send only these payload paths (1 to 50); `null` sends the whole payload again.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    include_fields: Option<serde_json::Value>,
}

/// Change a webhook's URL, description, event types, delivery control or state
#[utoipa::path(
    patch,
    path = "/webhooks/{id}",
    operation_id = "updateWebhook",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The webhook's id")),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The webhook as it is now", body = WebhookView),
        (status = 403, description = "The key cannot change this webhook", body = ErrorBody),
        (status = 404, description = "No such webhook, or not one this key sees", body = ErrorBody),
        (status = 409, description = "The change conflicts with the webhook's state", body = ErrorBody),
        (status = 422, description = "An unknown event type or a URL that is refused", body = ErrorBody),
    ),
)]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Result<Json<WebhookView>, ApiError> {
    let patch = WebhookPatch { url: body.url, description: body.description, event_types: body.event_types };
    let control = DeliveryControl {
        ordering: body.ordering,
        rate_limit: body.rate_limit,
        conditions: body.conditions,
        include_fields: body.include_fields,
    };
    let mut updated = state.services.update_webhook_with(&caller.0, &id, patch, control).await?;
    if let Some(enabled) = body.enabled {
        updated = state.services.set_webhook_enabled(&caller.0, &id, enabled).await?;
    }
    Ok(Json(updated.into()))
}

/// Delete a webhook with its deliveries
#[utoipa::path(
    delete,
    path = "/webhooks/{id}",
    operation_id = "deleteWebhook",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The webhook's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The key cannot delete this webhook", body = ErrorBody),
        (status = 404, description = "No such webhook, or not one this key sees", body = ErrorBody),
        (status = 409, description = "The webhook cannot be deleted now", body = ErrorBody),
    ),
)]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.delete_webhook(&caller.0, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// On or off.
#[derive(Deserialize, ToSchema)]
#[schema(as = Toggle)]
struct ToggleBody {
    enabled: bool,
}

/// Turn a webhook on or off
#[utoipa::path(
    post,
    path = "/webhooks/{id}/toggle",
    operation_id = "toggleWebhook",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The webhook's id")),
    request_body = ToggleBody,
    responses(
        (status = 200, description = "The webhook as it is now", body = WebhookView),
        (status = 403, description = "The key cannot change this webhook", body = ErrorBody),
        (status = 404, description = "No such webhook, or not one this key sees", body = ErrorBody),
        (status = 409, description = "The webhook cannot be turned on now", body = ErrorBody),
        (status = 422, description = "The webhook cannot be turned on as it is", body = ErrorBody),
    ),
)]
async fn toggle(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ToggleBody>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(state.services.set_webhook_enabled(&caller.0, &id, body.enabled).await?.into()))
}

/// The webhook's new signing secret.
#[derive(Serialize, ToSchema)]
#[schema(as = Secret)]
struct SecretView {
    secret: String,
}

/// New signing secret; the old one signs too for the grace period
#[utoipa::path(
    post,
    path = "/webhooks/{id}/rotate-secret",
    operation_id = "rotateSecret",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The webhook's id")),
    responses(
        (status = 200, description = "The new secret", body = SecretView),
        (status = 403, description = "The key cannot change this webhook", body = ErrorBody),
        (status = 404, description = "No such webhook, or not one this key sees", body = ErrorBody),
        (status = 409, description = "The secret cannot be rotated now", body = ErrorBody),
    ),
)]
async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    Ok(Json(SecretView { secret: state.services.rotate_secret(&caller.0, &id).await? }))
}

/// How many skipped deliveries were queued again.
#[derive(Serialize, ToSchema)]
struct Replayed {
    replayed: u64,
}

/// Deliver again what the webhook skipped while it was off
#[utoipa::path(
    post,
    path = "/webhooks/{id}/replay",
    operation_id = "replaySkipped",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The webhook's id")),
    responses(
        (status = 200, description = "The skipped deliveries are queued again", body = Replayed),
        (status = 403, description = "The key cannot change this webhook", body = ErrorBody),
        (status = 404, description = "No such webhook, or not one this key sees", body = ErrorBody),
        (status = 409, description = "The webhook is off: turn it on first", body = ErrorBody),
    ),
)]
async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Replayed>, ApiError> {
    Ok(Json(Replayed { replayed: state.services.replay_skipped(&caller.0, &id).await? }))
}

/// A row of the delivery log.
#[derive(Serialize, ToSchema)]
#[schema(as = Delivery)]
struct DeliveryRow {
    id: String,
    event_id: String,
    event_type: String,
    #[schema(value_type = DeliveryStatus)]
    status: String,
    /// How many attempts were made.
    attempts: i32,
    /// The receiver's HTTP status at the last attempt; `null` before one or without an answer.
    #[schema(required = true)]
    last_status_code: Option<i32>,
    #[schema(required = true)]
    last_duration_ms: Option<i32>,
    /// When the next attempt is due, while the delivery is pending (behind an open circuit
    /// breaker: the breaker's next probe, the earliest it can go); `null` otherwise.
    #[schema(required = true, format = DateTime)]
    next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<DeliveryView> for DeliveryRow {
    fn from(row: DeliveryView) -> Self {
        DeliveryRow {
            id: row.id,
            event_id: row.event_id,
            event_type: row.event_type,
            status: row.status.to_string(),
            attempts: row.attempts,
            last_status_code: row.last_status_code,
            last_duration_ms: row.last_duration_ms,
            next_attempt_at: row.next_attempt_at.map(time),
            created_at: time(row.created_at),
        }
    }
}

/// The webhook's delivery log, newest first
#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries",
    operation_id = "listDeliveries",
    tag = "Deliveries",
    params(("id" = String, Path, description = "The webhook's id"), PageQuery),
    responses(
        (status = 200, description = "A page of the log", body = Page<DeliveryRow>),
        (status = 404, description = "No such webhook, or not one this key sees", body = ErrorBody),
    ),
)]
async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<DeliveryRow>>, ApiError> {
    let found = state.services.list_deliveries(&caller.0, &id, &q.page()).await?;
    Ok(Json(Page::of(found, DeliveryRow::from)))
}

/// One delivery with its attempts. Its fields are the log row's, except that the number of
/// attempts is `attempt_count` here: `attempts` is the list.
#[derive(Serialize, ToSchema)]
struct DeliveryDetail {
    id: String,
    event_id: String,
    event_type: String,
    #[schema(value_type = DeliveryStatus)]
    status: String,
    attempt_count: i32,
    #[schema(required = true)]
    last_status_code: Option<i32>,
    #[schema(required = true)]
    last_duration_ms: Option<i32>,
    /// When the next attempt is due, while the delivery is pending (behind an open circuit
    /// breaker: the breaker's next probe, the earliest it can go); `null` otherwise.
    #[schema(required = true, format = DateTime)]
    next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    webhook_id: String,
    /// The event's payload as published; `null` once the payload retention removed it (see
    /// `payload_pruned_at`).
    #[schema(value_type = Value)]
    payload: Box<RawValue>,
    /// When the payload retention (HOOKLINE_PAYLOAD_RETENTION) removed the payload and the
    /// attempts' response bodies and headers; `null` while they are kept.
    #[schema(required = true, format = DateTime)]
    payload_pruned_at: Option<String>,
    attempts: Vec<AttemptView>,
}

/// One attempt: the request sent and what came back.
#[derive(Serialize, ToSchema)]
#[schema(as = Attempt)]
struct AttemptView {
    id: String,
    #[schema(value_type = AttemptTrigger)]
    trigger: String,
    #[schema(format = DateTime)]
    started_at: String,
    duration_ms: i32,
    url: String,
    /// The request's headers as `[name, value]` pairs.
    #[schema(value_type = Vec<Vec<String>>)]
    request_headers: serde_json::Value,
    /// The receiver's HTTP status; `null` when no answer came.
    #[schema(required = true)]
    response_status: Option<i32>,
    /// The answer's headers as `[name, value]` pairs; `null` without an answer or once pruned.
    #[schema(required = true, value_type = Option<Vec<Vec<String>>>)]
    response_headers: Option<serde_json::Value>,
    /// The start of the answer's body; `null` without one or once pruned.
    #[schema(required = true)]
    response_body: Option<String>,
    /// Why the attempt failed, for programs; `null` when it succeeded.
    #[schema(required = true, value_type = Option<AttemptErrorClass>)]
    error_class: Option<String>,
    #[schema(required = true)]
    error_message: Option<String>,
}

impl From<attempt::Model> for AttemptView {
    fn from(a: attempt::Model) -> Self {
        AttemptView {
            id: a.id,
            trigger: a.trigger.to_string(),
            started_at: time(a.started_at),
            duration_ms: a.duration_ms,
            url: a.url,
            request_headers: serde_json::from_str(&a.request_headers).unwrap_or_default(),
            response_status: a.response_status,
            response_headers: a.response_headers.and_then(|h| serde_json::from_str(&h).ok()),
            response_body: a.response_body,
            error_class: a.error_class.map(|c| c.to_string()),
            error_message: a.error_message,
        }
    }
}

/// A delivery with its payload and every attempt
#[utoipa::path(
    get,
    path = "/deliveries/{id}",
    operation_id = "getDelivery",
    tag = "Deliveries",
    params(("id" = String, Path, description = "The delivery's id")),
    responses(
        (status = 200, description = "The delivery", body = DeliveryDetail),
        (status = 404, description = "No such delivery, or not one this key sees", body = ErrorBody),
    ),
)]
async fn delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let (delivery, webhook, event, attempts) = state.services.delivery_detail(&caller.0, &id).await?;
    let payload = RawValue::from_string(event.payload).map_err(|_| ApiError::not_found("delivery"))?;
    let payload_pruned_at = event.payload_pruned_at.map(time);
    let webhook_id = delivery.webhook_id.clone();
    let row = DeliveryRow::from(DeliveryView::of(delivery, Some(&webhook)));
    Ok(Json(DeliveryDetail {
        id: row.id,
        event_id: row.event_id,
        event_type: row.event_type,
        status: row.status.to_string(),
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

/// Which event type's example to send.
#[derive(Deserialize, Default, ToSchema)]
#[schema(as = TestEvent)]
struct TestBody {
    /// By default the first event type the webhook receives.
    event_type: Option<String>,
}

/// What one attempt made on request came to.
#[derive(Serialize, ToSchema)]
struct AttemptResult {
    delivery_id: String,
    succeeded: bool,
    /// The receiver's HTTP status; `null` when no answer came.
    #[schema(required = true)]
    response_status: Option<u16>,
    duration_ms: u64,
    /// Why the attempt failed; `null` when it succeeded.
    #[schema(required = true)]
    error: Option<String>,
}

impl From<hookline_core::AttemptResult> for AttemptResult {
    fn from(r: hookline_core::AttemptResult) -> Self {
        AttemptResult {
            delivery_id: r.delivery_id,
            succeeded: r.succeeded,
            response_status: r.response_status,
            duration_ms: r.duration_ms,
            error: r.error,
        }
    }
}

/// Send an event type's example to the webhook now
///
/// Sends the catalog's example of an event type (by default the first one the webhook
/// receives) to this webhook alone, now, and answers with the attempt's result.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/test",
    operation_id = "sendTestEvent",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The webhook's id")),
    request_body = Option<TestBody>,
    responses(
        (status = 200, description = "The attempt was made (whether or not it succeeded)", body = AttemptResult),
        (status = 403, description = "The key cannot use this webhook", body = ErrorBody),
        (status = 404, description = "No such webhook, or not one this key sees", body = ErrorBody),
        (status = 409, description = "This process sends no deliveries, or the webhook is off", body = ErrorBody),
        (status = 422, description = "An unknown event type", body = ErrorBody),
        (status = 429, description = "Too many resends and test sends for the tenant; see Retry-After", body = ErrorBody),
    ),
)]
async fn send_test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<AttemptResult>, ApiError> {
    let body = read_body(req, &state).await?;
    let body: TestBody = if body.iter().all(u8::is_ascii_whitespace) {
        TestBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!("The body is not valid JSON for this request: {e}."))
        })?
    };
    Ok(Json(state.services.send_test_event(&caller.0, &id, body.event_type).await?.into()))
}

/// One more attempt now, recorded as manual
#[utoipa::path(
    post,
    path = "/deliveries/{id}/resend",
    operation_id = "resendDelivery",
    tag = "Deliveries",
    params(("id" = String, Path, description = "The delivery's id")),
    responses(
        (status = 200, description = "The attempt was made (whether or not it succeeded)", body = AttemptResult),
        (status = 403, description = "The key cannot use this delivery", body = ErrorBody),
        (status = 404, description = "No such delivery, or not one this key sees", body = ErrorBody),
        (status = 409, description = "This process sends no deliveries, or the delivery cannot be resent now", body = ErrorBody),
        (status = 429, description = "Too many resends and test sends for the tenant; see Retry-After", body = ErrorBody),
    ),
)]
async fn resend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AttemptResult>, ApiError> {
    Ok(Json(state.services.resend(&caller.0, &id).await?.into()))
}
