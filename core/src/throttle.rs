//! Sign-in throttling: per account and per client address, with a delay that doubles with
//! each failure past a few free ones. A guesser gets a handful of tries, then one every few
//! seconds, minutes, and at most one every [`MAX_DELAY`]; a person who mistypes a password
//! twice notices nothing. Attempts in progress count too, so a burst of concurrent guesses
//! cannot slip through before the first failures are recorded.
//!
//! The counts live in this process: with several processes behind one address, a guesser
//! gets as many tries as there are processes, which keeps the same order of magnitude.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures an account may have before each further try must wait.
const FREE_PER_ACCOUNT: u32 = 5;
/// Failures one client address may have (an office behind one address has several people).
const FREE_PER_ADDRESS: u32 = 20;
/// The wait after the first failure past the free ones; each further failure doubles it.
const FIRST_DELAY_SECS: u64 = 5;
/// Longest wait imposed between two tries.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Failures are forgotten once this long has passed since the last one.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Most accounts and addresses remembered at once: an attacker naming a million accounts
/// costs this much memory at most.
const MAX_ENTRIES: usize = 100_000;

/// The address of the client a request came from, as the server worked it out (the
/// connection's peer, or behind a trusted proxy the address the proxy reports): the HTTP
/// layer puts it in each request's extensions for the sign-in throttle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The client behind `peer`: `peer` itself, unless it is one of the `trusted` proxies; then
/// the rightmost address of `X-Forwarded-For` (`forwarded`, every header value in order)
/// that is not a trusted proxy itself. Addresses a client wrote further left are not
/// believed.
pub fn client_behind(peer: IpAddr, forwarded: &[&str], trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(&ip.to_canonical()));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = forwarded
        .iter()
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect();
    hops.into_iter().rev().find(|ip| !is_trusted(ip)).unwrap_or(peer)
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

#[derive(Debug)]
struct Failures {
    count: u32,
    last: Instant,
    /// Attempts let through and not yet decided.
    pending: u32,
}

#[derive(Default)]
pub struct SignInThrottle {
    entries: Mutex<HashMap<Key, Failures>>,
}

/// A sign-in attempt let through; report its result with [`SignInThrottle::finish`].
#[derive(Debug)]
pub struct Attempt {
    keys: Vec<Key>,
}

impl SignInThrottle {
    /// Lets an attempt for the account from the address through, or says how long to wait.
    pub fn begin(&self, account: &str, address: Option<IpAddr>) -> Result<Attempt, Duration> {
        self.begin_at(account, address, Instant::now())
    }

    fn begin_at(&self, account: &str, address: Option<IpAddr>, now: Instant) -> Result<Attempt, Duration> {
        let mut keys = vec![Key::Account(account.to_string())];
        keys.extend(address.map(|a| Key::Address(a.to_canonical())));
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for k in &keys {
            if let Some(f) = entries.get_mut(k)
                && f.pending == 0
                && now.duration_since(f.last) >= FORGET_AFTER
            {
                f.count = 0;
            }
        }
        let wait = keys
            .iter()
            .filter_map(|k| entries.get(k).map(|f| wait_for(f, free(k), now)))
            .max()
            .unwrap_or_default();
        if !wait.is_zero() {
            return Err(wait);
        }
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, f| f.pending > 0 || now.duration_since(f.last) < FORGET_AFTER);
        }
        for k in &keys {
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(k) {
                continue;
            }
            entries.entry(k.clone()).or_insert(Failures { count: 0, last: now, pending: 0 }).pending += 1;
        }
        Ok(Attempt { keys })
    }

    /// Records the attempt's result: a failure counts against its account and address; a
    /// success clears its account (not its address, or one valid account would reset a
    /// guesser's count for all the others).
    pub fn finish(&self, attempt: Attempt, succeeded: bool) {
        self.finish_at(attempt, succeeded, Instant::now())
    }

    fn finish_at(&self, attempt: Attempt, succeeded: bool, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for k in attempt.keys {
            let Some(f) = entries.get_mut(&k) else { continue };
            f.pending = f.pending.saturating_sub(1);
            if succeeded && matches!(k, Key::Account(_)) {
                entries.remove(&k);
            } else if !succeeded {
                f.count = f.count.saturating_add(1);
                f.last = now;
            } else if f.count == 0 && f.pending == 0 {
                entries.remove(&k);
            }
        }
    }
}

fn free(key: &Key) -> u32 {
    match key {
        Key::Account(_) => FREE_PER_ACCOUNT,
        Key::Address(_) => FREE_PER_ADDRESS,
    }
}

/// How long a new attempt must wait: nothing within the free tries (attempts in progress
/// included); past them, 5 s after the first extra failure, doubling with each one, from the
/// last failure.
fn wait_for(f: &Failures, free: u32, now: Instant) -> Duration {
    if now.duration_since(f.last) >= FORGET_AFTER && f.pending == 0 {
        return Duration::ZERO;
    }
    let tried = f.count.saturating_add(f.pending);
    if tried < free {
        return Duration::ZERO;
    }
    if f.pending > 0 {
        // Past the free tries, one attempt at a time.
        return Duration::from_secs(1);
    }
    let extra = f.count.saturating_sub(free).min(16);
    let delay = Duration::from_secs(FIRST_DELAY_SECS << extra).min(MAX_DELAY);
    let ready = f.last + delay;
    let wait = ready.saturating_duration_since(now);
    // Whole seconds, at least one, for `Retry-After`.
    if wait.is_zero() { Duration::ZERO } else { Duration::from_secs(wait.as_secs_f64().ceil() as u64) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(t: &SignInThrottle, account: &str, ip: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let attempt = t.begin_at(account, ip, now)?;
        t.finish_at(attempt, false, now);
        Ok(())
    }

    #[test]
    fn only_a_trusted_proxy_is_believed_about_the_client() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_behind(ip("203.0.113.5"), &["198.51.100.1"], &trusted), ip("203.0.113.5"));
        assert_eq!(client_behind(ip("10.0.0.2"), &["198.51.100.1"], &trusted), ip("198.51.100.1"));
        // What the client wrote itself is left of what the proxy appended.
        assert_eq!(client_behind(ip("10.0.0.2"), &["1.2.3.4, 198.51.100.1"], &trusted), ip("198.51.100.1"));
        assert_eq!(client_behind(ip("10.0.0.2"), &["198.51.100.1, 10.0.0.7"], &trusted), ip("198.51.100.1"));
        assert_eq!(client_behind(ip("10.0.0.2"), &["garbage"], &trusted), ip("10.0.0.2"));
    }

    #[test]
    fn a_few_failures_are_free_then_each_try_waits_longer() {
        let t = SignInThrottle::default();
        let now = Instant::now();
        for _ in 0..FREE_PER_ACCOUNT {
            fail(&t, "a@x.test", None, now).unwrap();
        }
        let wait = fail(&t, "a@x.test", None, now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(5));
        fail(&t, "a@x.test", None, now + Duration::from_secs(5)).unwrap();
        let wait = fail(&t, "a@x.test", None, now + Duration::from_secs(5)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        // Another account is not affected.
        fail(&t, "b@x.test", None, now).unwrap();
    }

    #[test]
    fn a_success_clears_the_account() {
        let t = SignInThrottle::default();
        let now = Instant::now();
        for _ in 0..FREE_PER_ACCOUNT - 1 {
            fail(&t, "a@x.test", None, now).unwrap();
        }
        let ok = t.begin_at("a@x.test", None, now).unwrap();
        t.finish_at(ok, true, now);
        for _ in 0..FREE_PER_ACCOUNT {
            fail(&t, "a@x.test", None, now).unwrap();
        }
    }

    #[test]
    fn one_address_guessing_many_accounts_is_throttled() {
        let t = SignInThrottle::default();
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let now = Instant::now();
        for i in 0..FREE_PER_ADDRESS {
            fail(&t, &format!("user{i}@x.test"), Some(ip), now).unwrap();
        }
        assert!(fail(&t, "someone-else@x.test", Some(ip), now).is_err());
        assert!(fail(&t, "someone-else@x.test", Some("198.51.100.1".parse().unwrap()), now).is_ok());
    }

    #[test]
    fn concurrent_attempts_count_before_they_finish() {
        let t = SignInThrottle::default();
        let now = Instant::now();
        let held: Vec<_> =
            (0..FREE_PER_ACCOUNT).map(|_| t.begin_at("a@x.test", None, now).unwrap()).collect();
        assert!(t.begin_at("a@x.test", None, now).is_err());
        for a in held {
            t.finish_at(a, false, now);
        }
    }

    #[test]
    fn the_delay_is_capped_and_failures_are_forgotten() {
        let t = SignInThrottle::default();
        let mut now = Instant::now();
        for _ in 0..60 {
            if let Err(wait) = fail(&t, "a@x.test", None, now) {
                assert!(wait <= MAX_DELAY);
                now += wait;
            }
        }
        now += FORGET_AFTER;
        fail(&t, "a@x.test", None, now).unwrap();
    }
}
