//! Ordered delivery's SQL: the claim's rule that a key goes one delivery at a time in its
//! order, a webhook's blocked keys, and moving a key's head (retry, skip).
//!
//! An ordered delivery (`ordering_key` set: its webhook has ordering on) is claimable only when
//! no delivery of the same webhook and key with a smaller `ordering_seq` matches
//! [`ORDERED_PREDICATE`]: an earlier one still pending, being sent, or failed for good holds
//! the key. The statements repeat the predicate's text so that both databases read the partial
//! index `deliveries_ordered` (webhook, key, seq) instead of the table.
//!
//! Parking: an ordered delivery that is not its key's head is of no use to a claim, so it does
//! not stay due. The claim parks the ones it would step over (`next_attempt_at` NULL, status
//! still `pending`: it still holds the later ones), and whatever moves a head on wakes the
//! key's next delivery (due at once): a settled attempt ([`super::attempts`]), a skip, a claim
//! settled without an attempt, each in the transaction that moves the head. A park that races
//! a wake-up loses: the wake-up always rewrites the row, and the park only parks a row as it
//! read it. A sweep ([`Store::wake_stranded_step`]) wakes a parked delivery that nothing holds
//! any more all the same (its head deleted by retention, or a way to move a head that does not
//! wake). Waking only says when a claim looks again: the claim's rule [`CLAIMABLE_IN_ORDER`]
//! alone decides whether a delivery may go.

use std::sync::LazyLock;

use migration::m20261215_000012_delivery_control::ORDERED_PREDICATE;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, TransactionTrait};

use super::Store;
use crate::DeliveryStatus;
use crate::error::Result;

/// The claim's condition on a candidate (the `deliveries` row of the claim's select):
/// unordered deliveries pass at once; an ordered one only as the head of its key.
pub static CLAIMABLE_IN_ORDER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "(ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries AS earlier \
         WHERE earlier.webhook_id = deliveries.webhook_id AND earlier.ordering_key = deliveries.ordering_key \
         AND earlier.ordering_seq < deliveries.ordering_seq AND {ORDERED_PREDICATE}))"
    )
});

/// The condition for parking the claim's front row `front` (status and key read with it): a
/// pending ordered delivery that an earlier one of its key holds.
pub static HELD_FRONT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "front.status = 'pending' AND front.ordering_key IS NOT NULL AND EXISTS (SELECT 1 FROM deliveries AS earlier \
         WHERE earlier.webhook_id = front.webhook_id AND earlier.ordering_key = front.ordering_key \
         AND earlier.ordering_seq < front.ordering_seq AND {ORDERED_PREDICATE})"
    )
});

/// Whether any ordered delivery can hold its key: a probe of the partial index
/// `deliveries_ordered` (its predicate exactly, so no other index is a candidate). Without one
/// there is nothing to park.
pub static ANY_ORDERED: LazyLock<String> =
    LazyLock::new(|| format!("EXISTS (SELECT 1 FROM deliveries AS ordered WHERE {ORDERED_PREDICATE})"));

/// What a wake-up writes to the delivery it wakes (due at `$1` if parked; a due one stays
/// due). It always writes `updated_at`, to a value other than the one it had: on PostgreSQL a
/// claim's park that read the row before ([`PARK_ONLY_UNCHANGED`]) then finds it changed and
/// leaves it (otherwise a park that raced the settle could leave it parked behind a head
/// that is gone).
pub fn wake_set(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => {
            "next_attempt_at = COALESCE(next_attempt_at, $1), updated_at = GREATEST(updated_at + 1, $1)"
        }
        _ => "next_attempt_at = COALESCE(next_attempt_at, $1), updated_at = MAX(updated_at + 1, $1)",
    }
}

/// The park's check that the row is as its front read it (see [`wake_set`]).
pub const PARK_ONLY_UNCHANGED: &str = "deliveries.updated_at = front.updated_at";

/// Wakes (see [`wake_set`]) the head of the key of each delivery in `ids` (placeholders
/// numbered from `$2`). Run after the deliveries were settled, in the same transaction, so the
/// head it finds is the key's head from then on; a key whose head still holds it (a retry
/// scheduled) keeps its schedule.
fn wake_heads_sql(backend: DatabaseBackend, ids: usize) -> String {
    format!(
        "UPDATE deliveries SET {set} WHERE status = 'pending' \
         AND id IN (SELECT (SELECT id FROM deliveries AS n WHERE n.webhook_id = h.webhook_id \
             AND n.ordering_key = h.ordering_key AND {ORDERED_PREDICATE} ORDER BY n.ordering_seq LIMIT 1) \
           FROM deliveries AS h WHERE h.id IN ({ids}) AND h.ordering_key IS NOT NULL)",
        set = wake_set(backend),
        ids = super::placeholder_list(ids, 1)
    )
}

/// [`wake_heads_sql`] on PostgreSQL, answering the deliveries of `ids` behind which it found
/// nothing of their key ([`wake_heads`]).
fn wake_heads_answering_sql(ids: usize) -> String {
    format!(
        "WITH next AS (SELECT h.id AS settled, (SELECT id FROM deliveries AS n WHERE n.webhook_id = h.webhook_id \
             AND n.ordering_key = h.ordering_key AND {ORDERED_PREDICATE} ORDER BY n.ordering_seq LIMIT 1) AS head \
           FROM deliveries AS h WHERE h.id IN ({ids}) AND h.ordering_key IS NOT NULL), \
         woken AS (UPDATE deliveries SET {set} WHERE status = 'pending' AND id IN (SELECT head FROM next)) \
         SELECT settled FROM next WHERE head IS NULL",
        set = wake_set(DatabaseBackend::Postgres),
        ids = super::placeholder_list(ids, 1)
    )
}

/// Wakes the heads of the keys of the settled deliveries `ids`, due `at`, in the transaction
/// that settled them ([`wake_heads_sql`]). On PostgreSQL it answers the ones behind which it
/// saw nothing of their key: for those, [`wake_heads_again`] once the transaction commits.
///
/// Why: each statement reads the database as it was when it started. A publish of the key that
/// commits after the wake-up started is not the wake-up's to see, and a claim that starts
/// after that publish, but before the settling commits, still sees the head out and parks the
/// new delivery behind it. Nothing would wake it but the sweep. A wake-up after the commit
/// sees the new delivery, parked or about to be: a claim that parks it later finds the row
/// changed ([`PARK_ONLY_UNCHANGED`]), and one that parked it first holds it until its commit,
/// and the wake-up then reads it parked. A key whose next delivery the first wake-up saw needs
/// nothing more: that row is the wake-up's to change, with the same guard. SQLite writes one
/// transaction at a time, so a claim never reads between the two.
pub(crate) async fn wake_heads(db: &impl ConnectionTrait, ids: &[String], at: i64) -> Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let values = wake_values(ids, at);
    if backend != DatabaseBackend::Postgres {
        db.execute_raw(Statement::from_sql_and_values(backend, wake_heads_sql(backend, ids.len()), values))
            .await?;
        return Ok(Vec::new());
    }
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, wake_heads_answering_sql(ids.len()), values))
        .await?;
    rows.iter().map(|r| Ok(r.try_get::<String>("", "settled")?)).collect()
}

/// The second wake-up of [`wake_heads`], after the settling committed, for the deliveries it
/// answered. The settling stands whatever happens here: a failure is logged, and the sweep
/// ([`Store::wake_stranded_step`]) wakes what it would have.
pub(crate) async fn wake_heads_again(db: &impl ConnectionTrait, ids: &[String], at: i64) {
    if ids.is_empty() {
        return;
    }
    let backend = db.get_database_backend();
    let sql = wake_heads_sql(backend, ids.len());
    if let Err(e) = db.execute_raw(Statement::from_sql_and_values(backend, sql, wake_values(ids, at))).await {
        tracing::warn!(error = %e, deliveries = ids.len(), "waking the next deliveries of keys again failed; the sweep will");
    }
}

/// The values of a wake-up's statement: when, then the settled deliveries.
fn wake_values(ids: &[String], at: i64) -> Vec<sea_orm::Value> {
    std::iter::once(at.into()).chain(ids.iter().map(|id| id.clone().into())).collect()
}

/// Where a sweep of parked deliveries stands: the last ordered delivery it looked at, in the
/// order of `deliveries_ordered`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderedPlace {
    pub webhook_id: String,
    pub ordering_key: String,
    pub ordering_seq: i64,
}

/// A key whose head delivery has failed (for good, or with a retry scheduled): it holds
/// every later event of the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockedKey {
    pub ordering_key: String,
    pub delivery_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    /// The head's next attempt (`None` once it failed for good).
    pub next_attempt_at: Option<i64>,
    /// The key's deliveries waiting behind the head.
    pub waiting: i64,
}

/// What retrying or skipping a key's head changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadMove {
    Moved,
    /// The key has no head that holds it (nothing waits, or the head is being sent or has not
    /// failed yet).
    NotBlocked,
}

/// The head's condition for being blocked: failed for good, or failed at least once on its
/// schedule (a retry is set). A fresh head, or one the merchant just retried, flows.
const HEAD_FAILED: &str = "(status = 'failed' OR (status = 'pending' AND attempts > manual_attempts))";

/// The columns a blocked key is read from, `head` being the key's head delivery.
fn blocked_key_columns() -> String {
    format!(
        "id, event_id, event_type, status, attempts, last_status_code, next_attempt_at, ordering_key, \
         (SELECT COUNT(*) FROM deliveries AS later WHERE later.webhook_id = head.webhook_id \
           AND later.ordering_key = head.ordering_key AND later.ordering_seq > head.ordering_seq \
           AND {ORDERED_PREDICATE}) AS waiting"
    )
}

fn blocked_key(r: &sea_orm::QueryResult) -> Result<BlockedKey> {
    let status: String = r.try_get("", "status")?;
    Ok(BlockedKey {
        ordering_key: r.try_get("", "ordering_key")?,
        delivery_id: r.try_get("", "id")?,
        event_id: r.try_get("", "event_id")?,
        event_type: r.try_get("", "event_type")?,
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Pending),
        attempts: r.try_get("", "attempts")?,
        last_status_code: r.try_get("", "last_status_code")?,
        next_attempt_at: r.try_get("", "next_attempt_at")?,
        waiting: r.try_get("", "waiting")?,
    })
}

impl Store<'_> {
    /// The webhook's blocked keys in key order, after the key `after`, up to `limit`.
    pub async fn blocked_keys(
        &self,
        webhook_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<BlockedKey>> {
        let mut values: Vec<sea_orm::Value> = vec![webhook_id.into(), (limit as i64).into()];
        let cursor = match after {
            Some(key) => {
                values.push(key.into());
                "AND ordering_key > $3"
            }
            None => "",
        };
        let sql = format!(
            "SELECT {columns} FROM deliveries AS head \
             WHERE webhook_id = $1 AND {ORDERED_PREDICATE} AND {HEAD_FAILED} {cursor} \
             AND NOT EXISTS (SELECT 1 FROM deliveries AS earlier WHERE earlier.webhook_id = head.webhook_id \
               AND earlier.ordering_key = head.ordering_key AND earlier.ordering_seq < head.ordering_seq \
               AND {ORDERED_PREDICATE}) \
             ORDER BY ordering_key LIMIT $2",
            columns = blocked_key_columns()
        );
        let rows = self.db.query_all_raw(Statement::from_sql_and_values(self.backend(), sql, values)).await?;
        rows.iter().map(blocked_key).collect()
    }

    /// The key's head if it is blocked: the key's first delivery that holds it, failed.
    pub async fn blocked_head(&self, webhook_id: &str, key: &str) -> Result<Option<BlockedKey>> {
        let sql = format!(
            "SELECT {columns} FROM deliveries AS head WHERE id = (SELECT id FROM deliveries \
               WHERE webhook_id = $1 AND ordering_key = $2 AND {ORDERED_PREDICATE} ORDER BY ordering_seq LIMIT 1) \
             AND {HEAD_FAILED}",
            columns = blocked_key_columns()
        );
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.backend(),
                sql,
                [webhook_id.into(), key.into()],
            ))
            .await?;
        row.as_ref().map(blocked_key).transpose()
    }

    /// Sends the blocked head again, due `now`, with its retry schedule started afresh (its
    /// scheduled attempts count from zero again); the key flows once it succeeds.
    pub async fn retry_head(&self, delivery_id: &str, now: i64) -> Result<HeadMove> {
        self.move_head(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, manual_attempts = attempts, \
             leased_by = NULL, updated_at = $1",
            delivery_id,
            now,
        )
        .await
    }

    /// Skips the blocked head: it is settled as skipped and the key's next delivery flows
    /// (woken in the same transaction).
    pub async fn skip_head(&self, delivery_id: &str, now: i64) -> Result<HeadMove> {
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await?;
        let moved = move_head(
            &txn,
            "UPDATE deliveries SET status = 'skipped', next_attempt_at = NULL, leased_by = NULL, updated_at = $1",
            delivery_id,
            now,
        )
        .await?;
        let unseen = match moved {
            HeadMove::Moved => wake_heads(&txn, &[delivery_id.to_string()], now).await?,
            HeadMove::NotBlocked => Vec::new(),
        };
        txn.commit().await?;
        wake_heads_again(self.db, &unseen, now).await;
        Ok(moved)
    }

    /// One step of the sweep that wakes stranded parked deliveries: reads up to `batch`
    /// ordered deliveries after `after` down `deliveries_ordered`, and wakes (due `now`) those
    /// that are parked yet held by nothing. Answers where the next step starts (`None` once
    /// the sweep reached the end) and how many it woke.
    pub async fn wake_stranded_step(
        &self,
        after: Option<&OrderedPlace>,
        batch: u64,
        now: i64,
    ) -> Result<(Option<OrderedPlace>, u64)> {
        let mut values: Vec<sea_orm::Value> = Vec::new();
        let from = match after {
            Some(p) => {
                values.extend([
                    p.webhook_id.clone().into(),
                    p.ordering_key.clone().into(),
                    p.ordering_seq.into(),
                ]);
                "AND (webhook_id, ordering_key, ordering_seq) > ($1, $2, $3)"
            }
            None => "",
        };
        let sql = format!(
            "SELECT id, webhook_id, ordering_key, ordering_seq, status, next_attempt_at FROM deliveries \
             WHERE {ORDERED_PREDICATE} {from} ORDER BY webhook_id, ordering_key, ordering_seq LIMIT {batch}"
        );
        let rows = self.db.query_all_raw(Statement::from_sql_and_values(self.backend(), sql, values)).await?;
        let mut place: Option<OrderedPlace> = after.cloned();
        let mut stranded: Vec<String> = Vec::new();
        for r in &rows {
            let here = OrderedPlace {
                webhook_id: r.try_get("", "webhook_id")?,
                ordering_key: r.try_get("", "ordering_key")?,
                ordering_seq: r.try_get("", "ordering_seq")?,
            };
            // Within the batch, a key's later rows are held by its first one: only a key's
            // first row here can be stranded.
            let first_of_key = place
                .as_ref()
                .is_none_or(|p| p.webhook_id != here.webhook_id || p.ordering_key != here.ordering_key);
            let status: String = r.try_get("", "status")?;
            let due: Option<i64> = r.try_get("", "next_attempt_at")?;
            if first_of_key && status == DeliveryStatus::Pending.as_str() && due.is_none() {
                stranded.push(r.try_get("", "id")?);
            }
            place = Some(here);
        }
        let mut woken = 0;
        if !stranded.is_empty() {
            let _turn = self.write_turn().await;
            let mut values: Vec<sea_orm::Value> = vec![now.into()];
            values.extend(stranded.iter().map(|id| id.clone().into()));
            let sql = format!(
                "UPDATE deliveries SET next_attempt_at = $1 WHERE id IN ({}) AND status = 'pending' \
                 AND next_attempt_at IS NULL AND {}",
                super::placeholder_list(stranded.len(), 1),
                CLAIMABLE_IN_ORDER.as_str()
            );
            woken = self
                .db
                .execute_raw(Statement::from_sql_and_values(self.backend(), sql, values))
                .await?
                .rows_affected();
        }
        let next = if (rows.len() as u64) < batch { None } else { place };
        Ok((next, woken))
    }

    /// Applies `update` to the head if it still holds its key as a failed head: a claim that
    /// took it meanwhile, or a success, leaves it alone.
    async fn move_head(&self, update: &str, delivery_id: &str, now: i64) -> Result<HeadMove> {
        let _turn = self.write_turn().await;
        move_head(self.db, update, delivery_id, now).await
    }
}

async fn move_head(db: &impl ConnectionTrait, update: &str, delivery_id: &str, now: i64) -> Result<HeadMove> {
    let done = db
        .execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            format!("{update} WHERE id = $2 AND {ORDERED_PREDICATE} AND {HEAD_FAILED}"),
            [now.into(), delivery_id.into()],
        ))
        .await?;
    Ok(if done.rows_affected() == 1 { HeadMove::Moved } else { HeadMove::NotBlocked })
}
