//! `listeners`: the temporary listeners of `hookline listen` (issue 15). A row lives while a
//! CLI holds its stream open: the process serving the stream refreshes `heartbeat_at`, and a
//! row whose heartbeat is old (the process died) is removed by the next look at the table.
//! Rows hold no secret: the listener's signing secret lives only in the serving process.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("listeners")
                .if_not_exists()
                .col(string("id").primary_key())
                .col(string("tenant_type"))
                .col(string("tenant_id"))
                .col(string_null("application_id"))
                .col(text_null("event_types"))
                .col(big_integer("created_at"))
                .col(big_integer("heartbeat_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("listeners_by_tenant")
                .table("listeners")
                .col("tenant_type")
                .col("tenant_id")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("listeners").to_owned()).await
    }
}
