//! `POST /api/v1/events` (publish) and `GET /api/v1/events/{id}`.

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::AppendHeaders;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookline_core::PublishRequest;
use hookline_core::entities::{delivery, event};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::extract::{Caller, read_body};
use super::{ApiError, time};
use crate::AppState;

/// `max_payload` is the configured payload limit; the envelope around it is small, so a
/// body far past the limit is refused before it is read.
pub fn router(max_payload: usize) -> Router<AppState> {
    Router::new()
        .route("/events", post(publish).layer(DefaultBodyLimit::max(max_payload + 64 * 1024)))
        .route("/events/{id}", get(get_event))
}

#[derive(Deserialize)]
struct PublishBody<'a> {
    tenant_type: Option<String>,
    tenant_id: Option<String>,
    event_type: String,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// `Idempotent-Replayed: true` when the answer is an earlier request's.
type ReplayedHeader = AppendHeaders<Option<(&'static str, &'static str)>>;

#[derive(Serialize)]
struct Accepted {
    id: String,
}

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

#[derive(Serialize)]
struct EventView {
    id: String,
    tenant_type: String,
    tenant_id: String,
    event_type: String,
    /// `null` once the payload retention removed it (see `payload_pruned_at`).
    payload: Box<RawValue>,
    /// When the payload retention removed the payload; `null` while it is kept.
    payload_pruned_at: Option<String>,
    idempotency_key: Option<String>,
    sequence: i64,
    received_at: String,
    deliveries: Vec<DeliverySummary>,
}

#[derive(Serialize)]
struct DeliverySummary {
    id: String,
    webhook_id: String,
    status: String,
    attempts: i32,
    last_status_code: Option<i32>,
}

async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EventView>, ApiError> {
    let db = &state.services.db;
    let found = event::Entity::find_by_id(&id).one(db).await.map_err(hookline_core::Error::from)?;
    let Some(ev) = found else {
        return Err(ApiError::not_found("event"));
    };
    let tenant = hookline_core::Tenant::from_fields(&ev.tenant_type, &ev.tenant_id)?;
    if !caller.0.allows(&tenant) {
        return Err(ApiError::not_found("event"));
    }
    let deliveries = delivery::Entity::find()
        .filter(delivery::Column::EventId.eq(&ev.id))
        .order_by_asc(delivery::Column::Id)
        .all(db)
        .await
        .map_err(hookline_core::Error::from)?;
    let payload = RawValue::from_string(ev.payload).map_err(|_| ApiError::not_found("event"))?;
    Ok(Json(EventView {
        id: ev.id,
        tenant_type: ev.tenant_type,
        tenant_id: ev.tenant_id,
        event_type: ev.event_type,
        payload,
        payload_pruned_at: ev.payload_pruned_at.map(time),
        idempotency_key: ev.idempotency_key,
        sequence: ev.sequence,
        received_at: time(ev.received_at),
        deliveries: deliveries
            .into_iter()
            .map(|d| DeliverySummary {
                id: d.id,
                webhook_id: d.webhook_id,
                status: d.status,
                attempts: d.attempts,
                last_status_code: d.last_status_code,
            })
            .collect(),
    }))
}
