//! Which application made a store-level webhook, target or filter (so an application's key
//! reaches only its own records in the stores that installed it), the product lines an
//! installation covers (reported when the application is disconnected), and the delivery
//! queue's index made partial: it holds only the deliveries still to send, in due order, so
//! a claim reads the first due rows without sorting the whole backlog.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        for table in ["webhooks", "targets", "filters"] {
            m.alter_table(Table::alter().table(table).add_column(string_null("application_id")).to_owned())
                .await?;
        }
        m.alter_table(
            Table::alter()
                .table("installations")
                .add_column(string("product_lines").default("[\"Reviews\"]"))
                .to_owned(),
        )
        .await?;
        m.drop_index(Index::drop().name("deliveries_due").table("deliveries").to_owned()).await?;
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX deliveries_due ON deliveries (next_attempt_at) \
                 WHERE status IN ('pending', 'delivering')",
            )
            .await?;
        // The webhook page's health chart: attempts counted per webhook and hour as they are
        // recorded, so the chart reads 24 rows however busy the webhook is.
        m.create_table(
            Table::create()
                .table("webhook_hours")
                .col(string("webhook_id"))
                .col(big_integer("hour"))
                .col(big_integer("succeeded").default(0))
                .col(big_integer("failed").default(0))
                .primary_key(Index::create().col("webhook_id").col("hour"))
                .to_owned(),
        )
        .await?;
        // "N events were skipped while this webhook was off" counts one webhook's skipped ones.
        m.create_index(
            Index::create()
                .name("deliveries_by_webhook_status")
                .table("deliveries")
                .col("webhook_id")
                .col("status")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("webhooks_by_application")
                .table("webhooks")
                .col("application_id")
                .col("tenant_id")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("deliveries_by_webhook_status").table("deliveries").to_owned())
            .await?;
        m.drop_table(Table::drop().table("webhook_hours").to_owned()).await?;
        m.drop_index(Index::drop().name("deliveries_due").table("deliveries").to_owned()).await?;
        m.create_index(
            Index::create()
                .name("deliveries_due")
                .table("deliveries")
                .col("status")
                .col("next_attempt_at")
                .to_owned(),
        )
        .await?;
        m.drop_index(Index::drop().name("webhooks_by_application").table("webhooks").to_owned()).await?;
        m.alter_table(Table::alter().table("installations").drop_column("product_lines").to_owned()).await?;
        for table in ["webhooks", "targets", "filters"] {
            m.alter_table(Table::alter().table(table).drop_column("application_id").to_owned()).await?;
        }
        Ok(())
    }
}
