//! What retention and store deletion store (issue 13):
//! - `stores.retention_ms`: an admin may keep a store's events, deliveries and attempts for
//!   less than `HOOKLINE_RETENTION`;
//! - `stores.deleted_at`: a deleted store is gone from every list at once, and its events are
//!   removed in small batches in the background; the row goes last;
//! - `events.payload_pruned_at`: when the payload was cleared after `HOOKLINE_PAYLOAD_RETENTION`
//!   (the payload is then the JSON text `null`), so the log can say so instead of showing
//!   nothing;
//! - an index on the events of a tenant, in time order: the only way to find a store's events
//!   (most of which no webhook receives, so no delivery leads to them) without reading the
//!   whole table. On PostgreSQL it is built without blocking publishing.

use sea_orm_migration::sea_orm::DatabaseBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        // CREATE INDEX CONCURRENTLY cannot run inside a transaction; every other step here
        // is one statement, and each is safe to run again.
        Some(false)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        // SQLite takes one column per ALTER TABLE.
        for (table, column) in
            [("stores", "retention_ms"), ("stores", "deleted_at"), ("events", "payload_pruned_at")]
        {
            if !m.has_column(table, column).await? {
                m.alter_table(Table::alter().table(table).add_column(big_integer_null(column)).to_owned())
                    .await?;
            }
        }
        let concurrently = match db.get_database_backend() {
            DatabaseBackend::Postgres => "CONCURRENTLY ",
            _ => "",
        };
        db.execute_unprepared(&format!(
            "CREATE INDEX {concurrently}IF NOT EXISTS events_by_tenant ON events (tenant_type, tenant_id, id)"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("events_by_tenant").table("events").to_owned()).await?;
        m.alter_table(Table::alter().table("events").drop_column("payload_pruned_at").to_owned()).await?;
        m.alter_table(Table::alter().table("stores").drop_column("deleted_at").to_owned()).await?;
        m.alter_table(Table::alter().table("stores").drop_column("retention_ms").to_owned()).await
    }
}
