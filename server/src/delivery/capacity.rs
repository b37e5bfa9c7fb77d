//! How much this process delivers at once: a permit per delivery, from its claim until its
//! attempt is written (so a slow database slows the claims instead of piling results up in
//! memory), and per webhook a pipeline of claimed deliveries with a limit of requests out
//! ([`Pipelines`]; the steering moves that limit, [`super::steer`]). What a delivery holds is a
//! [`Slot`]; dropping it gives everything back.

use std::sync::Arc;
use std::time::Duration;

use hookline_core::slots::{Pipelines, Slot, WebhookSlot};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

pub(crate) struct Capacity {
    permits: Arc<Semaphore>,
    /// Deliveries in flight at most.
    total: usize,
    /// Requests out to one webhook at most.
    per_webhook: usize,
    pipelines: Arc<Pipelines>,
    new_work: Arc<Notify>,
}

impl Capacity {
    pub(crate) fn new(total: usize, per_webhook: usize, new_work: Arc<Notify>) -> Self {
        let total = total.max(1);
        Capacity {
            permits: Arc::new(Semaphore::new(total)),
            total,
            per_webhook: per_webhook.max(1),
            pipelines: Arc::new(Pipelines::default()),
            new_work,
        }
    }

    pub(crate) fn total(&self) -> usize {
        self.total
    }

    /// Deliveries in flight now.
    pub(crate) fn in_use(&self) -> usize {
        self.total.saturating_sub(self.permits.available_permits())
    }

    /// Waits for a free permit; `None` once the engine is closed.
    pub(crate) async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().acquire_owned().await.ok()
    }

    /// How many deliveries a claim may take now, holding `first` and at most `batch`.
    pub(crate) fn room(&self, batch: usize) -> usize {
        (self.permits.available_permits() + 1).min(batch)
    }

    /// The webhooks whose pipelines are full, left out of claims.
    pub(crate) fn full(&self) -> Vec<String> {
        self.pipelines.full()
    }

    /// A slot for a claimed delivery of the webhook, with `first` (the permit the claim was
    /// made with) or another free permit; `None` when the webhook's pipeline or the process
    /// is full, and the delivery goes back to the queue.
    pub(crate) fn slot_for_claim(
        &self,
        webhook_id: &str,
        first: &mut Option<OwnedSemaphorePermit>,
    ) -> Option<Slot> {
        let sending = self.pipelines.try_take(webhook_id, self.per_webhook)?;
        let permit = match first.take() {
            Some(permit) => permit,
            None => match self.permits.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    self.pipelines.release(webhook_id);
                    return None;
                }
            },
        };
        Some(Slot { permit, webhook: self.webhook_slot(sending, webhook_id) })
    }

    /// A slot for a fresh delivery publishing hands over, if one is free now.
    pub(crate) fn reserve(&self, webhook_id: &str) -> Option<Slot> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        let sending = self.pipelines.try_take(webhook_id, self.per_webhook)?;
        Some(Slot { permit, webhook: self.webhook_slot(sending, webhook_id) })
    }

    /// A place in the webhook's pipeline for an attempt made on request: always given, and
    /// its request waits for the webhook's limit like any other, so resends cannot flood an
    /// endpoint.
    pub(crate) fn place_on_request(&self, webhook_id: &str) -> WebhookSlot {
        let sending = self.pipelines.take_waiting(webhook_id, self.per_webhook);
        self.webhook_slot(sending, webhook_id)
    }

    fn webhook_slot(&self, sending: Arc<Semaphore>, webhook_id: &str) -> WebhookSlot {
        WebhookSlot::new(sending, self.pipelines.clone(), webhook_id.to_string(), self.new_work.clone())
    }

    /// The per-webhook pipelines, for the steering to move a webhook's limits.
    pub(crate) fn pipelines(&self) -> Arc<Pipelines> {
        self.pipelines.clone()
    }

    pub(crate) fn new_work(&self) -> Arc<Notify> {
        self.new_work.clone()
    }

    /// The configured limit of requests out per webhook.
    pub(crate) fn per_webhook(&self) -> usize {
        self.per_webhook
    }

    /// Waits until every delivery in flight has been written (each holds a permit until
    /// then), at most `within`; true when they all were.
    pub(crate) async fn all_back(&self, within: Duration) -> bool {
        let all = u32::try_from(self.total).unwrap_or(u32::MAX);
        tokio::time::timeout(within, self.permits.acquire_many(all)).await.is_ok_and(|r| r.is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity(total: usize, per_webhook: usize) -> Capacity {
        Capacity::new(total, per_webhook, Arc::new(Notify::new()))
    }

    #[tokio::test]
    async fn a_claim_takes_what_the_process_and_each_webhook_have_room_for() {
        let capacity = capacity(3, 1);
        let mut first = capacity.permit().await;
        assert_eq!(capacity.room(64), 3, "the permit in hand and two free");
        let a = capacity.slot_for_claim("a", &mut first).expect("room for a");
        assert!(first.is_none(), "the first slot takes the claim's permit");
        let a2 = capacity.slot_for_claim("a", &mut first).expect("a's pipeline holds twice its limit");
        assert!(capacity.slot_for_claim("a", &mut first).is_none(), "a is full");
        assert_eq!(capacity.full(), vec!["a".to_string()]);
        let b = capacity.slot_for_claim("b", &mut first).expect("b has its own pipeline");
        assert_eq!(capacity.in_use(), 3);
        assert!(capacity.slot_for_claim("c", &mut first).is_none(), "no permit left");
        drop((a, a2, b));
        assert_eq!(capacity.in_use(), 0, "dropped slots give their permits back");
        assert!(capacity.full().is_empty());
    }

    #[tokio::test]
    async fn a_reservation_needs_a_free_permit() {
        let capacity = capacity(1, 4);
        let held = capacity.reserve("a").expect("one free permit");
        assert!(capacity.reserve("b").is_none(), "the only permit is taken");
        drop(held);
        assert!(capacity.reserve("b").is_some());
    }

    #[tokio::test]
    async fn attempts_on_request_queue_behind_the_webhooks_limit() {
        let capacity = capacity(4, 1);
        let place = capacity.place_on_request("a");
        let out = place.sending.clone().try_acquire_owned().expect("the webhook's one request");
        let second = capacity.place_on_request("a");
        assert!(second.sending.clone().try_acquire_owned().is_err(), "waits for the first to answer");
        drop(out);
        assert!(second.sending.clone().try_acquire_owned().is_ok());
    }

    #[tokio::test]
    async fn all_back_waits_for_the_slots_in_flight() {
        let capacity = capacity(2, 2);
        let slot = capacity.reserve("a").expect("room");
        assert!(!capacity.all_back(Duration::from_millis(20)).await, "one still out");
        drop(slot);
        assert!(capacity.all_back(Duration::from_millis(20)).await);
    }
}
