//! The receiver steers: what this process knows of each webhook's answers, and what it makes
//! of them before and after each request (docs/delivery-control.md):
//!
//! - a 429 or 503 with `Retry-After` pauses the whole webhook until then, at most
//!   `HOOKLINE_MAX_PAUSE`; the deliveries this process holds wait too;
//! - consecutive connection errors or timeouts open the circuit breaker: the webhook waits a
//!   probe interval, then one delivery goes as the probe; a 2xx closes the breaker, a failure
//!   doubles the interval up to its cap;
//! - the webhook's rate limit (requests per second) paces its requests, evenly spaced;
//! - concurrency adapts (AIMD): the webhook's limit of requests out halves on a 429, a 503, a
//!   timeout or a slow answer (at most once a second) and grows back by one per limit's worth
//!   of quick 2xx answers, up to `HOOKLINE_PER_WEBHOOK_CONCURRENCY`; after a 429 the engine
//!   also paces the webhook at a little under the rate it was accepted at, and edges up 1% a
//!   second while no 429 comes.
//!
//! What every process must honour (the pause, the breaker) goes to the webhook's row with the
//! attempt that caused it ([`Steer`], written by the recorder) and is read by the claim; the
//! pacing and the adaptive limits are this process's own. All times are milliseconds since
//! the epoch, so the logic here is tested without a clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hookline_core::PauseReason;
use hookline_core::entities::webhook;
use hookline_core::slots::Pipelines;
use hookline_core::store::attempts::Steer;
use hookline_core::store::queue::ProbeTaken;
use tokio::sync::Notify;

use super::client::{ErrorClass, Outcome};

/// How the receiver's answers steer the engine; the defaults are production values.
#[derive(Clone, Debug)]
pub struct SteerConfig {
    /// Longest pause a `Retry-After` can ask for (`HOOKLINE_MAX_PAUSE`, 1h).
    pub max_pause: Duration,
    /// Consecutive connection errors or timeouts that open the breaker
    /// (`HOOKLINE_BREAKER_AFTER`, 5).
    pub breaker_after: u32,
    /// The breaker's first probe interval (`HOOKLINE_BREAKER_PROBE`, 5s); it doubles on each
    /// failed probe up to `probe_max` (`HOOKLINE_BREAKER_PROBE_MAX`, 10m).
    pub probe_first: Duration,
    pub probe_max: Duration,
    /// An answer slower than this counts as the endpoint struggling (half the delivery timeout).
    pub slow_answer: Duration,
}

impl Default for SteerConfig {
    fn default() -> Self {
        SteerConfig {
            max_pause: Duration::from_secs(3600),
            breaker_after: 5,
            probe_first: Duration::from_secs(5),
            probe_max: Duration::from_secs(600),
            slow_answer: Duration::from_millis(2500),
        }
    }
}

/// A webhook's row older than what this process decided this long ago does not override it
/// (the recorder writes a decision a moment after it is made).
const ROW_GRACE_MS: i64 = 1_000;
/// Concurrency falls at most once in this long: the answers of requests sent before the
/// fall arrive after it, and must not halve it again.
const DECREASE_HOLD_MS: i64 = 1_000;
/// The learned rate edges up this much a second while no 429 comes.
const RATE_RISE: f64 = 0.01;
/// After a 429, the pace is this share of the rate the webhook was accepted at.
const RATE_BACKOFF: f64 = 0.9;
/// A learned rate above this is no limit at all: forgotten.
const RATE_FORGET: f64 = 10_000.0;
/// Webhooks remembered before idle ones at their defaults are forgotten.
const REMEMBERED: usize = 1_024;
const IDLE_MS: i64 = 60_000;

/// What a delivery does before its request goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    Go,
    /// The breaker's probe is due: take it ([`hookline_core::Store::take_probe`]), then send.
    TakeProbe,
    /// The webhook waits until then.
    Wait(i64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Open {
    interval_ms: i64,
    /// When the next probe may go.
    until: i64,
    /// A delivery of this process is taking or sending the probe.
    probing: bool,
}

#[derive(Debug)]
struct State {
    /// A `Retry-After` pause this process knows of.
    pause_until: i64,
    /// Connection errors and timeouts in a row.
    failures: u32,
    breaker: Option<Open>,
    /// When this process last opened or closed the breaker: a row loaded before then is older.
    breaker_changed_at: i64,
    /// The adaptive limit of requests out.
    limit: f64,
    decreased_at: i64,
    /// The webhook's own rate limit, as last loaded.
    rate_limit: Option<f64>,
    /// The pace learned from 429s.
    learned: Option<f64>,
    learned_at: i64,
    /// When the next paced request may go (fractional milliseconds).
    next_send: f64,
    /// 2xx answers in this second and the one before, for the rate they were accepted at.
    window_start: i64,
    in_window: u32,
    last_window: u32,
    /// The pipeline's shape last set: (limit, claimed ahead).
    applied: (usize, usize),
    last_seen: i64,
}

impl State {
    fn new(cap: usize, now: i64) -> Self {
        State {
            pause_until: 0,
            failures: 0,
            breaker: None,
            breaker_changed_at: 0,
            limit: cap as f64,
            decreased_at: i64::MIN / 2,
            rate_limit: None,
            learned: None,
            learned_at: now,
            next_send: 0.0,
            window_start: now,
            in_window: 0,
            last_window: 0,
            applied: (cap, 2 * cap),
            last_seen: now,
        }
    }

    /// The pace: the lower of the webhook's rate limit and the learned one.
    fn rate(&self) -> Option<f64> {
        match (self.rate_limit, self.learned) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// 2xx answers in the last second, about.
    fn accepted_last_second(&self, now: i64) -> f64 {
        let into = ((now - self.window_start) as f64 / 1000.0).clamp(0.0, 1.0);
        f64::from(self.in_window) + f64::from(self.last_window) * (1.0 - into)
    }

    fn roll_window(&mut self, now: i64) {
        let gone = now - self.window_start;
        if gone >= 2_000 {
            self.last_window = 0;
            self.in_window = 0;
            self.window_start = now;
        } else if gone >= 1_000 {
            self.last_window = self.in_window;
            self.in_window = 0;
            self.window_start += 1_000;
        }
    }

    /// Nothing to remember: the webhook is as a fresh one.
    fn at_rest(&self, cap: usize, now: i64) -> bool {
        self.pause_until <= now
            && self.failures == 0
            && self.breaker.is_none()
            && self.learned.is_none()
            && self.rate_limit.is_none()
            && self.limit as usize >= cap
            && self.applied == (cap, 2 * cap)
    }
}

/// The breaker as a webhook's row has it, if open.
fn open_in_row(hook: &webhook::Model) -> Option<Open> {
    match (hook.pause_reason, hook.probe_interval_ms) {
        (Some(PauseReason::CircuitOpen), Some(interval_ms)) => {
            Some(Open { interval_ms, until: hook.paused_until.unwrap_or(0), probing: false })
        }
        _ => None,
    }
}

/// A `Retry-After` pause as a webhook's row has it.
fn pause_in_row(hook: &webhook::Model) -> i64 {
    match hook.pause_reason {
        Some(PauseReason::RetryAfter) => hook.paused_until.unwrap_or(0),
        _ => 0,
    }
}

/// The webhook's state, made on first use (the id is copied only then: this runs for every
/// request).
fn state_of<'a>(map: &'a mut HashMap<String, State>, id: &str, cap: usize, now: i64) -> &'a mut State {
    if !map.contains_key(id) {
        map.insert(id.to_string(), State::new(cap, now));
    }
    map.get_mut(id).expect("just inserted")
}

/// Every webhook's steering in this process.
pub(crate) struct Steering {
    cfg: SteerConfig,
    /// The configured limit of requests out per webhook.
    cap: usize,
    /// How long a claimed delivery may wait before its request must be out (its lease, less
    /// the time the request and its writing take): bounds how many are claimed ahead under a
    /// pace.
    budget: Duration,
    pipelines: Arc<Pipelines>,
    new_work: Arc<Notify>,
    map: Mutex<HashMap<String, State>>,
}

impl Steering {
    pub(crate) fn new(
        cfg: SteerConfig,
        cap: usize,
        budget: Duration,
        pipelines: Arc<Pipelines>,
        new_work: Arc<Notify>,
    ) -> Self {
        Steering { cfg, cap: cap.max(1), budget, pipelines, new_work, map: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, State>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether fresh deliveries of the webhook should be queued rather than handed to this
    /// process (it is paused, or its breaker is open).
    pub(crate) fn holds(&self, webhook_id: &str, now: i64) -> bool {
        self.lock().get(webhook_id).is_some_and(|s| s.pause_until > now || s.breaker.is_some())
    }

    /// Whether the webhook waits now (a pause, the breaker), as this process knows it: looked
    /// at again just before a request goes, after it waited its turn.
    pub(crate) fn waits(&self, webhook_id: &str, now: i64) -> bool {
        self.lock()
            .get(webhook_id)
            .is_some_and(|s| s.pause_until > now || s.breaker.is_some_and(|o| o.until > now || o.probing))
    }

    /// Before a request: go, take the probe, or wait. `loaded_at` is when `hook` was read.
    pub(crate) fn gate(&self, hook: &webhook::Model, loaded_at: i64, now: i64) -> Gate {
        let mut map = self.lock();
        let row_open = open_in_row(hook);
        let row_pause = pause_in_row(hook);
        if row_open.is_none() && row_pause <= now && !map.contains_key(&hook.id) {
            return Gate::Go;
        }
        let st = state_of(&mut map, &hook.id, self.cap, now);
        // The row is newer than what this process decided: another process opened or closed
        // the breaker.
        if loaded_at > st.breaker_changed_at + ROW_GRACE_MS {
            match (row_open, st.breaker.as_mut()) {
                (Some(open), None) => st.breaker = Some(open),
                (None, Some(open)) if !open.probing => {
                    st.breaker = None;
                    st.failures = 0;
                }
                (Some(row), Some(open)) if !open.probing => {
                    open.interval_ms = row.interval_ms;
                    open.until = open.until.max(row.until);
                }
                _ => {}
            }
        }
        let pause = st.pause_until.max(row_pause);
        if pause > now {
            return Gate::Wait(pause);
        }
        match st.breaker.as_mut() {
            None => Gate::Go,
            Some(open) if open.until > now => Gate::Wait(open.until),
            Some(open) if open.probing => Gate::Wait(now + open.interval_ms),
            Some(open) => {
                open.probing = true;
                Gate::TakeProbe
            }
        }
    }

    /// Another process took the probe, or the breaker is no longer open: follow the row.
    pub(crate) fn probe_not_taken(&self, webhook_id: &str, row: &ProbeTaken, now: i64) {
        let mut map = self.lock();
        let Some(st) = map.get_mut(webhook_id) else { return };
        st.breaker_changed_at = now;
        let ProbeTaken::Not { paused_until, pause_reason, probe_interval_ms } = row else {
            return;
        };
        match (pause_reason, probe_interval_ms) {
            (Some(PauseReason::CircuitOpen), Some(interval_ms)) => {
                st.breaker = Some(Open {
                    interval_ms: *interval_ms,
                    until: paused_until.unwrap_or(now + interval_ms),
                    probing: false,
                });
            }
            (reason, _) => {
                st.breaker = None;
                st.failures = 0;
                if *reason == Some(PauseReason::RetryAfter) {
                    st.pause_until = st.pause_until.max(paused_until.unwrap_or(0));
                }
            }
        }
    }

    /// The probe taken was not sent after all (the process is stopping): the next one goes a
    /// probe interval later, as the row says.
    pub(crate) fn probe_abandoned(&self, webhook_id: &str, now: i64) {
        if let Some(open) = self.lock().get_mut(webhook_id).and_then(|s| s.breaker.as_mut()) {
            open.probing = false;
            open.until = now + open.interval_ms;
        }
    }

    /// A place in the webhook's pace for a request: when it may go, `None` when the webhook is
    /// not paced. `Err` when that is after `latest` (the delivery goes back to the queue
    /// instead, and no place is taken).
    pub(crate) fn pace(&self, hook: &webhook::Model, now: i64, latest: i64) -> Result<Option<i64>, ()> {
        let rate_limit = hook.rate_limit.filter(|r| *r > 0).map(f64::from);
        let mut map = self.lock();
        let st = match map.get_mut(&hook.id) {
            Some(st) => st,
            None if rate_limit.is_none() => return Ok(None),
            None => map.entry(hook.id.clone()).or_insert_with(|| State::new(self.cap, now)),
        };
        st.rate_limit = rate_limit;
        if let Some(learned) = st.learned {
            let seconds = (now - st.learned_at) / 1_000;
            if seconds > 0 {
                let risen =
                    learned * (1.0 + RATE_RISE).powi(seconds.min(1_000) as i32) + 0.1 * seconds as f64;
                st.learned = (risen < RATE_FORGET).then_some(risen);
                st.learned_at += seconds * 1_000;
            }
        }
        let reshaped = self.reshape(st);
        let paced = match st.rate() {
            None => Ok(None),
            Some(_) if st.next_send.max(now as f64) > latest as f64 => Err(()),
            Some(rate) => {
                let at = st.next_send.max(now as f64);
                st.next_send = at + 1_000.0 / rate;
                Ok(Some(at.ceil() as i64))
            }
        };
        drop(map);
        self.apply(&hook.id, reshaped);
        paced
    }

    /// After a request: what its answer does to the webhook, here at once and, through the
    /// returned [`Steer`], in its row (written with the attempt). `probe` when it was the
    /// breaker's probe.
    pub(crate) fn answered(
        &self,
        hook: &webhook::Model,
        outcome: &Outcome,
        probe: bool,
        now: i64,
    ) -> Option<Steer> {
        let cfg = &self.cfg;
        let mut map = self.lock();
        if map.len() > REMEMBERED {
            let cap = self.cap;
            map.retain(|_, s| !s.at_rest(cap, now) || now - s.last_seen < IDLE_MS);
        }
        let st = state_of(&mut map, &hook.id, self.cap, now);
        st.last_seen = now;
        st.roll_window(now);
        let class = outcome.error.as_ref().map(|(class, _)| *class);
        let connection = matches!(class, Some(ErrorClass::Connect | ErrorClass::Timeout | ErrorClass::Dns));
        let busy = matches!(outcome.status, Some(429 | 503));
        let succeeded = outcome.succeeded();
        if connection {
            st.failures += 1;
        } else if outcome.status.is_some() {
            st.failures = 0;
        }

        // Adaptive concurrency, and the pace after a 429.
        let slow = outcome.duration > cfg.slow_answer;
        if busy || slow || class == Some(ErrorClass::Timeout) {
            if now - st.decreased_at >= DECREASE_HOLD_MS {
                st.decreased_at = now;
                st.limit = (st.limit / 2.0).max(1.0);
                if outcome.status == Some(429) {
                    let accepted = st.accepted_last_second(now);
                    if accepted >= 1.0 {
                        let pace = (accepted * RATE_BACKOFF).max(1.0);
                        st.learned = Some(st.learned.map_or(pace, |l| l.min(pace)));
                        st.learned_at = now;
                    }
                }
            }
        } else if succeeded {
            st.limit = (st.limit + 1.0 / st.limit).min(self.cap as f64);
        }
        if succeeded {
            st.in_window += 1;
        }

        // The webhook's pause and breaker.
        let retry_after = outcome.retry_after.filter(|d| busy && !d.is_zero());
        let open = st.breaker.is_some() || open_in_row(hook).is_some();
        let steer = if let Some(wait) = retry_after {
            // The endpoint answered: an open breaker closes, and the pause holds it instead.
            let until = now + wait.min(cfg.max_pause).as_millis() as i64;
            st.pause_until = st.pause_until.max(until);
            if st.breaker.take().is_some() {
                st.breaker_changed_at = now;
            }
            Some(Steer::Pause { until })
        } else if succeeded {
            st.failures = 0;
            if open {
                st.breaker = None;
                st.breaker_changed_at = now;
                Some(Steer::Close)
            } else {
                None
            }
        } else if probe {
            let last = st.breaker.map_or(cfg.probe_first.as_millis() as i64, |o| o.interval_ms);
            let interval_ms = (last * 2).min(cfg.probe_max.as_millis() as i64).max(1);
            let until = now + interval_ms;
            st.breaker = Some(Open { interval_ms, until, probing: false });
            st.breaker_changed_at = now;
            Some(Steer::Breaker { interval_ms, until })
        } else if connection && !open && st.failures >= cfg.breaker_after {
            let interval_ms = (cfg.probe_first.as_millis() as i64).max(1);
            let until = now + interval_ms;
            st.breaker = Some(Open { interval_ms, until, probing: false });
            st.breaker_changed_at = now;
            Some(Steer::Breaker { interval_ms, until })
        } else {
            None
        };
        let reshaped = self.reshape(st);
        drop(map);
        self.apply(&hook.id, reshaped);
        steer
    }

    /// The pipeline's shape for a webhook's state: its limit of requests out, and how many
    /// deliveries may be claimed ahead (twice the limit, or what its pace sends within the
    /// budget).
    fn shape(&self, st: &State) -> (usize, usize) {
        let limit = (st.limit as usize).clamp(1, self.cap);
        let mut ahead = 2 * limit;
        if let Some(rate) = st.rate() {
            let within = (rate * self.budget.as_secs_f64() / 2.0).ceil().max(1.0);
            ahead = ahead.min(within as usize);
        }
        (limit, ahead.max(1))
    }

    /// The pipeline's new shape, if it changed (noted as applied).
    fn reshape(&self, st: &mut State) -> Option<(usize, usize)> {
        let shape = self.shape(st);
        (st.applied != shape).then(|| {
            st.applied = shape;
            shape
        })
    }

    /// Gives the pipeline its new shape (outside the steering's lock).
    fn apply(&self, webhook_id: &str, shape: Option<(usize, usize)>) {
        let Some(shape) = shape else { return };
        if self.pipelines.set_limit(webhook_id, shape.0, shape.1, self.cap) {
            self.new_work.notify_one();
        }
    }

    /// The webhook's limit of requests out in this process now.
    #[cfg(test)]
    fn limit(&self, webhook_id: &str) -> usize {
        self.pipelines.limit(webhook_id, self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_000;

    fn steering() -> Steering {
        let cfg = SteerConfig {
            max_pause: Duration::from_secs(60),
            breaker_after: 3,
            probe_first: Duration::from_secs(5),
            probe_max: Duration::from_secs(20),
            slow_answer: Duration::from_secs(1),
        };
        Steering::new(
            cfg,
            8,
            Duration::from_secs(10),
            Arc::new(Pipelines::default()),
            Arc::new(Notify::new()),
        )
    }

    fn hook() -> webhook::Model {
        webhook::Model {
            id: "w".into(),
            tenant_type: hookline_core::TenantType::Store,
            tenant_id: "s".into(),
            url: "http://127.0.0.1:9/".into(),
            description: String::new(),
            event_types: None,
            enabled: true,
            disabled_reason: None,
            disabled_at: None,
            consecutive_failures: 0,
            failing_since: None,
            last_success_at: None,
            target_id: None,
            filter_id: None,
            application_id: None,
            ordering: false,
            rate_limit: None,
            conditions: None,
            include_fields: None,
            paused_until: None,
            pause_reason: None,
            probe_interval_ms: None,
            alert_state: None,
            alert_streak: None,
            alert_at: None,
            alert_due: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn answer(status: u16, ms: u64, retry_after: Option<u64>) -> Outcome {
        Outcome {
            duration: Duration::from_millis(ms),
            status: Some(status),
            headers: Vec::new(),
            body: None,
            error: (!(200..300).contains(&status))
                .then(|| (ErrorClass::HttpStatus, format!("HTTP {status}"))),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    fn refused() -> Outcome {
        Outcome {
            duration: Duration::from_millis(1),
            status: None,
            headers: Vec::new(),
            body: None,
            error: Some((ErrorClass::Connect, "connection refused".into())),
            retry_after: None,
        }
    }

    #[test]
    fn retry_after_pauses_the_whole_webhook_within_the_bound() {
        let s = steering();
        let h = hook();
        assert_eq!(s.gate(&h, T, T), Gate::Go);
        assert_eq!(
            s.answered(&h, &answer(429, 5, Some(2)), false, T),
            Some(Steer::Pause { until: T + 2_000 })
        );
        assert_eq!(s.gate(&h, T, T + 10), Gate::Wait(T + 2_000), "every delivery of the webhook waits");
        assert!(s.holds("w", T + 10), "fresh deliveries are queued, not handed over");
        assert_eq!(s.gate(&h, T, T + 2_000), Gate::Go);
        let Some(Steer::Pause { until }) = s.answered(&h, &answer(503, 5, Some(86_400)), false, T) else {
            panic!("a 503 with Retry-After pauses too");
        };
        assert_eq!(until, T + 60_000, "at most the configured bound");
        assert_eq!(
            s.answered(&h, &answer(429, 5, None), false, T + 70_000),
            None,
            "no Retry-After, no pause"
        );
    }

    #[test]
    fn a_pause_in_the_row_from_another_process_is_honoured() {
        let s = steering();
        let mut h = hook();
        h.paused_until = Some(T + 500);
        h.pause_reason = Some(PauseReason::RetryAfter);
        assert_eq!(s.gate(&h, T, T), Gate::Wait(T + 500));
        assert_eq!(s.gate(&h, T, T + 500), Gate::Go);
    }

    #[test]
    fn connection_failures_open_the_breaker_and_one_probe_goes_per_interval() {
        let s = steering();
        let h = hook();
        assert_eq!(s.answered(&h, &refused(), false, T), None);
        assert_eq!(s.answered(&h, &refused(), false, T), None);
        assert_eq!(
            s.answered(&h, &refused(), false, T),
            Some(Steer::Breaker { interval_ms: 5_000, until: T + 5_000 }),
            "the third in a row opens it"
        );
        assert_eq!(s.answered(&h, &refused(), false, T), None, "already open");
        assert_eq!(s.gate(&h, T, T + 1), Gate::Wait(T + 5_000));
        assert_eq!(s.gate(&h, T, T + 5_000), Gate::TakeProbe, "the interval is over: one probe");
        assert_eq!(s.gate(&h, T, T + 5_000), Gate::Wait(T + 10_000), "only one");
        assert_eq!(
            s.answered(&h, &refused(), true, T + 5_001),
            Some(Steer::Breaker { interval_ms: 10_000, until: T + 15_001 }),
            "a failed probe doubles the interval"
        );
        assert_eq!(s.gate(&h, T, T + 15_001), Gate::TakeProbe);
        assert_eq!(
            s.answered(&h, &answer(500, 3, None), true, T + 15_002),
            Some(Steer::Breaker { interval_ms: 20_000, until: T + 35_002 }),
            "any failure of the probe"
        );
        assert_eq!(s.gate(&h, T, T + 35_002), Gate::TakeProbe);
        assert_eq!(
            s.answered(&h, &refused(), true, T + 35_003),
            Some(Steer::Breaker { interval_ms: 20_000, until: T + 55_003 }),
            "up to the cap"
        );
        assert_eq!(s.gate(&h, T, T + 55_003), Gate::TakeProbe);
        assert_eq!(s.answered(&h, &answer(204, 3, None), true, T + 55_004), Some(Steer::Close));
        assert_eq!(s.gate(&h, T, T + 55_005), Gate::Go, "closed: everything flows");
        assert!(!s.holds("w", T + 55_005));
    }

    #[test]
    fn an_http_answer_ends_a_run_of_connection_failures() {
        let s = steering();
        let h = hook();
        s.answered(&h, &refused(), false, T);
        s.answered(&h, &refused(), false, T);
        s.answered(&h, &answer(500, 3, None), false, T);
        assert_eq!(s.answered(&h, &refused(), false, T), None);
        assert_eq!(s.answered(&h, &refused(), false, T), None, "two in a row, not three");
    }

    #[test]
    fn the_row_of_another_process_opens_and_closes_the_breaker_here() {
        let s = steering();
        let mut open = hook();
        open.pause_reason = Some(PauseReason::CircuitOpen);
        open.probe_interval_ms = Some(5_000);
        open.paused_until = Some(T + 5_000);
        assert_eq!(s.gate(&open, T, T), Gate::Wait(T + 5_000));
        assert!(s.holds("w", T));
        // Another process took the probe meanwhile.
        assert_eq!(s.gate(&open, T, T + 5_000), Gate::TakeProbe);
        let row = ProbeTaken::Not {
            paused_until: Some(T + 10_000),
            pause_reason: Some(PauseReason::CircuitOpen),
            probe_interval_ms: Some(5_000),
        };
        s.probe_not_taken("w", &row, T + 5_000);
        assert_eq!(s.gate(&open, T, T + 5_001), Gate::Wait(T + 10_000));
        // And its probe closed the breaker: a row read later says so.
        assert_eq!(s.gate(&hook(), T + 7_000, T + 7_000), Gate::Go);
        // A 2xx of a delivery read while the row said open closes it in the row too.
        assert_eq!(s.answered(&open, &answer(200, 3, None), false, T + 7_001), Some(Steer::Close));
    }

    #[test]
    fn a_rate_limit_spaces_requests_evenly() {
        let s = steering();
        let mut h = hook();
        assert_eq!(s.pace(&h, T, T + 10_000), Ok(None), "no limit, no pace");
        h.rate_limit = Some(4);
        let slots: Vec<_> = (0..5).map(|_| s.pace(&h, T, T + 10_000).unwrap().unwrap()).collect();
        assert_eq!(slots, vec![T, T + 250, T + 500, T + 750, T + 1_000]);
        assert_eq!(s.pace(&h, T, T + 1_100), Err(()), "too late for the lease: not taken");
        assert_eq!(s.pace(&h, T, T + 10_000), Ok(Some(T + 1_250)));
        assert_eq!(s.lock()["w"].applied, (8, 16), "at 4/s, 20 s of claims is plenty");
        h.rate_limit = Some(1);
        s.pace(&h, T + 5_000, T + 10_000).unwrap();
        assert_eq!(s.lock()["w"].applied, (8, 5), "at 1/s, five claimed ahead at most");
    }

    #[test]
    fn concurrency_halves_on_push_back_and_grows_back_on_quick_answers() {
        let s = steering();
        let h = hook();
        s.answered(&h, &answer(200, 5, None), false, T);
        assert_eq!(s.limit("w"), 8, "starts at the cap");
        s.answered(&h, &answer(503, 5, None), false, T);
        assert_eq!(s.limit("w"), 4);
        s.answered(&h, &answer(503, 5, None), false, T + 500);
        assert_eq!(s.limit("w"), 4, "once a second at most");
        s.answered(&h, &answer(200, 1_500, None), false, T + 1_000);
        assert_eq!(s.limit("w"), 2, "a slow answer");
        for i in 0..3 {
            s.answered(&h, &answer(200, 5, None), false, T + 2_000 + i);
        }
        assert_eq!(s.limit("w"), 3, "about a limit's worth of quick answers adds one");
        for i in 0..200 {
            s.answered(&h, &answer(200, 5, None), false, T + 3_000 + i);
        }
        assert_eq!(s.limit("w"), 8, "never above the cap");
    }

    #[test]
    fn a_429_paces_the_webhook_under_the_rate_it_was_accepted_at() {
        let s = steering();
        let h = hook();
        for i in 0..50 {
            s.answered(&h, &answer(200, 1, None), false, T + i * 20);
        }
        s.answered(&h, &answer(429, 1, Some(1)), false, T + 1_000);
        let learned = s.lock()["w"].learned.expect("a pace");
        assert!((40.0..=50.0).contains(&learned), "{learned}");
        let first = s.pace(&h, T + 2_000, T + 60_000).unwrap().unwrap();
        let second = s.pace(&h, T + 2_000, T + 60_000).unwrap().unwrap();
        assert!(second - first >= 20, "spaced at under 50/s: {first} {second}");
        s.pace(&h, T + 12_000, T + 60_000).unwrap();
        let risen = s.lock()["w"].learned.unwrap();
        assert!(risen > learned, "it edges back up while no 429 comes: {risen}");
    }
}
