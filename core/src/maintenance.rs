//! Housekeeping that runs in the background, in small steps so that none of it holds up
//! publishing or delivery: removing what deleted webhooks and stores left behind, and expired
//! sessions. Retention has its own module (`retention`).

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement};

use crate::entities::{delivery, session, store, webhook_purge};
use crate::error::Result;
use crate::{Services, now_ms};

/// Deliveries (with their attempts) one step removes.
const PURGE_BATCH: u64 = 500;

impl Services {
    /// One step of removing deleted webhooks' deliveries, attempts and hourly counters: at
    /// most [`PURGE_BATCH`] deliveries, in one short transaction. Answers how many rows it
    /// removed; 0 when nothing is left to do.
    pub async fn purge_deleted_webhooks_step(&self) -> Result<u64> {
        let Some(purge) = webhook_purge::Entity::find()
            .order_by_asc(webhook_purge::Column::RequestedAt)
            .one(&self.db)
            .await?
        else {
            return Ok(0);
        };
        let ids: Vec<String> = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Id)
            .filter(delivery::Column::WebhookId.eq(&purge.webhook_id))
            .order_by_asc(delivery::Column::Id)
            .limit(PURGE_BATCH)
            .into_tuple()
            .all(&self.db)
            .await?;
        let backend = self.db.get_database_backend();
        let _turn = self.write_turn().await;
        if ids.is_empty() {
            // The last step: the hourly counters and the purge's own row.
            self.db
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    "DELETE FROM webhook_hours WHERE webhook_id = $1",
                    [purge.webhook_id.clone().into()],
                ))
                .await?;
            webhook_purge::Entity::delete_by_id(&purge.webhook_id).exec(&self.db).await?;
            return Ok(1);
        }
        let list = crate::store::placeholder_list(ids.len(), 0);
        let values: Vec<sea_orm::Value> = ids.iter().map(|id| id.clone().into()).collect();
        let txn = sea_orm::TransactionTrait::begin(&self.db).await?;
        let attempts = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM attempts WHERE delivery_id IN ({list})"),
                values.clone(),
            ))
            .await?;
        let deliveries = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM deliveries WHERE id IN ({list})"),
                values,
            ))
            .await?;
        txn.commit().await?;
        Ok(attempts.rows_affected() + deliveries.rows_affected())
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
        self.db
            .execute_raw(Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Sqlite,
                "VACUUM INTO ?",
                [text.into()],
            ))
            .await?;
        Ok(())
    }

    /// One step of removing a deleted store's events: at most [`PURGE_BATCH`], by the
    /// tenant's index. Once none is left, and other processes have stopped taking events for
    /// it (they may have known it for [`crate::cache::TENANT_TTL`]), the store's row goes.
    /// Its webhooks' deliveries go with their webhook purges. Answers how many rows it removed.
    pub async fn purge_deleted_stores_step(&self) -> Result<u64> {
        let Some(gone) = store::Entity::find()
            .filter(store::Column::DeletedAt.is_not_null())
            .order_by_asc(store::Column::DeletedAt)
            .one(&self.db)
            .await?
        else {
            return Ok(0);
        };
        let backend = self.db.get_database_backend();
        let _turn = self.write_turn().await;
        let events = self
            .db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE tenant_type = 'store' \
                     AND tenant_id = $1 ORDER BY id LIMIT {PURGE_BATCH})"
                ),
                [gone.id.clone().into()],
            ))
            .await?
            .rows_affected();
        let settled =
            gone.deleted_at.unwrap_or(0) + 3 * crate::cache::TENANT_TTL.as_millis() as i64 <= now_ms();
        if events > 0 || !settled {
            return Ok(events);
        }
        store::Entity::delete_by_id(&gone.id).exec(&self.db).await?;
        Ok(1)
    }

    /// Whether the database answers, now.
    pub async fn ping(&self) -> Result<()> {
        self.db.execute_unprepared("SELECT 1").await?;
        Ok(())
    }

    /// When the oldest due delivery came due, if one is due: one step down the due index.
    pub async fn oldest_due(&self) -> Result<Option<i64>> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                // A pending delivery that came due, or a claimed one whose lease ran out (its
                // process died): both are waiting, as the claim sees them.
                "SELECT next_attempt_at FROM deliveries WHERE status IN ('pending', 'delivering') \
                 AND next_attempt_at IS NOT NULL ORDER BY next_attempt_at LIMIT 1",
            ))
            .await?;
        let at: Option<i64> = match row {
            Some(r) => r.try_get("", "next_attempt_at")?,
            None => None,
        };
        Ok(at.filter(|t| *t <= now_ms()))
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
