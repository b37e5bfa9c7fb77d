//! The recorder: one task that writes attempts as they come, as many per transaction as are
//! waiting (group commit), then announces the webhooks they turned off. A delivery keeps its
//! permit until its attempt is written here.
//!
//! At low load nothing is waiting, and each attempt would pay a statement and a commit of its
//! own. So while the engine is nearly idle the recorder holds a small batch open for a moment
//! (`HOOKLINE_RECORD_LINGER`, 100 ms): the receiver already has the delivery (the latency a
//! receiver sees does not move), and what waits is only the log row and the delivery's
//! settling, still under its lease. An ordered attempt is written at once (its key's next
//! delivery waits for it), and so is everything when the engine waits for its attempts to be
//! written (a graceful stop, [`Engine::run_once`]).

use std::borrow::Borrow;
use std::time::Duration;

use hookline_core::store::attempts::{Attempt, DisablePolicy, Steer, TurnedOff};
use hookline_core::{Audience, DisabledReason, PublishRequest, iso8601, now_ms};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::engine::Engine;
use super::error::EngineError;
use crate::telemetry;

/// Most attempts one recorder transaction writes.
const RECORD_BATCH: usize = 256;
/// A batch this large is written at once: at this rate a commit per batch is cheap already.
const LINGER_UNTIL: usize = 32;
/// How long after closing a breaker its webhook's stragglers are brought back: longer than a
/// publish or a claim that read the breaker as open takes to write
/// ([`hookline_core::Store::unpark_closed`]).
const AFTER_CLOSING: Duration = Duration::from_secs(5);

/// An attempt made, waiting to be written, with the permit its delivery holds until then.
pub(crate) struct Record {
    pub(super) attempt: Attempt,
    pub(super) _permit: Option<OwnedSemaphorePermit>,
}

impl Borrow<Attempt> for Record {
    fn borrow(&self) -> &Attempt {
        &self.attempt
    }
}

impl Engine {
    /// Writes attempts as they come, as many per transaction as are waiting.
    pub(super) async fn record_all(self, mut rx: mpsc::UnboundedReceiver<Record>) {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while rx.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            if self.may_linger(&batch) {
                let until = tokio::time::Instant::now() + self.cfg.record_linger;
                loop {
                    let room = RECORD_BATCH - batch.len();
                    tokio::select! {
                        got = rx.recv_many(&mut batch, room) => if got == 0 { break },
                        _ = tokio::time::sleep_until(until) => break,
                        _ = self.hurry.notified() => break,
                    }
                    if !self.may_linger(&batch) {
                        break;
                    }
                }
            }
            if let Err(e) = self.write_records(&batch).await {
                tracing::error!(error = %e, attempts = batch.len(), "recording attempts failed");
                // One at a time, so one record the database refuses does not take the others
                // with it. What still fails is claimed again when its lease runs out: nothing is
                // lost, it is sent again.
                if batch.len() > 1 {
                    for record in &batch {
                        if let Err(e) = self.write_records(std::slice::from_ref(record)).await {
                            tracing::error!(error = %e, delivery = %record.attempt.delivery_id, "recording an attempt failed");
                        }
                    }
                }
            }
            batch.clear();
        }
    }

    /// Whether the recorder may hold `batch` open for more: it is small, none of it is
    /// ordered, the engine is nearly idle (a quarter of its capacity in use at most; the batch's
    /// own deliveries hold permits too) and nothing waits for the attempts to be written.
    fn may_linger(&self, batch: &[Record]) -> bool {
        !self.cfg.record_linger.is_zero()
            && batch.len() < LINGER_UNTIL
            && !batch.iter().any(|r| r.attempt.ordered)
            && self.capacity.in_use() * 4 <= self.capacity.total()
            && !self.hurrying()
    }

    /// Writes attempts in one transaction (the attempts, their deliveries settled or
    /// rescheduled, their webhooks' health), then announces the webhooks this turned off.
    pub(super) async fn write_records(&self, records: &[Record]) -> Result<(), EngineError> {
        let policy = DisablePolicy {
            after_failures: self.cfg.disable_after_failures,
            after_span: self.cfg.disable_after_span,
        };
        let turned_off = self.services.store().record(records, policy).await?;
        for off in turned_off {
            self.announce_disabled(off).await;
        }
        for closed in records.iter().filter(|r| r.attempt.steer == Some(Steer::Close)) {
            let services = self.services.clone();
            let id = closed.attempt.webhook.id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(AFTER_CLOSING).await;
                match services.store().unpark_closed(&id, now_ms()).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(webhook = %id, deliveries = n, "parked deliveries brought back after the breaker closed")
                    }
                    Err(e) => {
                        tracing::warn!(webhook = %id, error = %e, "bringing back deliveries parked as the breaker closed failed")
                    }
                }
            });
        }
        Ok(())
    }

    /// Publishes `webhook.disabled` to the tenant, for its other webhooks that subscribe to it.
    async fn announce_disabled(&self, off: TurnedOff) {
        let TurnedOff { webhook: hook, reason, at } = off;
        tracing::warn!(webhook = %hook.id, reason = reason.as_str(), "webhook turned off");
        metrics::counter!(telemetry::WEBHOOKS_DISABLED, "reason" => reason.as_str()).increment(1);
        let message = match reason {
            DisabledReason::Automatic => format!(
                "{} consecutive attempts failed over at least {:?}.",
                self.cfg.disable_after_failures, self.cfg.disable_after_span
            ),
            other => other.cause(0),
        };
        let payload = serde_json::json!({
            "webhook_id": hook.id,
            "url": hook.url,
            "reason": reason.as_str(),
            "message": message,
            "disabled_at": iso8601(at),
        });
        // Only the webhooks that may see this one hear of it: its application's, or the
        // store's own for a webhook the store made.
        let result = self
            .services
            .emit(PublishRequest {
                tenant: hook.tenant(),
                event_type: "webhook.disabled".into(),
                payload: payload.to_string(),
                idempotency_key: None,
                ordering_key: None,
                audience: Audience::MadeBy(hook.application_id.clone()),
            })
            .await;
        match result {
            Ok(published) if !published.deduplicated => {
                metrics::counter!(telemetry::EVENTS_PUBLISHED, "source" => "internal").increment(1)
            }
            Ok(_) => {}
            Err(e) => tracing::error!(webhook = %hook.id, error = %e, "could not publish webhook.disabled"),
        }
    }
}
