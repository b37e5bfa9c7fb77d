//! Background housekeeping in processes that deliver: removing what deleted webhooks and
//! stores left, pruning what is past its retention, purging expired sessions, and reading the
//! queue's figures for `/metrics` (how long the oldest due delivery has waited, how many are
//! due, how many this process holds), so that a scrape never queries the database. Each step
//! is small, so none of it holds up publishing or delivery.

use std::time::{Duration, Instant};

use hookline_core::{Pruner, Services, now_ms};

use crate::telemetry;

/// Between steps while deleted webhooks still have rows to remove.
const BUSY_PAUSE: Duration = Duration::from_millis(50);
/// Between looks when there is nothing to remove.
const IDLE_PAUSE: Duration = Duration::from_secs(5);
const SESSIONS_EVERY: Duration = Duration::from_secs(3600);
/// Between the end of one pruning round and the start of the next.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Counting due deliveries reads up to [`telemetry::DUE_CAP`] index entries: not every step.
const COUNT_DUE_EVERY: Duration = Duration::from_secs(15);

/// Runs until aborted. `capacity` is the engine's concurrency, `in_flight` tells how many
/// deliveries it holds now.
pub async fn run(services: Services, capacity: usize, in_flight: impl Fn() -> usize) {
    let mut sessions_purged_at: Option<Instant> = None;
    let mut gauge_at: Option<Instant> = None;
    let mut counted_at: Option<Instant> = None;
    let mut pruner = Pruner::new(false);
    let mut pruned_at: Option<Instant> = None;
    let mut parked = hookline_core::ordering::ParkedSweep::new();
    metrics::gauge!(telemetry::CONCURRENCY).set(capacity as f64);
    loop {
        metrics::gauge!(telemetry::IN_FLIGHT).set(in_flight() as f64);
        if gauge_at.is_none_or(|t| t.elapsed() >= IDLE_PAUSE) {
            match services.oldest_due().await {
                Ok(at) => telemetry::set_oldest_due(at),
                Err(e) => tracing::debug!(error = %e, "reading the oldest due delivery failed"),
            }
            gauge_at = Some(Instant::now());
        }
        if counted_at.is_none_or(|t| t.elapsed() >= COUNT_DUE_EVERY) {
            match count_due(&services).await {
                Ok(n) => metrics::gauge!(telemetry::DUE).set(n as f64),
                Err(e) => tracing::debug!(error = %e, "counting due deliveries failed"),
            }
            counted_at = Some(Instant::now());
        }
        if sessions_purged_at.is_none_or(|t| t.elapsed() >= SESSIONS_EVERY) {
            match services.purge_expired_sessions().await {
                Ok(n) if n > 0 => tracing::info!(sessions = n, "expired sessions purged"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
            }
            sessions_purged_at = Some(Instant::now());
        }
        let purging = match services.purge_deleted_webhooks_step().await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::warn!(error = %e, "removing a deleted webhook's deliveries failed");
                false
            }
        };
        let purging = purging | purge_deleted_store_step(&services).await;
        let pruning = prune_step(&services, &mut pruner, &mut pruned_at).await;
        // Ordered deliveries a lost wake-up left parked behind a key nothing holds any more.
        let sweeping = match parked.step(&services).await {
            Ok((more, woken)) => {
                if woken > 0 {
                    tracing::info!(deliveries = woken, "parked ordered deliveries woken by the sweep");
                    metrics::counter!(telemetry::WOKEN_BY_SWEEP).increment(woken);
                }
                more
            }
            Err(e) => {
                tracing::warn!(error = %e, "sweeping parked ordered deliveries failed");
                false
            }
        };
        tokio::time::sleep(if purging || pruning || sweeping { BUSY_PAUSE } else { IDLE_PAUSE }).await;
    }
}

/// One step of removing a deleted store's rows; answers whether there is more to do.
async fn purge_deleted_store_step(services: &Services) -> bool {
    match services.purge_deleted_stores_step().await {
        Ok(n) => n > 0,
        Err(e) => {
            tracing::warn!(error = %e, "removing a deleted store's events failed");
            false
        }
    }
}

/// One step of pruning what is past its retention, starting a round when the last one ended
/// [`PRUNE_EVERY`] ago; answers whether the round goes on.
async fn prune_step(services: &Services, pruner: &mut Pruner, pruned_at: &mut Option<Instant>) -> bool {
    if !pruner.in_round() {
        if pruned_at.is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
            return false;
        }
        *pruned_at = Some(Instant::now());
        if let Err(e) = pruner.start(services).await {
            tracing::warn!(error = %e, "planning a pruning round failed");
            return false;
        }
    }
    if let Err(e) = pruner.step(services).await {
        tracing::warn!(error = %e, "pruning past the retention failed");
        // The round starts again later, from its beginning.
        *pruner = Pruner::new(false);
        return false;
    }
    if !pruner.in_round() {
        *pruned_at = Some(Instant::now());
        let done = pruner.report();
        if done.total() > 0 {
            tracing::info!(
                events = done.events,
                deliveries = done.deliveries,
                attempts = done.attempts,
                webhook_hours = done.webhook_hours,
                payloads = done.payloads,
                response_bodies = done.response_bodies,
                "pruned past the retention"
            );
        }
    }
    pruner.in_round()
}

/// Deliveries a claim could take now (as the claim selects them, down the same partial index),
/// counted up to [`telemetry::DUE_CAP`].
async fn count_due(services: &Services) -> hookline_core::Result<i64> {
    services.store().count_due(now_ms(), telemetry::DUE_CAP).await
}
