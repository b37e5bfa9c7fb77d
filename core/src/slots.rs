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
/// ready behind them, so its pipeline stays full while the next claim is made. A webhook that
/// reaches twice its limit is left out of claims until it is back down to its limit.
#[derive(Default)]
pub struct Pipelines(Mutex<HashMap<String, Pipeline>>);

struct Pipeline {
    claimed: usize,
    saturated: bool,
    /// `limit` permits: one per request out.
    sending: Arc<Semaphore>,
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
    /// semaphore its request must then wait on.
    pub fn try_take(&self, webhook: &str, limit: usize) -> Option<Arc<Semaphore>> {
        let mut map = self.lock();
        let entry = map.entry(webhook.to_string()).or_insert_with(|| Pipeline::new(limit));
        if entry.claimed >= 2 * limit {
            return None;
        }
        entry.claimed += 1;
        if entry.claimed == 2 * limit {
            entry.saturated = true;
        }
        Some(entry.sending.clone())
    }

    /// Takes a place for an attempt made on request (a resend, a test), whatever the count:
    /// it then waits for one of the webhook's request permits like any claimed delivery.
    pub fn take_waiting(&self, webhook: &str, limit: usize) -> Arc<Semaphore> {
        let mut map = self.lock();
        let entry = map.entry(webhook.to_string()).or_insert_with(|| Pipeline::new(limit));
        entry.claimed += 1;
        if entry.claimed >= 2 * limit {
            entry.saturated = true;
        }
        entry.sending.clone()
    }

    /// Gives the place back; true when the webhook has just come back into the claims.
    pub fn release(&self, webhook: &str, limit: usize) -> bool {
        let mut map = self.lock();
        let Some(entry) = map.get_mut(webhook) else { return false };
        entry.claimed -= 1;
        let reopened = entry.saturated && entry.claimed <= limit;
        if reopened {
            entry.saturated = false;
        }
        if entry.claimed == 0 {
            map.remove(webhook);
        }
        reopened
    }

    /// Deliveries of the webhook holding a place.
    pub fn claimed(&self, webhook: &str) -> usize {
        self.lock().get(webhook).map_or(0, |p| p.claimed)
    }
}

impl Pipeline {
    fn new(limit: usize) -> Self {
        Pipeline { claimed: 0, saturated: false, sending: Arc::new(Semaphore::new(limit)) }
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
    limit: usize,
    /// Woken when the webhook comes back into the claims.
    new_work: Arc<Notify>,
}

impl WebhookSlot {
    /// A place taken with [`Pipelines::try_take`] or [`Pipelines::take_waiting`].
    pub fn new(
        sending: Arc<Semaphore>,
        pipelines: Arc<Pipelines>,
        webhook_id: String,
        limit: usize,
        new_work: Arc<Notify>,
    ) -> Self {
        WebhookSlot { sending, pipelines, webhook_id, limit, new_work }
    }
}

impl Drop for WebhookSlot {
    fn drop(&mut self) {
        if self.pipelines.release(&self.webhook_id, self.limit) {
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
        assert!(!pipelines.release("w", 2), "three claimed: still left out");
        assert!(pipelines.release("w", 2), "back down to its limit: claimed again");
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
        let slot = WebhookSlot::new(sending, pipelines.clone(), "w".into(), 1, new_work);
        assert_eq!(pipelines.claimed("w"), 1);
        drop(slot);
        assert_eq!(pipelines.claimed("w"), 0, "released when the slot is dropped");
    }
}
