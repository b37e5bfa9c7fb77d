//! Recording attempts: the attempts themselves, their deliveries settled or rescheduled, the
//! webhooks' hourly counters (`webhook_hours`, the health chart and the admin overview) and
//! their health (the run of failures that turns a webhook off).
//!
//! One call writes a batch, however many attempts it holds: on PostgreSQL a batch of
//! successes is one statement; otherwise one transaction with multi-row inserts of attempts,
//! one multi-row `UPDATE … FROM (VALUES …)` of deliveries, one multi-row upsert of the hourly
//! counters and one health write per webhook (BENCHMARKS.md, "What got it here").
//!
//! The receiver's steering of its whole webhook ([`Steer`]: a `Retry-After` pause, the circuit
//! breaker opening, a probe failing, the breaker closing) is written in the same transaction,
//! only by the attempts whose answer asked for it; a batch without any keeps its one statement.

use std::borrow::Borrow;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, TransactionTrait};

use migration::m20261215_000012_delivery_control::ORDERED_PREDICATE;

use super::{Store, placeholders, typed_placeholders};
use crate::entities::webhook;
use crate::error::Result;
use crate::{AttemptErrorClass, AttemptTrigger, DeliveryStatus, DisabledReason, HOUR_MS, PauseReason};

/// An attempt made, as it is written.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub delivery_id: String,
    pub webhook: Arc<webhook::Model>,
    pub trigger: AttemptTrigger,
    pub request_headers: Vec<(String, String)>,
    /// The answer's status; `None` when there was no answer.
    pub response_status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: Option<String>,
    /// Why the attempt failed, if it did for a reason other than the status, and what
    /// happened.
    pub error: Option<(AttemptErrorClass, String)>,
    pub duration: Duration,
    /// When the attempt ended.
    pub ended_at: i64,
    pub settle: Settle,
    /// What the answer does to the whole webhook, if anything.
    pub steer: Option<Steer>,
    /// The delivery may carry an ordering key (its event has one): writing the attempt wakes
    /// the key's next delivery if the key moved on ([`super::ordering`]).
    pub ordered: bool,
    /// The circuit breaker's probe: counted apart, so a failed one does not use up the
    /// delivery's retry schedule (the breaker chose it; it waits with the webhook's backlog).
    pub probe: bool,
}

/// What an attempt's answer does to its whole webhook, shared by every process through the
/// webhook's row (`paused_until`, `pause_reason`, `probe_interval_ms`): claims leave out a
/// webhook whose `paused_until` is still to come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steer {
    /// A 429 or 503 with `Retry-After`: the webhook waits until then (a longer pause already
    /// written stays). The endpoint answered, so an open breaker closes. The attempt does not
    /// use up its delivery's retry schedule: the receiver asked it to wait, it did not fail.
    Pause { until: i64 },
    /// The circuit breaker opens, or its probe failed: the webhook waits until `until`, when
    /// one delivery goes as the next probe ([`Store::take_probe`]).
    Breaker { interval_ms: i64, until: i64 },
    /// A 2xx while the breaker was open: it closes and the queued deliveries flow.
    Close,
}

impl Attempt {
    /// Answered with a 2xx, and nothing else went wrong.
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.response_status.is_some_and(|s| (200..300).contains(&s))
    }

    /// Whether a failure counts against the webhook's health: not when the server's own keys
    /// are at fault (a signing secret that cannot be opened) rather than the endpoint.
    fn counts_for_health(&self) -> bool {
        !matches!(self.error, Some((AttemptErrorClass::SigningSecret, _)))
    }

    fn duration_ms(&self) -> i32 {
        self.duration.as_millis().min(i32::MAX as u128) as i32
    }

    fn started_at(&self) -> i64 {
        self.ended_at - i64::from(self.duration_ms())
    }

    /// The request's headers and the answer's (none without an answer) as the attempt's row
    /// stores them: JSON lists of pairs.
    fn headers_json(&self) -> (String, Option<String>) {
        let json = |headers: &Vec<(String, String)>| serde_json::to_string(headers).unwrap_or_default();
        (json(&self.request_headers), self.response_status.map(|_| json(&self.response_headers)))
    }
}

/// What an attempt does to its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    /// The delivery takes this status and next due time, and the claim's lease ends.
    To(DeliveryStatus, Option<i64>),
    /// An attempt on request: the delivery succeeds if it did, and otherwise keeps its
    /// status and schedule.
    UnlessSucceeded,
}

/// When failures turn a webhook off: this many in a row, over at least this long.
#[derive(Clone, Copy, Debug)]
pub struct DisablePolicy {
    pub after_failures: u32,
    pub after_span: Duration,
}

/// A webhook a batch of attempts turned off.
#[derive(Clone, Debug)]
pub struct TurnedOff {
    pub webhook: Arc<webhook::Model>,
    /// [`DisabledReason::Gone`] or [`DisabledReason::Automatic`].
    pub reason: DisabledReason,
    pub at: i64,
}

impl Store<'_> {
    /// Brings back, due at `now`, what was parked for webhook `id`'s breaker after its closing
    /// brought the rest back: a publish or a claim that read the breaker as open just before
    /// it closed, and wrote after (their rows are not the closing's to see). The engine that
    /// closed a breaker calls this a few seconds later. Parked rows lie within a hold of `now`
    /// ([`super::queue::parked_until`]); retries due within it come too, as at the closing.
    /// Nothing moves while the webhook is paused again. Answers how many came back.
    pub async fn unpark_closed(&self, id: &str, now: i64) -> Result<u64> {
        let latest = super::queue::parked_until(Some(PauseReason::CircuitOpen), now);
        let sql = bring_back_sql(
            self.backend(),
            "AND NOT EXISTS (SELECT 1 FROM webhooks WHERE id = $2 AND paused_until > $1)",
        );
        let _turn = self.write_turn().await;
        let moved = self
            .db
            .execute_raw(Statement::from_sql_and_values(
                self.backend(),
                sql,
                [now.into(), id.into(), latest.into()],
            ))
            .await?;
        Ok(moved.rows_affected())
    }

    /// Writes a batch of attempts atomically: the attempts, their deliveries settled or
    /// rescheduled, the hourly counters and the webhooks' health. Answers the webhooks this
    /// turned off, for the caller to announce once the batch is written.
    pub async fn record<A: Borrow<Attempt>>(
        &self,
        attempts: &[A],
        policy: DisablePolicy,
    ) -> Result<Vec<TurnedOff>> {
        let backend = self.backend();
        let rows = crate::rows_per_statement(backend);
        if backend == DatabaseBackend::Postgres
            && attempts.len() <= rows
            && attempts.iter().all(|a| {
                let a: &Attempt = a.borrow();
                a.succeeded() && a.steer.is_none()
            })
        {
            // The usual batch, all successes: one statement, atomic by itself. Planned for
            // each batch: a plan kept from when `deliveries` was small reads the whole table.
            let statement = all_succeeded_statement(attempts);
            let unseen = super::query_planned_each_time(self.db, statement.query(&statement.sql)).await?;
            super::ordering::wake_heads_again(self.db, &unseen, woken_at(attempts)).await;
            return Ok(Vec::new());
        }
        let mut turn = self.write_turn().await;
        if let Some(writer) = turn.as_mut()
            && attempts.iter().all(|a| {
                let a: &Attempt = a.borrow();
                a.succeeded() && a.steer.is_none() && !a.ordered
            })
        {
            // The usual batch on SQLite: its statements as one transaction in one hand-over
            // to SQLite's thread.
            writer.transaction(all_succeeded_statements(backend, attempts)).await?;
            return Ok(Vec::new());
        }
        let txn = self.db.begin().await?;
        let mut unseen = Vec::new();
        for chunk in attempts.chunks(rows) {
            for statement in settle_statements(backend, chunk) {
                txn.execute_raw(statement).await?;
            }
            let ordered: Vec<String> = chunk
                .iter()
                .map(Borrow::borrow)
                .filter(|a: &&Attempt| a.ordered)
                .map(|a| a.delivery_id.clone())
                .collect();
            unseen.extend(super::ordering::wake_heads(&txn, &ordered, woken_at(chunk)).await?);
        }
        let (sql, values) = count_hours_sql(attempts, 0);
        txn.execute_raw(super::statement(backend, sql, values)).await?;
        // Health, in the order the attempts ended. A run of successes is one write per webhook.
        let mut succeeded: Vec<(&str, i64)> = Vec::new();
        let mut turned_off = Vec::new();
        for a in attempts {
            let a: &Attempt = a.borrow();
            let id = a.webhook.id.as_str();
            if a.succeeded() {
                match succeeded.iter_mut().find(|(w, _)| *w == id) {
                    Some(entry) => entry.1 = a.ended_at,
                    None => succeeded.push((id, a.ended_at)),
                }
                continue;
            }
            if !a.counts_for_health() {
                continue;
            }
            if let Some(i) = succeeded.iter().position(|(w, _)| *w == id) {
                let (_, at) = succeeded.remove(i);
                reset_health(&txn, id, at).await?;
            }
            let gone = a.response_status == Some(410);
            if let Some(reason) = count_failure(&txn, &a.webhook.id, a.ended_at, gone, policy).await? {
                turned_off.push(TurnedOff { webhook: a.webhook.clone(), reason, at: a.ended_at });
            }
        }
        for (id, at) in succeeded {
            reset_health(&txn, id, at).await?;
        }
        write_steers(&txn, attempts).await?;
        txn.commit().await?;
        drop(turn);
        super::ordering::wake_heads_again(self.db, &unseen, woken_at(attempts)).await;
        Ok(turned_off)
    }
}

/// When the keys of ordered attempts move on: as their latest attempt ended.
fn woken_at<A: Borrow<Attempt>>(attempts: &[A]) -> i64 {
    attempts.iter().map(|a| a.borrow()).filter(|a| a.ordered).map(|a| a.ended_at).max().unwrap_or_default()
}

/// The batch's steering, in the order the attempts ended; of a run of `Retry-After` pauses of
/// one webhook only the longest is written.
async fn write_steers<A: Borrow<Attempt>>(txn: &impl ConnectionTrait, attempts: &[A]) -> Result<()> {
    let mut steers: Vec<(&str, Steer, i64)> = Vec::new();
    for a in attempts {
        let a: &Attempt = a.borrow();
        let Some(steer) = a.steer else { continue };
        let id = a.webhook.id.as_str();
        match (steers.last_mut(), steer) {
            (Some((last, Steer::Pause { until: longest }, _)), Steer::Pause { until }) if *last == id => {
                *longest = (*longest).max(until);
            }
            _ => steers.push((id, steer, a.ended_at)),
        }
    }
    for (id, steer, at) in steers {
        // An open breaker that closes, or gives way to a receiver's `Retry-After`, ends
        // earlier than the claims that parked its deliveries read ([`super::queue`]): they
        // come back to the new end (retries scheduled after the breaker's end keep theirs).
        let ends = match steer {
            Steer::Close => Some(at),
            Steer::Pause { until } => Some(until),
            Steer::Breaker { .. } => None,
        };
        if let Some(end) = ends {
            unpark(txn, id, end).await?;
        }
        let (sql, values): (&str, Vec<sea_orm::Value>) = match steer {
            Steer::Pause { until } => (
                "UPDATE webhooks SET paused_until = $1, pause_reason = $3, probe_interval_ms = NULL \
                 WHERE id = $2 AND (pause_reason IS NULL OR pause_reason <> $3 \
                 OR paused_until IS NULL OR paused_until < $1)",
                vec![until.into(), id.into(), PauseReason::RetryAfter.as_str().into()],
            ),
            Steer::Breaker { interval_ms, until } => (
                "UPDATE webhooks SET paused_until = $1, pause_reason = $4, probe_interval_ms = $2 \
                 WHERE id = $3",
                vec![until.into(), interval_ms.into(), id.into(), PauseReason::CircuitOpen.as_str().into()],
            ),
            Steer::Close => (
                "UPDATE webhooks SET paused_until = NULL, pause_reason = NULL, probe_interval_ms = NULL \
                 WHERE id = $1 AND pause_reason = $2",
                vec![id.into(), PauseReason::CircuitOpen.as_str().into()],
            ),
        };
        txn.execute_raw(Statement::from_sql_and_values(txn.get_database_backend(), sql, values)).await?;
    }
    Ok(())
}

/// Brings webhook `id`'s deliveries parked for its open breaker (due after `end`, up to a hold
/// past its next probe: [`super::queue::parked_until`]) back to `end`, retries due within
/// that time included: the endpoint answers again. Nothing is read unless the breaker is open:
/// a receiver's pauses, one after another, cost one read of the webhook's row.
async fn unpark(txn: &impl ConnectionTrait, id: &str, end: i64) -> Result<()> {
    let backend = txn.get_database_backend();
    let open = txn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT paused_until FROM webhooks WHERE id = $1 AND pause_reason = $2",
            [id.into(), PauseReason::CircuitOpen.as_str().into()],
        ))
        .await?;
    let Some(until) = open.map(|r| r.try_get::<Option<i64>>("", "paused_until")).transpose()?.flatten()
    else {
        return Ok(());
    };
    let parked = super::queue::parked_until(Some(PauseReason::CircuitOpen), until);
    if parked <= end {
        return Ok(());
    }
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        bring_back_sql(backend, ""),
        [end.into(), id.into(), parked.into()],
    ))
    .await?;
    Ok(())
}

/// Brings webhook `$2`'s pending deliveries due after `$1`, up to `$3`, back to `$1`, when
/// `extra` (a further condition) holds. It rewrites `updated_at` as an ordering wake-up does,
/// so a claim that read the row before (PostgreSQL) does not park it again
/// ([`super::ordering::PARK_ONLY_UNCHANGED`]).
fn bring_back_sql(backend: DatabaseBackend, extra: &str) -> String {
    let bump = if backend == DatabaseBackend::Postgres { "GREATEST" } else { "MAX" };
    format!(
        "UPDATE deliveries SET next_attempt_at = $1, updated_at = {bump}(updated_at + 1, $1) \
         WHERE webhook_id = $2 AND status = 'pending' AND next_attempt_at > $1 AND next_attempt_at <= $3 {extra}"
    )
}

/// A chunk's attempts inserted, and their deliveries settled or rescheduled.
fn settle_statements<A: Borrow<Attempt>>(backend: DatabaseBackend, chunk: &[A]) -> [Statement; 2] {
    let (sql, values) = insert_attempts_sql(chunk, 0);
    let insert = super::statement(backend, sql, values);
    let (list, mut update, values) = update_deliveries_sql(chunk, 0);
    if backend == DatabaseBackend::Postgres {
        update.push_str(UPDATE_BY_PRIMARY_KEY);
    }
    [insert, super::statement(backend, format!("WITH {list} {update}"), values)]
}

/// SQLite's batch of successes of unordered deliveries, none steering its webhook: each chunk
/// settled, the hourly counters, and one health reset per webhook, at its latest success.
/// What the general path writes for such a batch, with no statement whose answer it needs.
pub fn all_succeeded_statements<A: Borrow<Attempt>>(
    backend: DatabaseBackend,
    attempts: &[A],
) -> Vec<Statement> {
    let mut statements: Vec<Statement> = attempts
        .chunks(crate::rows_per_statement(backend))
        .flat_map(|chunk| settle_statements(backend, chunk))
        .collect();
    let (sql, values) = count_hours_sql(attempts, 0);
    statements.push(super::statement(backend, sql, values));
    let mut latest: Vec<(&str, i64)> = Vec::new();
    for a in attempts {
        let a: &Attempt = a.borrow();
        match latest.iter_mut().find(|(w, _)| *w == a.webhook.id) {
            Some(entry) => entry.1 = entry.1.max(a.ended_at),
            None => latest.push((&a.webhook.id, a.ended_at)),
        }
    }
    statements.extend(latest.into_iter().map(|(id, at)| reset_health_statement(backend, id, at)));
    statements
}

/// A success ends the webhook's run of failures.
async fn reset_health(txn: &impl ConnectionTrait, webhook_id: &str, at: i64) -> Result<()> {
    txn.execute_raw(reset_health_statement(txn.get_database_backend(), webhook_id, at)).await?;
    Ok(())
}

fn reset_health_statement(backend: DatabaseBackend, webhook_id: &str, at: i64) -> Statement {
    super::statement(
        backend,
        "UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL, last_success_at = $1 \
         WHERE id = $2"
            .to_string(),
        vec![at.into(), webhook_id.into()],
    )
}

/// Counts the failure against the webhook; returns the reason when this failure turned the
/// webhook off.
async fn count_failure(
    txn: &impl ConnectionTrait,
    webhook_id: &str,
    now: i64,
    gone: bool,
    policy: DisablePolicy,
) -> Result<Option<DisabledReason>> {
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1, \
             failing_since = COALESCE(failing_since, $1) WHERE id = $2 \
             RETURNING consecutive_failures, failing_since",
            [now.into(), webhook_id.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let failures: i32 = row.try_get("", "consecutive_failures")?;
    let since: Option<i64> = row.try_get("", "failing_since")?;
    let Some(reason) = turn_off_reason(failures, since, now, gone, policy) else {
        return Ok(None);
    };
    let changed =
        super::webhooks::turn_off(txn, super::webhooks::Which::One(webhook_id), reason, now).await?;
    Ok((changed == 1).then_some(reason))
}

/// Whether a webhook with this run of failures is turned off: at once when the endpoint
/// answered 410 Gone, or once the run is long enough both in count and in time.
pub fn turn_off_reason(
    failures: i32,
    since: Option<i64>,
    now: i64,
    gone: bool,
    policy: DisablePolicy,
) -> Option<DisabledReason> {
    if gone {
        Some(DisabledReason::Gone)
    } else if failures as u32 >= policy.after_failures
        && now - since.unwrap_or(now) >= policy.after_span.as_millis() as i64
    {
        Some(DisabledReason::Automatic)
    } else {
        None
    }
}

/// The attempts as one multi-row insert, its placeholders numbered after `offset`.
pub fn insert_attempts_sql<A: Borrow<Attempt>>(
    attempts: &[A],
    offset: usize,
) -> (String, Vec<sea_orm::Value>) {
    const COLS: usize = 13;
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(attempts.len() * COLS);
    for a in attempts {
        let a: &Attempt = a.borrow();
        let (request_headers, response_headers) = a.headers_json();
        let (error_class, error_message) = match &a.error {
            Some((class, message)) => (Some(class.as_str()), Some(message.clone())),
            None => (None, None),
        };
        values.extend([
            uuid::Uuid::now_v7().to_string().into(),
            a.delivery_id.clone().into(),
            a.webhook.id.clone().into(),
            a.trigger.as_str().into(),
            a.started_at().into(),
            a.duration_ms().into(),
            a.webhook.url.clone().into(),
            request_headers.into(),
            a.response_status.map(i32::from).into(),
            response_headers.into(),
            a.response_body.clone().into(),
            error_class.into(),
            error_message.into(),
        ]);
    }
    let sql = format!(
        "INSERT INTO attempts (id, delivery_id, webhook_id, trigger, started_at, duration_ms, url, \
         request_headers, response_status, response_headers, response_body, error_class, error_message) \
         VALUES {}",
        placeholders(attempts.len(), COLS, offset)
    );
    (sql, values)
}

/// A webhook and the start of an hour.
type HourKey<'a> = (&'a str, i64);

/// Adds the attempts to their webhooks' hourly counters (the health chart, the admin
/// overview): one multi-row upsert, a row per webhook and hour, adding (succeeded, failed,
/// duration in ms).
pub fn count_hours_sql<A: Borrow<Attempt>>(attempts: &[A], offset: usize) -> (String, Vec<sea_orm::Value>) {
    let mut counts: Vec<(HourKey<'_>, (i64, i64, i64))> = Vec::new();
    for a in attempts {
        let a: &Attempt = a.borrow();
        let key = (a.webhook.id.as_str(), a.ended_at / HOUR_MS * HOUR_MS);
        let (ok, bad) = if a.succeeded() { (1, 0) } else { (0, 1) };
        let ms = i64::from(a.duration_ms());
        match counts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, c)) => {
                c.0 += ok;
                c.1 += bad;
                c.2 += ms;
            }
            None => counts.push((key, (ok, bad, ms))),
        }
    }
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(counts.len() * 5);
    for ((webhook, hour), (ok, bad, ms)) in &counts {
        values.extend([(*webhook).into(), (*hour).into(), (*ok).into(), (*bad).into(), (*ms).into()]);
    }
    let sql = format!(
        "INSERT INTO webhook_hours (webhook_id, hour, succeeded, failed, duration_ms) VALUES {} {HOURS_ADD}",
        placeholders(counts.len(), 5, offset)
    );
    (sql, values)
}

/// Settles or reschedules the attempts' deliveries: a `v (...) AS (VALUES ...)` list for a
/// `WITH`, and the update that reads it.
pub fn update_deliveries_sql<A: Borrow<Attempt>>(
    attempts: &[A],
    offset: usize,
) -> (String, String, Vec<sea_orm::Value>) {
    // Per row: id, new status (NULL keeps it), whether next_attempt_at changes, its new value,
    // whether the lease ends, HTTP status, duration, time, whether the attempt was a manual
    // resend (counted apart: it does not use up the retry schedule).
    const TYPES: [&str; 9] =
        ["TEXT", "TEXT", "INTEGER", "BIGINT", "INTEGER", "INTEGER", "INTEGER", "BIGINT", "INTEGER"];
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(attempts.len() * TYPES.len());
    for a in attempts {
        let a: &Attempt = a.borrow();
        let (status, set_next, next, release) = settled_state(a);
        values.extend([
            a.delivery_id.clone().into(),
            status.map(str::to_string).into(),
            set_next.into(),
            next.into(),
            release.into(),
            a.response_status.map(i32::from).into(),
            a.duration_ms().into(),
            a.ended_at.into(),
            counted_apart(a).into(),
        ]);
    }
    let rows = typed_placeholders(attempts.len(), &TYPES, offset);
    let list = format!(
        "v (id, status, set_next, next_at, release_lease, code, duration, at, manual) AS (VALUES {rows})"
    );
    (list, SETTLE.to_string(), values)
}

/// The update of [`update_deliveries_sql`], reading its list `v`.
const SETTLE: &str = "UPDATE deliveries SET attempts = attempts + 1, manual_attempts = manual_attempts + v.manual, \
     status = COALESCE(v.status, deliveries.status), \
     next_attempt_at = CASE WHEN v.set_next = 1 THEN v.next_at ELSE deliveries.next_attempt_at END, \
     leased_by = CASE WHEN v.release_lease = 1 THEN NULL ELSE deliveries.leased_by END, \
     last_status_code = v.code, last_duration_ms = v.duration, updated_at = v.at \
     FROM v WHERE deliveries.id = v.id";

/// The hourly counters' upsert adds to a row already there.
const HOURS_ADD: &str = "ON CONFLICT (webhook_id, hour) DO UPDATE SET succeeded = webhook_hours.succeeded + excluded.succeeded, \
     failed = webhook_hours.failed + excluded.failed, duration_ms = webhook_hours.duration_ms + excluded.duration_ms";

/// What an attempt does to its delivery's row: the new status (`None` keeps it), whether
/// `next_attempt_at` changes and to what, and whether the lease ends.
fn settled_state(a: &Attempt) -> (Option<&'static str>, i32, Option<i64>, i32) {
    match a.settle {
        Settle::To(status, next) => (Some(status.as_str()), 1, next, 1),
        Settle::UnlessSucceeded if a.succeeded() => (Some(DeliveryStatus::Succeeded.as_str()), 1, None, 0),
        Settle::UnlessSucceeded => (None, 0, None, 0),
    }
}

/// 1 when the attempt does not use up its delivery's retry schedule: a manual resend, an
/// answer that asked to wait, or the circuit breaker's probe.
fn counted_apart(a: &Attempt) -> i32 {
    i32::from(a.trigger == AttemptTrigger::Manual || a.probe || matches!(a.steer, Some(Steer::Pause { .. })))
}

/// On PostgreSQL, the update's rows found through the primary key, whatever the table's size.
/// Joined to the `VALUES` list alone (or to an `IN` list of its ids), the planner counted
/// the list's rows, priced that many index probes above a scan of the table, and read the
/// whole of `deliveries` for each batch while it held up to some tens of thousands of rows
/// (a hash join over a sequential scan, seen in the delivery bench). An array the planner
/// cannot see into it takes for a few ids, so it probes the key.
pub const UPDATE_BY_PRIMARY_KEY: &str = " AND deliveries.id = ANY(ARRAY(SELECT id FROM v))";

/// A batch of successful attempts for [`all_succeeded_statement`], a column at a time: its
/// deliveries' new state (the columns of [`update_deliveries_sql`]'s list) and the attempts'
/// rows, bound as one typed array each.
#[derive(Default)]
struct SucceededColumns<'a> {
    id: Vec<&'a str>,
    status: Vec<Option<&'static str>>,
    set_next: Vec<i32>,
    next_at: Vec<Option<i64>>,
    release_lease: Vec<i32>,
    code: Vec<Option<i32>>,
    duration: Vec<i32>,
    at: Vec<i64>,
    manual: Vec<i32>,
    attempt_id: Vec<String>,
    webhook_id: Vec<&'a str>,
    trigger: Vec<&'static str>,
    started_at: Vec<i64>,
    url: Vec<&'a str>,
    request_headers: Vec<String>,
    response_headers: Vec<Option<String>>,
    response_body: Vec<Option<&'a str>>,
}

/// [`SucceededColumns`] as `unnest` reads them, in the order they are bound (`$1`–`$17`).
const SUCCEEDED_COLUMNS: &str = "unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::int[], $6::int[], \
     $7::int[], $8::bigint[], $9::int[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::text[], \
     $15::text[], $16::text[], $17::text[]) AS v (id, status, set_next, next_at, release_lease, code, duration, \
     at, manual, attempt_id, webhook_id, trigger, started_at, url, request_headers, response_headers, \
     response_body)";

/// On PostgreSQL, a batch of successful attempts in one statement: the attempts, their
/// deliveries settled, the hourly counters, and each webhook's health reset to its latest
/// success. [`SucceededStatement::query`] binds it.
pub struct SucceededStatement<'a> {
    pub sql: String,
    columns: SucceededColumns<'a>,
    /// When ordered keys move on (`$18`), if the batch holds an ordered attempt.
    woken_at: Option<i64>,
}

impl<'a> SucceededStatement<'a> {
    /// The statement with its values bound, as the text `sql`: [`SucceededStatement::sql`],
    /// or a test's `EXPLAIN` of it. Run by [`super::query_planned_each_time`]: planned for
    /// each batch, not kept as a prepared statement's generic plan.
    pub fn query(
        &'a self,
        sql: &'a str,
    ) -> sea_orm::sqlx::query::Query<'a, sea_orm::sqlx::Postgres, sea_orm::sqlx::postgres::PgArguments> {
        let c = &self.columns;
        // Its text is Hookline's own, built with placeholders for every value.
        let query = sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(sql))
            .bind(&c.id)
            .bind(&c.status)
            .bind(&c.set_next)
            .bind(&c.next_at)
            .bind(&c.release_lease)
            .bind(&c.code)
            .bind(&c.duration)
            .bind(&c.at)
            .bind(&c.manual)
            .bind(&c.attempt_id)
            .bind(&c.webhook_id)
            .bind(&c.trigger)
            .bind(&c.started_at)
            .bind(&c.url)
            .bind(&c.request_headers)
            .bind(&c.response_headers)
            .bind(&c.response_body);
        match self.woken_at {
            Some(at) => query.bind(at),
            None => query,
        }
    }
}

/// On PostgreSQL, a batch of successful attempts in one statement ([`SucceededStatement`]).
///
/// The batch goes as one typed array per column, read side by side by `unnest`, so the
/// statement is cheap to plan whatever the batch's size. As a `VALUES` list of a cast
/// placeholder per cell it cost PostgreSQL about 3 ms of planning per batch of 256; as one
/// JSON parameter read by `json_to_recordset`, parsing the JSON (its headers JSON within
/// JSON) was about 7% of PostgreSQL's CPU at full speed (BENCHMARKS.md, issue 16).
pub fn all_succeeded_statement<A: Borrow<Attempt>>(attempts: &'_ [A]) -> SucceededStatement<'_> {
    let mut c = SucceededColumns::default();
    for a in attempts {
        let a: &Attempt = a.borrow();
        let (status, set_next, next_at, release_lease) = settled_state(a);
        let (request_headers, response_headers) = a.headers_json();
        c.id.push(&a.delivery_id);
        c.status.push(status);
        c.set_next.push(set_next);
        c.next_at.push(next_at);
        c.release_lease.push(release_lease);
        c.code.push(a.response_status.map(i32::from));
        c.duration.push(a.duration_ms());
        c.at.push(a.ended_at);
        c.manual.push(counted_apart(a));
        c.attempt_id.push(uuid::Uuid::now_v7().to_string());
        c.webhook_id.push(&a.webhook.id);
        c.trigger.push(a.trigger.as_str());
        c.started_at.push(a.started_at());
        c.url.push(&a.webhook.url);
        c.request_headers.push(request_headers);
        c.response_headers.push(response_headers);
        c.response_body.push(a.response_body.as_deref());
    }
    // An ordered delivery that succeeded was its key's head: the key's next delivery (the
    // first after it that holds the key) is woken if it is parked. The statement's snapshot
    // still shows the settled ones as they were, hence "after it" rather than "the head". The
    // statement answers the ordered ones behind which it saw nothing of their key
    // ([`super::ordering::wake_heads`]).
    let ordered = attempts.iter().any(|a| a.borrow().ordered);
    let (returning, woken, last) = if ordered {
        (
            " RETURNING deliveries.id, deliveries.webhook_id, deliveries.ordering_key, deliveries.ordering_seq",
            format!(
                "next AS (SELECT s.id AS settled, (SELECT id FROM deliveries AS n WHERE n.webhook_id = s.webhook_id \
                     AND n.ordering_key = s.ordering_key AND n.ordering_seq > s.ordering_seq \
                     AND n.id NOT IN (SELECT id FROM v) AND {ORDERED_PREDICATE} ORDER BY n.ordering_seq LIMIT 1) AS head \
                   FROM settled AS s WHERE s.ordering_key IS NOT NULL), \
                 woken AS (UPDATE deliveries SET {set} WHERE status = 'pending' AND id IN (SELECT head FROM next)), ",
                set = super::ordering::wake_set(DatabaseBackend::Postgres).replace("$1", "$18")
            ),
            "SELECT settled FROM next WHERE head IS NULL",
        )
    } else {
        ("", String::new(), "SELECT 1 WHERE false")
    };
    let sql = format!(
        "WITH v AS MATERIALIZED (SELECT * FROM {SUCCEEDED_COLUMNS}), \
              settled AS ({SETTLE}{UPDATE_BY_PRIMARY_KEY}{returning}), \
              {woken}\
              attempted AS (INSERT INTO attempts (id, delivery_id, webhook_id, trigger, started_at, duration_ms, \
                  url, request_headers, response_status, response_headers, response_body) \
                  SELECT attempt_id, id, webhook_id, trigger, started_at, duration, url, request_headers, code, \
                  response_headers, response_body FROM v), \
              counted AS (INSERT INTO webhook_hours (webhook_id, hour, succeeded, failed, duration_ms) \
                  SELECT webhook_id, at / {HOUR_MS} * {HOUR_MS}, count(*), 0, sum(duration) FROM v GROUP BY 1, 2 \
                  {HOURS_ADD}), \
              latest AS (SELECT webhook_id AS id, max(at) AS at FROM v GROUP BY 1), \
              healthy AS (UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL, \
                  last_success_at = latest.at FROM latest WHERE webhooks.id = latest.id) \
         {last}"
    );
    SucceededStatement { sql, columns: c, woken_at: ordered.then(|| woken_at(attempts)) }
}
