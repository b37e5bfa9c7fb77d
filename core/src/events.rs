//! Publishing an event: checked, stored with its sequence number, and fanned out to one
//! delivery per matching webhook, all in one transaction, so an accepted event is never lost
//! and a rejected one leaves nothing behind.

use std::collections::HashMap;
use std::sync::Arc;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};

use crate::dispatch::{Dispatcher, Handoff};
use crate::entities::{delivery, event, webhook};
use crate::error::{Error, Result};
use crate::recipients::Recipients;
use crate::store::Writer;
use crate::store::queue::parked_until;
use crate::{Services, new_id, now_ms, store};
use hookline_domain::{DeliveryStatus, Scope, Tenant};

/// How long an `Idempotency-Key` stays bound to the event it first published.
const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;
const MAX_IDEMPOTENCY_KEY: usize = 255;
const MAX_ORDERING_KEY: usize = 255;
/// The `sequences` row of a tenant's ordering counter: the order of its events that carry an
/// ordering key, whatever their resource (a catalog resource is never empty, so the name is
/// free). One counter per tenant, so one key's events compare across event types.
const ORDERING_COUNTER: &str = "";

pub struct PublishRequest {
    pub tenant: Tenant,
    pub event_type: String,
    /// The payload exactly as the producer sent it: receivers get these bytes.
    pub payload: String,
    pub idempotency_key: Option<String>,
    /// The publisher's ordering key (1 to 255 characters): a webhook with ordering on
    /// delivers the events of one key in publish order, one at a time ([`crate::ordering`]).
    pub ordering_key: Option<String>,
    /// Which of the tenant's webhooks may receive it.
    pub audience: Audience,
}

/// Which of a tenant's webhooks receive an event (among those subscribed to its type).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Audience {
    /// Every one: what producers publish.
    #[default]
    Everyone,
    /// Only the webhooks made by this application (`Some`), or by the tenant itself
    /// (`None`): an event Hookline emits about one webhook goes only to the webhooks that
    /// may see that webhook, never to another partner app on the same store.
    MadeBy(Option<String>),
}

/// The event types Hookline emits itself; no API key may publish them, and no admin may add
/// a type with their prefix.
pub const OPERATIONAL_PREFIX: &str = "webhook.";

/// The product group of the operational event types: every webhook that may see the
/// webhook an operational event is about receives it, whatever its application's product
/// lines.
pub(crate) const OPERATIONAL_GROUP: &str = "Webhooks";

#[derive(Clone, Debug)]
pub struct Published {
    pub event_id: String,
    /// True when the idempotency key matched an earlier event, which is returned instead.
    pub deduplicated: bool,
}

/// A checked publish request waiting for the writer, with where to send its answer.
pub(crate) struct PublishJob {
    req: PublishRequest,
    /// Whose request it is (`None` for Hookline's own events): an idempotency key belongs to
    /// the caller that sent it.
    caller: Option<Scope>,
    resource: String,
    /// The type's product group: an application installed for some product lines receives
    /// only their events.
    group: String,
    reply: oneshot::Sender<Result<Published>>,
}

/// Most publish requests one transaction writes.
const PUBLISH_BATCH: usize = 512;
/// Most publish requests waiting for a writer: beyond it, publishing answers 503 at once
/// instead of holding more requests (and their payloads) in memory.
const PUBLISH_QUEUE: usize = 8 * PUBLISH_BATCH;
/// Publish transactions in flight at once on PostgreSQL.
const POSTGRES_WRITERS: usize = 2;
/// How long a publish writer on PostgreSQL keeps its connection with nothing to write.
const KEEP_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

impl Services {
    /// Checks and stores an event and fans it out to one delivery per matching webhook. The
    /// answer comes after the commit: an event answered with its id is never lost.
    ///
    /// Concurrent publishes are written together (group commit) by one writer task per
    /// process, so a burst costs one transaction, not one each.
    pub async fn publish(&self, scope: &Scope, req: PublishRequest) -> Result<Published> {
        if !scope.allows(&req.tenant) {
            return Err(Error::Forbidden(format!("This key cannot publish events for {}.", req.tenant)));
        }
        if req.event_type.starts_with(OPERATIONAL_PREFIX) {
            return Err(Error::Forbidden(format!(
                "{} is emitted by Hookline itself; no API key may publish it.",
                req.event_type
            )));
        }
        self.accept(Some(scope.clone()), req).await
    }

    /// Publishes an event Hookline emits itself (such as `webhook.disabled`), through the
    /// same checks and writer as a producer's.
    pub async fn emit(&self, req: PublishRequest) -> Result<Published> {
        self.accept(None, req).await
    }

    async fn accept(&self, caller: Option<Scope>, req: PublishRequest) -> Result<Published> {
        if req.payload.len() > self.settings.max_payload {
            return Err(Error::PayloadTooLarge { size: req.payload.len(), limit: self.settings.max_payload });
        }
        if serde_json::from_str::<serde::de::IgnoredAny>(&req.payload).is_err() {
            return Err(Error::invalid("payload", "The payload must be valid JSON."));
        }
        if let Some(key) = &req.idempotency_key
            && (key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY)
        {
            return Err(Error::invalid(
                "Idempotency-Key",
                format!("An Idempotency-Key has 1 to {MAX_IDEMPOTENCY_KEY} characters."),
            ));
        }
        if let Some(key) = &req.ordering_key {
            if key.is_empty() || key.chars().count() > MAX_ORDERING_KEY {
                return Err(Error::invalid(
                    "ordering_key",
                    format!("An ordering_key has 1 to {MAX_ORDERING_KEY} characters."),
                ));
            }
            // The merchant reads blocked keys on the webhook page.
            Error::refuse_hidden("ordering_key", key)?;
        }
        if !self.tenant_exists(&req.tenant).await? {
            return Err(Error::unprocessable("tenant_id", format!("No tenant {} exists.", req.tenant)));
        }
        let Some(kind) = self.catalog_entry(&req.event_type).await? else {
            return Err(Error::unprocessable(
                "event_type",
                format!("Unknown event type {:?}.", req.event_type),
            ));
        };
        if !kind.tenant_type.admits(req.tenant.kind) {
            return Err(Error::unprocessable(
                "event_type",
                format!("{} is an event of {} tenants.", kind.name, kind.tenant_type),
            ));
        }
        self.check_payload(&kind, &req.payload)?;
        let (reply, answer) = oneshot::channel();
        let job = PublishJob {
            req,
            caller,
            resource: kind.resource.clone(),
            group: kind.product_group.clone(),
            reply,
        };
        self.publisher().try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Unavailable(
                "Hookline is writing as many events as it can hold; try again in a few seconds.".into(),
            ),
            mpsc::error::TrySendError::Closed(_) => {
                Error::Db(DbErr::Custom("the event writer stopped".into()))
            }
        })?;
        answer.await.map_err(|_| Error::Db(DbErr::Custom("the event writer stopped".into())))?
    }

    /// The writers' queue, started on first use. SQLite has one writer at a time anyway;
    /// PostgreSQL gets several, each writing its own batch while the others wait on the
    /// network.
    fn publisher(&self) -> &mpsc::Sender<PublishJob> {
        self.publisher.get_or_init(|| {
            let (tx, rx) = mpsc::channel(PUBLISH_QUEUE);
            let rx = Arc::new(tokio::sync::Mutex::new(rx));
            let writers = match self.db.get_database_backend() {
                DatabaseBackend::Sqlite => 1,
                _ => POSTGRES_WRITERS,
            };
            for _ in 0..writers {
                tokio::spawn(self.clone().write_events(rx.clone()));
            }
            tx
        })
    }

    /// A writer: takes every request waiting and writes them in one transaction. If that
    /// fails, each is tried once more alone.
    ///
    /// On PostgreSQL the writer keeps the connection of its last batch while publishes keep
    /// coming ([`store::events::KeptConnection`]), and gives it back to the pool once none
    /// came for [`KEEP_IDLE`].
    async fn write_events(self, queue: Arc<tokio::sync::Mutex<mpsc::Receiver<PublishJob>>>) {
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        let mut kept = store::events::KeptConnection::default();
        loop {
            let waiting = async {
                let mut rx = queue.lock().await;
                let received = rx.recv_many(&mut batch, PUBLISH_BATCH).await;
                (rx, received)
            };
            let (mut rx, received) = if kept.holds() {
                // Both waits give up nothing when cut short: a request stays in the queue.
                match tokio::time::timeout(KEEP_IDLE, waiting).await {
                    Ok(got) => got,
                    Err(_) => {
                        kept.give_back();
                        continue;
                    }
                }
            } else {
                waiting.await
            };
            if received == 0 {
                return;
            }
            // Let the requests being read right now join this batch, and those that arrive
            // while the write turn is busy: under load, bigger batches; when idle, no wait.
            tokio::task::yield_now().await;
            let mut turn = self.write_turn().await;
            while batch.len() < PUBLISH_BATCH
                && let Ok(job) = rx.try_recv()
            {
                batch.push(job);
            }
            drop(rx);
            match self.write_batch(&batch, turn.as_deref_mut(), &mut kept).await {
                Ok(answers) => {
                    drop(turn);
                    for (job, answer) in batch.drain(..).zip(answers) {
                        let _ = job.reply.send(answer);
                    }
                }
                Err(Error::Unavailable(message)) => {
                    // The database is out of reach: trying each request alone would only
                    // wait for it once per request. Nothing was written; each may be sent
                    // again.
                    drop(turn);
                    for job in batch.drain(..) {
                        let _ = job.reply.send(Err(Error::Unavailable(message.clone())));
                    }
                }
                Err(_) => {
                    // Each request again, alone: one request's failure is not the others',
                    // and a request that lost a race for its idempotency key (to another
                    // writer or process) now finds the winner's event.
                    for job in batch.drain(..) {
                        let answer = self
                            .write_batch(std::slice::from_ref(&job), turn.as_deref_mut(), &mut kept)
                            .await
                            .and_then(|mut a| a.remove(0));
                        let _ = job.reply.send(answer);
                    }
                    drop(turn);
                }
            }
        }
    }

    /// Writes one batch; the caller holds the write turn (on SQLite, `writer`).
    async fn write_batch(
        &self,
        jobs: &[PublishJob],
        writer: Option<&mut Writer>,
        connection: &mut store::events::KeptConnection,
    ) -> Result<Vec<Result<Published>>> {
        let items: Vec<(&PublishRequest, &str)> =
            jobs.iter().map(|j| (&j.req, j.resource.as_str())).collect();
        let tenants = distinct_tenants(jobs.iter().map(|j| &j.req.tenant));
        let planned = match self.db.get_database_backend() {
            DatabaseBackend::Sqlite => {
                let writer = writer.ok_or(Error::Unavailable("SQLite's writer is held elsewhere".into()))?;
                if let Some(planned) = self.write_batch_joined(writer, jobs, &items, &tenants).await? {
                    return Ok(self.published(planned));
                }
                // One transaction. The sequence numbers are its first statement, a write, so
                // it holds the write lock from its start and the reads after it see the
                // latest data.
                let txn = self.db.begin().await?;
                let (sequences, versions) = next_sequences(&txn, &items).await?;
                let webhooks = self.recipients(&txn, &tenants, &versions).await?;
                let planned = self.plan(&txn, jobs, &sequences, &webhooks).await?;
                store::events::insert_rows(&txn, &planned.events, &planned.deliveries).await?;
                txn.commit().await?;
                planned
            }
            _ if jobs.iter().any(|j| j.req.ordering_key.is_some()) => {
                // Events with an ordering key: the counters' rows stay locked until the rows
                // are committed, so the tenant's ordered events commit in their numbers'
                // order and a claim never sees a later one of a key without the earlier.
                let txn = self.db.begin().await?;
                let (sequences, versions) = next_sequences(&txn, &items).await?;
                let webhooks = self.recipients(&txn, &tenants, &versions).await?;
                let planned = self.plan(&txn, jobs, &sequences, &webhooks).await?;
                store::events::insert_rows(&txn, &planned.events, &planned.deliveries).await?;
                txn.commit().await?;
                planned
            }
            _ => {
                // Planned on this process's copies of the recipients, one statement checks
                // they are current, moves the counters, numbers the events and writes them
                // with their deliveries: one round trip, one commit. A request published
                // after another was answered still gets the higher number.
                let kept = self.kept_recipients(&tenants);
                let written = match &kept {
                    Some((webhooks, versions)) => {
                        let planned_on: Vec<(&Tenant, i64)> = versions.iter().map(|(t, v)| (t, *v)).collect();
                        self.write_numbered_postgres(jobs, webhooks, &planned_on, connection).await?
                    }
                    None => None,
                };
                match written {
                    Some(planned) => planned,
                    None => {
                        // No copy, or it moved: the versions are a read (no commit to wait
                        // for), then the webhooks of those that changed.
                        let versions = store::events::recipient_versions(&self.db, &tenants).await?;
                        let webhooks = self.recipients(&self.db, &tenants, &versions).await?;
                        self.write_numbered_postgres(jobs, &webhooks, &[], connection).await?.ok_or_else(
                            || {
                                Error::Db(DbErr::Custom(
                                    "a batch with no recipients to check failed the check".into(),
                                ))
                            },
                        )?
                    }
                }
            }
        };
        Ok(self.published(planned))
    }

    /// PostgreSQL's batch without ordering keys, planned on `webhooks`, in one statement
    /// ([`store::events::insert_numbered_postgres`]). `None` when `planned_on` names versions
    /// of the recipients that are no longer current: nothing was written.
    async fn write_numbered_postgres(
        &self,
        jobs: &[PublishJob],
        webhooks: &Recipients,
        planned_on: &[(&Tenant, i64)],
        connection: &mut store::events::KeptConnection,
    ) -> Result<Option<Planned>> {
        let unnumbered = vec![(0, None); jobs.len()];
        let mut planned = self.plan(&self.db, jobs, &unnumbered, webhooks).await?;
        let numbers = {
            let (counters, numbered) = counters_of(jobs, &planned);
            store::events::insert_numbered_postgres(
                &self.db,
                connection,
                &counters,
                &numbered,
                &planned.deliveries,
                planned_on,
            )
            .await?
        };
        let Some(numbers) = numbers else { return Ok(None) };
        planned.number(&numbers);
        Ok(Some(planned))
    }

    /// SQLite's usual batch through its writer: in one hand-over to SQLite's thread when this
    /// process has copies of the recipients ([`Services::write_batch_in_one_text`]), else in
    /// two: the counters move as the first statement of the transaction, answering the
    /// recipients' versions, then the rows are written with its commit. `None` when the batch
    /// needs a read in between (an idempotency key to look up, a tenant's recipients not in
    /// memory at the version the counters answered): then nothing was written, and the caller
    /// writes it the general way, which reads them.
    async fn write_batch_joined(
        &self,
        writer: &mut Writer,
        jobs: &[PublishJob],
        items: &[(&PublishRequest, &str)],
        tenants: &[Tenant],
    ) -> Result<Option<Planned>> {
        if jobs.iter().any(|j| j.req.idempotency_key.is_some() && j.caller.is_some()) {
            return Ok(None);
        }
        if jobs.iter().all(|j| j.req.ordering_key.is_none())
            && let Some((webhooks, versions)) = self.kept_recipients(tenants)
            && let Some(planned) = self.write_batch_in_one_text(writer, jobs, &webhooks, &versions).await?
        {
            return Ok(Some(planned));
        }
        let backend = DatabaseBackend::Sqlite;
        let groups = counter_groups(items);
        let counters = counters(&groups);
        let rows = writer.begin_with(store::events::advance_counters_statement(backend, &counters)).await?;
        let planned = async {
            let moved = store::events::moved(&counters, rows.iter().map(moved_row))?;
            let Some(webhooks) = self.cached_recipients(tenants, &moved.versions) else {
                return Ok(None);
            };
            let sequences = numbers(groups, items.len(), moved.values);
            // No idempotency key to look up: the plan reads nothing.
            self.plan(&self.db, jobs, &sequences, &webhooks).await.map(Some)
        }
        .await;
        match planned {
            Ok(Some(planned)) => {
                writer
                    .commit_with(store::events::insert_rows_statements(
                        backend,
                        &planned.events,
                        &planned.deliveries,
                    ))
                    .await?;
                Ok(Some(planned))
            }
            other => {
                writer.roll_back().await;
                other
            }
        }
    }

    /// SQLite's usual batch at its cheapest: planned on this process's copies of the
    /// recipients, then written in one hand-over to SQLite's thread, as one transaction that
    /// first checks those copies are still current, moves the counters and numbers the events
    /// from them. `None` when the check failed (the recipients changed since they were
    /// copied): nothing was written, and the caller reads them again.
    async fn write_batch_in_one_text(
        &self,
        writer: &mut Writer,
        jobs: &[PublishJob],
        webhooks: &Recipients,
        versions: &HashMap<Tenant, i64>,
    ) -> Result<Option<Planned>> {
        let unnumbered = vec![(0, None); jobs.len()];
        // No idempotency key to look up (the caller made sure): the plan reads nothing.
        let mut planned = self.plan(&self.db, jobs, &unnumbered, webhooks).await?;
        if planned.events.is_empty() {
            return Ok(None);
        }
        let numbers = {
            let (counters, numbered) = counters_of(jobs, &planned);
            let kept: Vec<(&Tenant, i64)> = versions.iter().map(|(t, v)| (t, *v)).collect();
            let mut statements = vec![
                store::events::fail_if_recipients_moved(&kept),
                store::events::advance_counters_statement(DatabaseBackend::Sqlite, &counters),
            ];
            statements.extend(store::events::insert_numbered_sqlite(
                &counters,
                &numbered,
                &planned.deliveries,
            ));
            let rows = match writer.transaction(statements).await {
                Ok(rows) => rows,
                Err(Error::Unavailable(message)) => return Err(Error::Unavailable(message)),
                // Rolled back. Most likely the check; whatever else failed fails again in
                // the general way, and is answered from there.
                Err(_) => return Ok(None),
            };
            let moved = store::events::moved(&counters, rows.iter().map(moved_row))?;
            numbered
                .iter()
                .map(|n| (n.event.id.clone(), moved.values[n.counter] - n.back))
                .collect::<HashMap<String, i64>>()
        };
        planned.number(&numbers);
        Ok(Some(planned))
    }

    /// A written batch's answers; hands its deliveries to the engine, wakes the workers for
    /// the others.
    fn published(&self, mut planned: Planned) -> Vec<Result<Published>> {
        // Only now, after the commit, may the engine send what was handed to it.
        if !planned.leased.is_empty()
            && let Some(engine) = self.engine()
        {
            engine.start(planned.handoffs());
        }
        if planned.queued {
            self.wake_workers();
        }
        self.events_published();
        planned.answers
    }

    /// Answers requests whose idempotency key is already bound, and lays out the rows of the
    /// rest: their events, and one delivery per matching webhook, leased to this process's
    /// engine where it has room. A request answered by its key leaves a gap in the numbers.
    ///
    /// An idempotency key belongs to the caller (the key's scope): the same key again with
    /// the same request is answered with the first event; with another tenant, event type or
    /// payload it is refused (422), as the IETF idempotency-key draft and Stripe do.
    async fn plan(
        &self,
        conn: &impl ConnectionTrait,
        jobs: &[PublishJob],
        sequences: &[Numbers],
        recipients: &Recipients,
    ) -> Result<Planned> {
        let mut answers: Vec<Option<Result<Published>>> = (0..jobs.len()).map(|_| None).collect();
        // Requests of this batch answered by an earlier request of the same batch.
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            let (Some(key), Some(caller)) = (&job.req.idempotency_key, &job.caller) else { continue };
            let earlier_in_batch = (0..i).find(|&j| {
                answers[j].is_none()
                    && jobs[j].req.idempotency_key.as_ref() == Some(key)
                    && jobs[j].caller.as_ref().is_some_and(|c| c.allows(&job.req.tenant))
                    && caller.allows(&jobs[j].req.tenant)
            });
            if let Some(j) = earlier_in_batch {
                if same_request(&jobs[j].req, &job.req) {
                    repeats.push((i, j));
                } else {
                    answers[i] = Some(Err(key_reused(key)));
                }
                continue;
            }
            let bound = self.events_by_idempotency_key(conn, caller, key).await?;
            let same_tenant = bound
                .iter()
                .find(|e| e.tenant_type == job.req.tenant.kind && e.tenant_id == job.req.tenant.id);
            answers[i] = match (same_tenant, bound.is_empty()) {
                (Some(e), _) if e.event_type == job.req.event_type && e.payload == job.req.payload => {
                    Some(Ok(Published { event_id: e.id.clone(), deduplicated: true }))
                }
                (Some(_), _) | (None, false) => Some(Err(key_reused(key))),
                (None, true) => None,
            };
        }
        let repeated: Vec<usize> = repeats.iter().map(|(i, _)| *i).collect();
        let fresh_index: Vec<usize> =
            (0..jobs.len()).filter(|i| answers[*i].is_none() && !repeated.contains(i)).collect();
        let fresh: Vec<(&PublishRequest, &str, Numbers)> =
            fresh_index.iter().map(|&i| (&jobs[i].req, jobs[i].group.as_str(), sequences[i])).collect();
        let engine = self.engine();
        let mut planned = lay_out(&fresh, recipients, engine.as_deref());
        planned.fresh = fresh_index.clone();
        for (&i, e) in fresh_index.iter().zip(&planned.events) {
            answers[i] = Some(Ok(Published { event_id: e.id.clone(), deduplicated: false }));
        }
        for (i, first) in repeats {
            let event_id = match &answers[first] {
                Some(Ok(p)) => p.event_id.clone(),
                _ => unreachable!("a repeated request's first is a fresh event"),
            };
            answers[i] = Some(Ok(Published { event_id, deduplicated: true }));
        }
        planned.answers = answers.into_iter().map(|a| a.expect("every request answered")).collect();
        Ok(planned)
    }

    /// The events still bound to the idempotency key that the caller may see (usually one);
    /// a key older than the window is released.
    async fn events_by_idempotency_key(
        &self,
        txn: &impl ConnectionTrait,
        caller: &Scope,
        key: &str,
    ) -> Result<Vec<event::Model>> {
        let found = event::Entity::find().filter(event::Column::IdempotencyKey.eq(key)).all(txn).await?;
        let mut bound = Vec::new();
        for e in found {
            if !caller.allows(&Tenant { kind: e.tenant_type, id: e.tenant_id.clone() }) {
                continue;
            }
            if now_ms() - e.received_at < IDEMPOTENCY_WINDOW_MS {
                bound.push(e);
            } else {
                event::Entity::update_many()
                    .col_expr(
                        event::Column::IdempotencyKey,
                        sea_orm::sea_query::Expr::value(Option::<String>::None),
                    )
                    .filter(event::Column::Id.eq(e.id))
                    .exec(txn)
                    .await?;
            }
        }
        Ok(bound)
    }

    /// Stores one event inside the caller's transaction (for events Hookline publishes itself
    /// as part of another change, such as an application's disconnection). Its deliveries are
    /// queued for the workers.
    pub(crate) async fn insert_event(
        &self,
        txn: &DatabaseTransaction,
        req: &PublishRequest,
        kind: &crate::entities::event_type::Model,
    ) -> Result<String> {
        let sequence = next_sequences(txn, &[(req, kind.resource.as_str())]).await?.0[0];
        let webhooks = self.recipients_now(txn, std::slice::from_ref(&req.tenant)).await?;
        let planned = lay_out(&[(req, kind.product_group.as_str(), sequence)], &webhooks, None);
        store::events::insert_rows(txn, &planned.events, &planned.deliveries).await?;
        Ok(planned.events[0].id.clone())
    }
}

/// The rows a batch writes, and what happens after the commit.
struct Planned {
    /// One per request of the batch, in order (filled in by [`Services::plan`]).
    answers: Vec<Result<Published>>,
    events: Vec<Arc<event::Model>>,
    deliveries: Vec<delivery::Model>,
    /// Deliveries leased to this process's engine, to start once the rows are committed.
    leased: Vec<Leased>,
    /// Whether any delivery was queued for the workers to claim.
    queued: bool,
    /// The request each event is for, by index into the batch.
    fresh: Vec<usize>,
}

impl Planned {
    /// Gives the events the sequence numbers the database assigned them. Nothing shares an
    /// event before the hand-over, so each is numbered where it is, not copied (a payload
    /// may be 256 KiB).
    fn number(&mut self, numbers: &HashMap<String, i64>) {
        for e in &mut self.events {
            let sequence = numbers.get(&e.id).copied().unwrap_or(e.sequence);
            Arc::make_mut(e).sequence = sequence;
        }
    }

    /// What the engine is handed once the rows are committed, each with its event.
    fn handoffs(&mut self) -> Vec<Handoff> {
        std::mem::take(&mut self.leased)
            .into_iter()
            .map(|l| Handoff {
                delivery_id: l.delivery_id,
                event: self.events[l.event].clone(),
                webhook: l.webhook,
                secrets: l.secrets,
                hold: l.hold,
            })
            .collect()
    }
}

/// A delivery written leased to the engine: a [`Handoff`] once its event is numbered, by
/// index into [`Planned::events`].
struct Leased {
    delivery_id: String,
    event: usize,
    webhook: Arc<webhook::Model>,
    secrets: Arc<Vec<String>>,
    hold: crate::slots::Slot,
}

/// Each request's event (with its sequence number) and one delivery per matching webhook.
/// Where `engine` has room, a delivery is written leased to it and handed over; the rest are
/// queued, due now. A webhook that is off still gets a record, so turning it back on can
/// replay.
fn lay_out(
    fresh: &[(&PublishRequest, &str, Numbers)],
    recipients: &Recipients,
    engine: Option<&dyn Dispatcher>,
) -> Planned {
    let now = now_ms();
    let mut planned = Planned {
        answers: Vec::new(),
        events: Vec::new(),
        deliveries: Vec::new(),
        leased: Vec::new(),
        queued: false,
        fresh: Vec::new(),
    };
    for (req, group, (sequence, ordering_seq)) in fresh {
        let ev = Arc::new(event::Model {
            id: new_id(),
            tenant_type: req.tenant.kind,
            tenant_id: req.tenant.id.clone(),
            event_type: req.event_type.clone(),
            payload: req.payload.clone(),
            idempotency_key: req.idempotency_key.clone(),
            sequence: *sequence,
            received_at: now,
            payload_pruned_at: None,
            ordering_key: req.ordering_key.clone(),
        });
        for w in recipients.of(req, group) {
            let id = new_id();
            // An ordered delivery waits for the earlier ones of its key: always through the
            // claim, which checks that ([`crate::store::queue`]).
            let (ordering_key, ordering_seq) = match (&req.ordering_key, ordering_seq) {
                (Some(key), Some(seq)) if w.ordering => (Some(key.clone()), Some(*seq)),
                _ => (None, None),
            };
            let (status, next, leased_by) = if !w.enabled {
                (DeliveryStatus::Skipped, None, None)
            } else if let Some(until) = w.paused_until.filter(|&until| until > now) {
                // A paused webhook (a receiver's `Retry-After`, an open breaker) gets its
                // fresh deliveries when its pause ends, or an open breaker's when it closes:
                // queued out of the way of the claims meanwhile ([`parked_until`]). A pause
                // that ends early brings them back ([`crate::store::attempts`]).
                (DeliveryStatus::Pending, Some(parked_until(w.pause_reason, until)), None)
            } else if let Some(r) = engine.filter(|_| ordering_key.is_none()).and_then(|e| e.reserve(&w.id)) {
                planned.leased.push(Leased {
                    delivery_id: id.clone(),
                    event: planned.events.len(),
                    webhook: w.clone(),
                    secrets: recipients.secrets(w),
                    hold: r.hold,
                });
                (DeliveryStatus::Delivering, Some(r.lease_until), Some(r.leased_by))
            } else {
                planned.queued = true;
                (DeliveryStatus::Pending, Some(now), None)
            };
            planned.deliveries.push(delivery::Model {
                id,
                event_id: ev.id.clone(),
                webhook_id: w.id.clone(),
                tenant_type: ev.tenant_type,
                tenant_id: ev.tenant_id.clone(),
                event_type: ev.event_type.clone(),
                status,
                attempts: 0,
                manual_attempts: 0,
                next_attempt_at: next,
                leased_by,
                last_status_code: None,
                last_duration_ms: None,
                ordering_key,
                ordering_seq,
                created_at: now,
                updated_at: now,
            });
        }
        planned.events.push(ev);
    }
    planned
}

/// Whether two requests with one idempotency key are the same request.
fn same_request(a: &PublishRequest, b: &PublishRequest) -> bool {
    a.tenant == b.tenant
        && a.event_type == b.event_type
        && a.payload == b.payload
        && a.ordering_key == b.ordering_key
}

fn key_reused(key: &str) -> Error {
    Error::unprocessable(
        "Idempotency-Key",
        format!(
            "The Idempotency-Key {key:?} was used within the last 24 hours for a different request \
             (another tenant, event type or payload). Send the same request again to get its event, \
             or use a new key for a new event."
        ),
    )
}

fn distinct_tenants<'a>(tenants: impl Iterator<Item = &'a Tenant>) -> Vec<Tenant> {
    let mut out: Vec<Tenant> = Vec::new();
    for t in tenants {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

/// The counters a planned batch's events take their numbers from, one per (tenant,
/// resource) in a fixed order, and each event with its counter: in batch order, each takes
/// the next number.
fn counters_of<'a>(
    jobs: &'a [PublishJob],
    planned: &'a Planned,
) -> (Vec<store::events::Counter<'a>>, Vec<store::events::Numbered<'a>>) {
    let mut keys: Vec<(&Tenant, &str)> =
        planned.fresh.iter().map(|&j| (&jobs[j].req.tenant, jobs[j].resource.as_str())).collect();
    keys.sort_by(|(a, ra), (b, rb)| {
        (a.kind.as_str(), a.id.as_str(), *ra).cmp(&(b.kind.as_str(), b.id.as_str(), *rb))
    });
    keys.dedup();
    let mut counters: Vec<store::events::Counter> =
        keys.iter().map(|(tenant, resource)| store::events::Counter { tenant, resource, by: 0 }).collect();
    let mut of_event = Vec::with_capacity(planned.events.len());
    for &j in &planned.fresh {
        let key = (&jobs[j].req.tenant, jobs[j].resource.as_str());
        let c = keys.iter().position(|k| *k == key).unwrap_or_default();
        counters[c].by += 1;
        of_event.push(c);
    }
    // The counter's last number goes to its last event of the batch.
    let mut taken = vec![0i64; counters.len()];
    let numbered = planned
        .events
        .iter()
        .zip(of_event)
        .map(|(event, c)| {
            taken[c] += 1;
            store::events::Numbered { event, counter: c, back: counters[c].by - taken[c] }
        })
        .collect();
    (counters, numbered)
}

/// An event's numbers: its sequence (per tenant and resource, the `sequence` header) and, when
/// it carries an ordering key, its place in the tenant's ordering counter.
type Numbers = (i64, Option<i64>);

/// Numbers for each item, one counter per (tenant, resource) however many items share it: the
/// counter moves by their number and they take the numbers in order. Items with an ordering
/// key also take a number of their tenant's ordering counter. Every counter moves in one
/// statement, in one fixed order, so two writers holding several never wait on each other;
/// it also answers the tenants' recipients' versions.
async fn next_sequences(
    txn: &impl ConnectionTrait,
    items: &[(&PublishRequest, &str)],
) -> Result<(Vec<Numbers>, HashMap<Tenant, i64>)> {
    let groups = counter_groups(items);
    let moved = store::events::advance_counters(txn, &counters(&groups)).await?;
    Ok((numbers(groups, items.len(), moved.values), moved.versions))
}

/// A counter, (tenant, resource, ordering counter?), with the items that take its numbers.
type CounterGroup<'a> = ((&'a Tenant, &'a str, bool), Vec<usize>);

/// The counters `items` move, in their one fixed order (by tenant, then resource).
fn counter_groups<'a>(items: &[(&'a PublishRequest, &'a str)]) -> Vec<CounterGroup<'a>> {
    let mut groups: Vec<CounterGroup> = Vec::new();
    for (i, (req, resource)) in items.iter().enumerate() {
        let ordering = req.ordering_key.is_some().then_some((&req.tenant, ORDERING_COUNTER, true));
        for counter in std::iter::once((&req.tenant, *resource, false)).chain(ordering) {
            match groups.iter_mut().find(|(c, _)| *c == counter) {
                Some((_, members)) => members.push(i),
                None => groups.push((counter, vec![i])),
            }
        }
    }
    groups.sort_by(|((a, ra, _), _), ((b, rb, _), _)| {
        (a.kind.as_str(), a.id.as_str(), *ra).cmp(&(b.kind.as_str(), b.id.as_str(), *rb))
    });
    groups
}

fn counters<'a>(groups: &[CounterGroup<'a>]) -> Vec<store::events::Counter<'a>> {
    groups
        .iter()
        .map(|((tenant, resource, _), members)| store::events::Counter {
            tenant,
            resource,
            by: members.len() as i64,
        })
        .collect()
}

/// Each of `items` items' numbers, from its counters' new values (in the groups' order).
fn numbers(groups: Vec<CounterGroup>, items: usize, values: Vec<i64>) -> Vec<Numbers> {
    let mut out: Vec<Numbers> = vec![(0, None); items];
    for (((_, _, ordering), members), last) in groups.into_iter().zip(values) {
        let first = last - members.len() as i64 + 1;
        for (k, i) in members.into_iter().enumerate() {
            let n = first + k as i64;
            if ordering {
                out[i].1 = Some(n);
            } else {
                out[i].0 = n;
            }
        }
    }
    out
}

/// A row of the counters' statement as SQLite's writer answers it, by position: tenant type
/// and id, resource, the counter's new value, the recipients' version (none when the tenant
/// has no row).
fn moved_row(row: &store::Row) -> Result<store::events::MovedRow> {
    use rusqlite::types::Value;
    let unexpected =
        |i: usize| Error::Db(DbErr::Type(format!("column {i} of a counter's row: {:?}", row.get(i))));
    let text = |i: usize| match row.get(i) {
        Some(Value::Text(t)) => Ok(t.clone()),
        _ => Err(unexpected(i)),
    };
    let value = match row.get(3) {
        Some(Value::Integer(v)) => *v,
        _ => return Err(unexpected(3)),
    };
    let version = match row.get(4) {
        Some(Value::Integer(v)) => Some(*v),
        Some(Value::Null) => None,
        _ => return Err(unexpected(4)),
    };
    Ok((text(0)?, text(1)?, text(2)?, value, version))
}

/// The next number of the tenant's counter for this resource.
pub(crate) async fn next_sequence(txn: &DatabaseTransaction, tenant: &Tenant, resource: &str) -> Result<i64> {
    let moved =
        store::events::advance_counters(txn, &[store::events::Counter { tenant, resource, by: 1 }]).await?;
    Ok(moved.values[0])
}

impl Services {
    /// An event with its deliveries, seen as every other record is: the tenant's own keys see
    /// all of it; an application installed on a store sees a store's event through the
    /// webhooks it made there, with only their deliveries. What the scope cannot see is not
    /// found.
    pub async fn event_detail(
        &self,
        scope: &Scope,
        event_id: &str,
    ) -> Result<(event::Model, Vec<delivery::Model>)> {
        use sea_orm::QueryOrder;
        let found =
            event::Entity::find_by_id(event_id).one(&self.db).await?.ok_or(Error::NotFound("event"))?;
        let tenant = Tenant { kind: found.tenant_type, id: found.tenant_id.clone() };
        let mut deliveries = delivery::Entity::find()
            .filter(delivery::Column::EventId.eq(&found.id))
            .order_by_asc(delivery::Column::Id)
            .all(&self.db)
            .await?;
        if !scope.allows(&tenant) {
            let Scope::Application(app) = scope else {
                return Err(Error::NotFound("event"));
            };
            if !self.sees(scope, &tenant, Some(app)).await? {
                return Err(Error::NotFound("event"));
            }
            let own: std::collections::HashSet<String> = webhook::Entity::find()
                .filter(webhook::Column::Id.is_in(deliveries.iter().map(|d| d.webhook_id.clone())))
                .filter(webhook::Column::ApplicationId.eq(app.as_str()))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|w| w.id)
                .collect();
            deliveries.retain(|d| own.contains(&d.webhook_id));
            if deliveries.is_empty() {
                return Err(Error::NotFound("event"));
            }
        }
        Ok((found, deliveries))
    }
}
