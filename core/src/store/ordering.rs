//! Ordered delivery's SQL: the claim's rule that a key goes one delivery at a time in its
//! order, a webhook's blocked keys, and moving a key's head (retry, skip).
//!
//! An ordered delivery (`ordering_key` set: its webhook has ordering on) is claimable only when
//! no delivery of the same webhook and key with a smaller `ordering_seq` matches
//! [`ORDERED_PREDICATE`]: an earlier one still pending, being sent, or failed for good holds
//! the key. The statements repeat the predicate's text so that both databases read the partial
//! index `deliveries_ordered` (webhook, key, seq) instead of the table.

use std::sync::LazyLock;

use migration::m20261215_000012_delivery_control::ORDERED_PREDICATE;
use sea_orm::{ConnectionTrait, Statement};

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

    /// Skips the blocked head: it is settled as skipped and the key's next delivery flows.
    pub async fn skip_head(&self, delivery_id: &str, now: i64) -> Result<HeadMove> {
        self.move_head(
            "UPDATE deliveries SET status = 'skipped', next_attempt_at = NULL, leased_by = NULL, updated_at = $1",
            delivery_id,
            now,
        )
        .await
    }

    /// Applies `update` to the head if it still holds its key as a failed head: a claim that
    /// took it meanwhile, or a success, leaves it alone.
    async fn move_head(&self, update: &str, delivery_id: &str, now: i64) -> Result<HeadMove> {
        let _turn = self.write_turn().await;
        let done = self
            .db
            .execute_raw(Statement::from_sql_and_values(
                self.backend(),
                format!("{update} WHERE id = $2 AND {ORDERED_PREDICATE} AND {HEAD_FAILED}"),
                [now.into(), delivery_id.into()],
            ))
            .await?;
        Ok(if done.rows_affected() == 1 { HeadMove::Moved } else { HeadMove::NotBlocked })
    }
}
