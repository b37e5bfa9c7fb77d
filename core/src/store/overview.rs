//! What the admin overview reads, every figure from counters or a bounded index read, never
//! a scan of deliveries or attempts: the hourly counters (`webhook_hours`) summed over
//! every webhook per hour and per webhook over an hour range (its `hour` index first), and
//! the webhooks turned off since a time (their `disabled_at` index). The queue's figures
//! are the janitor's ([`Store::count_due`], `Services::oldest_due`).
//!
//! Also the daily rollups of those counters, which the week view reads for its whole days:
//! `webhook_days` (per webhook and day) and `hour_totals` (every webhook per hour), valid for
//! the days `rollup_days` marks. A background step adds up each day once it is over
//! ([`Store::overview_rollup_step`]), never the recorder; deleting hourly counters forgets
//! the days they were in ([`Store::forget_rolled_days`], [`Store::forget_webhook_rollups`]),
//! and the step adds those up again, so the figures stay the sums of the hourly counters.

use sea_orm::{ConnectionTrait, DatabaseBackend, QueryResult, Statement, TransactionTrait, Value};

use super::Store;
use crate::HOUR_MS;
use crate::error::Result;

/// A day, in ms; days start at midnight UTC.
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// How long after a day ends the rollup waits before adding it up. The recorder counts an
/// attempt in the hour it ended, a batch later (milliseconds, seconds when the database is
/// slow); an hour also covers small clock differences between processes. A counter written
/// later than this is in the hourly counters but not in its day's rollup.
pub const ROLLUP_GRACE_MS: i64 = HOUR_MS;
/// The days kept rolled up, back from yesterday: every day the week view can hold whole (its
/// 168 hours end with the current one, so the day a week back is never whole in it).
pub const ROLLUP_DAYS: i64 = 6;
/// Webhook-days whose hourly counters vanished that one step looks for.
const VANISHED_BATCH: u64 = 100;

/// The start of the day `t` is in.
pub fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY_MS) * DAY_MS
}

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

impl Store<'_> {
    /// [`Store::hour_totals`] and [`Store::endpoint_totals`] over `[from, to)` (whole
    /// hours), with the whole days the rollups hold read from them and every other hour from
    /// the hourly counters: the same figures, from 7 rows per webhook for a week instead of 168.
    pub async fn overview_totals(
        &self,
        from: i64,
        to: i64,
    ) -> Result<(Vec<HourTotals>, Vec<EndpointTotals>)> {
        let days = self.rolled_days(from, to).await?;
        if days.is_empty() {
            return tokio::try_join!(self.hour_totals(from, to), self.endpoint_totals(from, to));
        }
        let (rolled, hourly) = split_by_days(from, to, &days);
        tokio::try_join!(
            self.mixed_hour_totals(&rolled, &hourly),
            self.mixed_endpoint_totals(&rolled, &hourly)
        )
    }

    /// The rolled-up days wholly in `[from, to)`, oldest first.
    pub async fn rolled_days(&self, from: i64, to: i64) -> Result<Vec<i64>> {
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                self.backend(),
                "SELECT day FROM rollup_days WHERE rolled_at IS NOT NULL AND day >= $1 AND day <= $2 ORDER BY day",
                [from.into(), (to - DAY_MS).into()],
            ))
            .await?;
        rows.iter().map(|row| Ok(row.try_get("", "day")?)).collect()
    }

    /// Per hour: the rolled-up ranges' `hour_totals` rows beside the other ranges' hourly
    /// counters summed (the ranges do not overlap, so no hour comes twice).
    async fn mixed_hour_totals(&self, rolled: &[Range], hourly: &[Range]) -> Result<Vec<HourTotals>> {
        let mut a = Args::default();
        let mut parts: Vec<String> = Vec::new();
        for (lo, hi) in hourly {
            parts.push(format!(
                "SELECT hour, {SUMS} FROM webhook_hours WHERE hour >= {} AND hour < {} GROUP BY hour",
                a.bind(*lo),
                a.bind(*hi)
            ));
        }
        for (lo, hi) in rolled {
            parts.push(format!(
                "SELECT hour, succeeded, failed, duration_ms FROM hour_totals WHERE hour >= {} AND hour < {}",
                a.bind(*lo),
                a.bind(*hi)
            ));
        }
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(self.backend(), parts.join(" UNION ALL "), a.0))
            .await?;
        let mut hours = rows
            .iter()
            .map(|row| {
                Ok(HourTotals {
                    hour: row.try_get("", "hour")?,
                    succeeded: sum(row, "succeeded")?,
                    failed: sum(row, "failed")?,
                    duration_ms: sum(row, "duration_ms")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        hours.sort_by_key(|h| h.hour);
        Ok(hours)
    }

    /// Per webhook: the rolled-up ranges' `webhook_days` rows and the other ranges' hourly
    /// counters, summed together.
    async fn mixed_endpoint_totals(&self, rolled: &[Range], hourly: &[Range]) -> Result<Vec<EndpointTotals>> {
        let mut a = Args::default();
        let mut parts: Vec<String> = Vec::new();
        for (lo, hi) in hourly {
            parts.push(format!(
                "SELECT webhook_id, succeeded, failed, duration_ms FROM webhook_hours WHERE hour >= {} AND hour < {}",
                a.bind(*lo),
                a.bind(*hi)
            ));
        }
        for (lo, hi) in rolled {
            parts.push(format!(
                "SELECT webhook_id, succeeded, failed, duration_ms FROM webhook_days WHERE day >= {} AND day < {}",
                a.bind(*lo),
                a.bind(*hi)
            ));
        }
        let sql = format!(
            "SELECT webhook_id, {SUMS} FROM ({}) AS counted GROUP BY webhook_id",
            parts.join(" UNION ALL ")
        );
        let rows = self.db.query_all_raw(Statement::from_sql_and_values(self.backend(), sql, a.0)).await?;
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

    /// One step of the rollups at `now`: drops the days past [`ROLLUP_DAYS`], forgets the
    /// days whose hourly counters of a webhook vanished since they were added up (a deleted
    /// webhook's purge), then adds up one day that is over (by [`ROLLUP_GRACE_MS`]) and not
    /// rolled up, the latest first. Each write is one short transaction. Answers whether a
    /// day is still left to add up.
    pub async fn overview_rollup_step(&self, now: i64) -> Result<bool> {
        let first = day_of(now) - ROLLUP_DAYS * DAY_MS;
        let last = day_of(now - ROLLUP_GRACE_MS) - DAY_MS;
        self.drop_old_rollups(first).await?;
        self.forget_vanished().await?;
        let rolled = self.rolled_days(first, last + DAY_MS).await?;
        let mut due =
            (0..ROLLUP_DAYS).map(|i| last - i * DAY_MS).filter(|day| *day >= first && !rolled.contains(day));
        let Some(day) = due.next() else { return Ok(false) };
        self.roll_up_day(day, now).await?;
        Ok(due.next().is_some())
    }

    /// Adds up one day's hourly counters into `webhook_days` and `hour_totals`, replacing
    /// what they held for it, and marks it rolled up: idempotent.
    pub async fn roll_up_day(&self, day: i64, now: i64) -> Result<()> {
        let backend = self.backend();
        let end = day + DAY_MS;
        let _turn = self.write_turn().await;
        self.db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "INSERT INTO rollup_days (day, rolled_at) VALUES ($1, NULL) ON CONFLICT (day) DO NOTHING",
                [day.into()],
            ))
            .await?;
        let txn = self.db.begin().await?;
        // First, so that on PostgreSQL the day's row stays locked until the sums are in: a
        // deletion that forgets the day meanwhile waits, then forgets these sums too.
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE rollup_days SET rolled_at = $1 WHERE day = $2",
            [now.into(), day.into()],
        ))
        .await?;
        for (sql, values) in [
            ("DELETE FROM webhook_days WHERE day = $1".to_string(), vec![day.into()]),
            (
                format!(
                    "INSERT INTO webhook_days (webhook_id, day, succeeded, failed, duration_ms) \
                     SELECT webhook_id, $1, {SUMS} FROM webhook_hours WHERE hour >= $2 AND hour < $3 GROUP BY webhook_id"
                ),
                vec![day.into(), day.into(), end.into()],
            ),
            (
                "DELETE FROM hour_totals WHERE hour >= $1 AND hour < $2".to_string(),
                vec![day.into(), end.into()],
            ),
            (
                format!(
                    "INSERT INTO hour_totals (hour, succeeded, failed, duration_ms) \
                     SELECT hour, {SUMS} FROM webhook_hours WHERE hour >= $1 AND hour < $2 GROUP BY hour"
                ),
                vec![day.into(), end.into()],
            ),
        ] {
            txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Forgets the rolled-up days from the one `from` is in through the one `through` is in
    /// (both times): they are read from the hourly counters again until the next rollup
    /// step adds them up anew. For whoever deletes hourly counters of those days.
    pub async fn forget_rolled_days(&self, from: i64, through: i64) -> Result<()> {
        let (lo, hi) = (day_of(from), day_of(through) + DAY_MS);
        let backend = self.backend();
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await?;
        // The marks first: on PostgreSQL this waits for a rollup of one of the days under
        // way, whose sums the deletes below then see and remove.
        for sql in [
            "UPDATE rollup_days SET rolled_at = NULL WHERE day >= $1 AND day < $2",
            "DELETE FROM webhook_days WHERE day >= $1 AND day < $2",
            "DELETE FROM hour_totals WHERE hour >= $1 AND hour < $2",
        ] {
            txn.execute_raw(Statement::from_sql_and_values(backend, sql, [lo.into(), hi.into()])).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Forgets what the rollups hold of one webhook whose hourly counters were all deleted
    /// (a deleted webhook's purge, in its last step): its `webhook_days` rows, and the days
    /// they were in, whose `hour_totals` counted it.
    pub async fn forget_webhook_rollups(&self, webhook_id: &str) -> Result<()> {
        let backend = self.backend();
        let days: Vec<i64> = {
            let _turn = self.write_turn().await;
            let txn = self.db.begin().await?;
            if backend == DatabaseBackend::Postgres {
                // Waits for a rollup under way, so the read below sees its rows of the webhook.
                txn.execute_unprepared("SELECT day FROM rollup_days ORDER BY day FOR UPDATE").await?;
            }
            let rows = txn
                .query_all_raw(Statement::from_sql_and_values(
                    backend,
                    "SELECT day FROM webhook_days WHERE webhook_id = $1",
                    [webhook_id.into()],
                ))
                .await?;
            let days = rows
                .iter()
                .map(|r| r.try_get::<i64>("", "day"))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            if !days.is_empty() {
                let list = super::placeholder_list(days.len(), 0);
                let values: Vec<Value> = days.iter().map(|d| (*d).into()).collect();
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!("UPDATE rollup_days SET rolled_at = NULL WHERE day IN ({list})"),
                    values,
                ))
                .await?;
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    "DELETE FROM webhook_days WHERE webhook_id = $1",
                    [webhook_id.into()],
                ))
                .await?;
            }
            txn.commit().await?;
            days
        };
        tracing::debug!(webhook_id, days = days.len(), "forgot a purged webhook's rollups");
        Ok(())
    }

    /// Removes the rollups of the days before `first`: the overview no longer reads them.
    async fn drop_old_rollups(&self, first: i64) -> Result<()> {
        let oldest = self
            .db
            .query_one_raw(Statement::from_string(self.backend(), "SELECT MIN(day) AS day FROM rollup_days"))
            .await?;
        let oldest: Option<i64> = match oldest {
            Some(row) => row.try_get("", "day")?,
            None => None,
        };
        if oldest.is_none_or(|d| d >= first) {
            return Ok(());
        }
        let backend = self.backend();
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await?;
        for sql in [
            "DELETE FROM rollup_days WHERE day < $1",
            "DELETE FROM webhook_days WHERE day < $1",
            "DELETE FROM hour_totals WHERE hour < $1",
        ] {
            txn.execute_raw(Statement::from_sql_and_values(backend, sql, [first.into()])).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Forgets the days in which a webhook's rolled-up row has no hourly counter left (its
    /// counters were deleted by a path that did not forget them itself): one probe of the
    /// hourly counters' primary key per rolled-up row.
    async fn forget_vanished(&self) -> Result<()> {
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                self.backend(),
                format!(
                    "SELECT DISTINCT day FROM (SELECT d.day FROM webhook_days d WHERE NOT EXISTS \
                     (SELECT 1 FROM webhook_hours h WHERE h.webhook_id = d.webhook_id AND h.hour >= d.day \
                     AND h.hour < d.day + {DAY_MS}) LIMIT {VANISHED_BATCH}) AS vanished"
                ),
            ))
            .await?;
        for row in rows {
            let day: i64 = row.try_get("", "day")?;
            self.forget_rolled_days(day, day).await?;
        }
        Ok(())
    }
}

/// A time range `[start, end)`, in ms.
pub type Range = (i64, i64);

/// `[from, to)` split at the rolled-up `days` (sorted, each wholly inside): the rolled-up
/// ranges and the hourly ranges between them, each as `[start, end)` and merged where they
/// touch.
pub fn split_by_days(from: i64, to: i64, days: &[i64]) -> (Vec<Range>, Vec<Range>) {
    let mut rolled: Vec<Range> = Vec::new();
    let mut hourly: Vec<Range> = Vec::new();
    let mut at = from;
    for &day in days {
        if day < at || day + DAY_MS > to {
            continue;
        }
        if day > at {
            hourly.push((at, day));
        }
        match rolled.last_mut() {
            Some(last) if last.1 == day => last.1 = day + DAY_MS,
            _ => rolled.push((day, day + DAY_MS)),
        }
        at = day + DAY_MS;
    }
    if at < to {
        hourly.push((at, to));
    }
    (rolled, hourly)
}

/// `$n` placeholders numbered from 1 for the values as they are bound.
#[derive(Default)]
struct Args(Vec<Value>);

impl Args {
    fn bind(&mut self, v: i64) -> String {
        self.0.push(v.into());
        format!("${}", self.0.len())
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
