//! Operations endpoints: `/healthz` (the process is up), `/readyz` (the database answers) and
//! `/metrics` in the Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use sea_orm::{ConnectionTrait, Statement};

use crate::AppState;

/// Upper bounds (seconds) of the attempt-duration histogram.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Default)]
pub struct Metrics {
    attempts_succeeded: AtomicU64,
    attempts_failed: AtomicU64,
    events_published: AtomicU64,
    duration_buckets: [AtomicU64; BUCKETS.len()],
    duration_sum_micros: AtomicU64,
}

impl Metrics {
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

    fn render(&self, queue: &[(String, i64)]) -> String {
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
        out.push_str("# HELP hookline_deliveries Deliveries in the database, by status.\n");
        out.push_str("# TYPE hookline_deliveries gauge\n");
        for (status, count) in queue {
            out.push_str(&format!("hookline_deliveries{{status=\"{status}\"}} {count}\n"));
        }
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
    let db = &state.services.db;
    match db.execute_unprepared("SELECT 1").await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let db = &state.services.db;
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status",
        ))
        .await
        .unwrap_or_default();
    let queue: Vec<(String, i64)> = rows
        .into_iter()
        .filter_map(|r| Some((r.try_get("", "status").ok()?, r.try_get("", "n").ok()?)))
        .collect();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render(&queue))
}
