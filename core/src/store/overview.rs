//! What the admin overview reads, every figure from counters or a bounded index read, never
//! a scan of deliveries or attempts: the hourly counters (`webhook_hours`) summed over
//! every webhook per hour and per webhook over an hour range (its `hour` index first), and
//! the webhooks turned off since a time (their `disabled_at` index). The queue's figures
//! are the janitor's ([`Store::count_due`], `Services::oldest_due`).

use sea_orm::{ConnectionTrait, QueryResult, Statement};

use super::Store;
use crate::error::Result;

/// Every webhook's attempts of one hour, added up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HourTotals {
    /// The hour's start, in ms since the epoch.
    pub hour: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub duration_ms: i64,
}

/// One webhook's attempts over an hour range, added up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointTotals {
    pub webhook_id: String,
    pub succeeded: i64,
    pub failed: i64,
    pub duration_ms: i64,
}

impl EndpointTotals {
    pub fn attempts(&self) -> i64 {
        self.succeeded + self.failed
    }

    /// The mean attempt's duration, in ms.
    pub fn mean_ms(&self) -> i64 {
        self.duration_ms / self.attempts().max(1)
    }
}

/// How the per-webhook totals are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranking {
    /// Most failed attempts first; webhooks without a failure are left out.
    MostFailing,
    /// Longest mean attempt first.
    Slowest,
}

impl Store<'_> {
    /// Every webhook's counters summed per hour, for the hours starting in `[from, to)`,
    /// oldest first; hours without an attempt are absent.
    pub async fn hour_totals(&self, from: i64, to: i64) -> Result<Vec<HourTotals>> {
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                self.backend(),
                format!("SELECT hour, {SUMS} FROM webhook_hours WHERE hour >= $1 AND hour < $2 GROUP BY hour ORDER BY hour"),
                [from.into(), to.into()],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                Ok(HourTotals {
                    hour: row.try_get("", "hour")?,
                    succeeded: sum(row, "succeeded")?,
                    failed: sum(row, "failed")?,
                    duration_ms: sum(row, "duration_ms")?,
                })
            })
            .collect()
    }

    /// Every webhook's counters summed over the hours starting in `[from, to)`, for the
    /// webhooks with an attempt then: one pass over the range serves every ranking
    /// ([`rank`]).
    pub async fn endpoint_totals(&self, from: i64, to: i64) -> Result<Vec<EndpointTotals>> {
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                self.backend(),
                format!(
                    "SELECT webhook_id, {SUMS} FROM webhook_hours WHERE hour >= $1 AND hour < $2 \
                     GROUP BY webhook_id"
                ),
                [from.into(), to.into()],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                Ok(EndpointTotals {
                    webhook_id: row.try_get("", "webhook_id")?,
                    succeeded: sum(row, "succeeded")?,
                    failed: sum(row, "failed")?,
                    duration_ms: sum(row, "duration_ms")?,
                })
            })
            .collect()
    }

    /// The ids of the webhooks turned off at or after `since` and still off, latest first.
    pub async fn turned_off_since(&self, since: i64, limit: u64) -> Result<Vec<String>> {
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                self.backend(),
                // `disabled_at IS NOT NULL` word for word: SQLite uses the partial index only then.
                format!(
                    "SELECT id FROM webhooks WHERE disabled_at IS NOT NULL AND disabled_at >= $1 \
                     AND enabled = $2 ORDER BY disabled_at DESC, id LIMIT {limit}"
                ),
                [since.into(), false.into()],
            ))
            .await?;
        rows.iter().map(|row| Ok(row.try_get("", "id")?)).collect()
    }
}

/// The three counters added up, as BIGINT on both databases (PostgreSQL's SUM of a BIGINT
/// is a NUMERIC).
const SUMS: &str = "CAST(SUM(succeeded) AS BIGINT) AS succeeded, CAST(SUM(failed) AS BIGINT) AS failed, \
                    CAST(SUM(duration_ms) AS BIGINT) AS duration_ms";

fn sum(row: &QueryResult, column: &str) -> Result<i64> {
    Ok(row.try_get::<Option<i64>>("", column)?.unwrap_or(0))
}

/// The `limit` first webhooks of `totals` by `ranking`, ties by webhook id.
pub fn rank(totals: &[EndpointTotals], ranking: Ranking, limit: usize) -> Vec<EndpointTotals> {
    let mut ranked: Vec<EndpointTotals> = totals
        .iter()
        .filter(|t| match ranking {
            Ranking::MostFailing => t.failed > 0,
            Ranking::Slowest => t.attempts() > 0,
        })
        .cloned()
        .collect();
    match ranking {
        Ranking::MostFailing => {
            ranked.sort_by(|a, b| b.failed.cmp(&a.failed).then_with(|| a.webhook_id.cmp(&b.webhook_id)))
        }
        // The mean as a ratio, compared by cross-multiplying: exact, and no division by zero.
        Ranking::Slowest => ranked.sort_by(|a, b| {
            (i128::from(b.duration_ms) * i128::from(a.attempts()))
                .cmp(&(i128::from(a.duration_ms) * i128::from(b.attempts())))
                .then_with(|| a.webhook_id.cmp(&b.webhook_id))
        }),
    }
    ranked.truncate(limit);
    ranked
}
