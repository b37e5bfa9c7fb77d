//! `POST /api/v1/events` (publish) and `GET /api/v1/events/{id}`.

use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::AppendHeaders;
use hookline_core::PublishRequest;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::extract::{Caller, read_body};
use super::vocabulary::{DeliveryStatus, TenantType};
use super::{ApiError, ErrorBody, time};
use crate::AppState;

/// `max_payload` is the configured payload limit; the envelope around it is small, so a
/// body far past the limit is refused before it is read.
pub fn router(max_payload: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(publish).layer(DefaultBodyLimit::max(max_payload + 64 * 1024)))
        .routes(routes!(get_event))
}

/// An event to publish.
#[derive(Deserialize, ToSchema)]
#[schema(as = PublishRequest)]
struct PublishBody<'a> {
    /// Omit with a store's or application's key: the key's own tenant.
    #[schema(value_type = Option<TenantType>)]
    tenant_type: Option<String>,
    /// Omit with a store's or application's key.
    tenant_id: Option<String>,
    /// A name from the event type catalog that fits the tenant.
    event_type: String,
    /// Any JSON value; delivered byte for byte.
    #[serde(borrow)]
    #[schema(value_type = Value)]
    payload: &'a RawValue,
    /// A webhook with ordering on delivers the events of one key in publish order, one at a
    /// time (an order id, say).
    #[schema(min_length = 1, max_length = 255)]
    #[serde(default)]
    ordering_key: Option<String>,
}

/// The headers `publish` reads beyond the key.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // documents what `publish` reads from the header map
struct PublishHeaders {
    /// A repeat within 24 hours answers with the first event and delivers nothing new.
    #[param(rename = "Idempotency-Key", value_type = String, required = false, min_length = 1, max_length = 255)]
    idempotency_key: Option<String>,
}

/// `Idempotent-Replayed: true` when the answer is an earlier request's.
type ReplayedHeader = AppendHeaders<Option<(&'static str, &'static str)>>;

/// The event was accepted: it is stored and its deliveries are queued.
#[derive(Serialize, ToSchema)]
struct Accepted {
    id: String,
}

/// Publish an event to every matching webhook of a tenant
///
/// A repeat with the same `Idempotency-Key` within 24 hours answers with the first event (and
/// `Idempotent-Replayed: true`) and delivers nothing new.
#[utoipa::path(
    post,
    path = "/events",
    operation_id = "publishEvent",
    tag = "Events",
    request_body = PublishBody,
    params(PublishHeaders),
    responses(
        (status = 202, description = "Accepted; deliveries are queued", body = Accepted,
            headers(("Idempotent-Replayed" = String, description = "`true` when this answers an earlier request"))),
        (status = 403, description = "The key cannot publish for this tenant", body = ErrorBody),
        (status = 413, description = "The payload is larger than HOOKLINE_MAX_PAYLOAD", body = ErrorBody),
        (status = 422, description = "No such tenant, or an event type the catalog does not have for it", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(scope = %caller.0))]
async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    req: Request,
) -> Result<(StatusCode, ReplayedHeader, Json<Accepted>), ApiError> {
    let bytes = read_body(req, &state).await?;
    let body: PublishBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("The body is not a valid event: {e}.")))?;
    let tenant = caller.tenant(body.tenant_type.as_deref(), body.tenant_id.as_deref())?;
    let idempotency_key =
        headers.get("idempotency-key").map(|v| v.to_str().map(str::to_string)).transpose().map_err(|_| {
            ApiError::bad_request("The Idempotency-Key header must be plain text.")
                .with_field("Idempotency-Key")
        })?;
    let published = state
        .services
        .publish(
            &caller.0,
            PublishRequest {
                tenant,
                event_type: body.event_type,
                payload: body.payload.get().to_string(),
                idempotency_key,
                ordering_key: body.ordering_key,
                audience: Default::default(),
            },
        )
        .await?;
    if !published.deduplicated {
        metrics::counter!(crate::telemetry::EVENTS_PUBLISHED, "source" => "api").increment(1);
    }
    // As the IETF idempotency-key draft suggests: the answer is the first request's.
    let replayed = AppendHeaders(published.deduplicated.then_some(("idempotent-replayed", "true")));
    Ok((StatusCode::ACCEPTED, replayed, Json(Accepted { id: published.event_id })))
}

/// An event as it was published, with its deliveries.
#[derive(Serialize, ToSchema)]
#[schema(as = Event)]
struct EventView {
    id: String,
    #[schema(value_type = TenantType)]
    tenant_type: String,
    tenant_id: String,
    event_type: String,
    /// As published; `null` once the payload retention removed it (see `payload_pruned_at`).
    #[schema(value_type = Value)]
    payload: Box<RawValue>,
    /// When the payload retention (HOOKLINE_PAYLOAD_RETENTION) removed the payload; `null`
    /// while it is kept.
    #[schema(required = true, format = DateTime)]
    payload_pruned_at: Option<String>,
    #[schema(required = true)]
    idempotency_key: Option<String>,
    /// The event's number among its tenant's events of the same resource.
    sequence: i64,
    /// The publisher's ordering key; `null` without one.
    #[schema(required = true)]
    ordering_key: Option<String>,
    #[schema(format = DateTime)]
    received_at: String,
    /// The deliveries the caller sees: one per webhook the event was for.
    deliveries: Vec<DeliverySummary>,
}

/// One delivery of an event.
#[derive(Serialize, ToSchema)]
#[schema(as = EventDelivery)]
struct DeliverySummary {
    id: String,
    webhook_id: String,
    #[schema(value_type = DeliveryStatus)]
    status: String,
    /// How many attempts were made.
    attempts: i32,
    /// The receiver's HTTP status at the last attempt; `null` before one or without an answer.
    #[schema(required = true)]
    last_status_code: Option<i32>,
}

/// An event with its deliveries
#[utoipa::path(
    get,
    path = "/events/{id}",
    operation_id = "getEvent",
    tag = "Events",
    params(("id" = String, Path, description = "The event's id")),
    responses(
        (status = 200, description = "The event", body = EventView),
        (status = 404, description = "No such event, or not one this key sees", body = ErrorBody),
    ),
)]
async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EventView>, ApiError> {
    let (ev, deliveries) = state.services.event_detail(&caller.0, &id).await?;
    let payload = RawValue::from_string(ev.payload).map_err(|_| ApiError::not_found("event"))?;
    Ok(Json(EventView {
        id: ev.id,
        tenant_type: ev.tenant_type.to_string(),
        tenant_id: ev.tenant_id,
        event_type: ev.event_type,
        payload,
        payload_pruned_at: ev.payload_pruned_at.map(time),
        idempotency_key: ev.idempotency_key,
        sequence: ev.sequence,
        ordering_key: ev.ordering_key,
        received_at: time(ev.received_at),
        deliveries: deliveries
            .into_iter()
            .map(|d| DeliverySummary {
                id: d.id,
                webhook_id: d.webhook_id,
                status: d.status.to_string(),
                attempts: d.attempts,
                last_status_code: d.last_status_code,
            })
            .collect(),
    }))
}
