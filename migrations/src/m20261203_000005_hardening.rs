//! What the hardening of issue 11 stores:
//! - `users.disabled_at`: an admin can disable a user, whose sessions then end;
//! - `deliveries.manual_attempts`: resends on request are counted apart, so they never use
//!   up the automatic retry schedule;
//! - an index on the idempotency key alone: a key reused for another tenant is found and
//!   refused, as a key reused with another payload is;
//! - `webhook_purges`: a deleted webhook's deliveries and attempts are removed in small
//!   batches in the background, so deleting a webhook with a long log never holds up
//!   publishing.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        m.alter_table(Table::alter().table("users").add_column(big_integer_null("disabled_at")).to_owned())
            .await?;
        m.alter_table(
            Table::alter().table("deliveries").add_column(integer("manual_attempts").default(0)).to_owned(),
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX events_by_idempotency_key_alone ON events (idempotency_key) \
             WHERE idempotency_key IS NOT NULL",
        )
        .await?;
        m.create_table(
            Table::create()
                .table("webhook_purges")
                .col(string("webhook_id").primary_key())
                .col(big_integer("requested_at"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("webhook_purges").to_owned()).await?;
        m.drop_index(Index::drop().name("events_by_idempotency_key_alone").table("events").to_owned())
            .await?;
        m.alter_table(Table::alter().table("deliveries").drop_column("manual_attempts").to_owned()).await?;
        m.alter_table(Table::alter().table("users").drop_column("disabled_at").to_owned()).await
    }
}
