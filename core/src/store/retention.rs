//! Retention's SQL, one batch a call: the first ids of an id range (of a webhook or a store)
//! by its index, then one short statement (or transaction) over exactly that batch: settled
//! deliveries deleted with their attempts, events none of whose deliveries stays, attempts'
//! response bodies and event payloads cleared, hourly counters deleted; or, in a dry run, the
//! same rows counted. Planning the rounds and their cutoffs is `crate::retention`'s.

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, TransactionTrait, Value};
use serde::Serialize;

use super::Store;
use crate::error::Result;

/// What a round removed (or, in a dry run, would remove).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    pub events: u64,
    pub deliveries: u64,
    pub attempts: u64,
    pub webhook_hours: u64,
    /// Event payloads cleared.
    pub payloads: u64,
    /// Attempts whose response body and headers were cleared.
    pub response_bodies: u64,
}

impl PruneReport {
    pub fn total(&self) -> u64 {
        self.events
            + self.deliveries
            + self.attempts
            + self.webhook_hours
            + self.payloads
            + self.response_bodies
    }

    pub(crate) fn add(&mut self, o: PruneReport) {
        self.events += o.events;
        self.deliveries += o.deliveries;
        self.attempts += o.attempts;
        self.webhook_hours += o.webhook_hours;
        self.payloads += o.payloads;
        self.response_bodies += o.response_bodies;
    }
}

/// The rows an id range of retention goes through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PruneRange {
    /// Settled deliveries and their attempts; of one webhook (a store with its own
    /// retention) or of every webhook.
    Deliveries { webhook: Option<String> },
    /// Events none of whose deliveries stays; of one store or of every tenant.
    Events { store: Option<String> },
    /// Attempts' response bodies and headers.
    ResponseBodies,
    /// Event payloads, except of events still being delivered.
    Payloads,
}

/// `$n` placeholders numbered from 1 for the values as they are pushed.
#[derive(Default)]
struct Args(Vec<Value>);

impl Args {
    fn bind(&mut self, v: impl Into<Value>) -> String {
        self.0.push(v.into());
        format!("${}", self.0.len())
    }
}

/// The statuses of a delivery still retrying, written out so SQLite can match its partial
/// indexes and neither database needs a parameter for them.
const RETRYING: &str = "('pending', 'delivering')";

/// What a task of a store with its own retention is narrowed to.
enum Scoped {
    Webhook(String),
    Store(String),
}

impl Scoped {
    fn condition(&self, a: &mut Args) -> String {
        match self {
            Scoped::Webhook(id) => format!(" AND webhook_id = {}", a.bind(id.clone())),
            Scoped::Store(id) => format!(" AND tenant_type = 'store' AND tenant_id = {}", a.bind(id.clone())),
        }
    }
}

impl Store<'_> {
    /// Whether the first event with an id at or above `from_id` has its payload cleared
    /// (one step down the primary key; `false` when there is none).
    pub async fn payload_cleared_from(&self, from_id: &str) -> Result<bool> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.backend(),
                "SELECT payload_pruned_at FROM events WHERE id >= $1 ORDER BY id LIMIT 1",
                [from_id.into()],
            ))
            .await?;
        let at: Option<i64> = match row {
            Some(r) => r.try_get("", "payload_pruned_at")?,
            None => None,
        };
        Ok(at.is_some())
    }

    /// Deletes (or counts) the store's webhooks' hourly counters of the hours in
    /// (`after`, `through`], in one statement; answers how many.
    pub async fn prune_store_hours(
        &self,
        store_id: &str,
        after: i64,
        through: i64,
        dry_run: bool,
    ) -> Result<u64> {
        let mut a = Args::default();
        let cond = format!(
            "webhook_id IN (SELECT id FROM webhooks WHERE tenant_type = 'store' AND tenant_id = {}) \
             AND hour > {} AND hour <= {}",
            a.bind(store_id.to_string()),
            a.bind(after),
            a.bind(through)
        );
        self.write_or_count(dry_run, "webhook_hours", &cond, a).await
    }

    /// Deletes (or counts) the hourly counters up to the hour `through` of the next `webhooks`
    /// webhooks with an id above `after`; answers the last of those ids and how many
    /// counters, or `None` when no webhook is left.
    pub async fn prune_hours(
        &self,
        after: &str,
        through: i64,
        webhooks: u64,
        dry_run: bool,
    ) -> Result<Option<(String, u64)>> {
        let mut a = Args::default();
        let sql = format!(
            "SELECT MAX(id) AS last FROM (SELECT id FROM webhooks WHERE id > {} ORDER BY id \
             LIMIT {webhooks}) AS batch",
            a.bind(after.to_string())
        );
        let Some(last) = self.last_of(sql, a).await? else { return Ok(None) };
        let mut a = Args::default();
        let cond = format!(
            "webhook_id IN (SELECT id FROM webhooks WHERE id > {} AND id <= {}) AND hour <= {}",
            a.bind(after.to_string()),
            a.bind(last.clone()),
            a.bind(through)
        );
        let n = self.write_or_count(dry_run, "webhook_hours", &cond, a).await?;
        Ok(Some((last, n)))
    }

    /// One batch of `range` between the ids `after` and `before` (both exclusive): the first
    /// `limit` ids by the index, then what retention does to them (deleted, cleared, or in a
    /// dry run counted). Answers the batch's last id, to go on after, and what was done; `None`
    /// when the range is empty.
    pub async fn prune_range(
        &self,
        range: &PruneRange,
        after: &str,
        before: &str,
        limit: u64,
        dry_run: bool,
    ) -> Result<Option<(String, PruneReport)>> {
        let (table, scope) = match range {
            PruneRange::Deliveries { webhook } => ("deliveries", webhook.clone().map(Scoped::Webhook)),
            PruneRange::Events { store } => ("events", store.clone().map(Scoped::Store)),
            PruneRange::ResponseBodies => ("attempts", None),
            PruneRange::Payloads => ("events", None),
        };
        let mut done = PruneReport::default();
        // The batch: the first `limit` ids of the range (of the webhook or store), by the index.
        let mut a = Args::default();
        let ids = format!("id > {} AND id < {}", a.bind(after.to_string()), a.bind(before.to_string()));
        let sql = format!(
            "SELECT MAX(id) AS last FROM (SELECT id FROM {table} WHERE {ids}{} ORDER BY id LIMIT {limit}) AS batch",
            scope.as_ref().map(|s| s.condition(&mut a)).unwrap_or_default(),
        );
        let Some(last) = self.last_of(sql, a).await? else { return Ok(None) };
        let mut a = Args::default();
        let mut cond = format!("id > {} AND id <= {}", a.bind(after.to_string()), a.bind(last.clone()));
        if let Some(s) = &scope {
            cond.push_str(&s.condition(&mut a));
        }
        match range {
            PruneRange::Deliveries { .. } => {
                cond.push_str(&format!(" AND status NOT IN {RETRYING}"));
                (done.deliveries, done.attempts) = self.delete_deliveries(dry_run, &cond, a).await?;
            }
            PruneRange::Events { .. } => {
                // None of its deliveries stays: none is retrying, and none is newer than the
                // cutoff (a delivery made later of an older event, as a replay would).
                cond.push_str(&format!(
                    " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id \
                     AND (d.status IN {RETRYING} OR d.id >= {}))",
                    a.bind(before.to_string())
                ));
                done.events = self.write_or_count(dry_run, "events", &cond, a).await?;
            }
            PruneRange::ResponseBodies => {
                cond.push_str(" AND (response_body IS NOT NULL OR response_headers IS NOT NULL)");
                done.response_bodies = if dry_run {
                    self.count(table, &cond, a).await?
                } else {
                    let sql = format!(
                        "UPDATE attempts SET response_body = NULL, response_headers = NULL WHERE {cond}"
                    );
                    self.execute(sql, a).await?
                };
            }
            PruneRange::Payloads => {
                cond.push_str(&format!(
                    " AND payload_pruned_at IS NULL AND NOT EXISTS (SELECT 1 FROM deliveries d \
                     WHERE d.event_id = events.id AND d.status IN {RETRYING})"
                ));
                done.payloads = if dry_run {
                    self.count(table, &cond, a).await?
                } else {
                    // The idempotency key goes too: it was bound to the payload, which a
                    // repeated request can no longer be compared with.
                    let sql = format!(
                        "UPDATE events SET payload = 'null', payload_pruned_at = {}, idempotency_key = NULL WHERE {cond}",
                        a.bind(crate::now_ms())
                    );
                    self.execute(sql, a).await?
                };
            }
        }
        Ok(Some((last, done)))
    }

    async fn last_of(&self, sql: String, a: Args) -> Result<Option<String>> {
        let row = self.db.query_one_raw(Statement::from_sql_and_values(self.backend(), sql, a.0)).await?;
        Ok(match row {
            Some(r) => r.try_get("", "last")?,
            None => None,
        })
    }

    async fn count(&self, table: &str, cond: &str, a: Args) -> Result<u64> {
        let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {cond}");
        let row = self.db.query_one_raw(Statement::from_sql_and_values(self.backend(), sql, a.0)).await?;
        let n: i64 = match row {
            Some(r) => r.try_get("", "n")?,
            None => 0,
        };
        Ok(n as u64)
    }

    /// One write statement, alone: on SQLite in the write turn, so it queues with publishing
    /// and delivery instead of making them wait in SQLite's busy handler.
    async fn execute(&self, sql: String, a: Args) -> Result<u64> {
        let backend = self.backend();
        let _turn = self.write_turn().await;
        let done = self.db.execute_raw(Statement::from_sql_and_values(backend, sql, a.0)).await?;
        Ok(done.rows_affected())
    }

    async fn write_or_count(&self, dry_run: bool, table: &str, cond: &str, a: Args) -> Result<u64> {
        if dry_run {
            return self.count(table, cond, a).await;
        }
        self.execute(format!("DELETE FROM {table} WHERE {cond}"), a).await
    }

    /// Deletes the deliveries matching `cond` with their attempts, atomically; answers how
    /// many of each (or in a dry run, counts them).
    async fn delete_deliveries(&self, dry_run: bool, cond: &str, a: Args) -> Result<(u64, u64)> {
        let db = self.db;
        let backend = self.backend();
        let pair = |row: Option<sea_orm::QueryResult>| -> Result<(u64, u64)> {
            let Some(r) = row else { return Ok((0, 0)) };
            let d: i64 = r.try_get("", "deliveries")?;
            let at: i64 = r.try_get("", "attempts")?;
            Ok((d as u64, at as u64))
        };
        if dry_run {
            let sql = format!(
                "SELECT (SELECT COUNT(*) FROM deliveries WHERE {cond}) AS deliveries, \
                 (SELECT COUNT(*) FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE {cond})) AS attempts"
            );
            return pair(db.query_one_raw(Statement::from_sql_and_values(backend, sql, a.0)).await?);
        }
        if backend == DatabaseBackend::Postgres {
            // One statement: the deliveries it deletes are exactly those whose attempts go.
            let sql = format!(
                "WITH gone AS (DELETE FROM deliveries WHERE {cond} RETURNING id), \
                 went AS (DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM gone) RETURNING 1) \
                 SELECT (SELECT COUNT(*) FROM gone) AS deliveries, (SELECT COUNT(*) FROM went) AS attempts"
            );
            return pair(db.query_one_raw(Statement::from_sql_and_values(backend, sql, a.0)).await?);
        }
        // SQLite: two statements in one transaction, in the write turn, so nothing changes the
        // deliveries between them.
        let _turn = self.write_turn().await;
        let txn = db.begin().await?;
        let attempts = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE {cond})"),
                a.0.clone(),
            ))
            .await?
            .rows_affected();
        let deliveries = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM deliveries WHERE {cond}"),
                a.0,
            ))
            .await?
            .rows_affected();
        txn.commit().await?;
        Ok((deliveries, attempts))
    }
}
