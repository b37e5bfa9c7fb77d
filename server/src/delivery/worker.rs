//! The delivery workers. Reading top to bottom: claim what is due, prepare the request, send
//! it, record the attempt, then either settle the delivery or schedule its retry, and keep the
//! webhook's health (turning it off after too many failures or on 410 Gone).
//!
//! Claims are leases: a claimed delivery's `next_attempt_at` becomes the lease's end, so a
//! delivery whose worker died is simply due again when the lease runs out. On PostgreSQL the
//! claim uses `FOR UPDATE SKIP LOCKED`, so several processes share one queue; SQLite
//! serialises writers, which gives the same guarantee within its single host.
//!
//! A fresh event skips the claim when this engine has room: publishing reserves a slot
//! ([`Dispatcher::reserve`]), writes the delivery already leased to this engine, and hands it
//! over after the commit ([`Dispatcher::start`]). The lease is the same as a claim's, so a
//! crash loses nothing.
//!
//! The database work is batched so that it does not grow with the number of deliveries: one
//! claim leases up to [`CLAIM_BATCH`] deliveries and loads their events, webhooks and secrets
//! in three queries; attempts are written by one recorder task, many per transaction. A
//! delivery keeps its concurrency slot until its attempt is written, so a slow database slows
//! the claims instead of piling results up in memory.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hookline_core::entities::{delivery, event, webhook};
use hookline_core::{
    AttemptResult, AttemptTrigger, Audience, BoxFuture, DeliveryStatus, Dispatcher, Handoff, PublishRequest,
    Reservation, Services, iso8601, now_ms,
};
use sea_orm::{ColumnTrait, QueryFilter};
use sea_orm::{ConnectionTrait, DatabaseBackend, EntityTrait, Statement, TransactionTrait};
use tokio::sync::Semaphore;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tracing::Instrument;

use super::client::{ErrorClass, Outcome, WebhookClient};
use super::retry::RetryPolicy;
use super::signature::signature_header;
use crate::telemetry;

/// Most deliveries one claim takes.
const CLAIM_BATCH: usize = 64;
/// Most attempts one recorder transaction writes.
const RECORD_BATCH: usize = 256;
/// Longest idle wait before looking for due work again (retries coming due, other processes'
/// expired leases).
const IDLE_POLL: Duration = Duration::from_millis(500);

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub retry: RetryPolicy,
    pub timeout: Duration,
    pub header_prefix: String,
    pub disable_after_failures: u32,
    pub disable_after_span: Duration,
    pub concurrency: usize,
    /// Most deliveries to one webhook in flight at once in this process.
    pub per_webhook: usize,
}

#[derive(Clone)]
pub struct Engine {
    services: Services,
    client: WebhookClient,
    cfg: Arc<EngineConfig>,
    worker_id: String,
    permits: Arc<Semaphore>,
    in_flight: Arc<InFlight>,
    records: mpsc::UnboundedSender<Record>,
    recorder: Arc<std::sync::Mutex<Option<mpsc::UnboundedReceiver<Record>>>>,
    /// Whether [`Engine::run`] is running: only then does the engine take hand-offs (its
    /// recorder runs with it).
    running: Arc<std::sync::atomic::AtomicBool>,
    /// Set when the process is stopping: deliveries not yet sent go back to the queue at once.
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

/// Deliveries claimed in this process, per webhook: what keeps one slow or dead endpoint from
/// taking every slot. A webhook has at most `limit` requests out and as many more claimed and
/// ready behind them, so its pipeline stays full while the next claim is made. A webhook that
/// reaches twice its limit is left out of claims until it is back down to its limit.
#[derive(Default)]
struct InFlight(std::sync::Mutex<HashMap<String, PerWebhook>>);

struct PerWebhook {
    claimed: usize,
    saturated: bool,
    /// `limit` permits: one per request out.
    sending: Arc<Semaphore>,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PerWebhook>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The webhooks left out of claims.
    fn full(&self) -> Vec<String> {
        self.lock().iter().filter(|(_, w)| w.saturated).map(|(id, _)| id.clone()).collect()
    }

    /// Takes a place for one claimed delivery of the webhook, if it has one left; gives the
    /// semaphore its request must then wait on.
    fn try_take(&self, webhook: &str, limit: usize) -> Option<Arc<Semaphore>> {
        let mut map = self.lock();
        let entry = map.entry(webhook.to_string()).or_insert_with(|| PerWebhook {
            claimed: 0,
            saturated: false,
            sending: Arc::new(Semaphore::new(limit)),
        });
        if entry.claimed >= 2 * limit {
            return None;
        }
        entry.claimed += 1;
        if entry.claimed == 2 * limit {
            entry.saturated = true;
        }
        Some(entry.sending.clone())
    }

    /// Takes a place for an attempt made on request (a resend, a test), whatever the count:
    /// it then waits for one of the webhook's request permits like any claimed delivery.
    fn take_waiting(&self, webhook: &str, limit: usize) -> Arc<Semaphore> {
        let mut map = self.lock();
        let entry = map.entry(webhook.to_string()).or_insert_with(|| PerWebhook {
            claimed: 0,
            saturated: false,
            sending: Arc::new(Semaphore::new(limit)),
        });
        entry.claimed += 1;
        if entry.claimed >= 2 * limit {
            entry.saturated = true;
        }
        entry.sending.clone()
    }

    /// Gives the place back; true when the webhook has just come back into the claims.
    fn release(&self, webhook: &str, limit: usize) -> bool {
        let mut map = self.lock();
        let Some(entry) = map.get_mut(webhook) else { return false };
        entry.claimed -= 1;
        let reopened = entry.saturated && entry.claimed <= limit;
        if reopened {
            entry.saturated = false;
        }
        if entry.claimed == 0 {
            map.remove(webhook);
        }
        reopened
    }
}

struct Claim {
    id: String,
    event_id: String,
    webhook_id: String,
    attempts: i32,
}

/// A claim with what its attempt needs, loaded for the whole claim at once.
struct Job {
    claim: Claim,
    hook: Option<Arc<webhook::Model>>,
    event: Option<Arc<event::Model>>,
    secrets: Arc<Vec<String>>,
}

/// A delivery's place in the process's concurrency (held until its attempt is written) and
/// in its webhook's (held while the request is out).
struct Slot {
    permit: OwnedSemaphorePermit,
    webhook: WebhookSlot,
}

struct WebhookSlot {
    sending: Arc<Semaphore>,
    in_flight: Arc<InFlight>,
    webhook_id: String,
    limit: usize,
    services: Services,
}

impl Drop for WebhookSlot {
    fn drop(&mut self) {
        if self.in_flight.release(&self.webhook_id, self.limit) {
            // The webhook has room again: look for its due deliveries now.
            self.services.new_work().notify_one();
        }
    }
}

/// An attempt made, waiting to be written.
struct Record {
    claim: Claim,
    hook: Arc<webhook::Model>,
    headers: Vec<(String, String)>,
    outcome: Outcome,
    trigger: AttemptTrigger,
    settle: Settle,
    /// When the attempt ended.
    at: i64,
    _permit: Option<OwnedSemaphorePermit>,
}

/// What an attempt does to its delivery.
enum Settle {
    /// The delivery takes this status and next due time, and the claim's lease ends.
    To(DeliveryStatus, Option<i64>),
    /// An attempt on request: the delivery succeeds if it did, and otherwise keeps its
    /// status and schedule.
    UnlessSucceeded,
}

impl Engine {
    pub fn new(services: Services, client: WebhookClient, cfg: EngineConfig) -> Self {
        let permits = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
        let (records, recorder) = mpsc::unbounded_channel();
        Engine {
            services,
            client,
            cfg: Arc::new(cfg),
            worker_id: uuid::Uuid::new_v4().to_string(),
            permits,
            in_flight: Arc::new(InFlight::default()),
            records,
            recorder: Arc::new(std::sync::Mutex::new(Some(recorder))),
            running: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// Writes attempts as they come, as many per transaction as are waiting.
    async fn record_all(self, mut rx: mpsc::UnboundedReceiver<Record>) {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while rx.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            if let Err(e) = self.write_records(&batch).await {
                tracing::error!(error = %e, attempts = batch.len(), "recording attempts failed");
                // One at a time, so one record the database refuses does not take the others
                // with it. What still fails is claimed again when its lease runs out: nothing is
                // lost, it is sent again.
                if batch.len() > 1 {
                    for record in &batch {
                        if let Err(e) = self.write_records(std::slice::from_ref(record)).await {
                            tracing::error!(error = %e, delivery = %record.claim.id, "recording an attempt failed");
                        }
                    }
                }
            }
            batch.clear();
        }
    }

    /// Delivers until `shutdown` resolves, then stops gracefully ([`Engine::drain`]).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let recorder = self.recorder.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(rx) = recorder {
            tokio::spawn(self.clone().record_all(rx));
        }
        self.running.store(true, std::sync::atomic::Ordering::SeqCst);
        // Hand-offs stop when the loop does, however it returns.
        struct Stopped<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Stopped<'_> {
            fn drop(&mut self) {
                self.0.store(false, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let _stopped = Stopped(&self.running);
        let (permits, capacity) = (self.permits.clone(), self.cfg.concurrency.max(1));
        let in_flight = move || capacity.saturating_sub(permits.available_permits());
        let janitor = tokio::spawn(super::janitor::run(self.services.clone(), capacity, in_flight));
        struct AbortOnDrop(tokio::task::JoinHandle<()>);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let _janitor = AbortOnDrop(janitor);
        let new_work = self.services.new_work();
        loop {
            // Register for the wake-up before looking, so a publish in between is not missed.
            let notified = new_work.notified();
            // Wait for capacity before claiming: a claimed delivery must not sit in memory.
            let first = tokio::select! {
                permit = self.permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                _ = &mut shutdown => break,
            };
            let more = match self.claim_and_start(first).await {
                Ok(more) => more,
                Err(e) => {
                    tracing::error!(error = %e, "claiming deliveries failed");
                    false
                }
            };
            if more {
                continue;
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = notified => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
        self.drain().await;
    }

    /// A graceful stop: no more claims or hand-offs; deliveries claimed but not yet sent go
    /// back to the queue at once (due now, for any process); those being sent finish, up to
    /// the delivery timeout, and are recorded. What is still out after that is left to its
    /// lease.
    async fn drain(&self) {
        self.running.store(false, std::sync::atomic::Ordering::SeqCst);
        self.stopping.send_replace(true);
        // Every delivery holds one of the permits until its attempt is written.
        let all = u32::try_from(self.cfg.concurrency.max(1)).unwrap_or(u32::MAX);
        let deadline = self.cfg.timeout + Duration::from_secs(5);
        match tokio::time::timeout(deadline, self.permits.acquire_many(all)).await {
            Ok(_) => tracing::info!("deliveries in flight finished and recorded; the engine stopped"),
            Err(_) => tracing::warn!(
                in_flight = all as usize - self.permits.available_permits(),
                "deliveries still in flight at the deadline are left to their lease"
            ),
        }
    }

    /// Claims what is due and starts sending it, as far as free capacity allows. True when
    /// the claim got all it asked for: more may be due at once.
    async fn claim_and_start(&self, first: OwnedSemaphorePermit) -> Result<bool, sea_orm::DbErr> {
        let room = (self.permits.available_permits() + 1).min(CLAIM_BATCH);
        let limit = self.cfg.per_webhook.max(1);
        let claims = self.claim(room, &self.in_flight.full()).await?;
        let n = claims.len();
        let mut first = Some(first);
        let mut overflow = Vec::new();
        let mut taken = Vec::with_capacity(n);
        for claim in claims {
            let Some(sending) = self.in_flight.try_take(&claim.webhook_id, limit) else {
                overflow.push(claim.id);
                continue;
            };
            let permit = match first.take() {
                Some(p) => p,
                None => match self.permits.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => {
                        self.in_flight.release(&claim.webhook_id, limit);
                        overflow.push(claim.id);
                        continue;
                    }
                },
            };
            let slot = Slot {
                permit,
                webhook: WebhookSlot {
                    sending,
                    in_flight: self.in_flight.clone(),
                    webhook_id: claim.webhook_id.clone(),
                    limit,
                    services: self.services.clone(),
                },
            };
            taken.push((claim, slot));
        }
        self.unclaim(&overflow).await?;
        let (claims, slots): (Vec<Claim>, Vec<Slot>) = taken.into_iter().unzip();
        // If loading fails the slots are dropped and the leases run out: nothing is lost.
        let jobs = self.load(claims).await?;
        for (job, slot) in jobs.into_iter().zip(slots) {
            let engine = self.clone();
            tokio::spawn(async move { engine.deliver(job, slot).await });
        }
        Ok(n == room)
    }

    /// Loads the events, webhooks and signing secrets of a claim: three queries however many
    /// deliveries it holds.
    async fn load(&self, claims: Vec<Claim>) -> Result<Vec<Job>, sea_orm::DbErr> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let db = &self.services.db;
        let mut event_ids: Vec<String> = claims.iter().map(|c| c.event_id.clone()).collect();
        event_ids.sort();
        event_ids.dedup();
        let mut webhook_ids: Vec<String> = claims.iter().map(|c| c.webhook_id.clone()).collect();
        webhook_ids.sort();
        webhook_ids.dedup();
        let events: HashMap<String, Arc<event::Model>> = event::Entity::find()
            .filter(event::Column::Id.is_in(event_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|e| (e.id.clone(), Arc::new(e)))
            .collect();
        let hooks: HashMap<String, Arc<webhook::Model>> = webhook::Entity::find()
            .filter(webhook::Column::Id.is_in(webhook_ids.clone()))
            .all(db)
            .await?
            .into_iter()
            .map(|w| (w.id.clone(), Arc::new(w)))
            .collect();
        let secrets: HashMap<String, Arc<Vec<String>>> = self
            .services
            .signing_secrets_of(&webhook_ids)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|(id, s)| (id, Arc::new(s)))
            .collect();
        Ok(claims
            .into_iter()
            .map(|claim| Job {
                hook: hooks.get(&claim.webhook_id).cloned(),
                event: events.get(&claim.event_id).cloned(),
                secrets: secrets.get(&claim.webhook_id).cloned().unwrap_or_default(),
                claim,
            })
            .collect())
    }

    /// Gives claims back to the queue, due at once.
    async fn unclaim(&self, ids: &[String]) -> Result<(), sea_orm::DbErr> {
        if ids.is_empty() {
            return Ok(());
        }
        let db = &self.services.db;
        let _turn = self.services.write_turn().await;
        let list = (0..ids.len()).map(|i| format!("${}", i + 3)).collect::<Vec<_>>().join(", ");
        let mut values: Vec<sea_orm::Value> = vec![now_ms().into(), self.worker_id.clone().into()];
        values.extend(ids.iter().map(|id| id.clone().into()));
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            format!(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, leased_by = NULL \
                 WHERE leased_by = $2 AND id IN ({list})"
            ),
            values,
        ))
        .await?;
        Ok(())
    }

    /// When a lease taken at `now` ends: long enough for the attempt and the writes after
    /// it; short enough that a crashed process's claims come due again soon.
    fn lease_end(&self, now: i64) -> i64 {
        now + (self.cfg.timeout * 2 + Duration::from_secs(5)).as_millis() as i64
    }

    /// Leases up to `limit` due deliveries, oldest due first, leaving out the webhooks that
    /// are full in this process.
    async fn claim(&self, limit: usize, full: &[String]) -> Result<Vec<Claim>, sea_orm::DbErr> {
        let db = &self.services.db;
        let backend = db.get_database_backend();
        let now = now_ms();
        let lease_end = self.lease_end(now);
        let lock = if backend == DatabaseBackend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
        let skip = if full.is_empty() {
            String::new()
        } else {
            let list = (0..full.len()).map(|i| format!("${}", i + 5)).collect::<Vec<_>>().join(", ");
            format!("AND webhook_id NOT IN ({list})")
        };
        let sql = format!(
            "UPDATE deliveries SET status = 'delivering', leased_by = $1, next_attempt_at = $2, updated_at = $3 \
             WHERE id IN (SELECT id FROM deliveries \
                 WHERE status IN ('pending', 'delivering') AND next_attempt_at <= $3 {skip} \
                 ORDER BY next_attempt_at LIMIT $4 {lock}) \
             RETURNING id, event_id, webhook_id, attempts - manual_attempts AS attempts"
        );
        let mut values: Vec<sea_orm::Value> =
            vec![self.worker_id.clone().into(), lease_end.into(), now.into(), (limit as i64).into()];
        values.extend(full.iter().map(|id| id.clone().into()));
        let turn = self.services.write_turn().await;
        let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
        drop(turn);
        rows.into_iter()
            .map(|r| {
                Ok(Claim {
                    id: r.try_get("", "id")?,
                    event_id: r.try_get("", "event_id")?,
                    webhook_id: r.try_get("", "webhook_id")?,
                    attempts: r.try_get("", "attempts")?,
                })
            })
            .collect()
    }

    async fn deliver(&self, job: Job, slot: Slot) {
        let Job { claim, hook, event, secrets } = job;
        let (Some(hook), Some(ev)) = (hook, event) else {
            return self.skip(claim).await;
        };
        if !hook.enabled {
            return self.skip(claim).await;
        }
        // Stopping: what has not started goes back to the queue instead of waiting its turn.
        let mut stopping = self.stopping.subscribe();
        let stopped = *stopping.borrow_and_update();
        if stopped {
            return self.release_unstarted(claim).await;
        }
        let out = tokio::select! {
            permit = slot.webhook.sending.clone().acquire_owned() => permit.ok(),
            _ = stopping.wait_for(|stop| *stop) => None,
        };
        let Some(out) = out else {
            return self.release_unstarted(claim).await;
        };
        let (headers, outcome) = self.send(&claim, &hook, &ev, &secrets, AttemptTrigger::Scheduled).await;
        // The endpoint has answered: its next delivery may go out while this one is written.
        drop(out);
        drop(slot.webhook);
        let settle = self.scheduled_settle(&claim, &outcome);
        let record = Record {
            claim,
            hook,
            headers,
            outcome,
            trigger: AttemptTrigger::Scheduled,
            settle,
            at: now_ms(),
            _permit: Some(slot.permit),
        };
        // The recorder lives as long as the engine's run loop; without it the lease runs out.
        let _ = self.records.send(record);
    }

    /// Gives a claimed delivery that was never sent back to the queue, due now.
    async fn release_unstarted(&self, claim: Claim) {
        if let Err(e) = self.unclaim(std::slice::from_ref(&claim.id)).await {
            tracing::warn!(delivery = %claim.id, error = %e, "a delivery could not be released; its lease will run out");
        }
    }

    /// A delivery whose webhook was turned off (or deleted) since it was queued.
    async fn skip(&self, claim: Claim) {
        if let Err(e) = self.settle_without_attempt(&claim, DeliveryStatus::Skipped).await {
            tracing::error!(delivery = %claim.id, error = %e, "delivery could not be skipped");
        }
    }

    /// Signs and sends the event to the webhook, in the attempt's span: what is logged about
    /// it carries the event's, the delivery's and the webhook's ids.
    async fn send(
        &self,
        claim: &Claim,
        hook: &webhook::Model,
        ev: &event::Model,
        secrets: &[String],
        trigger: AttemptTrigger,
    ) -> (Vec<(String, String)>, Outcome) {
        let span = tracing::info_span!(
            "attempt",
            event_id = %ev.id,
            delivery_id = %claim.id,
            webhook_id = %hook.id,
            trigger = trigger.as_str()
        );
        let headers = self.request_headers(claim, ev, secrets);
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
            self.client
                .post(&hook.url, &headers, ev.payload.clone().into_bytes())
                .instrument(span.clone())
                .await
        };
        telemetry::attempt_made(&outcome, trigger, ev.received_at, now_ms());
        span.in_scope(|| {
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
        });
        (headers, outcome)
    }

    /// The one place that decides what a scheduled attempt leads to: success, a retry after
    /// the schedule's next delay, or failure once the schedule is spent (or at once on 410).
    fn scheduled_settle(&self, claim: &Claim, outcome: &Outcome) -> Settle {
        let attempts = claim.attempts + 1;
        if outcome.succeeded() {
            Settle::To(DeliveryStatus::Succeeded, None)
        } else if outcome.status == Some(410) {
            Settle::To(DeliveryStatus::Failed, None)
        } else {
            match self.cfg.retry.next_delay(attempts as u32, outcome.retry_after) {
                Some(delay) => Settle::To(DeliveryStatus::Pending, Some(now_ms() + delay.as_millis() as i64)),
                None => Settle::To(DeliveryStatus::Failed, None),
            }
        }
    }

    /// One attempt now, on request: a manual resend, or the only attempt of a test event.
    async fn attempt_on_request(
        &self,
        delivery_id: &str,
        trigger: AttemptTrigger,
    ) -> Result<AttemptResult, sea_orm::DbErr> {
        let db = &self.services.db;
        let found = delivery::Entity::find_by_id(delivery_id).one(db).await?;
        let Some(found) = found else {
            return Err(sea_orm::DbErr::RecordNotFound("delivery".into()));
        };
        let claim = Claim {
            id: found.id.clone(),
            event_id: found.event_id.clone(),
            webhook_id: found.webhook_id.clone(),
            attempts: found.attempts,
        };
        let hook = webhook::Entity::find_by_id(&claim.webhook_id).one(db).await?;
        let ev = event::Entity::find_by_id(&claim.event_id).one(db).await?;
        let (Some(hook), Some(ev)) = (hook, ev) else {
            return Err(sea_orm::DbErr::RecordNotFound("delivery".into()));
        };
        let secrets = self.services.signing_secrets(&hook.id).await.map_err(db_err)?;
        // The same per-webhook limit as scheduled attempts: resends cannot flood an endpoint.
        let limit = self.cfg.per_webhook.max(1);
        let place = WebhookSlot {
            sending: self.in_flight.take_waiting(&hook.id, limit),
            in_flight: self.in_flight.clone(),
            webhook_id: hook.id.clone(),
            limit,
            services: self.services.clone(),
        };
        let permit = place.sending.clone().acquire_owned().await;
        let (headers, outcome) = self.send(&claim, &hook, &ev, &secrets, trigger).await;
        drop(permit);
        drop(place);
        let settle = match (trigger, outcome.succeeded()) {
            (AttemptTrigger::Test, true) => Settle::To(DeliveryStatus::Succeeded, None),
            (AttemptTrigger::Test, false) => Settle::To(DeliveryStatus::Failed, None),
            _ => Settle::UnlessSucceeded,
        };
        let result = AttemptResult {
            delivery_id: claim.id.clone(),
            succeeded: outcome.succeeded(),
            response_status: outcome.status,
            duration_ms: outcome.duration.as_millis() as u64,
            error: outcome.error.as_ref().map(|(class, message)| format!("{}: {message}", class.as_str())),
        };
        let record = Record {
            claim,
            hook: Arc::new(hook),
            headers,
            outcome,
            trigger,
            settle,
            at: now_ms(),
            _permit: None,
        };
        self.write_records(std::slice::from_ref(&record)).await?;
        Ok(result)
    }

    /// Every header of SPEC section 3. `webhook-id` is the event id, the same on every retry.
    fn request_headers(&self, claim: &Claim, ev: &event::Model, secrets: &[String]) -> Vec<(String, String)> {
        let timestamp = now_ms() / 1000;
        let p = &self.cfg.header_prefix;
        vec![
            ("content-type".into(), "application/json".into()),
            ("webhook-id".into(), ev.id.clone()),
            ("webhook-timestamp".into(), timestamp.to_string()),
            ("webhook-signature".into(), signature_header(secrets, &ev.id, timestamp, ev.payload.as_bytes())),
            ("webhookmessageid".into(), ev.id.clone()),
            ("webhookmessageidpertarget".into(), claim.id.clone()),
            (format!("{p}event-type"), ev.event_type.clone()),
            (format!("{p}tenant-type"), ev.tenant_type.clone()),
            (format!("{p}tenant-id"), ev.tenant_id.clone()),
            (format!("{p}sequence"), ev.sequence.to_string()),
        ]
    }

    async fn settle_without_attempt(
        &self,
        claim: &Claim,
        status: DeliveryStatus,
    ) -> Result<(), sea_orm::DbErr> {
        let db = &self.services.db;
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "UPDATE deliveries SET status = $1, next_attempt_at = NULL, leased_by = NULL, updated_at = $2 \
             WHERE id = $3 AND leased_by = $4",
            [status.as_str().into(), now_ms().into(), claim.id.clone().into(), self.worker_id.clone().into()],
        ))
        .await?;
        Ok(())
    }

    /// Writes attempts in one transaction: the attempts themselves, their deliveries settled
    /// or rescheduled, and their webhooks' health; then announces the webhooks this turned off.
    async fn write_records(&self, records: &[Record]) -> Result<(), sea_orm::DbErr> {
        let db = &self.services.db;
        let backend = db.get_database_backend();
        if backend == DatabaseBackend::Postgres
            && records.len() <= hookline_core::rows_per_statement(backend)
            && records.iter().all(|r| r.outcome.succeeded())
        {
            // The usual batch, all successes: one statement, atomic by itself.
            return db.execute_raw(all_succeeded_statement(records)).await.map(drop);
        }
        let turn = self.services.write_turn().await;
        let txn = db.begin().await?;
        for chunk in records.chunks(hookline_core::rows_per_statement(backend)) {
            let (sql, values) = insert_attempts_sql(chunk, 0);
            txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
            let (list, update, values) = update_deliveries_sql(chunk, 0);
            let sql = format!("WITH {list} {update}");
            txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
        }
        let (sql, values) = count_hours_sql(records, 0);
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
        // Health, in the order the attempts ended. A run of successes is one write per webhook.
        let mut succeeded: Vec<(&str, i64)> = Vec::new();
        let mut turned_off = Vec::new();
        let reset = |id: &str, at: i64| {
            Statement::from_sql_and_values(
                backend,
                "UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL, last_success_at = $1 \
                 WHERE id = $2",
                [at.into(), id.into()],
            )
        };
        for r in records {
            let id = r.hook.id.as_str();
            if r.outcome.succeeded() {
                match succeeded.iter_mut().find(|(w, _)| *w == id) {
                    Some(entry) => entry.1 = r.at,
                    None => succeeded.push((id, r.at)),
                }
                continue;
            }
            // The server's keys are at fault, not the endpoint: its health stays as it was.
            if r.outcome.error.as_ref().is_some_and(|(class, _)| *class == ErrorClass::SigningSecret) {
                continue;
            }
            if let Some(i) = succeeded.iter().position(|(w, _)| *w == id) {
                let (_, at) = succeeded.remove(i);
                txn.execute_raw(reset(id, at)).await?;
            }
            let gone = r.outcome.status == Some(410);
            if let Some(reason) = self.record_failure(&txn, &r.hook, r.at, gone).await? {
                turned_off.push((r.hook.clone(), reason, r.at));
            }
        }
        for (id, at) in succeeded {
            txn.execute_raw(reset(id, at)).await?;
        }
        txn.commit().await?;
        drop(turn);

        for (hook, reason, at) in turned_off {
            self.announce_disabled(&hook, reason, at).await;
        }
        Ok(())
    }

    /// Counts the failure against the webhook; returns the reason when this failure turned
    /// the webhook off.
    async fn record_failure(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        hook: &webhook::Model,
        now: i64,
        gone: bool,
    ) -> Result<Option<&'static str>, sea_orm::DbErr> {
        let backend = txn.get_database_backend();
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1, \
                 failing_since = COALESCE(failing_since, $1) WHERE id = $2 \
                 RETURNING consecutive_failures, failing_since",
                [now.into(), hook.id.clone().into()],
            ))
            .await?;
        let Some(row) = row else { return Ok(None) };
        let failures: i32 = row.try_get("", "consecutive_failures")?;
        let since: Option<i64> = row.try_get("", "failing_since")?;
        let reason = if gone {
            Some("gone")
        } else if failures as u32 >= self.cfg.disable_after_failures
            && now - since.unwrap_or(now) >= self.cfg.disable_after_span.as_millis() as i64
        {
            Some("automatic")
        } else {
            None
        };
        let Some(reason) = reason else {
            return Ok(None);
        };
        let changed = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "UPDATE webhooks SET enabled = $1, disabled_reason = $2, disabled_at = $3, updated_at = $3 \
                 WHERE id = $4 AND enabled = $5",
                [false.into(), reason.into(), now.into(), hook.id.clone().into(), true.into()],
            ))
            .await?;
        Ok((changed.rows_affected() == 1).then_some(reason))
    }

    /// Publishes `webhook.disabled` to the tenant, for its other webhooks that subscribe to it.
    async fn announce_disabled(&self, hook: &webhook::Model, reason: &'static str, now: i64) {
        tracing::warn!(webhook = %hook.id, reason, "webhook turned off");
        metrics::counter!(telemetry::WEBHOOKS_DISABLED, "reason" => reason).increment(1);
        let message = match reason {
            "gone" => "The endpoint answered 410 Gone.".to_string(),
            _ => format!(
                "{} consecutive attempts failed over at least {:?}.",
                self.cfg.disable_after_failures, self.cfg.disable_after_span
            ),
        };
        let payload = serde_json::json!({
            "webhook_id": hook.id,
            "url": hook.url,
            "reason": reason,
            "message": message,
            "disabled_at": iso8601(now),
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

/// `($1, $2), ($3, $4)`: `rows` groups of `cols` placeholders numbered from `offset + 1`,
/// each passed through `wrap` with its column.
fn placeholders(rows: usize, cols: usize, offset: usize, wrap: impl Fn(usize, String) -> String) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> =
                (0..cols).map(|c| wrap(c, format!("${}", offset + r * cols + c + 1))).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The attempts as one multi-row insert, its placeholders numbered after `offset`.
fn insert_attempts_sql(records: &[Record], offset: usize) -> (String, Vec<sea_orm::Value>) {
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(records.len() * 13);
    for r in records {
        let duration_ms = r.outcome.duration.as_millis().min(i32::MAX as u128) as i32;
        let (error_class, error_message) = match &r.outcome.error {
            Some((class, message)) => (Some(class.as_str().to_string()), Some(message.clone())),
            None => (None, None),
        };
        values.extend([
            uuid::Uuid::now_v7().to_string().into(),
            r.claim.id.clone().into(),
            r.hook.id.clone().into(),
            r.trigger.as_str().into(),
            (r.at - duration_ms as i64).into(),
            duration_ms.into(),
            r.hook.url.clone().into(),
            serde_json::to_string(&r.headers).unwrap_or_default().into(),
            r.outcome.status.map(i32::from).into(),
            r.outcome.status.map(|_| serde_json::to_string(&r.outcome.headers).unwrap_or_default()).into(),
            r.outcome.body.clone().into(),
            error_class.into(),
            error_message.into(),
        ]);
    }
    let sql = format!(
        "INSERT INTO attempts (id, delivery_id, webhook_id, trigger, started_at, duration_ms, url, \
         request_headers, response_status, response_headers, response_body, error_class, error_message) \
         VALUES {}",
        placeholders(records.len(), 13, offset, |_, p| p)
    );
    (sql, values)
}

/// A webhook and the start of an hour.
type HourKey<'a> = (&'a str, i64);

/// Adds the attempts to their webhooks' hourly counters (the health chart): one multi-row
/// upsert, a row per webhook and hour, adding (succeeded, failed).
fn count_hours_sql(records: &[Record], offset: usize) -> (String, Vec<sea_orm::Value>) {
    let mut counts: Vec<(HourKey<'_>, (i64, i64))> = Vec::new();
    for r in records {
        let key = (r.hook.id.as_str(), r.at / hookline_core::HOUR_MS * hookline_core::HOUR_MS);
        let (ok, bad) = if r.outcome.succeeded() { (1, 0) } else { (0, 1) };
        match counts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, c)) => {
                c.0 += ok;
                c.1 += bad;
            }
            None => counts.push((key, (ok, bad))),
        }
    }
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(counts.len() * 4);
    for ((webhook, hour), (ok, bad)) in &counts {
        values.extend([(*webhook).into(), (*hour).into(), (*ok).into(), (*bad).into()]);
    }
    let sql = format!(
        "INSERT INTO webhook_hours (webhook_id, hour, succeeded, failed) VALUES {} \
         ON CONFLICT (webhook_id, hour) DO UPDATE SET succeeded = webhook_hours.succeeded + excluded.succeeded, \
         failed = webhook_hours.failed + excluded.failed",
        placeholders(counts.len(), 4, offset, |_, p| p)
    );
    (sql, values)
}

/// Settles or reschedules the attempts' deliveries: a `v (...) AS (VALUES ...)` list for a
/// `WITH`, and the update that reads it.
fn update_deliveries_sql(records: &[Record], offset: usize) -> (String, String, Vec<sea_orm::Value>) {
    // Per row: id, new status (NULL keeps it), whether next_attempt_at changes, its new value,
    // whether the lease ends, HTTP status, duration, time, whether the attempt was a manual
    // resend (counted apart: it does not use up the retry schedule).
    const TYPES: [&str; 9] =
        ["TEXT", "TEXT", "INTEGER", "BIGINT", "INTEGER", "INTEGER", "INTEGER", "BIGINT", "INTEGER"];
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(records.len() * TYPES.len());
    for r in records {
        let (status, set_next, next, release) = match r.settle {
            Settle::To(status, next) => (Some(status.as_str()), 1i32, next, 1i32),
            Settle::UnlessSucceeded if r.outcome.succeeded() => {
                (Some(DeliveryStatus::Succeeded.as_str()), 1, None, 0)
            }
            Settle::UnlessSucceeded => (None, 0, None, 0),
        };
        values.extend([
            r.claim.id.clone().into(),
            status.map(str::to_string).into(),
            set_next.into(),
            next.into(),
            release.into(),
            r.outcome.status.map(i32::from).into(),
            (r.outcome.duration.as_millis().min(i32::MAX as u128) as i32).into(),
            r.at.into(),
            i32::from(r.trigger == AttemptTrigger::Manual).into(),
        ]);
    }
    let rows = placeholders(records.len(), TYPES.len(), offset, |c, p| format!("CAST({p} AS {})", TYPES[c]));
    let list = format!(
        "v (id, status, set_next, next_at, release_lease, code, duration, at, manual) AS (VALUES {rows})"
    );
    let update = String::from(
        "UPDATE deliveries SET attempts = attempts + 1, manual_attempts = manual_attempts + v.manual, \
             status = COALESCE(v.status, deliveries.status), \
             next_attempt_at = CASE WHEN v.set_next = 1 THEN v.next_at ELSE deliveries.next_attempt_at END, \
             leased_by = CASE WHEN v.release_lease = 1 THEN NULL ELSE deliveries.leased_by END, \
             last_status_code = v.code, last_duration_ms = v.duration, updated_at = v.at \
         FROM v WHERE deliveries.id = v.id",
    );
    (list, update, values)
}

/// On PostgreSQL, a batch of successful attempts in one statement: the attempts, their
/// deliveries settled, the hourly counters, and each webhook's health reset to its latest
/// success.
fn all_succeeded_statement(records: &[Record]) -> Statement {
    let mut values = Vec::new();
    let (v_list, update, v) = update_deliveries_sql(records, values.len());
    values.extend(v);
    let (attempts, v) = insert_attempts_sql(records, values.len());
    values.extend(v);
    let (hours, v) = count_hours_sql(records, values.len());
    values.extend(v);
    let mut latest: Vec<(&str, i64)> = Vec::new();
    for r in records {
        match latest.iter_mut().find(|(w, _)| *w == r.hook.id) {
            Some(entry) => entry.1 = entry.1.max(r.at),
            None => latest.push((&r.hook.id, r.at)),
        }
    }
    let rows = placeholders(latest.len(), 2, values.len(), |c, p| {
        if c == 0 { format!("CAST({p} AS TEXT)") } else { format!("CAST({p} AS BIGINT)") }
    });
    for (id, at) in latest {
        values.extend([id.into(), at.into()]);
    }
    let sql = format!(
        "WITH {v_list}, \
              settled AS ({update}), \
              attempted AS ({attempts}), \
              counted AS ({hours}), \
              latest (id, at) AS (VALUES {rows}) \
         UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL, last_success_at = latest.at \
         FROM latest WHERE webhooks.id = latest.id"
    );
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
}

fn db_err(e: hookline_core::Error) -> sea_orm::DbErr {
    match e {
        hookline_core::Error::Db(e) => e,
        other => sea_orm::DbErr::Custom(other.to_string()),
    }
}

impl Dispatcher for Engine {
    fn reserve(&self, webhook_id: &str) -> Option<Reservation> {
        if !self.running.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let limit = self.cfg.per_webhook.max(1);
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        let sending = self.in_flight.try_take(webhook_id, limit)?;
        let slot = Slot {
            permit,
            webhook: WebhookSlot {
                sending,
                in_flight: self.in_flight.clone(),
                webhook_id: webhook_id.to_string(),
                limit,
                services: self.services.clone(),
            },
        };
        Some(Reservation {
            leased_by: self.worker_id.clone(),
            lease_until: self.lease_end(now_ms()),
            hold: Box::new(slot),
        })
    }

    fn start(&self, fresh: Vec<Handoff>) {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut webhook_ids: Vec<String> = fresh.iter().map(|h| h.webhook.id.clone()).collect();
            webhook_ids.sort();
            webhook_ids.dedup();
            let secrets: HashMap<String, Arc<Vec<String>>> =
                match engine.services.signing_secrets_of(&webhook_ids).await {
                    Ok(found) => found.into_iter().map(|(id, s)| (id, Arc::new(s))).collect(),
                    Err(e) => {
                        // The slots go back; the leases run out and the deliveries are claimed.
                        tracing::error!(error = %e, "loading signing secrets failed");
                        return;
                    }
                };
            for h in fresh {
                let Ok(slot) = h.hold.downcast::<Slot>() else { continue };
                let job = Job {
                    claim: Claim {
                        id: h.delivery_id,
                        event_id: h.event.id.clone(),
                        webhook_id: h.webhook.id.clone(),
                        attempts: 0,
                    },
                    secrets: secrets.get(&h.webhook.id).cloned().unwrap_or_default(),
                    hook: Some(h.webhook),
                    event: Some(h.event),
                };
                let engine = engine.clone();
                tokio::spawn(async move { engine.deliver(job, *slot).await });
            }
        });
    }

    fn attempt_now<'a>(
        &'a self,
        delivery_id: &'a str,
        trigger: AttemptTrigger,
    ) -> BoxFuture<'a, hookline_core::Result<AttemptResult>> {
        Box::pin(async move {
            self.attempt_on_request(delivery_id, trigger).await.map_err(|e| match e {
                sea_orm::DbErr::RecordNotFound(_) => hookline_core::Error::NotFound("delivery"),
                other => hookline_core::Error::Db(other),
            })
        })
    }
}
