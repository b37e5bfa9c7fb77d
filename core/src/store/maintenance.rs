//! Housekeeping's SQL: a deleted webhook's deliveries, attempts and hourly counters removed a
//! batch at a time, a deleted store's events, the database's liveness and the queue's oldest
//! due time, and SQLite's online copy. Each write is one short statement or transaction in
//! the write turn, so none of it holds up publishing or delivery.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement, TransactionTrait,
};

use super::Store;
use crate::entities::{delivery, store, webhook_purge};
use crate::error::Result;

impl Store<'_> {
    /// One step of removing deleted webhooks' deliveries, attempts and hourly counters: at
    /// most `batch` deliveries, in one short transaction. Answers how many rows it removed; 0
    /// when nothing is left to do.
    pub async fn purge_deleted_webhook_step(&self, batch: u64) -> Result<u64> {
        let Some(purge) = webhook_purge::Entity::find()
            .order_by_asc(webhook_purge::Column::RequestedAt)
            .one(self.db)
            .await?
        else {
            return Ok(0);
        };
        let ids: Vec<String> = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Id)
            .filter(delivery::Column::WebhookId.eq(&purge.webhook_id))
            .order_by_asc(delivery::Column::Id)
            .limit(batch)
            .into_tuple()
            .all(self.db)
            .await?;
        let backend = self.backend();
        if ids.is_empty() {
            // The last step: the hourly counters, what the daily rollups hold of them (so the
            // overview's week drops the webhook at once, not at the next rollup round), then the
            // purge's own row. A crash in between leaves the row, and the step runs again.
            {
                let _turn = self.write_turn().await;
                self.db
                    .execute_raw(Statement::from_sql_and_values(
                        backend,
                        "DELETE FROM webhook_hours WHERE webhook_id = $1",
                        [purge.webhook_id.clone().into()],
                    ))
                    .await?;
            }
            self.forget_webhook_rollups(&purge.webhook_id).await?;
            let _turn = self.write_turn().await;
            webhook_purge::Entity::delete_by_id(&purge.webhook_id).exec(self.db).await?;
            return Ok(1);
        }
        let _turn = self.write_turn().await;
        let list = super::placeholder_list(ids.len(), 0);
        let values: Vec<sea_orm::Value> = ids.iter().map(|id| id.clone().into()).collect();
        let txn = self.db.begin().await?;
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

    /// One step of removing a deleted store's events: at most `batch`, by the tenant's index.
    /// Once none is left, and the store was deleted at or before `settled_before` (other
    /// processes may have kept taking events for it a while), the store's row goes. Answers
    /// how many rows it removed.
    pub async fn purge_deleted_store_step(&self, batch: u64, settled_before: i64) -> Result<u64> {
        let Some(gone) = store::Entity::find()
            .filter(store::Column::DeletedAt.is_not_null())
            .order_by_asc(store::Column::DeletedAt)
            .one(self.db)
            .await?
        else {
            return Ok(0);
        };
        let _turn = self.write_turn().await;
        let events = self
            .db
            .execute_raw(Statement::from_sql_and_values(
                self.backend(),
                format!(
                    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE tenant_type = 'store' \
                     AND tenant_id = $1 ORDER BY id LIMIT {batch})"
                ),
                [gone.id.clone().into()],
            ))
            .await?
            .rows_affected();
        let settled = gone.deleted_at.unwrap_or(0) <= settled_before;
        if events > 0 || !settled {
            return Ok(events);
        }
        store::Entity::delete_by_id(&gone.id).exec(self.db).await?;
        Ok(1)
    }

    /// A consistent copy of a SQLite database into the new file `path` (`VACUUM INTO`: one
    /// read transaction, so the copy is the database at one moment while writers go on).
    pub async fn vacuum_into(&self, path: &str) -> Result<()> {
        self.db
            .execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Sqlite,
                "VACUUM INTO ?",
                [path.into()],
            ))
            .await?;
        Ok(())
    }

    /// Whether the database answers, now.
    pub async fn ping(&self) -> Result<()> {
        self.db.execute_unprepared("SELECT 1").await?;
        Ok(())
    }

    /// The earliest `next_attempt_at` of a waiting delivery, whether or not it is due yet: one
    /// step down the due index.
    pub async fn earliest_due(&self) -> Result<Option<i64>> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.backend(),
                // A pending delivery that came due, or a claimed one whose lease ran out (its
                // process died): both are waiting, as the claim sees them.
                "SELECT next_attempt_at FROM deliveries WHERE status IN ('pending', 'delivering') \
                 AND next_attempt_at IS NOT NULL ORDER BY next_attempt_at LIMIT 1",
            ))
            .await?;
        Ok(match row {
            Some(r) => r.try_get("", "next_attempt_at")?,
            None => None,
        })
    }
}
