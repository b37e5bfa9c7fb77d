//! Bulk replays over REST: a dry run (the count and a sample) or a replay started in the
//! background, its progress, a webhook's replays, and cancelling one. The rules are in
//! `hookline_core` (`Services::start_replay`); the runner is the delivery engine's.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hookline_core::entities::{delivery, replay};
use hookline_core::{ReplayPreview, ReplayRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Caller, JsonBody, Query};
use super::vocabulary::DeliveryStatus;
use super::{ApiError, ErrorBody, Page, PageQuery, time};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(create, list)).routes(routes!(read)).routes(routes!(cancel))
}

/// What to replay: the webhook's settled deliveries, narrowed by each field given.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewReplay)]
struct CreateBody {
    /// Deliveries created at or after this time (RFC 3339).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    from: Option<Value>,
    /// Deliveries created before this time (RFC 3339); without it, before the replay starts.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    to: Option<Value>,
    /// One status or a list: `succeeded`, `failed`, `skipped`. Absent or null: all three.
    /// Pending and delivering deliveries are already on their way and are never replayed.
    #[serde(default)]
    #[schema(value_type = Option<Vec<DeliveryStatus>>)]
    status: Option<Value>,
    /// Event types; absent or null for every type.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    event_types: Option<Value>,
    /// `true` answers the count and a sample and starts nothing.
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    dry_run: Option<Value>,
}

impl CreateBody {
    /// The request with each field's type checked, errors naming the field.
    fn request(self) -> Result<(ReplayRequest, bool), ApiError> {
        let text =
            |field: &'static str, v: Option<Value>| -> Result<Option<String>, ApiError> {
                match v {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s)),
                    Some(_) => Err(ApiError::bad_request(format!("`{field}` must be an RFC 3339 time."))
                        .with_field(field)),
                }
            };
        let names = |field: &'static str,
                     v: Option<Value>,
                     one_allowed: bool|
         -> Result<Option<Vec<String>>, ApiError> {
            let wrong = || {
                let what = if one_allowed { "a name or a list of names" } else { "a list of names" };
                ApiError::bad_request(format!("`{field}` must be {what}.")).with_field(field)
            };
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if one_allowed => Ok(Some(vec![s])),
                Some(Value::Array(items)) => items
                    .into_iter()
                    .map(|i| match i {
                        Value::String(s) => Ok(s),
                        _ => Err(wrong()),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                Some(_) => Err(wrong()),
            }
        };
        let dry_run = match self.dry_run {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(_) => {
                return Err(ApiError::bad_request("`dry_run` must be true or false.").with_field("dry_run"));
            }
        };
        let request = ReplayRequest {
            from: text("from", self.from)?,
            to: text("to", self.to)?,
            statuses: names("status", self.status, true)?,
            event_types: names("event_types", self.event_types, false)?,
        };
        Ok((request, dry_run))
    }
}

/// A dry run's answer: how many deliveries the replay would send again, and the first few.
#[derive(Serialize, ToSchema)]
#[schema(as = ReplayPreview)]
struct PreviewView {
    count: u64,
    /// Up to 10 of them, in the order the replay would send them.
    sample: Vec<SampleView>,
}

/// One delivery a replay would send again.
#[derive(Serialize, ToSchema)]
#[schema(as = ReplaySample)]
struct SampleView {
    delivery_id: String,
    /// The `webhook-id` its requests carry.
    event_id: String,
    event_type: String,
    #[schema(value_type = DeliveryStatus)]
    status: String,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<ReplayPreview> for PreviewView {
    fn from(p: ReplayPreview) -> Self {
        PreviewView { count: p.count, sample: p.sample.into_iter().map(SampleView::from).collect() }
    }
}

impl From<delivery::Model> for SampleView {
    fn from(d: delivery::Model) -> Self {
        SampleView {
            delivery_id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status.to_string(),
            created_at: time(d.created_at),
        }
    }
}

/// The state of a replay.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum ReplayState {
    Running,
    Finished,
    Failed,
    Cancelled,
}

impl ReplayState {
    fn of(stored: hookline_domain::ReplayState) -> Self {
        match stored {
            hookline_domain::ReplayState::Running => ReplayState::Running,
            hookline_domain::ReplayState::Finished => ReplayState::Finished,
            hookline_domain::ReplayState::Failed => ReplayState::Failed,
            hookline_domain::ReplayState::Cancelled => ReplayState::Cancelled,
        }
    }
}

/// A bulk replay of one webhook's deliveries and its progress.
#[derive(Serialize, ToSchema)]
#[schema(as = Replay)]
struct ReplayView {
    id: String,
    webhook_id: String,
    state: ReplayState,
    /// Deliveries chosen; once finished, how many were sent again.
    total: i64,
    /// Deliveries queued again so far.
    done: i64,
    #[schema(required = true, format = DateTime)]
    from: Option<String>,
    /// The end of the choice (exclusive): the start of the replay when none was given.
    #[schema(required = true, format = DateTime)]
    to: Option<String>,
    /// The statuses chosen.
    #[schema(value_type = Vec<DeliveryStatus>)]
    status: Vec<String>,
    /// The event types chosen; `null` for every type.
    #[schema(required = true)]
    event_types: Option<Vec<String>>,
    /// Why a failed replay stopped.
    #[schema(required = true)]
    error: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(required = true, format = DateTime)]
    finished_at: Option<String>,
}

impl From<replay::Model> for ReplayView {
    fn from(r: replay::Model) -> Self {
        let choice = hookline_core::store::replays::ReplayChoice::of(&r);
        ReplayView {
            id: r.id,
            webhook_id: r.webhook_id,
            state: ReplayState::of(r.state),
            total: r.total,
            done: r.done,
            from: r.from_at.map(time),
            to: r.to_at.map(time),
            status: choice.statuses.iter().map(|s| s.to_string()).collect(),
            event_types: choice.event_types,
            error: r.error,
            created_at: time(r.created_at),
            finished_at: r.finished_at.map(time),
        }
    }
}

/// Replay a webhook's deliveries, or count them first with `dry_run`
///
/// Chooses the webhook's settled deliveries by creation time, status and event type. A dry run
/// answers the count and a sample; otherwise the replay starts in the background and its
/// deliveries go back to the queue, page by page, keeping their `webhook-id`. One replay runs
/// per webhook at a time.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/replays",
    operation_id = "replayDeliveries",
    tag = "Deliveries",
    params(("id" = String, Path, description = "The webhook's id")),
    request_body = CreateBody,
    responses(
        (status = 200, description = "Dry run: how many deliveries would be sent again, and a sample", body = PreviewView),
        (status = 202, description = "The replay started; follow its progress at Location", body = ReplayView,
            headers(("Location" = String, description = "The replay: `/api/v1/replays/{id}`"))),
        (status = 400, description = "A field is not valid: `from`, `to`, `status`, `event_types` or `dry_run`", body = ErrorBody),
        (status = 404, description = "No such webhook, or not one this key sees", body = ErrorBody),
        (status = 409, description = "The webhook is off, or a replay of it is still running", body = ErrorBody),
        (status = 422, description = "An unknown event type, or no delivery matches", body = ErrorBody),
    ),
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    let (request, dry_run) = body.request()?;
    if dry_run {
        let preview = state.services.preview_replay(&caller.0, &id, &request).await?;
        return Ok((StatusCode::OK, Json(PreviewView::from(preview))).into_response());
    }
    let started = state.services.start_replay(&caller.0, &id, &request, Some(caller.0.to_string())).await?;
    let location = format!("/api/v1/replays/{}", started.id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(ReplayView::from(started)))
        .into_response())
}

/// List a webhook's replays, newest first
#[utoipa::path(
    get,
    path = "/webhooks/{id}/replays",
    operation_id = "listReplays",
    tag = "Deliveries",
    params(("id" = String, Path, description = "The webhook's id"), PageQuery),
    responses(
        (status = 200, description = "One page of the webhook's replays", body = Page<ReplayView>),
        (status = 404, description = "No such webhook, or not one this key sees", body = ErrorBody),
    ),
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<ReplayView>>, ApiError> {
    let page = state.services.list_replays(&caller.0, &id, &query.page()).await?;
    Ok(Json(Page::of(page, ReplayView::from)))
}

/// A replay's progress
#[utoipa::path(
    get,
    path = "/replays/{id}",
    operation_id = "getReplay",
    tag = "Deliveries",
    params(("id" = String, Path, description = "The replay's id")),
    responses(
        (status = 200, description = "The replay and its progress", body = ReplayView),
        (status = 404, description = "No such replay, or not one this key sees", body = ErrorBody),
    ),
)]
async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReplayView>, ApiError> {
    Ok(Json(state.services.replay(&caller.0, &id).await?.into()))
}

/// Cancel a running replay; what it queued already is still sent
#[utoipa::path(
    post,
    path = "/replays/{id}/cancel",
    operation_id = "cancelReplay",
    tag = "Deliveries",
    params(("id" = String, Path, description = "The replay's id")),
    responses(
        (status = 200, description = "The replay, cancelled", body = ReplayView),
        (status = 404, description = "No such replay, or not one this key sees", body = ErrorBody),
        (status = 409, description = "The replay is not running", body = ErrorBody),
    ),
)]
async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReplayView>, ApiError> {
    Ok(Json(state.services.cancel_replay(&caller.0, &id).await?.into()))
}
