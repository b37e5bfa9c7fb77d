//! Retention: events, deliveries and attempts older than `HOOKLINE_RETENTION` (or than a
//! store's own, shorter retention) are deleted, and past `HOOKLINE_PAYLOAD_RETENTION` event
//! payloads and attempts' response bodies and headers are cleared while the rows keep saying
//! what happened (status, codes, times).
//!
//! A [`Pruner`] does this in rounds of small steps: each step is one short statement (or
//! transaction) over at most [`batch`] rows of a primary-key or index range, so it never holds
//! a lock that publishing or delivery waits on for long. Ids are UUIDv7, so id order is time
//! order and "older than T" is an id range ([`cutoff_id`]). A delivery still retrying (pending
//! or delivering) is never deleted, nor is its event, nor its event's payload; attempts go
//! with their delivery; an event goes only when none of its deliveries stays.

use std::collections::VecDeque;
use std::time::Duration;

use sea_orm::{ColumnTrait, DatabaseBackend, EntityTrait, QueryFilter};

use crate::entities::{store, webhook};
use crate::error::{Error, Result};
use crate::store::retention::PruneRange;
use crate::{HOUR_MS, Services, now_ms};
use hookline_domain::{Scope, TenantType};

pub(crate) const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// The shortest retention a store may have: as `HOOKLINE_RETENTION`'s.
const MIN_RETENTION: Duration = Duration::from_secs(3600);
/// Webhooks whose hourly counters one step trims.
const HOURS_WEBHOOKS: u64 = 100;

/// Rows one step touches at most. SQLite has one writer: its steps are smaller, so publishing
/// and delivery wait less for each.
fn batch(backend: DatabaseBackend) -> u64 {
    match backend {
        DatabaseBackend::Sqlite => 250,
        _ => 1000,
    }
}

/// `7d`, `12h`, `90m`, `3600s`, `250ms`: a retention as the settings and the API write it.
pub fn parse_retention(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms).map(Duration::from_millis)
}

/// A retention in its largest whole unit: `7d`, `36h`, `90m`.
pub fn format_retention(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// "30 days", "12 hours", "90 minutes": a retention as a person reads it.
pub(crate) fn human_retention(d: Duration) -> String {
    let plural = |n: u64, unit: &str| if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") };
    let secs = d.as_secs();
    if secs >= 86_400 && secs.is_multiple_of(86_400) {
        plural(secs / 86_400, "day")
    } else if secs >= 3600 && secs.is_multiple_of(3600) {
        plural(secs / 3600, "hour")
    } else {
        plural(secs.div_ceil(60).max(1), "minute")
    }
}

/// The smallest UUIDv7 (as text) of the millisecond `ms`: every id made before `ms` sorts
/// below it, every id made at or after it does not.
pub(crate) fn cutoff_id(ms: i64) -> String {
    let ms = ms.clamp(0, (1 << 48) - 1) as u64;
    format!("{:08x}-{:04x}-0000-0000-000000000000", ms >> 16, ms & 0xffff)
}

pub use crate::store::retention::PruneReport;

/// One range of one table still to go through. `after` is the cursor: everything up to it
/// (exclusive lower bound) is done; `before` is the cutoff id (exclusive upper bound).
#[derive(Debug)]
enum Task {
    /// Settled deliveries and their attempts; of one webhook (a store with its own
    /// retention) or of every webhook.
    Deliveries { webhook: Option<String>, after: String, before: String },
    /// Events none of whose deliveries stays; of one store or of every tenant.
    Events { store: Option<String>, after: String, before: String },
    /// Attempts' response bodies and headers.
    ResponseBodies { after: String, before: String },
    /// Event payloads, except of events still being delivered.
    Payloads { after: String, before: String },
    /// Every webhook's hourly counters up to `through` (an hour's start), a few webhooks a step.
    Hours { after: String, through: i64 },
    /// One store's hourly counters in (`after`, `through`], in one step.
    StoreHours { store: String, after: i64, through: i64 },
    /// The admin overview's daily rollups, a day a step (they ride the round: housekeeping
    /// every minute, in small steps, after the hourly counters were pruned).
    Rollups,
}

/// Pruning in rounds of small steps: [`Pruner::start`] plans a round from the settings and
/// the stores' own retentions, [`Pruner::step`] does one batch of it. The janitor holds one
/// and steps it between its other chores; `hookline prune` runs a round to its end.
#[derive(Debug)]
pub struct Pruner {
    dry_run: bool,
    tasks: VecDeque<Task>,
    /// The current round's total so far.
    report: PruneReport,
}

impl Pruner {
    /// A pruner that deletes and clears, or with `dry_run` only counts what it would.
    pub fn new(dry_run: bool) -> Self {
        Pruner { dry_run, tasks: VecDeque::new(), report: PruneReport::default() }
    }

    /// Whether a round is under way.
    pub fn in_round(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// Plans a new round: the cutoffs are fixed now, so a round ends however fast rows come.
    pub async fn start(&mut self, services: &Services) -> Result<()> {
        let settings = &services.settings;
        let now = now_ms();
        let retention = settings.retention.as_millis() as i64;
        let cut = now - retention;
        let payload_cut = now - settings.payload_retention.min(settings.retention).as_millis() as i64;
        self.report = PruneReport::default();
        self.tasks.clear();
        // Stores with a shorter retention first: their range is what the global one leaves.
        let shortened = store::Entity::find()
            .filter(store::Column::RetentionMs.is_not_null())
            .filter(store::Column::RetentionMs.lt(retention))
            .filter(store::Column::DeletedAt.is_null())
            .all(&services.db)
            .await?;
        for s in shortened {
            let store_cut = now - s.retention_ms.unwrap_or(retention).max(MIN_RETENTION.as_millis() as i64);
            let hooks: Vec<String> = webhook::Entity::find()
                .filter(webhook::Column::TenantType.eq(TenantType::Store))
                .filter(webhook::Column::TenantId.eq(&s.id))
                .all(&services.db)
                .await?
                .into_iter()
                .map(|w| w.id)
                .collect();
            for id in hooks {
                self.tasks.push_back(Task::Deliveries {
                    webhook: Some(id),
                    after: cutoff_id(cut),
                    before: cutoff_id(store_cut),
                });
            }
            self.tasks.push_back(Task::Events {
                store: Some(s.id.clone()),
                after: cutoff_id(cut),
                before: cutoff_id(store_cut),
            });
            self.tasks.push_back(Task::StoreHours {
                store: s.id,
                after: cut - HOUR_MS,
                through: store_cut - HOUR_MS,
            });
        }
        self.tasks.push_back(Task::Deliveries {
            webhook: None,
            after: String::new(),
            before: cutoff_id(cut),
        });
        self.tasks.push_back(Task::Events { store: None, after: String::new(), before: cutoff_id(cut) });
        if payload_cut > cut {
            let from = payload_done_until(services, cut, payload_cut).await?;
            // Attempts first: a round cut short leaves events marked no further than attempts.
            self.tasks
                .push_back(Task::ResponseBodies { after: cutoff_id(from), before: cutoff_id(payload_cut) });
            self.tasks.push_back(Task::Payloads { after: cutoff_id(from), before: cutoff_id(payload_cut) });
        }
        self.tasks.push_back(Task::Hours { after: String::new(), through: cut - HOUR_MS });
        if !self.dry_run {
            self.tasks.push_back(Task::Rollups);
        }
        Ok(())
    }

    /// One step of the round: at most one batch of rows. Answers what it did (or in a dry
    /// run, would do); [`Pruner::in_round`] turns false once the round is over.
    pub async fn step(&mut self, services: &Services) -> Result<PruneReport> {
        let Some(task) = self.tasks.front_mut() else {
            return Ok(PruneReport::default());
        };
        let (done, finished) = run_step(services, task, self.dry_run).await?;
        if finished {
            self.tasks.pop_front();
        }
        self.report.add(done);
        Ok(done)
    }

    /// What the current (or last) round has done so far.
    pub fn report(&self) -> PruneReport {
        self.report
    }
}

impl Services {
    /// Runs a whole round of pruning now (`hookline prune`), or with `dry_run` counts what it
    /// would delete and clear without changing anything.
    pub async fn prune(&self, dry_run: bool) -> Result<PruneReport> {
        let mut pruner = Pruner::new(dry_run);
        pruner.start(self).await?;
        while pruner.in_round() {
            pruner.step(self).await?;
        }
        Ok(pruner.report())
    }

    /// Sets (or with `None` clears) how long a store's events, deliveries and attempts are
    /// kept: at least an hour, and no longer than `HOOKLINE_RETENTION` (admins only).
    pub async fn set_store_retention(
        &self,
        scope: &Scope,
        store_id: &str,
        retention: Option<&str>,
    ) -> Result<store::Model> {
        if !scope.is_admin() {
            return Err(Error::Forbidden("Only admins set a store's retention.".into()));
        }
        let found = self.live_store(store_id).await?.ok_or(Error::NotFound("store"))?;
        let retention = match retention.map(str::trim).filter(|r| !r.is_empty()) {
            None => None,
            Some(text) => {
                let d = parse_retention(text).ok_or_else(|| {
                    Error::invalid("retention", format!("{text:?} is not a retention like 7d, 12h or 90m."))
                })?;
                if d < MIN_RETENTION {
                    return Err(Error::unprocessable("retention", "A store's retention is at least 1h."));
                }
                if d > self.settings.retention {
                    return Err(Error::unprocessable(
                        "retention",
                        format!(
                            "A store's retention can only be shorter than HOOKLINE_RETENTION ({}); {text} is longer.",
                            format_retention(self.settings.retention)
                        ),
                    ));
                }
                Some(d.as_millis() as i64)
            }
        };
        store::Entity::update_many()
            .col_expr(store::Column::RetentionMs, sea_orm::sea_query::Expr::value(retention))
            .filter(store::Column::Id.eq(&found.id))
            .exec(&self.db)
            .await?;
        Ok(store::Model { retention_ms: retention, ..found })
    }

    /// How long the store's rows are kept: its own retention, or `HOOKLINE_RETENTION`.
    pub fn store_retention(&self, store: &store::Model) -> Duration {
        store
            .retention_ms
            .map(|ms| Duration::from_millis(ms.max(0) as u64))
            .filter(|d| *d < self.settings.retention)
            .unwrap_or(self.settings.retention)
    }

    /// What the log shows instead of a cleared payload.
    pub fn payload_removed_note(&self, pruned_at: i64) -> String {
        format!(
            "The payload was removed on {}, after the payload retention of {}. The delivery's status, \
             response codes and times are kept.",
            crate::iso8601(pruned_at).replace('T', " ").replace('Z', " UTC"),
            human_retention(self.settings.payload_retention.min(self.settings.retention))
        )
    }
}

/// How far payloads are cleared already, as a time in [`cut`, `payload_cut`]: the latest
/// time whose first event is cleared, found by bisection on the primary key (a few dozen
/// single-row reads), so a round does not read again what earlier rounds (of this process or
/// another, before a restart) went through.
async fn payload_done_until(services: &Services, cut: i64, payload_cut: i64) -> Result<i64> {
    let store = services.store();
    let cleared_at = |t: i64| async move { store.payload_cleared_from(&cutoff_id(t)).await };
    let (mut lo, mut hi) = (cut, payload_cut);
    if !cleared_at(lo).await? {
        return Ok(lo);
    }
    while hi - lo > 1000 {
        let mid = lo + (hi - lo) / 2;
        if cleared_at(mid).await? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// Does one batch of `task`; answers what it did and whether the task is finished.
async fn run_step(services: &Services, task: &mut Task, dry_run: bool) -> Result<(PruneReport, bool)> {
    let limit = batch(services.store().backend());
    let mut done = PruneReport::default();
    let (range, after, before) = match &*task {
        Task::StoreHours { store, after, through } => {
            done.webhook_hours = services.store().prune_store_hours(store, *after, *through, dry_run).await?;
            if done.webhook_hours > 0 && !dry_run {
                // The overview's rollups of those days are read from the hours again.
                services.store().forget_rolled_days(*after + 1, *through).await?;
            }
            return Ok((done, true));
        }
        Task::Hours { after, through } => {
            let Some((last, hours)) =
                services.store().prune_hours(after, *through, HOURS_WEBHOOKS, dry_run).await?
            else {
                return Ok((done, true));
            };
            done.webhook_hours = hours;
            if done.webhook_hours > 0 && !dry_run {
                services.store().forget_rolled_days(0, *through).await?;
            }
            task.advance(last);
            return Ok((done, false));
        }
        Task::Rollups => {
            let more = !dry_run && services.overview_rollup_step().await?;
            return Ok((done, !more));
        }
        Task::Deliveries { webhook, after, before } => {
            (PruneRange::Deliveries { webhook: webhook.clone() }, after.clone(), before.clone())
        }
        Task::Events { store, after, before } => {
            (PruneRange::Events { store: store.clone() }, after.clone(), before.clone())
        }
        Task::ResponseBodies { after, before } => (PruneRange::ResponseBodies, after.clone(), before.clone()),
        Task::Payloads { after, before } => (PruneRange::Payloads, after.clone(), before.clone()),
    };
    let Some((last, done)) = services.store().prune_range(&range, &after, &before, limit, dry_run).await?
    else {
        return Ok((done, true));
    };
    task.advance(last);
    Ok((done, false))
}

impl Task {
    /// Moves the cursor past what a step went through.
    fn advance(&mut self, last: String) {
        match self {
            Task::Deliveries { after, .. }
            | Task::Events { after, .. }
            | Task::ResponseBodies { after, .. }
            | Task::Payloads { after, .. }
            | Task::Hours { after, .. } => *after = last,
            Task::StoreHours { .. } | Task::Rollups => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoff_ids_sort_between_uuidv7s_of_before_and_after() {
        let at = 1_790_000_000_123_i64;
        let id_at = |ms: i64| {
            uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                (ms / 1000) as u64,
                ((ms % 1000) * 1_000_000) as u32,
            ))
            .to_string()
        };
        let cutoff = cutoff_id(at);
        assert!(id_at(at - 1) < cutoff);
        assert!(id_at(at - 86_400_000) < cutoff);
        assert!(id_at(at) >= cutoff);
        assert!(id_at(at + 1) > cutoff);
    }

    #[test]
    fn retentions_parse_and_print_in_their_largest_unit() {
        assert_eq!(parse_retention("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_retention(" 12h "), Some(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_retention("250ms"), Some(Duration::from_millis(250)));
        for bad in ["", "7", "d", "7 days", "-1d", "1.5d", "99999999999999999999d"] {
            assert_eq!(parse_retention(bad), None, "{bad}");
        }
        assert_eq!(format_retention(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(format_retention(Duration::from_secs(36 * 3600)), "36h");
        assert_eq!(format_retention(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(human_retention(Duration::from_secs(30 * 86_400)), "30 days");
        assert_eq!(human_retention(Duration::from_secs(3600)), "1 hour");
    }
}
