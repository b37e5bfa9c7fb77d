//! `GET /api/v1/listen`: the stream `hookline listen` holds (server-sent events). Opening it
//! registers a temporary listener for the key's tenant; each event the listener receives is
//! sent signed exactly as a delivery would be (the delivery engine's headers, the listener's
//! own `whsec_` secret, the payload's bytes). The listener goes when the stream does: a guard
//! in the stream removes it, and its heartbeat expires if this process dies.
//!
//! The stream is pulled by the client: nothing is read from the database until the client
//! has taken what came before, so a client that stops reading holds one batch at most.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use hookline_core::entities::event;
use hookline_core::{Listener, ListenerFeed, Scope, Services};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Caller, Query};
use super::vocabulary::TenantType;
use super::{ApiError, ErrorBody};
use crate::AppState;
use crate::delivery::delivery_headers;

/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Most event types `events` may name (as a webhook).
const MAX_EVENTS_PARAM: usize = 4096;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(listen))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListenQuery {
    /// `store` or `application`; required with an admin key.
    #[param(value_type = Option<TenantType>)]
    tenant_type: Option<String>,
    /// Required with an admin key; an application's key names a store it is installed on.
    tenant_id: Option<String>,
    /// Event types to receive, comma-separated; every type when omitted.
    events: Option<String>,
    /// An event of the tenant to send again first, then keep listening.
    replay: Option<String>,
}

/// The first message of the stream (`event: listening`).
#[derive(Serialize, ToSchema)]
#[schema(as = ListenerStarted)]
struct Started {
    listener_id: String,
    /// The listener's signing secret: a receiver verifies its events with it.
    secret: String,
    #[schema(value_type = TenantType)]
    tenant_type: String,
    tenant_id: String,
    /// `null` for every type.
    #[schema(required = true)]
    event_types: Option<Vec<String>>,
}

/// One event as a delivery would carry it (`event: delivery`): forward `body` with `headers`.
#[derive(Serialize, ToSchema)]
#[schema(as = ListenedEvent)]
struct Delivered {
    event_id: String,
    event_type: String,
    /// True for the event `replay` named.
    replay: bool,
    /// `[name, value]` pairs, in order: `webhook-id`, `webhook-timestamp`,
    /// `webhook-signature` and the rest of a delivery's headers.
    headers: Vec<(String, String)>,
    /// The payload exactly as published.
    body: String,
}

/// Listen to a tenant's events (server-sent events)
///
/// Registers a temporary listener that receives what a webhook made with this key and these
/// event types would receive, until the connection closes. The stream starts with
/// `event: listening` (a `ListenerStarted`, with the listener's `whsec_` secret), then one
/// `event: delivery` (a `ListenedEvent`) per event, signed as a delivery is; `event: closed`
/// says why the server ended it. A tenant may have 5 listeners at once.
#[utoipa::path(
    get,
    path = "/listen",
    operation_id = "listen",
    tag = "Events",
    params(ListenQuery),
    responses(
        (status = 200, description = "The stream: `listening`, then `delivery` events", content_type = "text/event-stream", body = String),
        (status = 403, description = "The key cannot reach this tenant", body = ErrorBody),
        (status = 404, description = "No event `replay` of this tenant that the key sees", body = ErrorBody),
        (status = 422, description = "No such tenant, an unknown event type, or a replayed event whose payload is gone", body = ErrorBody),
        (status = 429, description = "The tenant has as many listeners as it may have", body = ErrorBody),
    ),
)]
#[tracing::instrument(skip_all, fields(scope = %caller.0))]
async fn listen(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListenQuery>,
) -> Result<Response, ApiError> {
    let tenant = caller.tenant(query.tenant_type.as_deref(), query.tenant_id.as_deref())?;
    let event_types = match query.events.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(list) if list.len() > MAX_EVENTS_PARAM => {
            return Err(ApiError::bad_request("events is too long.").with_field("events"));
        }
        Some(list) => {
            Some(list.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect())
        }
    };
    let services = state.services.clone();
    let listener = services.open_listener(&caller.0, &tenant, event_types).await?;
    // From here on, however this ends, the listener is removed.
    let guard = CloseOnDrop { services: services.clone(), id: listener.id().to_string() };
    let mut pending = VecDeque::new();
    if let Some(replay) = query.replay.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        pending.push_back((services.listener_replay(&listener, replay).await?, true));
    }
    let secret = hookline_core::generate_secret();
    tracing::info!(listener_id = listener.id(), tenant = %tenant, "listener connected");
    let started = Started {
        listener_id: listener.id().to_string(),
        secret: secret.clone(),
        tenant_type: tenant.kind.to_string(),
        tenant_id: tenant.id.clone(),
        event_types: listener.event_types().map(<[String]>::to_vec),
    };
    let stream = Stream {
        services: services.clone(),
        feed: services.listener_feed(&listener),
        listener,
        scope: caller.0,
        secret,
        prefix: state.header_prefix.clone(),
        stopping: state.stopping.clone(),
        first: Some(started),
        pending,
        ending: None,
        _guard: guard,
    };
    let events = futures_util::stream::unfold(stream, |mut s| async move {
        let event = s.next().await?;
        Some((Ok::<_, Infallible>(event), s))
    });
    let mut response = Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response();
    let headers = response.headers_mut();
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    // nginx buffers answers by default, which would hold events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The state of one stream.
struct Stream {
    services: Services,
    feed: ListenerFeed,
    listener: Listener,
    /// The key's scope, checked again at each heartbeat (a revoked key ends the stream).
    scope: Scope,
    secret: String,
    prefix: Arc<str>,
    stopping: tokio::sync::watch::Receiver<bool>,
    first: Option<Started>,
    /// Read but not yet sent (one batch at most), and whether each is a replay.
    pending: VecDeque<(event::Model, bool)>,
    /// Why the stream ends, sent as the last message.
    ending: Option<Option<String>>,
    _guard: CloseOnDrop,
}

impl Stream {
    /// The next message, or `None` once the stream is over.
    async fn next(&mut self) -> Option<Event> {
        if let Some(started) = self.first.take() {
            return Some(json_event("listening", &started));
        }
        if let Some(ending) = &mut self.ending {
            return ending.take().map(|why| Event::default().event("closed").data(why));
        }
        loop {
            if let Some((ev, replay)) = self.pending.pop_front() {
                return Some(self.delivered(&ev, replay));
            }
            let found = tokio::select! {
                _ = self.stopping.wait_for(|stop| *stop) => None,
                found = self.feed.next() => Some(found),
            };
            let why = match found {
                None => "Hookline is shutting down.".to_string(),
                Some(Ok(events)) if events.is_empty() => match self.still_allowed().await {
                    None => continue,
                    Some(why) => why,
                },
                Some(Ok(events)) => {
                    self.pending.extend(events.into_iter().map(|e| (e, false)));
                    continue;
                }
                Some(Err(hookline_core::Error::NotFound(_))) => "The listener expired.".to_string(),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, listener_id = self.listener.id(), "listener feed failed");
                    "Hookline cannot read events now; listen again in a moment.".to_string()
                }
            };
            self.ending = Some(None);
            return Some(Event::default().event("closed").data(why));
        }
    }

    /// `None` while the key still reaches the tenant, else why the stream ends.
    async fn still_allowed(&self) -> Option<String> {
        match self.services.listener_allowed(&self.scope, &self.listener).await {
            Ok(true) => None,
            Ok(false) => Some("This key no longer reaches the tenant.".into()),
            // A passing database error is not a reason to drop the developer's stream.
            Err(_) => None,
        }
    }

    fn delivered(&self, ev: &event::Model, replay: bool) -> Event {
        let per_target = format!("{}.{}", self.listener.id(), ev.id);
        let secrets = std::slice::from_ref(&self.secret);
        let headers = delivery_headers(&self.prefix, &per_target, ev, ev.payload.as_bytes(), secrets);
        let body = Delivered {
            event_id: ev.id.clone(),
            event_type: ev.event_type.clone(),
            replay,
            headers,
            body: ev.payload.clone(),
        };
        json_event("delivery", &body).id(ev.id.clone())
    }
}

fn json_event(name: &str, data: &impl Serialize) -> Event {
    // One line of JSON: strings escape their newlines.
    Event::default().event(name).data(serde_json::to_string(data).unwrap_or_else(|_| "{}".into()))
}

/// Removes the listener when the stream is dropped (the client went away, or the process
/// stops serving it).
struct CloseOnDrop {
    services: Services,
    id: String,
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let services = self.services.clone();
        let id = std::mem::take(&mut self.id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = services.close_listener(&id).await {
                    tracing::warn!(error = %e, listener_id = %id, "cannot remove a listener; it expires");
                } else {
                    tracing::info!(listener_id = %id, "listener disconnected");
                }
            });
        }
    }
}
