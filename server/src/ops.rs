//! Operations endpoints: `/healthz` (the process is up), `/readyz` (the database answers) and
//! `/metrics` in the Prometheus text format. A scrape renders what the process recorded (see
//! [`crate::telemetry`]) plus figures read from memory and /proc; it never queries the
//! database, however often it comes, so it answers while the database is away.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::AppState;

/// What `/metrics` serves and who may read it.
pub struct Metrics {
    /// What `/metrics` requires as `Authorization: Bearer …`, if anything.
    token: Option<String>,
    handle: &'static PrometheusHandle,
}

impl Metrics {
    pub fn new(token: Option<String>) -> Self {
        Metrics { token, handle: crate::telemetry::prometheus() }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    // Within 2 s, whatever the pool does: a load balancer must hear "no" in time.
    match tokio::time::timeout(Duration::from_secs(2), state.services.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}

async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> axum::response::Response {
    if let Some(token) = &state.metrics.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), token.as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "Send the metrics token as `Authorization: Bearer <token>`.",
            )
                .into_response();
        }
    }
    crate::telemetry::refresh_for_scrape(&state.services);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.handle.render()).into_response()
}
