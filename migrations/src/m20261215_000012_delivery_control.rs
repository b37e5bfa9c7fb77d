//! Delivery control (issue 14): what the receiver's answers, ordering keys, payload conditions
//! and bulk replays need stored.
//!
//! - `events.ordering_key`: the key a publisher gave the event (1 to 255 characters), or NULL;
//! - `deliveries.ordering_key` and `deliveries.ordering_seq`: set only on the deliveries of a
//!   webhook with ordering on (the event's key and its tenant sequence); such a delivery is
//!   claimed only once every earlier one of its webhook and key is settled, and a failed one
//!   holds its key until it is retried or skipped. The partial index `deliveries_ordered` holds
//!   just the ordered deliveries that can hold a key, so the check costs an index probe;
//! - `webhooks.ordering`, `rate_limit` (requests per second, NULL for none), `conditions`
//!   (JSON, NULL for none) and `include_fields` (JSON array of paths, NULL for the whole
//!   payload): the webhook's settings;
//! - `webhooks.paused_until`, `pause_reason` and `probe_interval_ms`: the receiver's steering,
//!   shared by every process. `paused_until` holds claims of the webhook's deliveries until then
//!   (after a 429/503 with `Retry-After`, or between circuit-breaker probes); `pause_reason`
//!   says which (`retry_after`, `circuit_open`); `probe_interval_ms` is the breaker's current
//!   interval while it is open, NULL while it is closed;
//! - `filters.conditions`: the three-step flow's filters may carry conditions too;
//! - `replays`: bulk replays, their choice, progress and cursor (so a crash resumes them).
//! - `events_by_ordering_key`: an ordering key's timeline within its tenant.

use sea_orm_migration::sea_orm::DatabaseBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The ordered deliveries that can hold their key; the claim's check repeats this text so that
/// both databases use the partial index.
pub const ORDERED_PREDICATE: &str =
    "ordering_key IS NOT NULL AND status IN ('pending', 'delivering', 'failed')";

async fn add_column(m: &SchemaManager<'_>, table: &str, column: ColumnDef) -> Result<(), DbErr> {
    let name = column.get_column_name();
    if !m.has_column(table, &name).await? {
        // SQLite takes one column per ALTER TABLE.
        m.alter_table(Table::alter().table(Alias::new(table)).add_column(column).to_owned()).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        // CREATE INDEX CONCURRENTLY cannot run inside a transaction; every step here is one
        // statement, and each is safe to run again.
        Some(false)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        add_column(m, "events", string_null("ordering_key")).await?;
        add_column(m, "deliveries", string_null("ordering_key")).await?;
        add_column(m, "deliveries", big_integer_null("ordering_seq")).await?;
        add_column(m, "webhooks", boolean("ordering").default(false).to_owned()).await?;
        add_column(m, "webhooks", integer_null("rate_limit")).await?;
        add_column(m, "webhooks", text_null("conditions")).await?;
        add_column(m, "webhooks", text_null("include_fields")).await?;
        add_column(m, "webhooks", big_integer_null("paused_until")).await?;
        add_column(m, "webhooks", string_null("pause_reason")).await?;
        add_column(m, "webhooks", big_integer_null("probe_interval_ms")).await?;
        add_column(m, "filters", text_null("conditions")).await?;

        m.create_table(
            Table::create()
                .table("replays")
                .if_not_exists()
                .col(string("id").primary_key())
                .col(string("webhook_id"))
                .col(string("tenant_type"))
                .col(string("tenant_id"))
                .col(big_integer_null("from_at"))
                .col(big_integer_null("to_at"))
                .col(text_null("statuses"))
                .col(text_null("event_types"))
                .col(string("state"))
                .col(big_integer("total").default(0))
                .col(big_integer("done").default(0))
                .col(string_null("cursor"))
                .col(string_null("requested_by"))
                .col(string_null("error"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .col(big_integer_null("finished_at"))
                .to_owned(),
        )
        .await?;

        let concurrently = match db.get_database_backend() {
            DatabaseBackend::Postgres => "CONCURRENTLY ",
            _ => "",
        };
        for sql in [
            format!(
                "CREATE INDEX {concurrently}IF NOT EXISTS deliveries_ordered \
                 ON deliveries (webhook_id, ordering_key, ordering_seq) WHERE {ORDERED_PREDICATE}"
            ),
            format!(
                "CREATE INDEX {concurrently}IF NOT EXISTS events_by_ordering_key \
                 ON events (tenant_type, tenant_id, ordering_key, sequence) WHERE ordering_key IS NOT NULL"
            ),
            format!(
                "CREATE INDEX {concurrently}IF NOT EXISTS webhooks_paused ON webhooks (paused_until) \
                 WHERE paused_until IS NOT NULL"
            ),
            format!(
                "CREATE INDEX {concurrently}IF NOT EXISTS replays_by_webhook ON replays (webhook_id, created_at)"
            ),
            format!(
                "CREATE INDEX {concurrently}IF NOT EXISTS replays_running ON replays (updated_at) \
                 WHERE state = 'running'"
            ),
        ] {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, index) in [
            ("deliveries", "deliveries_ordered"),
            ("events", "events_by_ordering_key"),
            ("webhooks", "webhooks_paused"),
        ] {
            m.drop_index(Index::drop().name(index).table(Alias::new(table)).to_owned()).await?;
        }
        m.drop_table(Table::drop().table("replays").to_owned()).await?;
        for (table, column) in [
            ("filters", "conditions"),
            ("webhooks", "probe_interval_ms"),
            ("webhooks", "pause_reason"),
            ("webhooks", "paused_until"),
            ("webhooks", "include_fields"),
            ("webhooks", "conditions"),
            ("webhooks", "rate_limit"),
            ("webhooks", "ordering"),
            ("deliveries", "ordering_seq"),
            ("deliveries", "ordering_key"),
            ("events", "ordering_key"),
        ] {
            m.alter_table(Table::alter().table(Alias::new(table)).drop_column(Alias::new(column)).to_owned())
                .await?;
        }
        Ok(())
    }
}
