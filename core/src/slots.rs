//! A delivery's place in this process's delivery engine: one of its permits (held until the
//! attempt is written) and a place in its webhook's pipeline (held while the request is out).
//! The engine (in the server) takes them; publishing carries one from the reservation to the
//! hand-off ([`crate::Reservation`], [`crate::Handoff`]) without looking inside. Dropping a
//! slot gives its places back, whatever path the delivery took.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Deliveries claimed in this process, per webhook: what keeps one slow or dead endpoint from
/// taking every slot. A webhook has at most `limit` requests out and as many more claimed and
/// ready behind them (`ahead`, twice the limit unless the engine lowers it), so its pipeline
/// stays full while the next claim is made. A webhook that reaches `ahead` is left out of
/// claims until it is back down to half of it.
///
/// The limit starts at the configured one (`cap`) and the engine moves it under that cap as
/// the receiver answers ([`Pipelines::set_limit`], the adaptive concurrency); a webhook whose
/// limit was moved keeps its pipeline while it has nothing claimed, so it is not forgotten.
#[derive(Default)]
pub struct Pipelines(Mutex<HashMap<String, Pipeline>>);

struct Pipeline {
    claimed: usize,
    saturated: bool,
    /// `limit` permits: one per request out.
    sending: Arc<Semaphore>,
    /// Requests out at most, now.
    limit: usize,
    /// Deliveries claimed at most.
    ahead: usize,
    /// The configured limit, where `limit` starts.
    cap: usize,
    /// Permits to forget as requests come back: the limit fell below what was out.
    owed: usize,
}

impl Pipelines {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Pipeline>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The webhooks left out of claims.
    pub fn full(&self) -> Vec<String> {
        self.lock().iter().filter(|(_, w)| w.saturated).map(|(id, _)| id.clone()).collect()
    }

    /// Takes a place for one claimed delivery of the webhook, if it has one left; gives the
    /// semaphore its request must then wait on. `cap` is the configured limit.
    pub fn try_take(&self, webhook: &str, cap: usize) -> Option<Arc<Semaphore>> {
        let mut map = self.lock();
        let entry = map.entry(webhook.to_string()).or_insert_with(|| Pipeline::new(cap));
        if entry.claimed >= entry.ahead {
            return None;
        }
        entry.claimed += 1;
        if entry.claimed == entry.ahead {
            entry.saturated = true;
        }
        Some(entry.sending.clone())
    }

    /// Takes a place for an attempt made on request (a resend, a test), whatever the count:
    /// it then waits for one of the webhook's request permits like any claimed delivery.
    pub fn take_waiting(&self, webhook: &str, cap: usize) -> Arc<Semaphore> {
        let mut map = self.lock();
        let entry = map.entry(webhook.to_string()).or_insert_with(|| Pipeline::new(cap));
        entry.claimed += 1;
        if entry.claimed >= entry.ahead {
            entry.saturated = true;
        }
        entry.sending.clone()
    }

    /// Gives the place back; true when the webhook has just come back into the claims.
    pub fn release(&self, webhook: &str) -> bool {
        let mut map = self.lock();
        let Some(entry) = map.get_mut(webhook) else { return false };
        entry.claimed = entry.claimed.saturating_sub(1);
        let reopened = entry.reopens();
        if entry.claimed == 0 && entry.is_default() {
            map.remove(webhook);
        }
        reopened
    }

    /// A request of the webhook is back: its permit goes back, or is forgotten while the
    /// limit is lower than what was out.
    pub fn sent(&self, webhook: &str, permit: OwnedSemaphorePermit) {
        let mut map = self.lock();
        match map.get_mut(webhook) {
            Some(entry) if entry.owed > 0 && Arc::ptr_eq(&entry.sending, permit.semaphore()) => {
                entry.owed -= 1;
                permit.forget();
            }
            _ => drop(permit),
        }
    }

    /// Sets the webhook's limit of requests out (at least 1, at most `cap`) and how many of
    /// its deliveries may be claimed (at least 1, at most twice the limit). True when the
    /// webhook has just come back into the claims.
    pub fn set_limit(&self, webhook: &str, limit: usize, ahead: usize, cap: usize) -> bool {
        let limit = limit.clamp(1, cap.max(1));
        let ahead = ahead.clamp(1, 2 * limit);
        let mut map = self.lock();
        let entry = map.entry(webhook.to_string()).or_insert_with(|| Pipeline::new(cap));
        if limit > entry.limit {
            let more = limit - entry.limit;
            let paid = more.min(entry.owed);
            entry.owed -= paid;
            entry.sending.add_permits(more - paid);
        } else if limit < entry.limit {
            let fewer = entry.limit - limit;
            let forgotten = entry.sending.forget_permits(fewer);
            entry.owed += fewer - forgotten;
        }
        entry.limit = limit;
        entry.ahead = ahead;
        if entry.claimed >= entry.ahead {
            entry.saturated = true;
        }
        let reopened = entry.reopens();
        if entry.claimed == 0 && entry.is_default() {
            map.remove(webhook);
        }
        reopened
    }

    /// The webhook's limit of requests out now, `cap` when it was never moved.
    pub fn limit(&self, webhook: &str, cap: usize) -> usize {
        self.lock().get(webhook).map_or(cap, |p| p.limit)
    }

    /// Deliveries of the webhook holding a place.
    pub fn claimed(&self, webhook: &str) -> usize {
        self.lock().get(webhook).map_or(0, |p| p.claimed)
    }
}

impl Pipeline {
    fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Pipeline {
            claimed: 0,
            saturated: false,
            sending: Arc::new(Semaphore::new(cap)),
            limit: cap,
            ahead: 2 * cap,
            cap,
            owed: 0,
        }
    }

    /// Clears the saturation once the claimed are down to half of `ahead`; true if it did.
    fn reopens(&mut self) -> bool {
        let reopened = self.saturated && self.claimed * 2 <= self.ahead;
        if reopened {
            self.saturated = false;
        }
        reopened
    }

    /// Nothing the engine moved: the pipeline can go when empty.
    fn is_default(&self) -> bool {
        self.limit == self.cap && self.ahead == 2 * self.cap && self.owed == 0
    }
}

/// A delivery's place in the process's concurrency (held until its attempt is written) and
/// in its webhook's (held while the request is out).
pub struct Slot {
    pub permit: OwnedSemaphorePermit,
    pub webhook: WebhookSlot,
}

/// A place in a webhook's pipeline; given back when dropped.
pub struct WebhookSlot {
    /// What the request waits on before it goes out: one of the webhook's `limit` permits.
    pub sending: Arc<Semaphore>,
    pipelines: Arc<Pipelines>,
    webhook_id: String,
    /// Woken when the webhook comes back into the claims.
    new_work: Arc<Notify>,
}

impl WebhookSlot {
    /// A place taken with [`Pipelines::try_take`] or [`Pipelines::take_waiting`].
    pub fn new(
        sending: Arc<Semaphore>,
        pipelines: Arc<Pipelines>,
        webhook_id: String,
        new_work: Arc<Notify>,
    ) -> Self {
        WebhookSlot { sending, pipelines, webhook_id, new_work }
    }

    /// The request is back: its permit goes back to the webhook (or is forgotten, while the
    /// webhook's limit is lower than what was out).
    pub fn sent(&self, permit: OwnedSemaphorePermit) {
        self.pipelines.sent(&self.webhook_id, permit);
    }
}

impl Drop for WebhookSlot {
    fn drop(&mut self) {
        if self.pipelines.release(&self.webhook_id) {
            // The webhook has room again: look for its due deliveries now.
            self.new_work.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_takes_twice_its_limit_then_waits_for_its_limit() {
        let pipelines = Pipelines::default();
        assert!(pipelines.try_take("w", 2).is_some());
        assert!(pipelines.try_take("w", 2).is_some());
        assert!(pipelines.try_take("w", 2).is_some());
        assert!(pipelines.full().is_empty(), "not full before twice its limit");
        assert!(pipelines.try_take("w", 2).is_some());
        assert_eq!(pipelines.full(), vec!["w".to_string()]);
        assert!(pipelines.try_take("w", 2).is_none(), "no fifth place at a limit of two");
        assert!(!pipelines.release("w"), "three claimed: still left out");
        assert!(pipelines.release("w"), "back down to its limit: claimed again");
        assert!(pipelines.full().is_empty());
    }

    #[test]
    fn webhooks_have_separate_pipelines() {
        let pipelines = Pipelines::default();
        assert!(pipelines.try_take("slow", 1).is_some());
        assert!(pipelines.try_take("slow", 1).is_some());
        assert!(pipelines.try_take("slow", 1).is_none());
        assert!(pipelines.try_take("fast", 1).is_some(), "a full webhook does not hold up another");
    }

    #[test]
    fn attempts_on_request_always_get_a_place_and_count() {
        let pipelines = Pipelines::default();
        let sending = pipelines.take_waiting("w", 1);
        let _second = pipelines.take_waiting("w", 1);
        assert_eq!(sending.available_permits(), 1, "one request out at a time");
        assert_eq!(pipelines.full(), vec!["w".to_string()]);
        assert!(pipelines.try_take("w", 1).is_none(), "claims wait behind them");
    }

    #[test]
    fn dropping_a_slot_gives_its_place_back() {
        let pipelines = Arc::new(Pipelines::default());
        let new_work = Arc::new(Notify::new());
        let sending = pipelines.try_take("w", 1).expect("a place");
        let slot = WebhookSlot::new(sending, pipelines.clone(), "w".into(), new_work);
        assert_eq!(pipelines.claimed("w"), 1);
        drop(slot);
        assert_eq!(pipelines.claimed("w"), 0, "released when the slot is dropped");
    }

    #[tokio::test]
    async fn a_lower_limit_holds_back_requests_until_enough_come_back() {
        let pipelines = Pipelines::default();
        let sending = pipelines.try_take("w", 4).expect("a place");
        let out: Vec<_> = (0..3).map(|_| sending.clone().try_acquire_owned().unwrap()).collect();
        assert!(!pipelines.set_limit("w", 2, 4, 4));
        assert_eq!(pipelines.limit("w", 4), 2);
        assert_eq!(sending.available_permits(), 0, "the free permit is forgotten at once");
        let mut out = out.into_iter();
        pipelines.sent("w", out.next().unwrap());
        assert_eq!(sending.available_permits(), 0, "one owed: forgotten as it comes back");
        pipelines.sent("w", out.next().unwrap());
        assert_eq!(sending.available_permits(), 1, "two limit, one out");
        pipelines.set_limit("w", 4, 8, 4);
        assert_eq!(sending.available_permits(), 3, "raised back to the cap");
        assert!(!pipelines.set_limit("w", 9, 99, 4));
        assert_eq!(pipelines.limit("w", 4), 4, "never above the cap");
    }

    #[test]
    fn a_moved_limit_outlives_an_empty_pipeline_and_ahead_bounds_the_claims() {
        let pipelines = Pipelines::default();
        pipelines.set_limit("w", 1, 1, 8);
        assert_eq!(pipelines.limit("w", 8), 1, "kept with nothing claimed");
        assert!(pipelines.try_take("w", 8).is_some());
        assert!(pipelines.try_take("w", 8).is_none(), "one claimed at most");
        assert_eq!(pipelines.full(), vec!["w".to_string()]);
        assert!(pipelines.set_limit("w", 8, 16, 8), "room again: claimed at once");
        assert!(pipelines.try_take("w", 8).is_some(), "back at the cap, room again");
        pipelines.release("w");
        pipelines.release("w");
        assert_eq!(pipelines.limit("w", 8), 8);
        assert_eq!(pipelines.claimed("w"), 0);
        assert!(pipelines.lock().is_empty(), "at the cap and empty: forgotten");
    }
}
