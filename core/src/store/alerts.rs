//! Alerts before turn-off: which webhooks the alerts step looks at, the state each one's
//! alerts have announced (`webhooks.alert_*`), the announcements still owed, and whom a
//! store's alerts email.
//!
//! A state moves with a conditional update that names the state it read: when several
//! processes look at the same webhook, one update matches and that process announces it.
//! An announcement is owed from `alert_due`; the process that sends it first moves
//! `alert_due` ahead (a lease), so a process that dies mid-send leaves it to another one
//! later: emails are sent at least once.

use std::time::Duration;

use migration::m20261210_000010_webhook_alerts::WATCH_PREDICATE;
use sea_orm::{ConnectionTrait, EntityTrait, Statement, Value};

use super::Store;
use super::attempts::DisablePolicy;
use crate::entities::webhook;
use crate::error::Result;
// What a webhook's alerts have said: a word of the vocabulary, named here as it always was.
pub use hookline_domain::AlertState;
use hookline_domain::DisabledReason;

/// How many watched webhooks one query reads.
const WATCH_PAGE: u64 = 500;

/// When the alerts speak.
#[derive(Clone, Copy, Debug)]
pub struct AlertPolicy {
    /// How long a streak of failures lasts before the "failing" alert.
    pub failing_after: Duration,
    /// When the engine turns a webhook off.
    pub disable: DisablePolicy,
}

const DAY: Duration = Duration::from_secs(24 * 3600);

impl AlertPolicy {
    /// How far into a streak the "turning off" warning comes: a day before the earliest
    /// turn-off, but not before half the span, so that with the default span of 24 hours
    /// (where "a day before" is the streak's first failure) it still follows the "failing"
    /// alert, about 12 hours before the turn-off.
    pub fn warn_after(&self) -> Duration {
        let span = self.disable.after_span;
        span.saturating_sub(DAY).max(span / 2)
    }

    /// The earliest moment the streak that began at `since` may turn the webhook off.
    pub fn earliest_turn_off(&self, since: i64) -> i64 {
        since.saturating_add(ms(self.disable.after_span))
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A webhook the alerts step looks at, with what decides its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watched {
    pub id: String,
    pub enabled: bool,
    pub disabled_reason: Option<DisabledReason>,
    pub failing_since: Option<i64>,
    pub last_success_at: Option<i64>,
    pub state: Option<AlertState>,
    /// The `failing_since` of the streak `state` is about.
    pub streak: Option<i64>,
    /// When `state` was entered.
    pub at: Option<i64>,
}

/// A state a watched webhook moves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub to: AlertState,
    pub streak: Option<i64>,
}

/// The state a watched webhook moves to now, if it moves: at most one change per change of
/// its health, never back to a state already announced for the same streak.
pub fn next_state(w: &Watched, now: i64, policy: &AlertPolicy) -> Option<Change> {
    if !w.enabled {
        let by_hookline = w.disabled_reason.is_some_and(|r| DisabledReason::BY_HOOKLINE.contains(&r));
        return (by_hookline && w.state != Some(AlertState::Disabled))
            .then_some(Change { to: AlertState::Disabled, streak: w.failing_since.or(w.streak) });
    }
    let alerted =
        matches!(w.state, Some(AlertState::Failing | AlertState::TurningOff | AlertState::Disabled));
    // A success after the streak began ends it; while the webhook is off none can come, so
    // a turned-off webhook recovers with the first success after someone turns it back on.
    if alerted
        && let (Some(began), Some(ok)) = (w.streak.or(w.at), w.last_success_at)
        && ok > began
    {
        return Some(Change { to: AlertState::Recovered, streak: w.streak });
    }
    let since = w.failing_since?;
    let failing_for = now.saturating_sub(since);
    if failing_for < ms(policy.failing_after) {
        return None;
    }
    let stage =
        if failing_for >= ms(policy.warn_after()) { AlertState::TurningOff } else { AlertState::Failing };
    let same_streak = w.streak == Some(since);
    let moves = match w.state {
        None | Some(AlertState::Recovered) => true,
        Some(AlertState::Failing) => !same_streak || stage == AlertState::TurningOff,
        Some(AlertState::TurningOff) | Some(AlertState::Disabled) => !same_streak,
    };
    moves.then_some(Change { to: stage, streak: Some(since) })
}

/// An announcement owed: the webhook as it is now, and the state to announce.
#[derive(Clone, Debug)]
pub struct Owed {
    pub webhook: webhook::Model,
    pub state: AlertState,
    pub streak: Option<i64>,
    pub at: i64,
}

/// Who a store's alert emails go to, and the store's name for their subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipients {
    pub store_name: String,
    pub emails: Vec<String>,
}

impl Store<'_> {
    /// One page of the webhooks the alerts step looks at, in id order after `after`: the
    /// partial index `webhooks_alert_watch`, never the whole table.
    pub async fn watched_webhooks(&self, after: &str) -> Result<Vec<Watched>> {
        let sql = format!(
            "SELECT id, enabled, disabled_reason, failing_since, last_success_at, alert_state, alert_streak, alert_at \
             FROM webhooks WHERE ({WATCH_PREDICATE}) AND id > $1 ORDER BY id LIMIT {WATCH_PAGE}"
        );
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(self.backend(), sql, [after.into()]))
            .await?;
        let mut watched = Vec::with_capacity(rows.len());
        for row in rows {
            watched.push(Watched {
                id: row.try_get("", "id")?,
                enabled: row.try_get("", "enabled")?,
                disabled_reason: row.try_get("", "disabled_reason")?,
                failing_since: row.try_get("", "failing_since")?,
                last_success_at: row.try_get("", "last_success_at")?,
                state: row.try_get("", "alert_state")?,
                streak: row.try_get("", "alert_streak")?,
                at: row.try_get("", "alert_at")?,
            });
        }
        Ok(watched)
    }

    /// Moves a watched webhook to `change`'s state, owing its announcement from `now`, if it
    /// is still as `from` read it; answers whether this call moved it (only that caller
    /// announces).
    pub async fn change_alert_state(&self, from: &Watched, change: Change, now: i64) -> Result<bool> {
        let mut values: Vec<Value> = vec![
            change.to.as_str().into(),
            change.streak.into(),
            now.into(),
            from.id.clone().into(),
            from.state.map_or("", AlertState::as_str).into(),
            from.at.unwrap_or(-1).into(),
        ];
        // The facts the change was decided on must still hold.
        let guard = match change.to {
            AlertState::Failing | AlertState::TurningOff => {
                values.push(change.streak.into());
                "enabled AND failing_since = $7"
            }
            AlertState::Disabled => "NOT enabled",
            AlertState::Recovered => {
                values.push(from.streak.or(from.at).into());
                "enabled AND last_success_at > $7"
            }
        };
        let sql = format!(
            "UPDATE webhooks SET alert_state = $1, alert_streak = $2, alert_at = $3, alert_due = $3 \
             WHERE id = $4 AND COALESCE(alert_state, '') = $5 AND COALESCE(alert_at, -1) = $6 AND {guard}"
        );
        let _turn = self.write_turn().await;
        let done = self.db.execute_raw(Statement::from_sql_and_values(self.backend(), sql, values)).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes an announcement owed by `now`, if one is: moves its due time to `lease_until`
    /// so that no other process takes it meanwhile. Answers what to announce.
    pub async fn take_owed_alert(&self, now: i64, lease_until: i64) -> Result<Option<Owed>> {
        loop {
            let row = self
                .db
                .query_one_raw(Statement::from_sql_and_values(
                    self.backend(),
                    "SELECT id, alert_due FROM webhooks WHERE alert_due IS NOT NULL AND alert_due <= $1 \
                     ORDER BY alert_due LIMIT 1",
                    [now.into()],
                ))
                .await?;
            let Some(row) = row else { return Ok(None) };
            let id: String = row.try_get("", "id")?;
            let due: i64 = row.try_get("", "alert_due")?;
            let taken = {
                let _turn = self.write_turn().await;
                self.db
                    .execute_raw(Statement::from_sql_and_values(
                        self.backend(),
                        "UPDATE webhooks SET alert_due = $1 WHERE id = $2 AND alert_due = $3",
                        [lease_until.into(), id.clone().into(), due.into()],
                    ))
                    .await?
                    .rows_affected()
                    == 1
            };
            if !taken {
                // Another process took it first: look for the next one.
                continue;
            }
            let row = self
                .db
                .query_one_raw(Statement::from_sql_and_values(
                    self.backend(),
                    "SELECT alert_state, alert_streak, alert_at FROM webhooks WHERE id = $1",
                    [id.clone().into()],
                ))
                .await?;
            let hook = webhook::Entity::find_by_id(id.clone()).one(self.db).await?;
            let (Some(row), Some(hook)) = (row, hook) else { continue };
            let state: Option<AlertState> = row.try_get("", "alert_state")?;
            let at: Option<i64> = row.try_get("", "alert_at")?;
            let (Some(state), Some(at)) = (state, at) else {
                // Nothing to say after all.
                self.settle_alert(&id, None, 0).await?;
                continue;
            };
            return Ok(Some(Owed { webhook: hook, state, streak: row.try_get("", "alert_streak")?, at }));
        }
    }

    /// The announcement of `state` (entered at `at`) went out, or is given up: nothing more
    /// is owed, and a recovery is forgotten. A no-op when the state moved on meanwhile (its
    /// own announcement is owed then).
    pub async fn settle_alert(&self, webhook_id: &str, state: Option<AlertState>, at: i64) -> Result<()> {
        let (sql, values): (&str, Vec<Value>) = match state {
            None => (
                "UPDATE webhooks SET alert_due = NULL WHERE id = $1 AND alert_state IS NULL",
                vec![webhook_id.into()],
            ),
            Some(AlertState::Recovered) => (
                "UPDATE webhooks SET alert_state = NULL, alert_streak = NULL, alert_at = NULL, alert_due = NULL \
                 WHERE id = $1 AND alert_state = $2 AND alert_at = $3",
                vec![webhook_id.into(), AlertState::Recovered.as_str().into(), at.into()],
            ),
            Some(state) => (
                "UPDATE webhooks SET alert_due = NULL WHERE id = $1 AND alert_state = $2 AND alert_at = $3",
                vec![webhook_id.into(), state.as_str().into(), at.into()],
            ),
        };
        let _turn = self.write_turn().await;
        self.db.execute_raw(Statement::from_sql_and_values(self.backend(), sql, values)).await?;
        Ok(())
    }

    /// The announcement of `state` (entered at `at`) could not go out: owed again from
    /// `retry_at`, unless the state moved on meanwhile.
    pub async fn retry_alert(
        &self,
        webhook_id: &str,
        state: AlertState,
        at: i64,
        retry_at: i64,
    ) -> Result<()> {
        let _turn = self.write_turn().await;
        self.db
            .execute_raw(Statement::from_sql_and_values(
                self.backend(),
                "UPDATE webhooks SET alert_due = $1 WHERE id = $2 AND alert_state = $3 AND alert_at = $4",
                [retry_at.into(), webhook_id.into(), state.as_str().into(), at.into()],
            ))
            .await?;
        Ok(())
    }

    /// The store's merchants who may sign in, and the store's name; `None` for a store that
    /// is gone or being deleted.
    pub async fn alert_recipients(&self, store_id: &str) -> Result<Option<Recipients>> {
        let store = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.backend(),
                "SELECT name FROM stores WHERE id = $1 AND deleted_at IS NULL",
                [store_id.into()],
            ))
            .await?;
        let Some(store) = store else { return Ok(None) };
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                self.backend(),
                "SELECT email FROM users WHERE store_id = $1 AND role = 'merchant' AND disabled_at IS NULL \
                 ORDER BY email",
                [store_id.into()],
            ))
            .await?;
        let emails =
            rows.iter().map(|r| r.try_get::<String>("", "email")).collect::<std::result::Result<_, _>>()?;
        Ok(Some(Recipients { store_name: store.try_get("", "name")?, emails }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;
    const SEC: i64 = 1000;

    fn policy(span_secs: u64) -> AlertPolicy {
        AlertPolicy {
            failing_after: Duration::from_secs(1),
            disable: DisablePolicy { after_failures: 3, after_span: Duration::from_secs(span_secs) },
        }
    }

    fn failing(state: Option<AlertState>, streak: Option<i64>) -> Watched {
        Watched {
            id: "w".into(),
            enabled: true,
            disabled_reason: None,
            failing_since: Some(S),
            last_success_at: None,
            state,
            streak,
            at: streak.map(|s| s + SEC),
        }
    }

    #[test]
    fn the_warning_comes_a_day_before_turn_off_but_not_before_half_the_span() {
        let day = 24 * 3600;
        assert_eq!(policy(day).warn_after(), Duration::from_secs(day / 2));
        assert_eq!(policy(7 * day).warn_after(), Duration::from_secs(6 * day));
        assert_eq!(policy(4).warn_after(), Duration::from_secs(2));
        assert_eq!(policy(0).warn_after(), Duration::ZERO);
    }

    #[test]
    fn a_streak_goes_failing_then_turning_off_once_each() {
        let p = policy(4);
        assert_eq!(next_state(&failing(None, None), S + 500, &p), None, "not failing for long enough yet");
        let change = next_state(&failing(None, None), S + SEC, &p).unwrap();
        assert_eq!(change, Change { to: AlertState::Failing, streak: Some(S) });
        assert_eq!(next_state(&failing(Some(AlertState::Failing), Some(S)), S + SEC + 1, &p), None);
        let change = next_state(&failing(Some(AlertState::Failing), Some(S)), S + 2 * SEC, &p).unwrap();
        assert_eq!(change.to, AlertState::TurningOff);
        assert_eq!(next_state(&failing(Some(AlertState::TurningOff), Some(S)), S + 9 * SEC, &p), None);
    }

    #[test]
    fn a_late_first_look_sends_only_the_latest_state() {
        let change = next_state(&failing(None, None), S + 3 * SEC, &policy(4)).unwrap();
        assert_eq!(change.to, AlertState::TurningOff);
    }

    #[test]
    fn turned_off_by_hookline_is_announced_once_and_by_hand_never() {
        let mut w = failing(Some(AlertState::TurningOff), Some(S));
        w.enabled = false;
        w.disabled_reason = Some(DisabledReason::Automatic);
        assert_eq!(next_state(&w, S, &policy(4)).unwrap().to, AlertState::Disabled);
        w.state = Some(AlertState::Disabled);
        assert_eq!(next_state(&w, S, &policy(4)), None);
        w.state = Some(AlertState::Failing);
        w.disabled_reason = Some(DisabledReason::Manual);
        assert_eq!(next_state(&w, S + 99 * SEC, &policy(4)), None);
    }

    #[test]
    fn a_success_after_the_streak_began_is_a_recovery() {
        let mut w = failing(Some(AlertState::Disabled), Some(S));
        // Turned back on: no streak yet, no success yet.
        w.failing_since = None;
        assert_eq!(next_state(&w, S + 99 * SEC, &policy(4)), None);
        w.last_success_at = Some(S + 50 * SEC);
        assert_eq!(next_state(&w, S + 99 * SEC, &policy(4)).unwrap().to, AlertState::Recovered);
        // Never announced: a success says nothing.
        let mut quiet = failing(None, None);
        quiet.failing_since = None;
        quiet.last_success_at = Some(S);
        assert_eq!(next_state(&quiet, S, &policy(4)), None);
    }

    #[test]
    fn a_new_streak_after_a_pending_recovery_is_failing_again() {
        let mut w = failing(Some(AlertState::Recovered), Some(S - 99 * SEC));
        w.last_success_at = Some(S - SEC);
        assert_eq!(next_state(&w, S + SEC, &policy(4)).unwrap().to, AlertState::Failing);
    }
}
