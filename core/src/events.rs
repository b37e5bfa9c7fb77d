//! Publishing an event: checked, stored with its sequence number, and fanned out to one
//! delivery per matching webhook, all in one transaction, so an accepted event is never lost
//! and a rejected one leaves nothing behind.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    Statement, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::entities::{delivery, event, webhook};
use crate::error::{Error, Result};
use crate::scope::Scope;
use crate::tenants::Tenant;
use crate::{Services, new_id, now_ms};

/// How long an `Idempotency-Key` stays bound to the event it first published.
const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;
const MAX_IDEMPOTENCY_KEY: usize = 255;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivering,
    Succeeded,
    Failed,
    Skipped,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivering => "delivering",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Skipped => "skipped",
        }
    }
}

pub struct PublishRequest {
    pub tenant: Tenant,
    pub event_type: String,
    /// The payload exactly as the producer sent it: receivers get these bytes.
    pub payload: String,
    pub idempotency_key: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Published {
    pub event_id: String,
    /// True when the idempotency key matched an earlier event, which is returned instead.
    pub deduplicated: bool,
}

/// A checked publish request waiting for the writer, with where to send its answer.
pub(crate) struct PublishJob {
    req: PublishRequest,
    resource: String,
    reply: oneshot::Sender<Result<Published>>,
}

/// Most publish requests one transaction writes.
const PUBLISH_BATCH: usize = 512;

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
        let (reply, answer) = oneshot::channel();
        let job = PublishJob { req, resource: kind.resource.clone(), reply };
        self.publisher()
            .send(job)
            .map_err(|_| Error::Db(DbErr::Custom("the event writer stopped".into())))?;
        answer.await.map_err(|_| Error::Db(DbErr::Custom("the event writer stopped".into())))?
    }

    /// The writer's queue, started on first use.
    fn publisher(&self) -> &mpsc::UnboundedSender<PublishJob> {
        self.publisher.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(self.clone().write_events(rx));
            tx
        })
    }

    /// The writer: takes every request waiting and writes them in one transaction. If that
    /// fails, each is written alone, so one request's failure (a racing idempotency key, say)
    /// is not the others'.
    async fn write_events(self, mut rx: mpsc::UnboundedReceiver<PublishJob>) {
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        while rx.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
            let written = self.write_batch(&batch).await;
            match written {
                Ok(answers) => {
                    self.wake_workers();
                    for (job, answer) in batch.drain(..).zip(answers) {
                        let _ = job.reply.send(Ok(answer));
                    }
                }
                Err(e) if batch.len() == 1 => {
                    let job = batch.pop().expect("one job");
                    let _ = job.reply.send(Err(e));
                }
                Err(_) => {
                    for job in batch.drain(..) {
                        let answer =
                            self.write_batch(std::slice::from_ref(&job)).await.map(|mut a| a.remove(0));
                        if answer.is_ok() {
                            self.wake_workers();
                        }
                        let _ = job.reply.send(answer);
                    }
                }
            }
        }
    }

    async fn write_batch(&self, jobs: &[PublishJob]) -> Result<Vec<Published>> {
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await?;
        // Sequence numbers first: the first statement writes, so on SQLite the transaction
        // holds the write lock from its start and the reads below see the latest data. A
        // request answered by its idempotency key leaves a gap in the numbers.
        let items: Vec<(&PublishRequest, &str)> =
            jobs.iter().map(|j| (&j.req, j.resource.as_str())).collect();
        let sequences = next_sequences(&txn, &items).await?;
        let mut answers: Vec<Option<Published>> = vec![None; jobs.len()];
        let mut seen_keys: HashMap<(&Tenant, &str), String> = HashMap::new();
        for (i, job) in jobs.iter().enumerate() {
            let Some(key) = &job.req.idempotency_key else { continue };
            if let Some(id) = seen_keys.get(&(&job.req.tenant, key.as_str())) {
                answers[i] = Some(Published { event_id: id.clone(), deduplicated: true });
            } else if let Some(earlier) = self.event_by_idempotency_key(&txn, &job.req.tenant, key).await? {
                answers[i] = Some(Published { event_id: earlier, deduplicated: true });
            } else {
                seen_keys.insert((&job.req.tenant, key.as_str()), String::new());
            }
        }
        let fresh: Vec<(usize, i64)> =
            (0..jobs.len()).filter(|i| answers[*i].is_none()).map(|i| (i, sequences[i])).collect();
        let requests: Vec<&PublishRequest> = jobs.iter().map(|j| &j.req).collect();
        let ids = insert_events(&txn, &requests, &fresh).await?;
        for ((i, _), id) in fresh.iter().zip(ids) {
            if let Some(key) = &jobs[*i].req.idempotency_key {
                seen_keys.insert((&jobs[*i].req.tenant, key.as_str()), id.clone());
            }
            answers[*i] = Some(Published { event_id: id, deduplicated: false });
        }
        // Requests that repeated a key first seen in this same batch.
        for (i, job) in jobs.iter().enumerate() {
            if let (Some(a), Some(key)) = (&mut answers[i], &job.req.idempotency_key)
                && a.deduplicated
                && a.event_id.is_empty()
            {
                a.event_id = seen_keys.get(&(&job.req.tenant, key.as_str())).cloned().unwrap_or_default();
            }
        }
        txn.commit().await?;
        Ok(answers.into_iter().map(|a| a.expect("every request answered")).collect())
    }

    /// The idempotency key's event, if the key is still bound; a key older than the window is
    /// released.
    async fn event_by_idempotency_key(
        &self,
        txn: &DatabaseTransaction,
        tenant: &Tenant,
        key: &str,
    ) -> Result<Option<String>> {
        let found = event::Entity::find()
            .filter(event::Column::TenantType.eq(tenant.kind.as_str()))
            .filter(event::Column::TenantId.eq(&tenant.id))
            .filter(event::Column::IdempotencyKey.eq(key))
            .one(txn)
            .await?;
        match found {
            Some(e) if now_ms() - e.received_at < IDEMPOTENCY_WINDOW_MS => Ok(Some(e.id)),
            Some(e) => {
                event::Entity::update_many()
                    .col_expr(
                        event::Column::IdempotencyKey,
                        sea_orm::sea_query::Expr::value(Option::<String>::None),
                    )
                    .filter(event::Column::Id.eq(e.id))
                    .exec(txn)
                    .await?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Stores one event inside the caller's transaction (for events Hookline publishes itself
    /// as part of another change, such as an application's disconnection).
    pub(crate) async fn insert_event(
        &self,
        txn: &DatabaseTransaction,
        req: &PublishRequest,
        resource: &str,
    ) -> Result<String> {
        let sequence = next_sequences(txn, &[(req, resource)]).await?[0];
        Ok(insert_events(txn, &[req], &[(0, sequence)]).await?.remove(0))
    }
}

/// Writes the events `fresh` names (index into `requests`, sequence number) and one delivery
/// per matching webhook of each; returns the new events' ids in the same order.
async fn insert_events(
    txn: &DatabaseTransaction,
    requests: &[&PublishRequest],
    fresh: &[(usize, i64)],
) -> Result<Vec<String>> {
    let now = now_ms();
    let ids: Vec<String> = fresh.iter().map(|_| new_id()).collect();
    let events: Vec<event::ActiveModel> = fresh
        .iter()
        .zip(&ids)
        .map(|((i, sequence), id)| {
            let req = requests[*i];
            event::ActiveModel {
                id: Set(id.clone()),
                tenant_type: Set(req.tenant.kind.as_str().to_string()),
                tenant_id: Set(req.tenant.id.clone()),
                event_type: Set(req.event_type.clone()),
                payload: Set(req.payload.clone()),
                idempotency_key: Set(req.idempotency_key.clone()),
                sequence: Set(*sequence),
                received_at: Set(now),
            }
        })
        .collect();
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let chunk: Vec<_> =
            events.by_ref().take(crate::rows_per_statement(txn.get_database_backend())).collect();
        event::Entity::insert_many(chunk).exec_without_returning(txn).await?;
    }

    // The webhooks of every tenant in the batch, read once per tenant.
    let mut webhooks: HashMap<&Tenant, Vec<webhook::Model>> = HashMap::new();
    for (i, _) in fresh {
        let tenant = &requests[*i].tenant;
        if !webhooks.contains_key(tenant) {
            let found = webhook::Entity::find()
                .filter(webhook::Column::TenantType.eq(tenant.kind.as_str()))
                .filter(webhook::Column::TenantId.eq(&tenant.id))
                .all(txn)
                .await?;
            webhooks.insert(tenant, found);
        }
    }
    let mut deliveries = Vec::new();
    for ((i, _), event_id) in fresh.iter().zip(&ids) {
        let req = requests[*i];
        for w in webhooks[&req.tenant].iter().filter(|w| w.subscribes_to(&req.event_type)) {
            // A webhook that is off still gets a record, so turning it back on can replay.
            let (status, next) = if w.enabled {
                (DeliveryStatus::Pending, Some(now))
            } else {
                (DeliveryStatus::Skipped, None)
            };
            deliveries.push(delivery::ActiveModel {
                id: Set(new_id()),
                event_id: Set(event_id.clone()),
                webhook_id: Set(w.id.clone()),
                tenant_type: Set(req.tenant.kind.as_str().to_string()),
                tenant_id: Set(req.tenant.id.clone()),
                event_type: Set(req.event_type.clone()),
                status: Set(status.as_str().to_string()),
                attempts: Set(0),
                next_attempt_at: Set(next),
                leased_by: Set(None),
                last_status_code: Set(None),
                last_duration_ms: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            });
        }
    }
    let mut deliveries = deliveries.into_iter().peekable();
    while deliveries.peek().is_some() {
        let chunk: Vec<_> =
            deliveries.by_ref().take(crate::rows_per_statement(txn.get_database_backend())).collect();
        delivery::Entity::insert_many(chunk).exec_without_returning(txn).await?;
    }
    Ok(ids)
}

/// Sequence numbers for each item, one upsert per (tenant, resource) however many items share
/// it: the counter moves by their number and they take the numbers in order.
async fn next_sequences(txn: &DatabaseTransaction, items: &[(&PublishRequest, &str)]) -> Result<Vec<i64>> {
    let mut groups: Vec<((&Tenant, &str), Vec<usize>)> = Vec::new();
    for (i, (req, resource)) in items.iter().enumerate() {
        match groups.iter_mut().find(|((t, r), _)| *t == &req.tenant && r == resource) {
            Some((_, members)) => members.push(i),
            None => groups.push(((&req.tenant, resource), vec![i])),
        }
    }
    let mut out = vec![0; items.len()];
    for ((tenant, resource), members) in groups {
        let last = advance_sequence(txn, tenant, resource, members.len() as i64).await?;
        let first = last - members.len() as i64 + 1;
        for (k, i) in members.into_iter().enumerate() {
            out[i] = first + k as i64;
        }
    }
    Ok(out)
}

/// Moves the tenant's counter for this resource by `by` and returns its new value: strictly
/// increasing, because the row is locked by the upsert until the transaction ends.
async fn advance_sequence(
    txn: &DatabaseTransaction,
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
