//! The one place that decides when a failed delivery is tried again.

use std::time::Duration;

use rand::Rng;

/// Longest wait a receiver's `Retry-After` can ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// The delay before each retry; its length is the number of retries.
    pub schedule: Vec<Duration>,
}

impl RetryPolicy {
    /// The wait before the next attempt, after `attempts` attempts have failed, or `None`
    /// when the schedule is spent. Each delay gets ±20% jitter so that retries of many
    /// deliveries do not arrive in one burst. A `Retry-After` longer than the schedule's delay
    /// is honoured, up to an hour.
    pub fn next_delay(&self, attempts: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let base = *self.schedule.get(attempts.checked_sub(1)? as usize)?;
        let jittered = base.mul_f64(rand::rng().random_range(0.8..=1.2));
        Some(match retry_after {
            Some(asked) if asked > jittered => asked.min(MAX_RETRY_AFTER.max(jittered)),
            _ => jittered,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy { schedule: vec![Duration::from_secs(5), Duration::from_secs(30)] }
    }

    #[test]
    fn delays_follow_the_schedule_within_twenty_percent() {
        for _ in 0..200 {
            let first = policy().next_delay(1, None).unwrap();
            assert!(first >= Duration::from_secs(4) && first <= Duration::from_secs(6), "{first:?}");
            let second = policy().next_delay(2, None).unwrap();
            assert!(second >= Duration::from_secs(24) && second <= Duration::from_secs(36), "{second:?}");
        }
    }

    #[test]
    fn the_schedule_ends() {
        assert!(policy().next_delay(3, None).is_none());
        assert!(policy().next_delay(0, None).is_none());
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let d = policy().next_delay(1, Some(Duration::from_secs(120))).unwrap();
        assert_eq!(d, Duration::from_secs(120));
        let capped = policy().next_delay(1, Some(Duration::from_secs(86_400))).unwrap();
        assert_eq!(capped, Duration::from_secs(3600));
        let shorter = policy().next_delay(1, Some(Duration::from_secs(1))).unwrap();
        assert!(shorter >= Duration::from_secs(4));
    }
}
