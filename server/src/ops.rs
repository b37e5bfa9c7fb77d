//! Operations endpoints: `/healthz` (the process is up), `/readyz` (the database answers) and
//! `/metrics` in the Prometheus text format. A scrape reads counters kept in memory as
//! deliveries change; it never queries the database, however often it comes.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;

/// Upper bounds (seconds) of the attempt-duration histogram.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Default)]
pub struct Metrics {
    /// What `/metrics` requires as `Authorization: Bearer …`, if anything.
    token: Option<String>,
    /// When the oldest due delivery came due (unix ms; 0 for none), as the janitor last saw it.
    oldest_due_at: AtomicI64,
    attempts_succeeded: AtomicU64,
    attempts_failed: AtomicU64,
    events_published: AtomicU64,
    duration_buckets: [AtomicU64; BUCKETS.len()],
    duration_sum_micros: AtomicU64,
}

impl Metrics {
    pub fn new(token: Option<String>) -> Self {
        Metrics { token, ..Default::default() }
    }

    /// Notes when the oldest due delivery came due (`None`: nothing is due).
    pub fn set_oldest_due(&self, at: Option<i64>) {
        self.oldest_due_at.store(at.unwrap_or(0), Ordering::Relaxed);
    }

    pub fn record_attempt(&self, succeeded: bool, duration: Duration) {
        let counter = if succeeded { &self.attempts_succeeded } else { &self.attempts_failed };
        counter.fetch_add(1, Ordering::Relaxed);
        let secs = duration.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.duration_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.duration_sum_micros.fetch_add(duration.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn record_published(&self) {
        self.events_published.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self) -> String {
        let ok = self.attempts_succeeded.load(Ordering::Relaxed);
        let failed = self.attempts_failed.load(Ordering::Relaxed);
        let mut out = String::new();
        out.push_str("# HELP hookline_events_published_total Events accepted by this process.\n");
        out.push_str("# TYPE hookline_events_published_total counter\n");
        out.push_str(&format!(
            "hookline_events_published_total {}\n",
            self.events_published.load(Ordering::Relaxed)
        ));
        out.push_str(
            "# HELP hookline_delivery_attempts_total Delivery attempts made by this process, by outcome.\n",
        );
        out.push_str("# TYPE hookline_delivery_attempts_total counter\n");
        out.push_str(&format!("hookline_delivery_attempts_total{{outcome=\"succeeded\"}} {ok}\n"));
        out.push_str(&format!("hookline_delivery_attempts_total{{outcome=\"failed\"}} {failed}\n"));
        out.push_str("# HELP hookline_delivery_attempt_duration_seconds Time from request to response.\n");
        out.push_str("# TYPE hookline_delivery_attempt_duration_seconds histogram\n");
        for (i, bound) in BUCKETS.iter().enumerate() {
            out.push_str(&format!(
                "hookline_delivery_attempt_duration_seconds_bucket{{le=\"{bound}\"}} {}\n",
                self.duration_buckets[i].load(Ordering::Relaxed)
            ));
        }
        out.push_str(&format!(
            "hookline_delivery_attempt_duration_seconds_bucket{{le=\"+Inf\"}} {}\n",
            ok + failed
        ));
        out.push_str(&format!(
            "hookline_delivery_attempt_duration_seconds_sum {}\n",
            self.duration_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        ));
        out.push_str(&format!("hookline_delivery_attempt_duration_seconds_count {}\n", ok + failed));
        let oldest = self.oldest_due_at.load(Ordering::Relaxed);
        let age = if oldest == 0 { 0.0 } else { (hookline_core::now_ms() - oldest).max(0) as f64 / 1000.0 };
        out.push_str(
            "# HELP hookline_oldest_due_delivery_age_seconds How long the oldest due delivery has waited \
             (refreshed every few seconds).\n",
        );
        out.push_str("# TYPE hookline_oldest_due_delivery_age_seconds gauge\n");
        out.push_str(&format!("hookline_oldest_due_delivery_age_seconds {age}\n"));
        out
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
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}
