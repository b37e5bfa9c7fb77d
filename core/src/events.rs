//! Publishing an event: checked, stored with its sequence number, and fanned out to one
//! delivery per matching webhook, all in one transaction, so an accepted event is never lost
//! and a rejected one leaves nothing behind.

use std::collections::HashMap;
use std::sync::Arc;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, Statement, TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};

use crate::dispatch::{Dispatcher, Handoff};
use crate::entities::{delivery, event, installation, webhook};
use crate::error::{Error, Result};
use crate::{Services, new_id, now_ms};
use hookline_domain::conditions::Conditions;
use hookline_domain::{DeliveryStatus, EventFilter, Scope, Tenant, TenantType};

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
const OPERATIONAL_GROUP: &str = "Webhooks";

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
        if kind.tenant_type != "any" && kind.tenant_type != req.tenant.kind.as_str() {
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
    async fn write_events(self, rx: Arc<tokio::sync::Mutex<mpsc::Receiver<PublishJob>>>) {
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        loop {
            let mut rx = rx.lock().await;
            if rx.recv_many(&mut batch, PUBLISH_BATCH).await == 0 {
                return;
            }
            // Let the requests being read right now join this batch, and those that arrive
            // while the write turn is busy: under load, bigger batches; when idle, no wait.
            tokio::task::yield_now().await;
            let turn = self.write_turn().await;
            while batch.len() < PUBLISH_BATCH
                && let Ok(job) = rx.try_recv()
            {
                batch.push(job);
            }
            drop(rx);
            match self.write_batch(&batch).await {
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
                        let answer =
                            self.write_batch(std::slice::from_ref(&job)).await.and_then(|mut a| a.remove(0));
                        let _ = job.reply.send(answer);
                    }
                    drop(turn);
                }
            }
        }
    }

    /// Writes one batch; the caller holds the write turn.
    async fn write_batch(&self, jobs: &[PublishJob]) -> Result<Vec<Result<Published>>> {
        let items: Vec<(&PublishRequest, &str)> =
            jobs.iter().map(|j| (&j.req, j.resource.as_str())).collect();
        let tenants = distinct_tenants(jobs.iter().map(|j| &j.req.tenant));
        let planned = match self.db.get_database_backend() {
            DatabaseBackend::Sqlite => {
                // One transaction. The sequence numbers are its first statement, a write, so
                // it holds the write lock from its start and the reads after it see the
                // latest data.
                let txn = self.db.begin().await?;
                let sequences = next_sequences(&txn, &items).await?;
                let webhooks = recipients(&txn, &tenants).await?;
                let planned = self.plan(&txn, jobs, &sequences, &webhooks).await?;
                write_rows(&txn, &planned.events, &planned.deliveries).await?;
                txn.commit().await?;
                planned
            }
            _ if jobs.iter().any(|j| j.req.ordering_key.is_some()) => {
                // Events with an ordering key: the counters' rows stay locked until the rows
                // are committed, so the tenant's ordered events commit in their numbers'
                // order and a claim never sees a later one of a key without the earlier.
                let txn = self.db.begin().await?;
                let sequences = next_sequences(&txn, &items).await?;
                let webhooks = recipients(&txn, &tenants).await?;
                let planned = self.plan(&txn, jobs, &sequences, &webhooks).await?;
                write_rows(&txn, &planned.events, &planned.deliveries).await?;
                txn.commit().await?;
                planned
            }
            _ => {
                // The counters and the webhooks are read at once, on two connections; then
                // one statement writes the events and their deliveries, atomic by itself.
                // The counter's row is locked for one statement only. A request published
                // after another was answered still gets the higher number.
                let (sequences, webhooks) =
                    tokio::try_join!(next_sequences(&self.db, &items), recipients(&self.db, &tenants))?;
                let planned = self.plan(&self.db, jobs, &sequences, &webhooks).await?;
                write_rows_postgres(&self.db, &planned.events, &planned.deliveries).await?;
                planned
            }
        };
        // Only now, after the commit, may the engine send what was handed to it.
        if !planned.handoffs.is_empty()
            && let Some(engine) = self.engine()
        {
            engine.start(planned.handoffs);
        }
        if planned.queued {
            self.wake_workers();
        }
        self.events_published();
        Ok(planned.answers)
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
        let sequence = next_sequences(txn, &[(req, kind.resource.as_str())]).await?[0];
        let webhooks = recipients(txn, std::slice::from_ref(&req.tenant)).await?;
        let planned = lay_out(&[(req, kind.product_group.as_str(), sequence)], &webhooks, None);
        write_rows(txn, &planned.events, &planned.deliveries).await?;
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
    handoffs: Vec<Handoff>,
    /// Whether any delivery was queued for the workers to claim.
    queued: bool,
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
        handoffs: Vec::new(),
        queued: false,
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
            } else if let Some(r) = engine.filter(|_| ordering_key.is_none()).and_then(|e| e.reserve(&w.id)) {
                planned.handoffs.push(Handoff {
                    delivery_id: id.clone(),
                    event: ev.clone(),
                    webhook: w.clone(),
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

/// A webhook with what an event is matched against: its event filter and payload conditions.
type Recipient = (Arc<webhook::Model>, EventFilter, Option<Conditions>);

/// The webhooks of a batch's tenants, and the product lines of the applications installed on
/// its stores: who may receive each event.
#[derive(Default)]
struct Recipients {
    /// Each with its event filter and payload conditions, read once for the whole batch.
    webhooks: HashMap<Tenant, Vec<Recipient>>,
    /// (application, store) to the product lines it is installed for.
    lines: HashMap<(String, String), Vec<String>>,
}

impl Recipients {
    /// The webhooks that receive the event: subscribed to its type, in its audience, for a
    /// store-level webhook an application made, installed for the type's product line, and
    /// whose payload conditions it meets. The payload is parsed at most once per event, and
    /// only when a webhook it would otherwise reach has conditions; one that does not meet
    /// them gets no delivery at all (the explain view says which condition kept it out).
    fn of<'a>(
        &'a self,
        req: &'a PublishRequest,
        group: &'a str,
    ) -> impl Iterator<Item = &'a Arc<webhook::Model>> + 'a {
        let payload = std::cell::OnceCell::new();
        self.webhooks
            .get(&req.tenant)
            .into_iter()
            .flatten()
            .filter(move |(w, filter, conditions)| {
                filter.matches(&req.event_type)
                    && self.may_receive(w, req, group)
                    && conditions.as_ref().is_none_or(|c| {
                        // Accepted payloads are JSON; were one not, nothing it holds matches.
                        payload
                            .get_or_init(|| serde_json::from_str::<serde_json::Value>(&req.payload).ok())
                            .as_ref()
                            .is_some_and(|p| c.matches(p))
                    })
            })
            .map(|(w, _, _)| w)
    }

    fn may_receive(&self, w: &webhook::Model, req: &PublishRequest, group: &str) -> bool {
        if let Audience::MadeBy(maker) = &req.audience
            && w.application_id != *maker
        {
            return false;
        }
        match (&w.application_id, req.tenant.kind) {
            (Some(app), TenantType::Store) if group != OPERATIONAL_GROUP => self
                .lines
                .get(&(app.clone(), req.tenant.id.clone()))
                .is_some_and(|lines| lines.iter().any(|l| l.eq_ignore_ascii_case(group))),
            _ => true,
        }
    }
}

/// The webhooks of each tenant in one query, and in a second one, only when applications
/// made some of them, those applications' installations.
async fn recipients(conn: &impl ConnectionTrait, tenants: &[Tenant]) -> Result<Recipients> {
    let mut any = sea_orm::Condition::any();
    for t in tenants {
        any = any.add(
            sea_orm::Condition::all()
                .add(webhook::Column::TenantType.eq(t.kind.as_str()))
                .add(webhook::Column::TenantId.eq(&t.id)),
        );
    }
    let mut out = Recipients::default();
    if tenants.is_empty() {
        return Ok(out);
    }
    let mut installed: Vec<(String, String)> = Vec::new();
    for w in webhook::Entity::find().filter(any).all(conn).await? {
        if let (Some(app), TenantType::Store) = (&w.application_id, w.tenant_type) {
            let key = (app.clone(), w.tenant_id.clone());
            if !installed.contains(&key) {
                installed.push(key);
            }
        }
        let filter = w.subscription();
        let conditions = Conditions::from_stored(w.conditions.as_deref());
        out.webhooks.entry(w.tenant()).or_default().push((Arc::new(w), filter, conditions));
    }
    if !installed.is_empty() {
        let mut pairs = sea_orm::Condition::any();
        for (app, store) in &installed {
            pairs = pairs.add(
                sea_orm::Condition::all()
                    .add(installation::Column::ApplicationId.eq(app))
                    .add(installation::Column::StoreId.eq(store)),
            );
        }
        for i in installation::Entity::find().filter(pairs).all(conn).await? {
            let lines: Vec<String> = serde_json::from_str(&i.product_lines).unwrap_or_default();
            out.lines.insert((i.application_id, i.store_id), lines);
        }
    }
    Ok(out)
}

/// Writes the rows with multi-row statements, inside the caller's transaction.
async fn write_rows(
    txn: &DatabaseTransaction,
    events: &[Arc<event::Model>],
    deliveries: &[delivery::Model],
) -> Result<()> {
    let rows = crate::rows_per_statement(txn.get_database_backend());
    for chunk in events.chunks(rows) {
        let models = chunk.iter().map(|e| event::ActiveModel::from(e.as_ref().clone()));
        event::Entity::insert_many(models).exec_without_returning(txn).await?;
    }
    for chunk in deliveries.chunks(rows) {
        let models = chunk.iter().map(|d| delivery::ActiveModel::from(d.clone()));
        delivery::Entity::insert_many(models).exec_without_returning(txn).await?;
    }
    Ok(())
}

/// Most parameters one PostgreSQL statement may have is 65,535; this leaves room.
const POSTGRES_MAX_PARAMS: usize = 60_000;

/// On PostgreSQL, the events and their deliveries in one statement (one round trip, atomic
/// without a transaction); a batch too big for one statement gets a transaction.
async fn write_rows_postgres(
    db: &DatabaseConnection,
    events: &[Arc<event::Model>],
    deliveries: &[delivery::Model],
) -> Result<()> {
    const EVENT_COLS: usize = 9;
    const DELIVERY_COLS: usize = 14;
    if events.is_empty() {
        return Ok(());
    }
    if events.len() * EVENT_COLS + deliveries.len() * DELIVERY_COLS > POSTGRES_MAX_PARAMS {
        let txn = db.begin().await?;
        write_rows(&txn, events, deliveries).await?;
        txn.commit().await?;
        return Ok(());
    }
    let mut values: Vec<sea_orm::Value> =
        Vec::with_capacity(events.len() * EVENT_COLS + deliveries.len() * DELIVERY_COLS);
    for e in events {
        values.extend([
            e.id.clone().into(),
            e.tenant_type.into(),
            e.tenant_id.clone().into(),
            e.event_type.clone().into(),
            e.payload.clone().into(),
            e.idempotency_key.clone().into(),
            e.sequence.into(),
            e.received_at.into(),
            e.ordering_key.clone().into(),
        ]);
    }
    let mut sql = format!(
        "INSERT INTO events (id, tenant_type, tenant_id, event_type, payload, idempotency_key, sequence, \
         received_at, ordering_key) VALUES {}",
        crate::store::placeholders(events.len(), EVENT_COLS, 0)
    );
    if !deliveries.is_empty() {
        let offset = values.len();
        for d in deliveries {
            values.extend([
                d.id.clone().into(),
                d.event_id.clone().into(),
                d.webhook_id.clone().into(),
                d.tenant_type.into(),
                d.tenant_id.clone().into(),
                d.event_type.clone().into(),
                d.status.into(),
                d.attempts.into(),
                d.next_attempt_at.into(),
                d.leased_by.clone().into(),
                d.created_at.into(),
                d.updated_at.into(),
                d.ordering_key.clone().into(),
                d.ordering_seq.into(),
            ]);
        }
        sql = format!(
            "WITH new_events AS ({sql}) INSERT INTO deliveries (id, event_id, webhook_id, tenant_type, \
             tenant_id, event_type, status, attempts, next_attempt_at, leased_by, created_at, updated_at, \
             ordering_key, ordering_seq) VALUES {}",
            crate::store::placeholders(deliveries.len(), DELIVERY_COLS, offset)
        );
    }
    db.execute_raw(Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)).await?;
    Ok(())
}

/// An event's numbers: its sequence (per tenant and resource, the `sequence` header) and, when
/// it carries an ordering key, its place in the tenant's ordering counter.
type Numbers = (i64, Option<i64>);

/// Numbers for each item, one upsert per (tenant, resource) however many items share it: the
/// counter moves by their number and they take the numbers in order. Items with an ordering
/// key also take a number of their tenant's ordering counter. The counters are moved in one
/// fixed order, so two transactions holding several of them never wait on each other.
async fn next_sequences(
    txn: &impl ConnectionTrait,
    items: &[(&PublishRequest, &str)],
) -> Result<Vec<Numbers>> {
    // (tenant, resource, ordering counter?) and the items that take its numbers.
    type Counter<'a> = (&'a Tenant, &'a str, bool);
    let mut groups: Vec<(Counter, Vec<usize>)> = Vec::new();
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
    let mut out: Vec<Numbers> = vec![(0, None); items.len()];
    for ((tenant, resource, ordering), members) in groups {
        let last = advance_sequence(txn, tenant, resource, members.len() as i64).await?;
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
    Ok(out)
}

/// Moves the tenant's counter for this resource by `by` and returns its new value: strictly
/// increasing, because the upsert locks the row until its statement (or transaction) ends.
async fn advance_sequence(
    txn: &impl ConnectionTrait,
    tenant: &Tenant,
    resource: &str,
    by: i64,
) -> Result<i64> {
    let backend = txn.get_database_backend();
    let stmt = Statement::from_sql_and_values(
        backend,
        "INSERT INTO sequences (tenant_type, tenant_id, resource, value) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_type, tenant_id, resource) DO UPDATE SET value = sequences.value + $4 \
         RETURNING value",
        [tenant.kind.as_str().into(), tenant.id.clone().into(), resource.into(), by.into()],
    );
    let row = txn.query_one_raw(stmt).await?.ok_or(Error::NotFound("sequence"))?;
    Ok(row.try_get::<i64>("", "value")?)
}

/// The next number of the tenant's counter for this resource.
pub(crate) async fn next_sequence(txn: &DatabaseTransaction, tenant: &Tenant, resource: &str) -> Result<i64> {
    advance_sequence(txn, tenant, resource, 1).await
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
