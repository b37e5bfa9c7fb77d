//! The delivery workers. Reading top to bottom: claim what is due, prepare the request, send
//! it, record the attempt, then either settle the delivery or schedule its retry, and keep the
//! webhook's health (turning it off after too many failures or on 410 Gone).
//!
//! Claims are leases: a claimed delivery's `next_attempt_at` becomes the lease's end, so a
//! delivery whose worker died is simply due again when the lease runs out. On PostgreSQL the
//! claim uses `FOR UPDATE SKIP LOCKED`, so several processes share one queue; SQLite
//! serialises writers, which gives the same guarantee within its single host.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hookline_core::entities::{delivery, event, webhook};
use hookline_core::{
    AttemptResult, AttemptTrigger, BoxFuture, DeliveryStatus, Dispatcher, PublishRequest, Scope, Services,
    iso8601, now_ms,
};
use sea_orm::{ConnectionTrait, DatabaseBackend, EntityTrait, Statement, TransactionTrait};
use tokio::sync::Semaphore;

use super::client::{Outcome, WebhookClient};
use super::retry::RetryPolicy;
use super::signature::signature_header;
use crate::ops::Metrics;

/// Most deliveries one claim takes.
const CLAIM_BATCH: usize = 64;
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
    metrics: Arc<Metrics>,
    worker_id: String,
    permits: Arc<Semaphore>,
    in_flight: Arc<InFlight>,
}

/// Deliveries in flight in this process, per webhook: what keeps one slow or dead endpoint
/// from taking every slot. A webhook at its limit is left out of the next claims.
#[derive(Default)]
struct InFlight(std::sync::Mutex<HashMap<String, usize>>);

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn full(&self, limit: usize) -> Vec<String> {
        self.lock().iter().filter(|(_, n)| **n >= limit).map(|(id, _)| id.clone()).collect()
    }

    /// Takes a slot for the webhook, if it has one left.
    fn try_take(&self, webhook: &str, limit: usize) -> bool {
        let mut map = self.lock();
        let n = map.entry(webhook.to_string()).or_insert(0);
        if *n >= limit {
            return false;
        }
        *n += 1;
        true
    }

    /// Gives the slot back; true when the webhook was full until now.
    fn release(&self, webhook: &str, limit: usize) -> bool {
        let mut map = self.lock();
        let Some(n) = map.get_mut(webhook) else { return false };
        let was_full = *n >= limit;
        *n -= 1;
        if *n == 0 {
            map.remove(webhook);
        }
        was_full
    }
}

struct Claim {
    id: String,
    event_id: String,
    webhook_id: String,
    attempts: i32,
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
    pub fn new(services: Services, client: WebhookClient, cfg: EngineConfig, metrics: Arc<Metrics>) -> Self {
        let permits = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
        Engine {
            services,
            client,
            cfg: Arc::new(cfg),
            metrics,
            worker_id: uuid::Uuid::new_v4().to_string(),
            permits,
            in_flight: Arc::new(InFlight::default()),
        }
    }

    /// Delivers until `shutdown` resolves. Deliveries in flight then are left to their lease.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let new_work = self.services.new_work();
        loop {
            // Register for the wake-up before looking, so a publish in between is not missed.
            let notified = new_work.notified();
            let claimed = match self.claim_and_start().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "claiming deliveries failed");
                    0
                }
            };
            if claimed == CLAIM_BATCH {
                continue;
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = notified => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
    }

    /// Claims what is due and starts sending it, as far as free capacity allows.
    async fn claim_and_start(&self) -> Result<usize, sea_orm::DbErr> {
        // Wait for capacity before claiming: a claimed delivery must not sit in memory.
        let first =
            self.permits.clone().acquire_owned().await.map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
        let room = (self.permits.available_permits() + 1).min(CLAIM_BATCH);
        let limit = self.cfg.per_webhook.max(1);
        let claims = self.claim(room, &self.in_flight.full(limit)).await?;
        let n = claims.len();
        let mut first = Some(first);
        let mut overflow = Vec::new();
        for claim in claims {
            if !self.in_flight.try_take(&claim.webhook_id, limit) {
                overflow.push(claim.id);
                continue;
            }
            let permit = match first.take() {
                Some(p) => p,
                None => match self.permits.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let engine = self.clone();
            tokio::spawn(async move {
                let webhook_id = claim.webhook_id.clone();
                engine.deliver(claim).await;
                drop(permit);
                if engine.in_flight.release(&webhook_id, limit) {
                    // The webhook has room again: look for its due deliveries now.
                    engine.services.new_work().notify_one();
                }
            });
        }
        self.unclaim(&overflow).await?;
        Ok(n - overflow.len())
    }

    /// Gives claims back to the queue, due at once.
    async fn unclaim(&self, ids: &[String]) -> Result<(), sea_orm::DbErr> {
        if ids.is_empty() {
            return Ok(());
        }
        let db = &self.services.db;
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

    /// Leases up to `limit` due deliveries, oldest due first, leaving out the webhooks that
    /// are full in this process.
    async fn claim(&self, limit: usize, full: &[String]) -> Result<Vec<Claim>, sea_orm::DbErr> {
        let db = &self.services.db;
        let backend = db.get_database_backend();
        let now = now_ms();
        // Long enough for the attempt and the writes after it; short enough that a crashed
        // process's claims come due again soon.
        let lease_end = now + (self.cfg.timeout * 2 + Duration::from_secs(5)).as_millis() as i64;
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
             RETURNING id, event_id, webhook_id, attempts"
        );
        let mut values: Vec<sea_orm::Value> =
            vec![self.worker_id.clone().into(), lease_end.into(), now.into(), (limit as i64).into()];
        values.extend(full.iter().map(|id| id.clone().into()));
        let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
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

    async fn deliver(&self, claim: Claim) {
        if let Err(e) = self.try_deliver(&claim).await {
            // The lease will run out and the delivery will be claimed again: nothing is lost.
            tracing::error!(delivery = %claim.id, error = %e, "delivery could not be processed");
        }
    }

    async fn try_deliver(&self, claim: &Claim) -> Result<(), sea_orm::DbErr> {
        let db = &self.services.db;
        let hook = webhook::Entity::find_by_id(&claim.webhook_id).one(db).await?;
        let ev = event::Entity::find_by_id(&claim.event_id).one(db).await?;
        let (Some(hook), Some(ev)) = (hook, ev) else {
            return self.settle_without_attempt(claim, DeliveryStatus::Skipped).await;
        };
        if !hook.enabled {
            return self.settle_without_attempt(claim, DeliveryStatus::Skipped).await;
        }
        let (headers, outcome) = self.send(claim, &hook, &ev).await?;
        let settle = self.scheduled_settle(claim, &outcome);
        self.record(claim, &hook, &headers, &outcome, AttemptTrigger::Scheduled, settle).await
    }

    /// Signs and sends the event to the webhook.
    async fn send(
        &self,
        claim: &Claim,
        hook: &webhook::Model,
        ev: &event::Model,
    ) -> Result<(Vec<(String, String)>, Outcome), sea_orm::DbErr> {
        let secrets = self.services.signing_secrets(&hook.id).await.map_err(db_err)?;
        let headers = self.request_headers(claim, ev, &secrets);
        let outcome = self.client.post(&hook.url, &headers, ev.payload.clone().into_bytes()).await;
        self.metrics.record_attempt(outcome.succeeded(), outcome.duration);
        Ok((headers, outcome))
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
        let (headers, outcome) = self.send(&claim, &hook, &ev).await?;
        let settle = match (trigger, outcome.succeeded()) {
            (AttemptTrigger::Test, true) => Settle::To(DeliveryStatus::Succeeded, None),
            (AttemptTrigger::Test, false) => Settle::To(DeliveryStatus::Failed, None),
            _ => Settle::UnlessSucceeded,
        };
        self.record(&claim, &hook, &headers, &outcome, trigger, settle).await?;
        Ok(AttemptResult {
            delivery_id: claim.id,
            succeeded: outcome.succeeded(),
            response_status: outcome.status,
            duration_ms: outcome.duration.as_millis() as u64,
            error: outcome.error.map(|(class, message)| format!("{}: {message}", class.as_str())),
        })
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

    /// Writes the attempt, settles or reschedules the delivery and updates the webhook's
    /// health, in one transaction.
    async fn record(
        &self,
        claim: &Claim,
        hook: &webhook::Model,
        headers: &[(String, String)],
        outcome: &Outcome,
        trigger: AttemptTrigger,
        settle: Settle,
    ) -> Result<(), sea_orm::DbErr> {
        let now = now_ms();
        let gone = outcome.status == Some(410);
        let duration_ms = outcome.duration.as_millis().min(i32::MAX as u128) as i32;
        let status_code: Option<i32> = outcome.status.map(i32::from);
        let (error_class, error_message) = match &outcome.error {
            Some((class, message)) => (Some(class.as_str().to_string()), Some(message.clone())),
            None => (None, None),
        };

        let txn = self.services.db.begin().await?;
        let backend = txn.get_database_backend();
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "INSERT INTO attempts (id, delivery_id, webhook_id, trigger, started_at, duration_ms, url, \
             request_headers, response_status, response_headers, response_body, error_class, error_message) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            [
                uuid::Uuid::now_v7().to_string().into(),
                claim.id.clone().into(),
                hook.id.clone().into(),
                trigger.as_str().into(),
                (now - duration_ms as i64).into(),
                duration_ms.into(),
                hook.url.clone().into(),
                serde_json::to_string(headers).unwrap_or_default().into(),
                status_code.into(),
                outcome.status.map(|_| serde_json::to_string(&outcome.headers).unwrap_or_default()).into(),
                outcome.body.clone().into(),
                error_class.into(),
                error_message.into(),
            ],
        ))
        .await?;
        let (sql, status): (&str, Option<(DeliveryStatus, Option<i64>)>) = match settle {
            Settle::To(status, next) => (
                "UPDATE deliveries SET attempts = attempts + 1, last_status_code = $1, last_duration_ms = $2, \
                 updated_at = $3, status = $5, next_attempt_at = $6, leased_by = NULL WHERE id = $4",
                Some((status, next)),
            ),
            Settle::UnlessSucceeded if outcome.succeeded() => (
                "UPDATE deliveries SET attempts = attempts + 1, last_status_code = $1, last_duration_ms = $2, \
                 updated_at = $3, status = $5, next_attempt_at = $6 WHERE id = $4",
                Some((DeliveryStatus::Succeeded, None)),
            ),
            Settle::UnlessSucceeded => (
                "UPDATE deliveries SET attempts = attempts + 1, last_status_code = $1, last_duration_ms = $2, \
                 updated_at = $3 WHERE id = $4",
                None,
            ),
        };
        let mut values: Vec<sea_orm::Value> =
            vec![status_code.into(), duration_ms.into(), now.into(), claim.id.clone().into()];
        if let Some((status, next)) = status {
            values.push(status.as_str().into());
            values.push(next.into());
        }
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
        let turned_off = if outcome.succeeded() {
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                "UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL, last_success_at = $1 WHERE id = $2",
                [now.into(), hook.id.clone().into()],
            ))
            .await?;
            None
        } else {
            self.record_failure(&txn, hook, now, gone).await?
        };
        txn.commit().await?;
        if let Some(reason) = turned_off {
            self.announce_disabled(hook, reason, now).await;
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
    async fn announce_disabled(&self, hook: &webhook::Model, reason: &str, now: i64) {
        tracing::warn!(webhook = %hook.id, reason, "webhook turned off");
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
        let result = self
            .services
            .publish(
                &Scope::Admin,
                PublishRequest {
                    tenant: hook.tenant(),
                    event_type: "webhook.disabled".into(),
                    payload: payload.to_string(),
                    idempotency_key: None,
                },
            )
            .await;
        if let Err(e) = result {
            tracing::error!(webhook = %hook.id, error = %e, "could not publish webhook.disabled");
        }
    }
}

fn db_err(e: hookline_core::Error) -> sea_orm::DbErr {
    match e {
        hookline_core::Error::Db(e) => e,
        other => sea_orm::DbErr::Custom(other.to_string()),
    }
}

impl Dispatcher for Engine {
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
