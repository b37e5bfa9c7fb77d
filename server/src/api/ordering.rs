//! Ordered delivery's blocked keys: `GET /api/v1/webhooks/{id}/blocked-keys`, and retrying or
//! skipping a key's head (`POST …/blocked-keys/{key}/retry`, `…/skip`). A key is blocked when
//! the first of its deliveries still open has failed: every later event of the key waits.

use axum::Json;
use axum::extract::{Path, State};
use hookline_core::ordering::BlockedKey;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Caller, Query};
use super::vocabulary::DeliveryStatus;
use super::{ApiError, ErrorBody, Page, PageQuery, time};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(list)).routes(routes!(retry)).routes(routes!(skip))
}

/// A key of a webhook with ordering on whose first open delivery has failed: the key's later
/// events wait behind it until it succeeds, is retried or is skipped.
#[derive(Serialize, ToSchema)]
#[schema(as = BlockedKey)]
struct BlockedKeyView {
    ordering_key: String,
    /// The key's head: the delivery that holds it.
    delivery_id: String,
    event_id: String,
    event_type: String,
    /// `pending` while retries are scheduled, `failed` once they ran out.
    #[schema(value_type = DeliveryStatus)]
    status: String,
    attempts: i32,
    /// The receiver's HTTP status at the head's last attempt; `null` without an answer.
    #[schema(required = true)]
    last_status_code: Option<i32>,
    /// When the head's next attempt is due; `null` once it failed for good.
    #[schema(required = true, format = DateTime)]
    next_attempt_at: Option<String>,
    /// How many of the key's deliveries wait behind the head.
    waiting: i64,
}

impl From<BlockedKey> for BlockedKeyView {
    fn from(b: BlockedKey) -> Self {
        BlockedKeyView {
            ordering_key: b.ordering_key,
            delivery_id: b.delivery_id,
            event_id: b.event_id,
            event_type: b.event_type,
            status: b.status.to_string(),
            attempts: b.attempts,
            last_status_code: b.last_status_code,
            next_attempt_at: b.next_attempt_at.map(time),
            waiting: b.waiting,
        }
    }
}

/// A webhook's blocked keys
///
/// Only webhooks with ordering on have keys. Sorted by key; `cursor` is the last key of the
/// previous page.
#[utoipa::path(
    get,
    path = "/webhooks/{id}/blocked-keys",
    operation_id = "listBlockedKeys",
    tag = "Webhooks",
    params(("id" = String, Path, description = "The webhook's id"), PageQuery),
    responses(
        (status = 200, description = "A page of blocked keys", body = Page<BlockedKeyView>),
        (status = 404, description = "No such webhook, or not one this key sees", body = ErrorBody),
    ),
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<BlockedKeyView>>, ApiError> {
    let found = state.services.blocked_keys(&caller.0, &id, &q.page()).await?;
    Ok(Json(Page::of(found, BlockedKeyView::from)))
}

/// Retry a blocked key's head now
///
/// The head is due at once with its retry schedule started afresh; the key's later events
/// follow once it succeeds. Answers the head as it was.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/blocked-keys/{key}/retry",
    operation_id = "retryBlockedKey",
    tag = "Webhooks",
    params(
        ("id" = String, Path, description = "The webhook's id"),
        ("key" = String, Path, description = "The ordering key (percent-encoded)"),
    ),
    responses(
        (status = 200, description = "The head is queued again", body = BlockedKeyView),
        (status = 404, description = "No such webhook (or not one this key sees), or the key is not blocked", body = ErrorBody),
        (status = 409, description = "The head was claimed or delivered meanwhile", body = ErrorBody),
    ),
)]
async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<BlockedKeyView>, ApiError> {
    Ok(Json(state.services.retry_blocked_key(&caller.0, &id, &key).await?.into()))
}

/// Skip a blocked key's head
///
/// The head is settled as `skipped` (it is not sent again) and the key's next event goes.
/// Answers the head as it was.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/blocked-keys/{key}/skip",
    operation_id = "skipBlockedKey",
    tag = "Webhooks",
    params(
        ("id" = String, Path, description = "The webhook's id"),
        ("key" = String, Path, description = "The ordering key (percent-encoded)"),
    ),
    responses(
        (status = 200, description = "The head is skipped", body = BlockedKeyView),
        (status = 404, description = "No such webhook (or not one this key sees), or the key is not blocked", body = ErrorBody),
        (status = 409, description = "The head was claimed or delivered meanwhile", body = ErrorBody),
    ),
)]
async fn skip(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<BlockedKeyView>, ApiError> {
    Ok(Json(state.services.skip_blocked_key(&caller.0, &id, &key).await?.into()))
}
