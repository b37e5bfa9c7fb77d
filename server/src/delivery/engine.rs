//! The delivery engine's run loop: claim what is due, start each delivery's attempt
//! ([`super::attempt`]), and have the recorder write them ([`super::recorder`]); stop
//! gracefully. Also the engine as the services reach it ([`Dispatcher`]): fresh deliveries
//! handed over by publishing, and attempts made on request.
//!
//! Claims are leases: a claimed delivery's `next_attempt_at` becomes the lease's end, so a
//! delivery whose process died is simply due again when the lease runs out
//! ([`hookline_core::store::queue`]).
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

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hookline_core::slots::Slot;
use hookline_core::store::queue::{Claimed, Lease};
use hookline_core::{
    AttemptResult, AttemptTrigger, BoxFuture, ClaimedDelivery, DeliveryStatus, Dispatcher, Handoff,
    Reservation, Services, now_ms,
};
use tokio::sync::{Notify, OwnedSemaphorePermit, mpsc};

use super::capacity::Capacity;
use super::client::WebhookClient;
use super::error::EngineError;
use super::recorder::Record;
use super::retry::RetryPolicy;
use super::steer::{SteerConfig, Steering};

/// Most deliveries one claim takes.
const CLAIM_BATCH: usize = 64;
/// Longest idle wait before looking for due work again (retries coming due, other processes'
/// expired leases).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// After a claim that filled webhooks' pipelines, the next claim leaves those webhooks out and
/// so reads past every due delivery of theirs to reach other webhooks' due work behind them: a
/// cost that grows with their backlog (13 ms a claim at 300,000 due on SQLite, one after every
/// refill of a single webhook's pipeline). It is made at once at most this often; otherwise
/// the engine waits for a webhook to come back into the claims (its refill reads only the
/// front of the queue), for new work, or for the idle poll.
const REACH_PAST_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub retry: RetryPolicy,
    pub timeout: Duration,
    pub header_prefix: String,
    pub disable_after_failures: u32,
    pub disable_after_span: Duration,
    pub concurrency: usize,
    /// Most deliveries to one webhook in flight at once in this process (the adaptive limit's
    /// cap).
    pub per_webhook: usize,
    /// How the receiver's answers steer deliveries ([`super::steer`]).
    pub steer: SteerConfig,
    /// How long the recorder may hold a small batch open while the engine is nearly idle
    /// ([`super::recorder`]).
    pub record_linger: Duration,
}

#[derive(Clone)]
pub struct Engine {
    pub(super) services: Services,
    pub(super) client: WebhookClient,
    pub(super) cfg: Arc<EngineConfig>,
    pub(super) worker_id: String,
    pub(super) capacity: Arc<Capacity>,
    pub(super) steering: Arc<Steering>,
    pub(super) records: mpsc::UnboundedSender<Record>,
    recorder: Arc<std::sync::Mutex<Option<mpsc::UnboundedReceiver<Record>>>>,
    /// Whether [`Engine::run`] is running: only then does the engine take hand-offs (its
    /// recorder runs with it).
    running: Arc<AtomicBool>,
    /// Set when the process is stopping: deliveries not yet sent go back to the queue at once.
    pub(super) stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// Callers waiting for every attempt in flight to be written ([`Engine::all_written`]);
    /// the recorder holds no batch open while there are any.
    waiting_for_writes: Arc<AtomicUsize>,
    /// Wakes a recorder holding a batch open when someone starts waiting for it.
    pub(super) hurry: Arc<Notify>,
}

impl Engine {
    pub fn new(services: Services, client: WebhookClient, cfg: EngineConfig) -> Self {
        let capacity = Capacity::new(cfg.concurrency, cfg.per_webhook, services.new_work());
        // A claimed delivery's request must be out within its lease, less its own time.
        let budget = cfg.timeout + Duration::from_secs(5);
        let steering = Steering::new(
            cfg.steer.clone(),
            capacity.per_webhook(),
            budget,
            capacity.pipelines(),
            capacity.new_work(),
        );
        let (records, recorder) = mpsc::unbounded_channel();
        Engine {
            steering: Arc::new(steering),
            services,
            client,
            cfg: Arc::new(cfg),
            worker_id: uuid::Uuid::new_v4().to_string(),
            capacity: Arc::new(capacity),
            records,
            recorder: Arc::new(std::sync::Mutex::new(Some(recorder))),
            running: Arc::new(AtomicBool::new(false)),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
            waiting_for_writes: Arc::new(AtomicUsize::new(0)),
            hurry: Arc::new(Notify::new()),
        }
    }

    /// Starts the recorder task, once per engine.
    fn start_recorder(&self) {
        let recorder = self.recorder.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(rx) = recorder {
            tokio::spawn(self.clone().record_all(rx));
        }
    }

    /// Delivers until `shutdown` resolves, then stops gracefully ([`Engine::drain`]).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        self.start_recorder();
        self.running.store(true, Ordering::SeqCst);
        // Hand-offs stop when the loop does, however it returns.
        struct Stopped<'a>(&'a AtomicBool);
        impl Drop for Stopped<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        let _stopped = Stopped(&self.running);
        let capacity = self.capacity.clone();
        let in_flight = move || capacity.in_use();
        let janitor =
            tokio::spawn(super::janitor::run(self.services.clone(), self.capacity.total(), in_flight));
        struct AbortOnDrop(tokio::task::JoinHandle<()>);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let _janitor = AbortOnDrop(janitor);
        let _replayer = AbortOnDrop(tokio::spawn(super::replayer::run(self.services.clone())));
        let new_work = self.services.new_work();
        let mut reached_past: Option<Instant> = None;
        loop {
            // Register for the wake-up before looking, so a publish in between is not missed.
            let notified = new_work.notified();
            // Wait for capacity before claiming: a claimed delivery must not sit in memory.
            let first = tokio::select! {
                permit = self.capacity.permit() => match permit {
                    Some(permit) => permit,
                    None => break,
                },
                _ = &mut shutdown => break,
            };
            let more = match self.claim_and_start(first).await {
                Ok(claimed) if claimed.full && claimed.filled_pipelines => {
                    let now = Instant::now();
                    let due = reached_past.is_none_or(|at| now.duration_since(at) >= REACH_PAST_EVERY);
                    if due {
                        reached_past = Some(now);
                    }
                    due
                }
                Ok(claimed) => claimed.full,
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

    /// Delivers what is due now and returns once every attempt it made is written: claims
    /// until a claim comes back empty, waiting for the attempts in flight between claims.
    /// Retries scheduled meanwhile wait for a later call. Answers how many deliveries it
    /// claimed. For tests, instead of [`Engine::run`] and polling: nothing sleeps.
    pub async fn run_once(&self) -> Result<usize, EngineError> {
        self.start_recorder();
        let mut claimed = 0;
        loop {
            let Some(first) = self.capacity.permit().await else { return Ok(claimed) };
            let claim = self.claim_and_start(first).await?;
            claimed += claim.leased;
            if claim.full {
                continue;
            }
            // Every attempt holds its permit until it is written.
            if !self.all_written(self.cfg.timeout * 2 + Duration::from_secs(5)).await {
                tracing::warn!("run_once: attempts still in flight at the deadline");
            }
            if claim.leased == 0 {
                return Ok(claimed);
            }
        }
    }

    /// A graceful stop: no more claims or hand-offs; deliveries claimed but not yet sent go
    /// back to the queue at once (due now, for any process); those being sent finish, up to
    /// the delivery timeout, and are recorded. What is still out after that is left to its
    /// lease.
    async fn drain(&self) {
        self.running.store(false, Ordering::SeqCst);
        self.stopping.send_replace(true);
        if self.all_written(self.cfg.timeout + Duration::from_secs(5)).await {
            tracing::info!("deliveries in flight finished and recorded; the engine stopped");
        } else {
            tracing::warn!(
                in_flight = self.capacity.in_use(),
                "deliveries still in flight at the deadline are left to their lease"
            );
        }
    }

    /// Waits until every attempt in flight has been written, at most `within` (the recorder
    /// holds nothing open meanwhile); true when they all were.
    async fn all_written(&self, within: Duration) -> bool {
        self.waiting_for_writes.fetch_add(1, Ordering::SeqCst);
        self.hurry.notify_one();
        let written = self.capacity.all_back(within).await;
        self.waiting_for_writes.fetch_sub(1, Ordering::SeqCst);
        written
    }

    /// Whether someone waits for the attempts in flight to be written.
    pub(super) fn hurrying(&self) -> bool {
        self.waiting_for_writes.load(Ordering::SeqCst) > 0
    }

    /// Claims what is due and starts sending it, as far as free capacity allows.
    async fn claim_and_start(&self, first: OwnedSemaphorePermit) -> Result<ClaimMade, EngineError> {
        let room = self.capacity.room(CLAIM_BATCH);
        let now = now_ms();
        let lease = Lease { holder: &self.worker_id, until: self.lease_end(now) };
        let left_out = self.capacity.full();
        let claims = self.services.store().claim(lease, now, room, &left_out).await?;
        let leased = claims.len();
        let mut first = Some(first);
        let mut overflow = Vec::new();
        let mut taken = Vec::with_capacity(leased);
        let mut slots = Vec::with_capacity(leased);
        for claim in claims {
            match self.capacity.slot_for_claim(&claim.webhook_id, &mut first) {
                Some(slot) => {
                    taken.push(claim);
                    slots.push(slot);
                }
                None => overflow.push(claim.id),
            }
        }
        let filled_pipelines = self.capacity.full().iter().any(|webhook| !left_out.contains(webhook));
        self.unclaim(&overflow).await?;
        // If loading fails the slots are dropped and the leases run out: nothing is lost.
        let due = self.services.load_claimed(taken).await?;
        let held = Held { loaded_at: now, lease_until: lease.until };
        for (delivery, slot) in due.into_iter().zip(slots) {
            let engine = self.clone();
            tokio::spawn(async move { engine.deliver(delivery, slot, held).await });
        }
        Ok(ClaimMade { leased, full: leased >= room, filled_pipelines })
    }

    /// Gives claims back to the queue, due at once.
    pub(super) async fn unclaim(&self, ids: &[String]) -> Result<(), EngineError> {
        Ok(self.services.store().unclaim(&self.worker_id, ids, now_ms()).await?)
    }

    /// When a lease taken at `now` ends: long enough for the attempt and the writes after
    /// it; short enough that a crashed process's claims come due again soon.
    fn lease_end(&self, now: i64) -> i64 {
        now + (self.cfg.timeout * 2 + Duration::from_secs(5)).as_millis() as i64
    }

    /// Gives a claimed delivery that was never sent back to the queue, due now.
    pub(super) async fn release_unstarted(&self, claim: &Claimed) {
        if let Err(e) = self.unclaim(std::slice::from_ref(&claim.id)).await {
            tracing::warn!(delivery = %claim.id, error = %e, "a delivery could not be released; its lease will run out");
        }
    }

    /// A delivery whose webhook was turned off (or deleted) since it was queued.
    pub(super) async fn skip(&self, delivery_id: &str) {
        let store = self.services.store();
        if let Err(e) =
            store.settle_unattempted(delivery_id, &self.worker_id, DeliveryStatus::Skipped, now_ms()).await
        {
            tracing::error!(delivery = %delivery_id, error = %e, "delivery could not be skipped");
        }
    }
}

/// When a delivery's webhook was read, and when its lease ends.
#[derive(Clone, Copy, Debug)]
pub(super) struct Held {
    pub(super) loaded_at: i64,
    pub(super) lease_until: i64,
}

/// What one claim came to.
struct ClaimMade {
    /// Deliveries the claim leased (some may have gone back at once, for lack of room).
    leased: usize,
    /// The claim got all it asked for: more may be due at once.
    full: bool,
    /// It filled the pipelines of webhooks it did not leave out: the next claim leaves them
    /// out.
    filled_pipelines: bool,
}

impl Dispatcher for Engine {
    fn reserve(&self, webhook_id: &str) -> Option<Reservation> {
        if !self.running.load(Ordering::SeqCst) {
            return None;
        }
        // A paused webhook's fresh deliveries wait in the queue (this process may know of the
        // pause before publishing's copy of the webhook does).
        if self.steering.holds(webhook_id, now_ms()) {
            return None;
        }
        let hold = self.capacity.reserve(webhook_id)?;
        Some(Reservation { leased_by: self.worker_id.clone(), lease_until: self.lease_end(now_ms()), hold })
    }

    fn start(&self, fresh: Vec<Handoff>) {
        let now = now_ms();
        // The reservations were made a moment ago: their leases end a little earlier.
        let held = Held { loaded_at: now, lease_until: self.lease_end(now) - 1_000 };
        for h in fresh {
            let delivery = ClaimedDelivery {
                claim: Claimed {
                    id: h.delivery_id,
                    event_id: h.event.id.clone(),
                    webhook_id: h.webhook.id.clone(),
                    attempts: 0,
                },
                secrets: h.secrets,
                webhook: Some(h.webhook),
                event: Some(h.event),
            };
            let slot: Slot = h.hold;
            let engine = self.clone();
            tokio::spawn(async move { engine.deliver(delivery, slot, held).await });
        }
    }

    fn attempt_now<'a>(
        &'a self,
        delivery_id: &'a str,
        trigger: AttemptTrigger,
    ) -> BoxFuture<'a, hookline_core::Result<AttemptResult>> {
        Box::pin(async move {
            self.attempt_on_request(delivery_id, trigger).await.map_err(hookline_core::Error::from)
        })
    }
}
