//! The portal's entrance and framing: `/portal/start/{link}` opens a one-time link once and
//! sends the browser on to the session's pages, `/portal/{session}/…`; every portal answer
//! carries the allow-list of origins that may frame it (`browser.rs` writes it into the
//! Content-Security-Policy). The session lives in the address, not in a cookie: inside
//! another site's iframe, browsers increasingly drop third-party cookies.

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use hookline_core::{PortalEnded, Services};
use http::StatusCode;

use crate::browser::FrameAncestors;

pub fn router(services: Services) -> Router {
    Router::new()
        .route("/portal/start/{link}", axum::routing::get(start))
        .route("/portal/{session}", axum::routing::get(home))
        .with_state(services)
}

/// A session's bare address: on to its webhooks.
async fn home(Path(session): Path<String>) -> Redirect {
    Redirect::to(&format!("/portal/{session}/webhooks"))
}

/// Opens the link and sends the browser to the session's webhooks; a second opening, an
/// expired or a revoked link gets a page that says so.
async fn start(State(services): State<Services>, Path(link): Path<String>) -> Response {
    let ancestors = services.portal_frame_origins(&link, true).await.unwrap_or_default();
    let mut res = match services.open_portal_link(&link).await {
        Ok(Ok(session)) => Redirect::to(&format!("/portal/{session}/webhooks")).into_response(),
        Ok(Err(why)) => {
            let (status, text) = match why {
                PortalEnded::LinkUsed => (
                    StatusCode::GONE,
                    "This portal link was already opened. Each link opens once: ask the app that sent you here for a new one.",
                ),
                PortalEnded::Expired => (
                    StatusCode::GONE,
                    "This portal link has expired: links open within ten minutes. Ask the app that sent you here for a new one.",
                ),
                PortalEnded::Revoked => (StatusCode::GONE, "This portal link was revoked."),
                PortalEnded::Unknown => (StatusCode::NOT_FOUND, "There is no portal at this address."),
            };
            (status, ended_page("Portal link not valid", text)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot open a portal link");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                ended_page(
                    "Portal unavailable",
                    "The portal cannot be opened now. Try again in a few seconds.",
                ),
            )
                .into_response()
        }
    };
    res.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    res.extensions_mut().insert(FrameAncestors(ancestors));
    res
}

fn ended_page(title: &str, text: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · Hookline</title>\
         <link rel=\"stylesheet\" href=\"/pkg/hookline.css\"></head><body><main class=\"page portal\">\
         <div class=\"card\" id=\"portal-ended\"><h1>{title}</h1><p>{text}</p></div></main></body></html>"
    ))
}

/// Marks each answer under `/portal/{session}/` with the origins that may frame it.
pub async fn frame_ancestors(State(services): State<Services>, req: Request, next: Next) -> Response {
    let token = req
        .uri()
        .path()
        .strip_prefix("/portal/")
        .and_then(|rest| rest.split('/').next())
        .filter(|t| !t.is_empty() && *t != "start")
        .map(str::to_string);
    let mut res = next.run(req).await;
    if let Some(token) = token {
        let ancestors = services.portal_frame_origins(&token, false).await.unwrap_or_default();
        res.extensions_mut().insert(FrameAncestors(ancestors));
    }
    res
}
