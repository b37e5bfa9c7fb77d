//! Background housekeeping in processes that deliver: removing what deleted webhooks left,
//! purging expired sessions, and noting how long the oldest due delivery has waited (for
//! `/metrics`, which therefore never queries the database). Each step is small, so none of it
//! holds up publishing or delivery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookline_core::Services;

use crate::ops::Metrics;

/// Between steps while deleted webhooks still have rows to remove.
const BUSY_PAUSE: Duration = Duration::from_millis(50);
/// Between looks when there is nothing to remove.
const IDLE_PAUSE: Duration = Duration::from_secs(5);
const SESSIONS_EVERY: Duration = Duration::from_secs(3600);

pub async fn run(services: Services, metrics: Arc<Metrics>) {
    let mut sessions_purged_at: Option<Instant> = None;
    let mut gauge_at: Option<Instant> = None;
    loop {
        if gauge_at.is_none_or(|t| t.elapsed() >= IDLE_PAUSE) {
            match services.oldest_due().await {
                Ok(at) => metrics.set_oldest_due(at),
                Err(e) => tracing::debug!(error = %e, "reading the oldest due delivery failed"),
            }
            gauge_at = Some(Instant::now());
        }
        if sessions_purged_at.is_none_or(|t| t.elapsed() >= SESSIONS_EVERY) {
            match services.purge_expired_sessions().await {
                Ok(n) if n > 0 => tracing::info!(sessions = n, "expired sessions purged"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
            }
            sessions_purged_at = Some(Instant::now());
        }
        let pause = match services.purge_deleted_webhooks_step().await {
            Ok(0) => IDLE_PAUSE,
            Ok(_) => BUSY_PAUSE,
            Err(e) => {
                tracing::warn!(error = %e, "removing a deleted webhook's deliveries failed");
                IDLE_PAUSE
            }
        };
        tokio::time::sleep(pause).await;
    }
}
