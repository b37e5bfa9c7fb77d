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
        // The webhook page's health chart reads a webhook's attempts of the last 24 hours.
        m.create_index(
            Index::create()
                .name("attempts_by_webhook")
                .table("attempts")
                .col("webhook_id")
                .col("started_at")
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
        m.drop_index(Index::drop().name("attempts_by_webhook").table("attempts").to_owned()).await?;
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
