//! Fewer index writes per event. Every delivery used to enter a `(webhook_id, status)` index
//! when written and again at each change of status; most deliveries are written, sent and
//! settled as successes, and nobody looks them up by that status. Three partial indexes take
//! its place, one per status a merchant filters the log by or Hookline counts (pending,
//! failed, skipped): a delivery enters one only while it has that status. Likewise the
//! idempotency index holds only the events published with a key.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const STATUSES: [&str; 3] = ["pending", "failed", "skipped"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        m.drop_index(Index::drop().name("deliveries_by_webhook_status").table("deliveries").to_owned())
            .await?;
        for status in STATUSES {
            db.execute_unprepared(&format!(
                "CREATE INDEX deliveries_{status}_by_webhook ON deliveries (webhook_id, id) \
                 WHERE status = '{status}'"
            ))
            .await?;
        }
        m.drop_index(Index::drop().name("events_by_idempotency_key").table("events").to_owned()).await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX events_by_idempotency_key ON events (tenant_type, tenant_id, idempotency_key) \
             WHERE idempotency_key IS NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for status in STATUSES {
            m.drop_index(
                Index::drop().name(format!("deliveries_{status}_by_webhook")).table("deliveries").to_owned(),
            )
            .await?;
        }
        m.create_index(
            Index::create()
                .name("deliveries_by_webhook_status")
                .table("deliveries")
                .col("webhook_id")
                .col("status")
                .to_owned(),
        )
        .await?;
        m.drop_index(Index::drop().name("events_by_idempotency_key").table("events").to_owned()).await?;
        m.create_index(
            Index::create()
                .name("events_by_idempotency_key")
                .table("events")
                .col("tenant_type")
                .col("tenant_id")
                .col("idempotency_key")
                .unique()
                .to_owned(),
        )
        .await
    }
}
