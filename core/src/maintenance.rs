//! Housekeeping that runs in the background, in small steps so that none of it holds up
//! publishing or delivery: removing what deleted webhooks and stores left behind, and expired
//! sessions. Retention has its own module (`retention`).

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::entities::session;
use crate::error::Result;
use crate::{Services, now_ms};

/// Deliveries (with their attempts) one step removes.
const PURGE_BATCH: u64 = 500;

impl Services {
    /// One step of removing deleted webhooks' deliveries, attempts and hourly counters: at
    /// most [`PURGE_BATCH`] deliveries, in one short transaction. Answers how many rows it
    /// removed; 0 when nothing is left to do.
    pub async fn purge_deleted_webhooks_step(&self) -> Result<u64> {
        self.store().purge_deleted_webhook_step(PURGE_BATCH).await
    }

    /// A consistent copy of a SQLite database at `path`, made while Hookline runs
    /// (`VACUUM INTO`: one read transaction, so the copy is the database at one moment, and
    /// writers go on meanwhile in WAL mode). PostgreSQL has its own tools (`pg_dump`, base
    /// backups).
    pub async fn backup_sqlite(&self, path: &std::path::Path) -> Result<()> {
        use crate::error::Error;
        if self.db.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
            return Err(Error::invalid(
                "path",
                "hookline backup copies SQLite databases; back PostgreSQL up with pg_dump or a base backup.",
            ));
        }
        if path.exists() {
            return Err(Error::invalid(
                "path",
                format!("{} exists already; name a new file.", path.display()),
            ));
        }
        let text =
            path.to_str().ok_or_else(|| Error::invalid("path", "The backup path must be valid UTF-8."))?;
        Error::refuse_nul("path", text)?;
        self.store().vacuum_into(text).await?;
        Ok(())
    }

    /// One step of removing a deleted store's events: at most [`PURGE_BATCH`], by the
    /// tenant's index. Once none is left, and other processes have stopped taking events for
    /// it (they may have known it for [`crate::cache::TENANT_TTL`]), the store's row goes.
    /// Its webhooks' deliveries go with their webhook purges. Answers how many rows it removed.
    pub async fn purge_deleted_stores_step(&self) -> Result<u64> {
        let settled_before = now_ms() - 3 * crate::cache::TENANT_TTL.as_millis() as i64;
        self.store().purge_deleted_store_step(PURGE_BATCH, settled_before).await
    }

    /// Whether the database answers, now.
    pub async fn ping(&self) -> Result<()> {
        self.store().ping().await
    }

    /// When the oldest due delivery came due, if one is due: one step down the due index.
    pub async fn oldest_due(&self) -> Result<Option<i64>> {
        Ok(self.store().earliest_due().await?.filter(|t| *t <= now_ms()))
    }

    /// Removes sessions past their end; answers how many.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        let done = session::Entity::delete_many()
            .filter(session::Column::ExpiresAt.lte(now_ms()))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected)
    }
}
