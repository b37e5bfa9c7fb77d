//! The delivery queue: due deliveries claimed with a lease, claims given back, and what a
//! claim's attempts need loaded at once. A claimed delivery's `next_attempt_at` is its lease's
//! end, so a delivery whose process died is simply due again when the lease runs out. On
//! PostgreSQL the claim uses `FOR UPDATE SKIP LOCKED`, so several processes share one queue;
//! SQLite serialises writers, which gives the same guarantee within its single host. Claims
//! read the partial index of due deliveries (`status IN ('pending', 'delivering')`), so they
//! do not sort the backlog. Each claim first parks the ordered deliveries at the front of the
//! queue that their key holds ([`super::ordering`]), so a blocked key costs claims nothing.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, Statement, TransactionTrait,
};

use super::{Store, placeholder_list};
use crate::entities::{delivery, event, webhook};
use crate::error::Result;
use crate::{DeliveryStatus, PauseReason};

/// A delivery leased to an engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    pub id: String,
    pub event_id: String,
    pub webhook_id: String,
    /// Scheduled attempts made so far (manual resends not counted: they do not use up the
    /// retry schedule).
    pub attempts: i32,
}

/// Who holds a lease and until when.
#[derive(Clone, Copy, Debug)]
pub struct Lease<'a> {
    pub holder: &'a str,
    pub until: i64,
}

/// Whether this caller took a circuit breaker's probe ([`Store::take_probe`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeTaken {
    Taken,
    /// Another took it, or the breaker is not open: the webhook's steering as it stands.
    Not {
        paused_until: Option<i64>,
        pause_reason: Option<PauseReason>,
        probe_interval_ms: Option<i64>,
    },
}

/// How many rows at the front of the queue one claim reads to park a paused webhook's
/// deliveries: a few claims clear a front of thousands.
const PAUSED_FRONT: usize = 1024;

/// How long past its next probe an open breaker's deliveries are parked. Its probe is taken by
/// the webhook's id ([`probes`]), and its closing brings them back ([`super::attempts`]), so
/// the probes never make the backlog due; only a breaker open this long past a probe has its
/// backlog come due and parked anew, once per hold.
pub const BREAKER_HOLD_MS: i64 = 3_600_000;

/// Until when a delivery of a webhook paused until `until` for `reason` waits: the pause's
/// end for a receiver's `Retry-After` (it all goes then), [`BREAKER_HOLD_MS`] past the next
/// probe for an open breaker.
pub fn parked_until(reason: Option<PauseReason>, until: i64) -> i64 {
    match reason {
        Some(PauseReason::CircuitOpen) => until.saturating_add(BREAKER_HOLD_MS),
        _ => until,
    }
}

/// Whether a delivery due at `due` waits for its webhook's pause (until `until`, for
/// `reason`): due before the pause ends, or parked past it ([`parked_until`]). A retry
/// scheduled later keeps its own time.
pub fn held_by_pause(reason: Option<PauseReason>, until: i64, due: i64) -> bool {
    due <= parked_until(reason, until)
}

/// How many of an open breaker's oldest pending deliveries a claim looks at for its probe.
const PROBE_FRONT: usize = 16;

/// The deliveries a claim (now at `$n`) takes as the probes of open breakers: for each webhook
/// whose probe came due within the hold, its oldest pending delivery that waits (not due, so
/// never in another claim's locked front) and may go in its key's order. A failed probe's
/// delivery waits with the rest, so one delivery goes as each probe. One index probe of
/// `webhooks_paused`, and for each breaker whose probe is due the first [`PROBE_FRONT`]
/// entries of the webhook's pending deliveries: if all of them are held by their keys, the
/// probe waits for what comes due (a retry, the end of the hold) rather than every claim
/// reading a blocked backlog. The oldest are read as `deliveries`, the name the key's rule
/// ([`super::ordering::CLAIMABLE_IN_ORDER`]) reads its candidate by. `skip` leaves out
/// webhooks (over `probing.id`).
fn probes(n: usize, skip: &str) -> String {
    format!(
        "SELECT (SELECT id FROM (SELECT id, webhook_id, ordering_key, ordering_seq, next_attempt_at \
             FROM deliveries WHERE webhook_id = probing.id AND status = 'pending' \
             ORDER BY id LIMIT {PROBE_FRONT}) AS deliveries \
             WHERE next_attempt_at > ${n} AND {ordered} ORDER BY id LIMIT 1) \
         FROM webhooks AS probing WHERE probing.probe_interval_ms IS NOT NULL \
         AND probing.paused_until <= ${n} AND probing.paused_until > ${n} - {BREAKER_HOLD_MS} {skip}",
        ordered = super::ordering::CLAIMABLE_IN_ORDER.as_str(),
    )
}

/// Whether the queue's first due delivery (now at `$n`) is of a paused webhook: one row read
/// down the due index. A paused webhook's deliveries are never taken, so they gather at the
/// front, and this is how a claim sees them there; ones further back cost it nothing, as it
/// stops once it has its fill.
fn paused_first(n: usize) -> String {
    format!(
        "EXISTS (SELECT 1 FROM (SELECT webhook_id FROM deliveries \
             WHERE status IN ('pending', 'delivering') AND next_attempt_at <= ${n} \
             ORDER BY next_attempt_at LIMIT 1) AS first \
         WHERE first.webhook_id IN (SELECT id FROM webhooks WHERE paused_until > ${n}))"
    )
}

/// Parks the pending deliveries of paused webhooks among the first [`PAUSED_FRONT`] due at
/// `$n`: each becomes due when its webhook's pause ends (a receiver's `Retry-After`), or a
/// hold past an open breaker's next probe ([`parked_until`]), out of the way of every claim
/// until then. Without this a claim would step over every one of them, row by row, holding
/// SQLite's write turn, and they only grow while the pause lasts. A row is parked only as the
/// front read it (a claim or a wake-up since leaves it due), and a pause that ends early
/// brings its parked rows back ([`super::attempts`]). `gate` is a further condition
/// (PostgreSQL's one-time filter).
fn park_paused(n: usize, gate: &str) -> String {
    format!(
        "UPDATE deliveries SET next_attempt_at = CASE WHEN paused.pause_reason = '{open}' \
             THEN paused.paused_until + {BREAKER_HOLD_MS} ELSE paused.paused_until END FROM ( \
             SELECT id, updated_at, webhook_id, status FROM deliveries \
             WHERE status IN ('pending', 'delivering') AND next_attempt_at <= ${n} \
             ORDER BY next_attempt_at LIMIT {PAUSED_FRONT}) AS front, webhooks AS paused \
         WHERE deliveries.id = front.id AND {unchanged} AND front.status = 'pending' \
         AND paused.id = front.webhook_id AND paused.paused_until > ${n} {gate}",
        unchanged = super::ordering::PARK_ONLY_UNCHANGED,
        open = PauseReason::CircuitOpen.as_str(),
    )
}

/// SQLite's claim asks both of its probes at once, with now at `$1`: whether any ordered
/// delivery can hold its key, and [`paused_first`].
static SQLITE_PROBES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} AS any_ordered, {} AS paused_first",
        super::ordering::ANY_ORDERED.as_str(),
        paused_first(1)
    )
});

/// [`park_paused`] as SQLite runs it, on its own with now at `$1`.
static SQLITE_PARK_PAUSED: LazyLock<String> = LazyLock::new(|| park_paused(1, ""));

/// The events and webhooks of a claim, by id.
pub struct Loaded {
    pub events: HashMap<String, Arc<event::Model>>,
    pub webhooks: HashMap<String, Arc<webhook::Model>>,
}

impl Store<'_> {
    /// Leases up to `limit` deliveries due at `now`, oldest due first, leaving out the
    /// webhooks in `leave_out` (full in the claiming process) and the webhooks paused at `now`
    /// (a receiver's `Retry-After`, an open circuit breaker: read down the partial index
    /// `webhooks_paused`). Beyond the limit, one delivery of each open breaker whose probe is
    /// due, to go as the probe ([`Store::take_probe`]).
    pub async fn claim(
        &self,
        lease: Lease<'_>,
        now: i64,
        limit: usize,
        leave_out: &[String],
    ) -> Result<Vec<Claimed>> {
        let backend = self.backend();
        let lock = if backend == DatabaseBackend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
        // The webhooks left out, as a condition on `column`, their placeholders from `$from+1`.
        let left_out = |column: &str, from: usize| {
            if leave_out.is_empty() {
                String::new()
            } else {
                format!("AND {column} NOT IN ({})", placeholder_list(leave_out.len(), from))
            }
        };
        let skip = left_out("webhook_id", 4);
        // An ordered delivery goes only as its key's head (unordered ones skip the check).
        let ordered = super::ordering::CLAIMABLE_IN_ORDER.as_str();
        // First the front of the queue, as this claim reads it, loses the ordered deliveries
        // an earlier one of their key holds: parked, they cost later claims nothing (however
        // many pile up behind a failing head) until their key moves on. A row a wake-up
        // changed since the front read it is left due (PostgreSQL: the settle that woke it may
        // have committed after this statement's snapshot). `now` and `limit` are placeholders
        // `$n` and `$n+1`, the webhooks left out follow from `$n+2`. While no ordered delivery
        // can hold a key (most deployments, most of the time) there is nothing to park, and one
        // probe of the partial index of ordered deliveries skips reading the front: `gate` is
        // that probe on PostgreSQL, evaluated once before the front is read (a one-time filter).
        // SQLite would test it on every row it steps over, so there it is a query of its own.
        let park = |n: usize, gate: &str| {
            format!(
                "UPDATE deliveries SET next_attempt_at = NULL FROM ( \
                     SELECT id, updated_at, webhook_id, ordering_key, ordering_seq, status FROM deliveries \
                     WHERE status IN ('pending', 'delivering') AND next_attempt_at <= ${n} {skip} \
                     AND webhook_id NOT IN (SELECT id FROM webhooks WHERE paused_until > ${n}) \
                     {gate} \
                     ORDER BY next_attempt_at LIMIT ${limit}) AS front \
                 WHERE deliveries.id = front.id AND {unchanged} AND {held}",
                limit = n + 1,
                skip = left_out("webhook_id", n + 1),
                unchanged = super::ordering::PARK_ONLY_UNCHANGED,
                held = super::ordering::HELD_FRONT.as_str()
            )
        };
        // The due deliveries, oldest first, and the probes of open breakers taken by their
        // webhook's id (their parked backlog stays parked). A probe's delivery is not locked
        // by the select: the outer condition, checked again against a row another claim changed
        // meanwhile (PostgreSQL), leaves it to that claim.
        let probes = probes(3, &left_out("probing.id", 4));
        let claim = format!(
            "UPDATE deliveries SET status = 'delivering', leased_by = $1, next_attempt_at = $2, updated_at = $3 \
             WHERE id IN (SELECT id FROM (SELECT id FROM deliveries \
                 WHERE status IN ('pending', 'delivering') AND next_attempt_at <= $3 {skip} \
                 AND {ordered} \
                 AND webhook_id NOT IN (SELECT id FROM webhooks WHERE paused_until > $3) \
                 ORDER BY next_attempt_at LIMIT $4 {lock}) AS due UNION ALL {probes}) \
             AND (next_attempt_at <= $3 OR status = 'pending') \
             RETURNING id, event_id, webhook_id, attempts - manual_attempts AS attempts"
        );
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(4 + leave_out.len());
        values.extend([lease.holder.into(), lease.until.into(), now.into(), (limit as i64).into()]);
        values.extend(leave_out.iter().map(|id| id.clone().into()));
        let turn = self.write_turn().await;
        let rows = if backend == DatabaseBackend::Postgres {
            // One round trip: both parks are steps of the claim's statement. Each writes only
            // rows the claim cannot take (held ones, paused ones), and never the other's.
            let gate = format!("AND {}", super::ordering::ANY_ORDERED.as_str());
            let sql = format!(
                "WITH parked AS ({}), parked_paused AS ({}) {claim}",
                park(3, &gate),
                park_paused(3, &format!("AND {}", paused_first(3)))
            );
            self.db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?
        } else {
            let probe = SQLITE_PROBES.as_str();
            let probe =
                self.db.query_one_raw(Statement::from_sql_and_values(backend, probe, [now.into()])).await?;
            let (any_ordered, paused_first) = match probe {
                Some(r) => (r.try_get::<bool>("", "any_ordered")?, r.try_get::<bool>("", "paused_first")?),
                None => (true, true),
            };
            if any_ordered {
                let park_values = values[2..].to_vec();
                self.db
                    .execute_raw(Statement::from_sql_and_values(backend, park(1, ""), park_values))
                    .await?;
            }
            if paused_first {
                self.db
                    .execute_raw(Statement::from_sql_and_values(
                        backend,
                        SQLITE_PARK_PAUSED.as_str(),
                        [now.into()],
                    ))
                    .await?;
            }
            self.db.query_all_raw(Statement::from_sql_and_values(backend, claim, values)).await?
        };
        drop(turn);
        let mut claimed = Vec::with_capacity(rows.len());
        for r in rows {
            claimed.push(Claimed {
                id: r.try_get("", "id")?,
                event_id: r.try_get("", "event_id")?,
                webhook_id: r.try_get("", "webhook_id")?,
                attempts: r.try_get("", "attempts")?,
            });
        }
        Ok(claimed)
    }

    /// Gives deliveries `holder` claimed back to the queue, due at `now`.
    pub async fn unclaim(&self, holder: &str, ids: &[String], now: i64) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let _turn = self.write_turn().await;
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(2 + ids.len());
        values.extend([now.into(), holder.into()]);
        values.extend(ids.iter().map(|id| id.clone().into()));
        self.db
            .execute_raw(Statement::from_sql_and_values(
                self.backend(),
                format!(
                    "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, leased_by = NULL \
                     WHERE leased_by = $2 AND id IN ({})",
                    placeholder_list(ids.len(), 2)
                ),
                values,
            ))
            .await?;
        Ok(())
    }

    /// The events and webhooks of claimed deliveries: two queries however many deliveries
    /// the claim holds. `webhook_ids` are the claims' webhooks, each once ([`webhook_ids`]).
    /// (Their signing secrets are opened by the services, [`crate::Services::signing_secrets_of`].)
    pub async fn load(&self, claims: &[Claimed], webhook_ids: &[String]) -> Result<Loaded> {
        if claims.is_empty() {
            return Ok(Loaded { events: HashMap::new(), webhooks: HashMap::new() });
        }
        let mut event_ids: Vec<&str> = claims.iter().map(|c| c.event_id.as_str()).collect();
        event_ids.sort_unstable();
        event_ids.dedup();
        let events = event::Entity::find()
            .filter(event::Column::Id.is_in(event_ids))
            .all(self.db)
            .await?
            .into_iter()
            .map(|e| (e.id.clone(), Arc::new(e)))
            .collect();
        let webhooks = webhook::Entity::find()
            .filter(webhook::Column::Id.is_in(webhook_ids.iter().cloned()))
            .all(self.db)
            .await?
            .into_iter()
            .map(|w| (w.id.clone(), Arc::new(w)))
            .collect();
        Ok(Loaded { events, webhooks })
    }

    /// Settles a delivery that `holder` claimed without making an attempt (its webhook was
    /// turned off or deleted since it was queued).
    pub async fn settle_unattempted(
        &self,
        id: &str,
        holder: &str,
        status: DeliveryStatus,
        now: i64,
    ) -> Result<()> {
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await?;
        let settled = txn
            .execute_raw(Statement::from_sql_and_values(
                self.backend(),
                "UPDATE deliveries SET status = $1, next_attempt_at = NULL, leased_by = NULL, updated_at = $2 \
                 WHERE id = $3 AND leased_by = $4",
                [status.as_str().into(), now.into(), id.into(), holder.into()],
            ))
            .await?;
        // An ordered one's key moves on: its next delivery is woken.
        let unseen = match settled.rows_affected() {
            1 => super::ordering::wake_heads(&txn, &[id.to_string()], now).await?,
            _ => Vec::new(),
        };
        txn.commit().await?;
        super::ordering::wake_heads_again(self.db, &unseen, now).await;
        Ok(())
    }

    /// A delivery with its webhook and event, for an attempt made on request (not leased:
    /// such an attempt runs beside the schedule). `None` when the delivery does not exist.
    pub async fn delivery_with_parts(
        &self,
        id: &str,
    ) -> Result<Option<(delivery::Model, Option<webhook::Model>, Option<event::Model>)>> {
        let Some(found) = delivery::Entity::find_by_id(id).one(self.db).await? else {
            return Ok(None);
        };
        let hook = webhook::Entity::find_by_id(&found.webhook_id).one(self.db).await?;
        let ev = event::Entity::find_by_id(&found.event_id).one(self.db).await?;
        Ok(Some((found, hook, ev)))
    }

    /// Takes the open circuit breaker's next probe of the webhook at `now`: true for the one
    /// caller (of every process) that moved the webhook's `paused_until` on by its probe
    /// interval; the others find it in the future. Otherwise answers the webhook's steering as
    /// it stands (`paused_until`, `pause_reason`, `probe_interval_ms`), for the engine to follow.
    pub async fn take_probe(&self, webhook_id: &str, now: i64) -> Result<ProbeTaken> {
        let turn = self.write_turn().await;
        let taken = self
            .db
            .execute_raw(Statement::from_sql_and_values(
                self.backend(),
                "UPDATE webhooks SET paused_until = $1 + probe_interval_ms \
                 WHERE id = $2 AND pause_reason = $3 AND probe_interval_ms IS NOT NULL \
                 AND (paused_until IS NULL OR paused_until <= $1)",
                [now.into(), webhook_id.into(), PauseReason::CircuitOpen.as_str().into()],
            ))
            .await?
            .rows_affected()
            == 1;
        drop(turn);
        if taken {
            return Ok(ProbeTaken::Taken);
        }
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.backend(),
                "SELECT paused_until, pause_reason, probe_interval_ms FROM webhooks WHERE id = $1",
                [webhook_id.into()],
            ))
            .await?;
        Ok(match row {
            Some(r) => ProbeTaken::Not {
                paused_until: r.try_get("", "paused_until")?,
                pause_reason: r
                    .try_get::<Option<String>>("", "pause_reason")?
                    .as_deref()
                    .and_then(PauseReason::parse),
                probe_interval_ms: r.try_get("", "probe_interval_ms")?,
            },
            None => ProbeTaken::Not { paused_until: None, pause_reason: None, probe_interval_ms: None },
        })
    }

    /// Deliveries a claim could take at `now` (as the claim selects them, down the same
    /// partial index), counted up to `cap`.
    pub async fn count_due(&self, now: i64, cap: u64) -> Result<i64> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.backend(),
                format!(
                    "SELECT COUNT(*) AS due FROM (SELECT 1 FROM deliveries \
                     WHERE status IN ('pending', 'delivering') AND next_attempt_at <= $1 LIMIT {cap}) AS due_now"
                ),
                [now.into()],
            ))
            .await?;
        match row {
            Some(row) => Ok(row.try_get("", "due")?),
            None => Ok(0),
        }
    }
}

/// The claims' webhooks, each once, in order.
pub fn webhook_ids(claims: &[Claimed]) -> Vec<String> {
    let mut ids: Vec<String> = claims.iter().map(|c| c.webhook_id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}
