//! The REST API under `/api/v1`: JSON in and out, bearer API keys, one error shape.

mod error;
mod events;
mod extract;
mod keys;
pub mod openapi;
mod subscriptions;
mod tenants;
mod webhooks;

use axum::Router;

pub use error::ApiError;

use crate::AppState;

pub fn router(max_payload: usize) -> Router<AppState> {
    Router::new()
        .merge(events::router(max_payload))
        .merge(webhooks::router())
        .merge(tenants::router())
        .merge(subscriptions::router())
        .merge(keys::router())
        .route("/openapi.json", axum::routing::get(|| async { axum::Json(openapi::document()) }))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(axum::middleware::from_fn(extract::refuse_nul_in_uri))
}

/// Unix milliseconds as the API shows them.
pub(crate) fn time(ms: i64) -> String {
    hookline_core::iso8601(ms)
}
