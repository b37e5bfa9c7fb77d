//! "Why didn't it arrive?": `GET /api/v1/events/{id}/explain` (each webhook of the event's
//! tenant with its outcome) and `GET /api/v1/ordering-keys/{key}/events` (an ordering key's
//! timeline). The rules are in `hookline_core`'s explain module; docs/explain.md says what each
//! outcome means.

use axum::Json;
use axum::extract::{Path, Query, State};
use hookline_core::{Outcome, WebhookOutcome};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Caller;
use super::vocabulary::DeliveryStatus;
use super::{ApiError, ErrorBody, PageQuery, TenantPageQuery, time};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(explain_event)).routes(routes!(key_timeline))
}

/// What happened with one webhook for the event.
pub(crate) struct ExplainOutcome;

impl utoipa::PartialSchema for ExplainOutcome {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "not_subscribed: its event types (or an application's product lines) leave the type out, \
                 or it was created after the event; filtered_out: its conditions kept the event out; \
                 webhook_off: it was off, so the delivery was skipped; paused: the receiver paused it \
                 (Retry-After or an open circuit breaker) until `at`; blocked_key: an ordered delivery \
                 behind an earlier delivery of its key that is not delivered; queued: due at `at` (or \
                 being sent now); delivered: at `at`; failed: the retry schedule was used up, at `at`; \
                 skipped: skipped by hand, as the head of a blocked ordering key.",
            ))
            .enum_values(Some(Outcome::ALL.map(Outcome::as_str)))
            .build()
            .into()
    }
}

impl ToSchema for ExplainOutcome {
    fn name() -> std::borrow::Cow<'static, str> {
        "ExplainOutcome".into()
    }
}

/// One webhook of the event's tenant, and what happened with it.
#[derive(Serialize, ToSchema)]
struct WebhookExplained {
    webhook_id: String,
    url: String,
    description: String,
    #[schema(value_type = ExplainOutcome)]
    outcome: &'static str,
    /// Why, in a sentence: the condition that failed, since when and why the webhook is off,
    /// the key and the event holding it, the last answer…
    detail: String,
    /// The outcome's moment: delivered or failed at, queued or paused until, off since,
    /// created at (for a webhook made after the event); `null` where there is none.
    #[schema(required = true, format = DateTime)]
    at: Option<String>,
    /// The event's delivery to this webhook; `null` when it got none.
    #[schema(required = true)]
    delivery_id: Option<String>,
    /// For `blocked_key`: the event whose delivery holds the key.
    #[schema(required = true)]
    blocking_event_id: Option<String>,
}

impl From<WebhookOutcome> for WebhookExplained {
    fn from(w: WebhookOutcome) -> Self {
        WebhookExplained {
            webhook_id: w.webhook_id,
            url: w.url,
            description: w.description,
            outcome: w.outcome.as_str(),
            detail: w.detail,
            at: w.at.map(time),
            delivery_id: w.delivery_id,
            blocking_event_id: w.blocking_event_id,
        }
    }
}

/// An event explained: one item per webhook of its tenant (those the key sees), by id.
#[derive(Serialize, ToSchema)]
#[schema(as = EventExplanation)]
struct Explained {
    event_id: String,
    event_type: String,
    #[schema(format = DateTime)]
    received_at: String,
    #[schema(required = true)]
    ordering_key: Option<String>,
    items: Vec<WebhookExplained>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// Why an event did or did not arrive, per webhook
///
/// For every webhook of the event's tenant that the key sees (an application installed on the
/// store: the webhooks it made), what happened with the event: `not_subscribed`,
/// `filtered_out`, `webhook_off`, `paused`, `blocked_key`, `queued`, `delivered`, `failed` or
/// `skipped`, with a sentence and its moment.
#[utoipa::path(
    get,
    path = "/events/{id}/explain",
    operation_id = "explainEvent",
    tag = "Events",
    params(("id" = String, Path, description = "The event's id"), PageQuery),
    responses(
        (status = 200, description = "The event's webhooks and what happened with each", body = Explained),
        (status = 404, description = "No such event, or not one this key sees", body = ErrorBody),
    ),
)]
async fn explain_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Explained>, ApiError> {
    let found = state.services.explain(&caller.0, &id, &q.page()).await?;
    let ev = found.event;
    Ok(Json(Explained {
        event_id: ev.id,
        event_type: ev.event_type,
        received_at: time(ev.received_at),
        ordering_key: ev.ordering_key,
        items: found.webhooks.items.into_iter().map(Into::into).collect(),
        next_cursor: found.webhooks.next_cursor,
    }))
}

/// One delivery of an event on an ordering key's timeline.
#[derive(Serialize, ToSchema)]
struct KeyDelivery {
    id: String,
    webhook_id: String,
    #[schema(value_type = DeliveryStatus)]
    status: String,
    attempts: i32,
    /// The receiver's HTTP status at the last attempt; `null` before one or without an answer.
    #[schema(required = true)]
    last_status_code: Option<i32>,
    /// For a webhook with ordering on: the delivery's place in the key's order (the receiver
    /// gets the key's events in this order); `null` otherwise.
    #[schema(required = true)]
    ordering_seq: Option<i64>,
    /// When the next attempt is due, while the delivery is pending; `null` otherwise.
    #[schema(required = true, format = DateTime)]
    next_attempt_at: Option<String>,
}

/// One event of the key, with its deliveries.
#[derive(Serialize, ToSchema)]
struct KeyEvent {
    id: String,
    event_type: String,
    /// The event's number among its tenant's events of the same resource: publish order.
    sequence: i64,
    #[schema(format = DateTime)]
    received_at: String,
    deliveries: Vec<KeyDelivery>,
}

/// A page of the key's events, oldest first.
#[derive(Serialize, ToSchema)]
#[schema(as = OrderingKeyTimeline)]
struct Timeline {
    ordering_key: String,
    items: Vec<KeyEvent>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// An ordering key's events in publish order
///
/// The tenant's events published with this `ordering_key`, oldest first, each with its
/// deliveries (an application installed on the store sees only its own webhooks' deliveries,
/// and only the events that have one).
#[utoipa::path(
    get,
    path = "/ordering-keys/{key}/events",
    operation_id = "orderingKeyEvents",
    tag = "Events",
    params(("key" = String, Path, description = "The ordering key (percent-encoded)"), TenantPageQuery),
    responses(
        (status = 200, description = "A page of the key's events", body = Timeline),
        (status = 400, description = "A key longer than 255 characters, or a bad cursor", body = ErrorBody),
        (status = 403, description = "The key cannot see this tenant", body = ErrorBody),
    ),
)]
async fn key_timeline(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(q): Query<TenantPageQuery>,
) -> Result<Json<Timeline>, ApiError> {
    let tenant = q.tenant(&caller)?;
    let page = state.services.ordering_key_timeline(&caller.0, &tenant, &key, &q.page()).await?;
    Ok(Json(Timeline {
        ordering_key: key,
        items: page
            .items
            .into_iter()
            .map(|e| KeyEvent {
                id: e.id,
                event_type: e.event_type,
                sequence: e.sequence,
                received_at: time(e.received_at),
                deliveries: e
                    .deliveries
                    .into_iter()
                    .map(|d| KeyDelivery {
                        next_attempt_at: (d.status == hookline_core::DeliveryStatus::Pending)
                            .then_some(d.next_attempt_at)
                            .flatten()
                            .map(time),
                        id: d.id,
                        webhook_id: d.webhook_id,
                        status: d.status.to_string(),
                        attempts: d.attempts,
                        last_status_code: d.last_status_code,
                        ordering_seq: d.ordering_seq,
                    })
                    .collect(),
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}
