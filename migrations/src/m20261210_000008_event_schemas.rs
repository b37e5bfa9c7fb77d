//! Event schemas (issue 15): what an admin says a payload of each event type looks like, and
//! whether publishing checks payloads against it.
//! - `event_types.payload_schema`: a JSON Schema as JSON text; NULL means none was set, and the
//!   catalog shows one inferred from the type's example payload;
//! - `event_types.validate_payloads`: off by default, so publishing costs what it did until
//!   an admin turns it on for a type.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        if !m.has_column("event_types", "payload_schema").await? {
            m.alter_table(
                Table::alter().table("event_types").add_column(text_null("payload_schema")).to_owned(),
            )
            .await?;
        }
        if !m.has_column("event_types", "validate_payloads").await? {
            m.alter_table(
                Table::alter()
                    .table("event_types")
                    .add_column(boolean("validate_payloads").default(false))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table("event_types").drop_column("validate_payloads").to_owned())
            .await?;
        m.alter_table(Table::alter().table("event_types").drop_column("payload_schema").to_owned()).await
    }
}
