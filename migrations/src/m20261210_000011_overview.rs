//! What the admin overview reads (issue 15), all of it counters, never the deliveries:
//! - `webhook_hours.duration_ms`: the attempts' durations summed per webhook and hour, beside
//!   the success and failure counts, so the slowest endpoints are a division of counters;
//! - an index on `webhook_hours (hour)`: the overview sums every webhook's counters over an
//!   hour range, which the primary key (webhook first) cannot serve. It leaves the counters
//!   themselves unindexed, so the engine's upserts stay heap-only updates on PostgreSQL;
//! - an index on the webhooks that were turned off, by when: "turned off recently".

use sea_orm_migration::sea_orm::DatabaseBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        // CREATE INDEX CONCURRENTLY cannot run inside a transaction; every step here is one
        // statement, and each is safe to run again.
        Some(false)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if !m.has_column("webhook_hours", "duration_ms").await? {
            m.alter_table(
                Table::alter()
                    .table("webhook_hours")
                    .add_column(big_integer("duration_ms").default(0))
                    .to_owned(),
            )
            .await?;
        }
        let concurrently = match db.get_database_backend() {
            DatabaseBackend::Postgres => "CONCURRENTLY ",
            _ => "",
        };
        db.execute_unprepared(&format!(
            "CREATE INDEX {concurrently}IF NOT EXISTS webhook_hours_by_hour ON webhook_hours (hour)"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "CREATE INDEX {concurrently}IF NOT EXISTS webhooks_turned_off ON webhooks (disabled_at) \
             WHERE disabled_at IS NOT NULL"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("webhooks_turned_off").table("webhooks").to_owned()).await?;
        m.drop_index(Index::drop().name("webhook_hours_by_hour").table("webhook_hours").to_owned()).await?;
        m.alter_table(Table::alter().table("webhook_hours").drop_column("duration_ms").to_owned()).await
    }
}
