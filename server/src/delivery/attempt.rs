//! One attempt, top to bottom: prepare the request (headers, signature), send it, decide
//! what it leads to (success, a retry after the schedule's next delay, or failure), and hand
//! it to the recorder. Each attempt runs in its own span carrying the event's, the delivery's
//! and the webhook's ids, so everything logged about it says which one it was.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hookline_core::entities::{event, webhook};
use hookline_core::slots::Slot;
use hookline_core::store::attempts::{Attempt, Settle, Steer};
use hookline_core::store::queue::{Claimed, ProbeTaken, parked_until};
use hookline_core::{AttemptResult, AttemptTrigger, ClaimedDelivery, DeliveryStatus, PauseReason, now_ms};
use hookline_domain::include_fields::IncludeFields;
use tracing::{Instrument, Span};

use super::client::{ErrorClass, Outcome};
use super::engine::{Engine, Held};
use super::error::EngineError;
use super::recorder::Record;
use super::retry::RetryPolicy;
use super::signature::signature_header;
use super::steer::Gate;
use crate::telemetry;

/// The span of one attempt.
fn attempt_span(event_id: &str, delivery_id: &str, webhook_id: &str, trigger: AttemptTrigger) -> Span {
    tracing::info_span!(
        "attempt",
        event_id = %event_id,
        delivery_id = %delivery_id,
        webhook_id = %webhook_id,
        trigger = trigger.as_str()
    )
}

impl Engine {
    /// A claimed (or handed-over) delivery's scheduled attempt.
    pub(super) async fn deliver(&self, delivery: ClaimedDelivery, slot: Slot, held: Held) {
        let ClaimedDelivery { claim, webhook, event, secrets } = delivery;
        let (Some(hook), Some(ev)) = (webhook, event) else {
            return self.skip(&claim.id).await;
        };
        if !hook.enabled {
            return self.skip(&claim.id).await;
        }
        let span = attempt_span(&ev.id, &claim.id, &hook.id, AttemptTrigger::Scheduled);
        self.deliver_scheduled(claim, hook, ev, secrets, slot, held).instrument(span).await
    }

    async fn deliver_scheduled(
        &self,
        claim: Claimed,
        hook: Arc<webhook::Model>,
        ev: Arc<event::Model>,
        secrets: Arc<Vec<String>>,
        slot: Slot,
        held: Held,
    ) {
        // Stopping: what has not started goes back to the queue instead of waiting its turn.
        let mut stopping = self.stopping.subscribe();
        let stopped = *stopping.borrow_and_update();
        if stopped {
            return self.release_unstarted(&claim).await;
        }
        // The latest its request may go out: the answer and its writing must fit in the lease.
        let latest = held.lease_until - self.cfg.timeout.as_millis() as i64 - 1_000;
        let mut probe = false;
        // The receiver steers: wait out its pause or the breaker (or go back to the queue when
        // that is past the lease), take the breaker's probe, then a request permit and a place
        // in the webhook's pace.
        let out = loop {
            let now = now_ms();
            if !probe {
                match self.steering.gate(&hook, held.loaded_at, now) {
                    Gate::Go => {}
                    Gate::TakeProbe => match self.services.store().take_probe(&hook.id, now).await {
                        Ok(ProbeTaken::Taken) => {
                            tracing::info!("circuit breaker: this delivery goes as the probe");
                            probe = true;
                        }
                        Ok(row) => {
                            self.steering.probe_not_taken(&hook.id, &row, now);
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "taking the circuit breaker's probe failed");
                            self.steering.probe_abandoned(&hook.id, now);
                            return self.release_unstarted(&claim).await;
                        }
                    },
                    Gate::Wait(until) => {
                        if until > latest || !self.wait_until(until, &mut stopping).await {
                            return self.release_unstarted(&claim).await;
                        }
                        continue;
                    }
                }
            }
            let permit = tokio::select! {
                permit = slot.webhook.sending.clone().acquire_owned() => permit.ok(),
                _ = stopping.wait_for(|stop| *stop) => None,
            };
            let Some(permit) = permit else {
                return self.abandon(&claim, probe).await;
            };
            match self.steering.pace(&hook, now_ms(), latest) {
                Ok(None) => {}
                Ok(Some(at)) => {
                    if !self.wait_until(at, &mut stopping).await {
                        slot.webhook.sent(permit);
                        return self.abandon(&claim, probe).await;
                    }
                }
                Err(()) => {
                    slot.webhook.sent(permit);
                    return self.abandon(&claim, probe).await;
                }
            }
            // A pause or the breaker may have come while it waited its turn: look again.
            if !probe && self.steering.waits(&hook.id, now_ms()) {
                slot.webhook.sent(permit);
                continue;
            }
            break permit;
        };
        let (headers, outcome) = self.send(&claim.id, &hook, &ev, &secrets, AttemptTrigger::Scheduled).await;
        // The endpoint has answered: its next delivery may go out while this one is written.
        slot.webhook.sent(out);
        let now = now_ms();
        let steer = self.steering.answered(&hook, &outcome, probe, now);
        log_steer(steer);
        drop(slot.webhook);
        let settle = decide(&self.cfg.retry, claim.attempts, &outcome, now, steer, probe);
        let mut attempt =
            attempt_of(claim.id, hook, AttemptTrigger::Scheduled, headers, outcome, settle, steer);
        attempt.ordered = ev.ordering_key.is_some();
        attempt.probe = probe;
        // The recorder lives as long as the engine; without it the lease runs out.
        let _ = self.records.send(Record { attempt, _permit: Some(slot.permit) });
    }

    /// Sleeps until `at` (milliseconds since the epoch); false when the process began stopping.
    async fn wait_until(&self, at: i64, stopping: &mut tokio::sync::watch::Receiver<bool>) -> bool {
        let wait = Duration::from_millis(at.saturating_sub(now_ms()).max(0) as u64);
        if wait.is_zero() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = stopping.wait_for(|stop| *stop) => false,
        }
    }

    /// A claimed delivery that will not be sent now goes back to the queue; a probe taken for
    /// it is given up (the next one goes a probe interval later).
    async fn abandon(&self, claim: &Claimed, probe: bool) {
        if probe {
            self.steering.probe_abandoned(&claim.webhook_id, now_ms());
        }
        self.release_unstarted(claim).await
    }

    /// One attempt now, on request: a manual resend, or the only attempt of a test event.
    /// Written before it answers.
    pub(super) async fn attempt_on_request(
        &self,
        delivery_id: &str,
        trigger: AttemptTrigger,
    ) -> Result<AttemptResult, EngineError> {
        let store = self.services.store();
        let Some((found, hook, ev)) = store.delivery_with_parts(delivery_id).await? else {
            return Err(EngineError::DeliveryNotFound(delivery_id.to_string()));
        };
        let Some(hook) = hook else {
            return Err(EngineError::WebhookDeleted(found.id));
        };
        let Some(ev) = ev.map(Arc::new) else {
            return Err(EngineError::EventMissing { delivery: found.id, event: found.event_id });
        };
        let span = attempt_span(&ev.id, &found.id, &hook.id, trigger);
        async move {
            let secrets = self.services.signing_secrets(&hook.id).await?;
            // The same per-webhook limit as scheduled attempts: resends cannot flood an endpoint.
            let place = self.capacity.place_on_request(&hook.id);
            let permit = place.sending.clone().acquire_owned().await;
            let (headers, outcome) = self.send(&found.id, &hook, &ev, &secrets, trigger).await;
            if let Ok(permit) = permit {
                place.sent(permit);
            }
            drop(place);
            // Asked for, it goes whatever the steering; its answer steers all the same (a 2xx
            // closes an open breaker).
            let steer = self.steering.answered(&hook, &outcome, false, now_ms());
            log_steer(steer);
            let settle = match (trigger, outcome.succeeded()) {
                (AttemptTrigger::Test, true) => Settle::To(DeliveryStatus::Succeeded, None),
                (AttemptTrigger::Test, false) => Settle::To(DeliveryStatus::Failed, None),
                _ => Settle::UnlessSucceeded,
            };
            let result = AttemptResult {
                delivery_id: found.id.clone(),
                succeeded: outcome.succeeded(),
                response_status: outcome.status,
                duration_ms: outcome.duration.as_millis() as u64,
                error: outcome
                    .error
                    .as_ref()
                    .map(|(class, message)| format!("{}: {message}", class.as_str())),
            };
            let ordered = found.ordering_key.is_some();
            let mut attempt = attempt_of(found.id, Arc::new(hook), trigger, headers, outcome, settle, steer);
            attempt.ordered = ordered;
            self.write_records(std::slice::from_ref(&Record { attempt, _permit: None })).await?;
            Ok::<_, EngineError>(result)
        }
        .instrument(span)
        .await
    }

    /// Signs and sends the event to the webhook (in the attempt's span).
    async fn send(
        &self,
        delivery_id: &str,
        hook: &webhook::Model,
        ev: &Arc<event::Model>,
        secrets: &[String],
        trigger: AttemptTrigger,
    ) -> (Vec<(String, String)>, Outcome) {
        let body = body_for(hook, ev);
        let headers = self.request_headers(delivery_id, ev, &body, secrets);
        // No secret that opens (see `Services::signing_secrets_of`): an unsigned request would
        // look forged, so the attempt fails here and is retried on schedule, once the key is back.
        let outcome = if secrets.is_empty() {
            Outcome {
                duration: Duration::ZERO,
                status: None,
                headers: Vec::new(),
                body: None,
                error: Some((
                    ErrorClass::SigningSecret,
                    "not sent: the webhook's signing secret cannot be decrypted with HOOKLINE_SECRET_KEY \
                     or HOOKLINE_PREVIOUS_SECRET_KEYS (the server log says why)"
                        .into(),
                )),
                retry_after: None,
            }
        } else {
            self.client.post(&hook.url, &headers, body).await
        };
        telemetry::attempt_made(&outcome, trigger, ev.received_at, now_ms());
        let duration_ms = outcome.duration.as_millis() as u64;
        match &outcome.error {
            Some((class, why)) => tracing::info!(
                status = outcome.status,
                duration_ms,
                error_class = class.as_str(),
                error = %why,
                "attempt failed"
            ),
            None => tracing::debug!(status = outcome.status, duration_ms, "attempt answered"),
        }
        (headers, outcome)
    }

    /// Every header of SPEC section 3 (see [`delivery_headers`]).
    fn request_headers(
        &self,
        delivery_id: &str,
        ev: &event::Model,
        body: &[u8],
        secrets: &[String],
    ) -> Vec<(String, String)> {
        delivery_headers(&self.cfg.header_prefix, delivery_id, ev, body, secrets)
    }
}

/// The bytes a webhook is sent for an event: the payload as published, read where the event
/// holds it (not copied: a payload may be 256 KiB, and up to twice the webhook's concurrency
/// of attempts are in flight), or with `include_fields` its projection (made once per
/// attempt; the signature covers it).
fn body_for(hook: &webhook::Model, ev: &Arc<event::Model>) -> Bytes {
    match IncludeFields::from_stored(hook.include_fields.as_deref()) {
        Some(fields) => Bytes::from(fields.project(&ev.payload)),
        None => Bytes::from_owner(PayloadOf(ev.clone())),
    }
}

/// An event's payload as bytes that share the event.
struct PayloadOf(Arc<event::Model>);

impl AsRef<[u8]> for PayloadOf {
    fn as_ref(&self) -> &[u8] {
        self.0.payload.as_bytes()
    }
}

/// Every header of SPEC section 3, signed now with `secrets` over `body`, the bytes sent (the
/// payload, or its `include_fields` projection). `webhook-id` is the event id, the same on
/// every retry; `per_target_id` is unique per event and receiver. `hookline listen` signs its
/// events with this too, so they are exactly like a delivery's.
pub fn delivery_headers(
    p: &str,
    per_target_id: &str,
    ev: &event::Model,
    body: &[u8],
    secrets: &[String],
) -> Vec<(String, String)> {
    let timestamp = now_ms() / 1000;
    vec![
        ("content-type".into(), "application/json".into()),
        ("webhook-id".into(), ev.id.clone()),
        ("webhook-timestamp".into(), timestamp.to_string()),
        ("webhook-signature".into(), signature_header(secrets, &ev.id, timestamp, body)),
        ("webhookmessageid".into(), ev.id.clone()),
        ("webhookmessageidpertarget".into(), per_target_id.to_string()),
        (format!("{p}event-type"), ev.event_type.clone()),
        (format!("{p}tenant-type"), ev.tenant_type.to_string()),
        (format!("{p}tenant-id"), ev.tenant_id.clone()),
        (format!("{p}sequence"), ev.sequence.to_string()),
    ]
}

/// The one place that decides what a scheduled attempt leads to, after `attempts` earlier
/// scheduled attempts: success, a retry after the schedule's next delay, or failure once the
/// schedule is spent (or at once on 410 Gone). An answer that paused the webhook (`steer`, a
/// 429 or 503 with `Retry-After`) is tried again when the pause ends, without using up the
/// schedule; so is a failed probe of the circuit breaker (`probe`), which waits with the
/// webhook's parked backlog until the breaker closes (the store counts both apart).
pub(super) fn decide(
    retry: &RetryPolicy,
    attempts: i32,
    outcome: &Outcome,
    now: i64,
    steer: Option<Steer>,
    probe: bool,
) -> Settle {
    let attempts = attempts + 1;
    if outcome.succeeded() {
        Settle::To(DeliveryStatus::Succeeded, None)
    } else if let Some(Steer::Pause { until }) = steer {
        Settle::To(DeliveryStatus::Pending, Some(until.max(now)))
    } else if outcome.status == Some(410) {
        Settle::To(DeliveryStatus::Failed, None)
    } else if let (true, Some(Steer::Breaker { until, .. })) = (probe, steer) {
        Settle::To(DeliveryStatus::Pending, Some(parked_until(Some(PauseReason::CircuitOpen), until)))
    } else {
        match retry.next_delay(attempts as u32, outcome.retry_after) {
            Some(delay) => Settle::To(DeliveryStatus::Pending, Some(now + delay.as_millis() as i64)),
            None => Settle::To(DeliveryStatus::Failed, None),
        }
    }
}

/// The attempt as the store writes it; the outcome's parts move, nothing is copied.
fn attempt_of(
    delivery_id: String,
    webhook: Arc<webhook::Model>,
    trigger: AttemptTrigger,
    request_headers: Vec<(String, String)>,
    outcome: Outcome,
    settle: Settle,
    steer: Option<Steer>,
) -> Attempt {
    Attempt {
        delivery_id,
        webhook,
        trigger,
        request_headers,
        response_status: outcome.status,
        response_headers: outcome.headers,
        response_body: outcome.body,
        error: outcome.error,
        duration: outcome.duration,
        ended_at: now_ms(),
        settle,
        steer,
        ordered: false,
        probe: false,
    }
}

/// Says when an answer steered the whole webhook.
fn log_steer(steer: Option<Steer>) {
    match steer {
        None => {}
        Some(Steer::Pause { until }) => tracing::info!(until, "the receiver asked to wait: webhook paused"),
        Some(Steer::Breaker { interval_ms, until }) => {
            tracing::warn!(interval_ms, until, "circuit breaker open: one probe per interval")
        }
        Some(Steer::Close) => tracing::info!("circuit breaker closed: the endpoint answers again"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy { schedule: vec![Duration::from_secs(5), Duration::from_secs(30)] }
    }

    fn answered(status: u16) -> Outcome {
        let error =
            (!(200..300).contains(&status)).then(|| (ErrorClass::HttpStatus, format!("HTTP {status}")));
        Outcome {
            duration: Duration::from_millis(3),
            status: Some(status),
            headers: Vec::new(),
            body: None,
            error,
            retry_after: None,
        }
    }

    fn timed_out() -> Outcome {
        Outcome {
            duration: Duration::from_secs(2),
            status: None,
            headers: Vec::new(),
            body: None,
            error: Some((ErrorClass::Timeout, "no response".into())),
            retry_after: None,
        }
    }

    #[test]
    fn a_2xx_settles_the_delivery() {
        assert_eq!(
            decide(&policy(), 0, &answered(204), 1_000, None, false),
            Settle::To(DeliveryStatus::Succeeded, None)
        );
    }

    #[test]
    fn a_failure_is_retried_after_the_schedules_next_delay() {
        for outcome in [answered(500), timed_out()] {
            let Settle::To(DeliveryStatus::Pending, Some(at)) =
                decide(&policy(), 0, &outcome, 1_000, None, false)
            else {
                panic!("a first failure is retried");
            };
            assert!((1_000 + 4_000..=1_000 + 6_000).contains(&at), "5 s ± 20%: {at}");
            let Settle::To(DeliveryStatus::Pending, Some(at)) =
                decide(&policy(), 1, &outcome, 1_000, None, false)
            else {
                panic!("a second failure is retried");
            };
            assert!((1_000 + 24_000..=1_000 + 36_000).contains(&at), "30 s ± 20%: {at}");
        }
    }

    #[test]
    fn the_delivery_fails_once_the_schedule_is_spent() {
        assert_eq!(
            decide(&policy(), 2, &answered(503), 0, None, false),
            Settle::To(DeliveryStatus::Failed, None)
        );
    }

    #[test]
    fn gone_fails_at_once() {
        assert_eq!(
            decide(&policy(), 0, &answered(410), 0, None, false),
            Settle::To(DeliveryStatus::Failed, None)
        );
    }

    #[test]
    fn retry_after_is_honoured() {
        let mut busy = answered(429);
        busy.retry_after = Some(Duration::from_secs(120));
        assert_eq!(
            decide(&policy(), 0, &busy, 0, None, false),
            Settle::To(DeliveryStatus::Pending, Some(120_000))
        );
    }

    #[test]
    fn an_answer_that_paused_the_webhook_is_retried_when_the_pause_ends() {
        let mut busy = answered(429);
        busy.retry_after = Some(Duration::from_secs(1));
        let pause = Some(Steer::Pause { until: 1_000 });
        assert_eq!(
            decide(&policy(), 2, &busy, 0, pause, false),
            Settle::To(DeliveryStatus::Pending, Some(1_000)),
            "not failed, though the schedule is spent: the receiver asked it to wait"
        );
    }

    #[test]
    fn a_failed_probe_waits_with_the_backlog_and_keeps_its_schedule() {
        let next = Some(Steer::Breaker { interval_ms: 10_000, until: 11_000 });
        let parked =
            Settle::To(DeliveryStatus::Pending, Some(parked_until(Some(PauseReason::CircuitOpen), 11_000)));
        assert_eq!(
            decide(&policy(), 2, &timed_out(), 1_000, next, true),
            parked,
            "though the schedule is spent"
        );
        assert_eq!(decide(&policy(), 0, &answered(500), 1_000, next, true), parked);
        // The failure that opens the breaker is an ordinary one, on the schedule.
        assert_eq!(
            decide(&policy(), 2, &timed_out(), 1_000, next, false),
            Settle::To(DeliveryStatus::Failed, None)
        );
        assert_eq!(
            decide(&policy(), 0, &answered(410), 1_000, next, true),
            Settle::To(DeliveryStatus::Failed, None)
        );
    }
}
