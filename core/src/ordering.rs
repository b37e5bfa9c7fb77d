//! Ordered delivery as the merchant steers it: a webhook's blocked keys, and retrying or
//! skipping a key's head. The rule itself (one delivery at a time per key, in publish order)
//! is the claim's ([`crate::store::ordering`]); the numbers come from publishing
//! ([`crate::events`]).

use crate::error::{Error, Result};
use crate::store::ordering::HeadMove;
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
        self.store().blocked_head(&found.id, key).await?.ok_or(Error::NotFound("blocked key"))
    }
}

/// The head moved on between reading and writing (it was claimed, or succeeded).
fn not_blocked() -> Error {
    Error::Conflict("This key is no longer blocked: its first event is being sent or was delivered.".into())
}
