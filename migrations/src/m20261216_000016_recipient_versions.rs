//! Who receives a tenant's events, versioned (issue 16): `recipient_versions` holds one number
//! per tenant that moves whenever something a publish reads about its recipients changes: a
//! webhook's address, subscription, state, delivery-control fields or steering; its signing
//! secrets; the installations of applications on a store. Publishing keeps the tenant's
//! webhooks and secrets in memory and reads only this number, in the statement that takes its
//! sequence numbers, so a change made by any process is seen by the next publish everywhere.
//!
//! Triggers move the number, so no write path can forget to. The columns the engine writes
//! on every attempt (health, alert state) are left out: they change nothing a publish reads.
//! On PostgreSQL the triggers are deferred to commit, so a transaction that changes several
//! webhooks of one tenant takes the number's row lock last and two of them cannot deadlock.
//! A row is never deleted: a number that went back to an earlier value could match a stale
//! copy.

use sea_orm_migration::sea_orm::DatabaseBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The `webhooks` columns a publish or a hand-off reads.
const WEBHOOK_COLUMNS: &str = "tenant_type, tenant_id, url, event_types, enabled, disabled_reason, target_id, \
     filter_id, application_id, ordering, rate_limit, conditions, include_fields, paused_until, pause_reason, \
     probe_interval_ms";

/// (trigger, table, event, the tenant as SQL over NEW or OLD)
const TRIGGERS: [(&str, &str, &str, &str, &str); 8] = [
    ("recipients_webhook_added", "webhooks", "INSERT", "NEW.tenant_type", "NEW.tenant_id"),
    (
        "recipients_webhook_changed",
        "webhooks",
        "UPDATE OF {WEBHOOK_COLUMNS}",
        "NEW.tenant_type",
        "NEW.tenant_id",
    ),
    ("recipients_webhook_deleted", "webhooks", "DELETE", "OLD.tenant_type", "OLD.tenant_id"),
    ("recipients_secret_added", "webhook_secrets", "INSERT", SECRET_TENANT_TYPE_NEW, SECRET_TENANT_ID_NEW),
    (
        "recipients_secret_changed",
        "webhook_secrets",
        "UPDATE OF expires_at, webhook_id",
        SECRET_TENANT_TYPE_NEW,
        SECRET_TENANT_ID_NEW,
    ),
    ("recipients_secret_deleted", "webhook_secrets", "DELETE", SECRET_TENANT_TYPE_OLD, SECRET_TENANT_ID_OLD),
    ("recipients_installed", "installations", "INSERT OR UPDATE", "'store'", "NEW.store_id"),
    ("recipients_uninstalled", "installations", "DELETE", "'store'", "OLD.store_id"),
];

const SECRET_TENANT_TYPE_NEW: &str = "(SELECT tenant_type FROM webhooks WHERE id = NEW.webhook_id)";
const SECRET_TENANT_ID_NEW: &str = "(SELECT tenant_id FROM webhooks WHERE id = NEW.webhook_id)";
const SECRET_TENANT_TYPE_OLD: &str = "(SELECT tenant_type FROM webhooks WHERE id = OLD.webhook_id)";
const SECRET_TENANT_ID_OLD: &str = "(SELECT tenant_id FROM webhooks WHERE id = OLD.webhook_id)";

/// Moves the tenant's number; a secret whose webhook is already gone moves nothing (the
/// webhook's own deletion did).
fn bump(tenant_type: &str, tenant_id: &str) -> String {
    format!(
        "INSERT INTO recipient_versions (tenant_type, tenant_id, version) \
         SELECT t, i, 1 FROM (SELECT {tenant_type} AS t, {tenant_id} AS i) AS changed WHERE t IS NOT NULL \
         ON CONFLICT (tenant_type, tenant_id) DO UPDATE SET version = recipient_versions.version + 1"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        m.create_table(
            Table::create()
                .table("recipient_versions")
                .if_not_exists()
                .col(string("tenant_type"))
                .col(string("tenant_id"))
                .col(big_integer("version"))
                .primary_key(Index::create().col("tenant_type").col("tenant_id"))
                .to_owned(),
        )
        .await?;
        let postgres = db.get_database_backend() == DatabaseBackend::Postgres;
        for (name, table, event, tenant_type, tenant_id) in TRIGGERS {
            let event = event.replace("{WEBHOOK_COLUMNS}", WEBHOOK_COLUMNS);
            let body = bump(tenant_type, tenant_id);
            if postgres {
                // One function per trigger: a trigger function cannot take NEW or OLD as an
                // argument, and the tenant is found differently on each table.
                db.execute_unprepared(&format!(
                    "CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$ BEGIN {body}; RETURN NULL; END $$ \
                     LANGUAGE plpgsql"
                ))
                .await?;
                for event in event.split(" OR ") {
                    let suffix = event.split_whitespace().next().unwrap_or("").to_lowercase();
                    db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {name}_{suffix} ON {table}"))
                        .await?;
                    db.execute_unprepared(&format!(
                        "CREATE CONSTRAINT TRIGGER {name}_{suffix} AFTER {event} ON {table} \
                         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {name}()"
                    ))
                    .await?;
                }
            } else {
                for event in event.split(" OR ") {
                    let suffix = event.split_whitespace().next().unwrap_or("").to_lowercase();
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER IF NOT EXISTS {name}_{suffix} AFTER {event} ON {table} FOR EACH ROW \
                         BEGIN {body}; END"
                    ))
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        let postgres = db.get_database_backend() == DatabaseBackend::Postgres;
        for (name, table, event, _, _) in TRIGGERS {
            for event in event.split(" OR ") {
                let suffix = event.split_whitespace().next().unwrap_or("").to_lowercase();
                db.execute_unprepared(&format!(
                    "DROP TRIGGER IF EXISTS {name}_{suffix}{}",
                    if postgres { format!(" ON {table}") } else { String::new() }
                ))
                .await?;
            }
            if postgres {
                db.execute_unprepared(&format!("DROP FUNCTION IF EXISTS {name}()")).await?;
            }
        }
        m.drop_table(Table::drop().table("recipient_versions").to_owned()).await
    }
}
