//! Ordered delivery as the merchant steers it: a webhook's blocked keys, and retrying or
//! skipping a key's head. The rule itself (one delivery at a time per key, in publish order)
//! is the claim's ([`crate::store::ordering`]); the numbers come from publishing
//! ([`crate::events`]).
//!
//! Deliveries waiting behind their key's head are parked (not due) and woken when the key
//! moves on; [`ParkedSweep`] is the safety net that wakes any a lost wake-up left parked.

use std::time::{Duration, Instant};

use crate::entities::webhook;
use crate::error::{Error, Result};
use crate::store::ordering::{HeadMove, OrderedPlace};
use crate::{Page, PageRequest, Scope, Services, now_ms};

pub use crate::store::ordering::BlockedKey;

impl Services {
    /// The webhook's blocked keys, by key, one page: each key's failed head and how many
    /// deliveries wait behind it. A webhook the scope cannot see is not found.
    pub async fn blocked_keys(
        &self,
        scope: &Scope,
        webhook_id: &str,
        page: &PageRequest,
    ) -> Result<Page<BlockedKey>> {
        let found = self.webhook(scope, webhook_id).await?;
        let limit = page.limit();
        let rows = self.store().blocked_keys(&found.id, page.cursor.as_deref(), limit + 1).await?;
        let rows = rows.into_iter().map(|head| as_shown(head, &found)).collect();
        Ok(Page::from_rows(rows, limit, |b| b.ordering_key.clone()))
    }

    /// Sends a blocked key's head again now, with a fresh retry schedule. Answers the head as
    /// it was before.
    pub async fn retry_blocked_key(&self, scope: &Scope, webhook_id: &str, key: &str) -> Result<BlockedKey> {
        let head = self.blocked_head(scope, webhook_id, key).await?;
        match self.store().retry_head(&head.delivery_id, now_ms()).await? {
            HeadMove::Moved => {
                self.wake_workers();
                Ok(head)
            }
            HeadMove::NotBlocked => Err(not_blocked()),
        }
    }

    /// Skips a blocked key's head (it is settled as skipped); the key's next delivery goes.
    pub async fn skip_blocked_key(&self, scope: &Scope, webhook_id: &str, key: &str) -> Result<BlockedKey> {
        let head = self.blocked_head(scope, webhook_id, key).await?;
        match self.store().skip_head(&head.delivery_id, now_ms()).await? {
            HeadMove::Moved => {
                self.wake_workers();
                Ok(head)
            }
            HeadMove::NotBlocked => Err(not_blocked()),
        }
    }

    async fn blocked_head(&self, scope: &Scope, webhook_id: &str, key: &str) -> Result<BlockedKey> {
        let found = self.webhook(scope, webhook_id).await?;
        let head = self.store().blocked_head(&found.id, key).await?.ok_or(Error::NotFound("blocked key"))?;
        Ok(as_shown(head, &found))
    }
}

/// A blocked key's head as the merchant sees it: a head waiting for its retry behind an open
/// breaker shows the breaker's next probe ([`crate::webhooks::shown_next_attempt`]).
fn as_shown(mut head: BlockedKey, webhook: &webhook::Model) -> BlockedKey {
    head.next_attempt_at =
        crate::webhooks::shown_next_attempt(head.status, head.next_attempt_at, Some(webhook));
    head
}

/// The head moved on between reading and writing (it was claimed, or succeeded).
fn not_blocked() -> Error {
    Error::Conflict("This key is no longer blocked: its first event is being sent or was delivered.".into())
}

/// Ordered deliveries a sweep step reads (down `deliveries_ordered`).
const SWEEP_BATCH: u64 = 500;
/// Between the end of one sweep and the start of the next.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The safety net of parking: a background sweep over the ordered deliveries that wakes a
/// parked one whose key nothing holds any more (its head was deleted by retention, or a park
/// raced the settle that should have woken it). A round runs in small steps, one every
/// [`SWEEP_EVERY`] at most.
#[derive(Debug, Default)]
pub struct ParkedSweep {
    /// Where the round in progress goes on (`None`: between rounds).
    after: Option<OrderedPlace>,
    in_round: bool,
    ended_at: Option<Instant>,
}

impl ParkedSweep {
    pub fn new() -> Self {
        Self::default()
    }

    /// One step, starting a round when the last one ended long enough ago; answers whether
    /// the round goes on (the caller steps again soon) and how many deliveries it woke.
    pub async fn step(&mut self, services: &Services) -> Result<(bool, u64)> {
        if !self.in_round {
            if self.ended_at.is_some_and(|t| t.elapsed() < SWEEP_EVERY) {
                return Ok((false, 0));
            }
            self.in_round = true;
            self.after = None;
        }
        let stepped = services.store().wake_stranded_step(self.after.as_ref(), SWEEP_BATCH, now_ms()).await;
        let (next, woken) = match stepped {
            Ok(done) => done,
            Err(e) => {
                // The round starts again later, from its beginning.
                self.in_round = false;
                self.ended_at = Some(Instant::now());
                return Err(e);
            }
        };
        if woken > 0 {
            services.wake_workers();
        }
        self.in_round = next.is_some();
        self.after = next;
        if !self.in_round {
            self.ended_at = Some(Instant::now());
        }
        Ok((self.in_round, woken))
    }
}
