//! Tenants' SQL: a tenant's row locked for the rest of a transaction (PostgreSQL), and a
//! store's deletion: the store leaves every list and what belongs to it goes, in one
//! transaction, except what can be large (its webhooks' deliveries and its events, removed
//! later in small steps by `maintenance`).

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement, TransactionTrait};

use super::Store;
use crate::error::Result;
use hookline_domain::{Tenant, TenantType};

/// On PostgreSQL, locks the tenant's row until the transaction ends; SQLite serialises
/// writers already (the caller holds the write turn).
pub(crate) async fn lock(conn: &impl ConnectionTrait, tenant: &Tenant) -> Result<(), DbErr> {
    if conn.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    let table = match tenant.kind {
        TenantType::Store => "stores",
        TenantType::Application => "applications",
    };
    conn.query_one_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        format!("SELECT id FROM {table} WHERE id = $1 FOR UPDATE"),
        [tenant.id.clone().into()],
    ))
    .await?;
    Ok(())
}

impl Store<'_> {
    /// Marks the store deleted at `now` and removes, in one transaction under the store's
    /// lock, its webhooks (queued for purging) with their secrets, its targets, filters,
    /// sequence counters, installations, users with their sessions, and the API keys of
    /// `key_scope` (the store's scope as keys store it).
    pub async fn delete_store(&self, store_id: &str, key_scope: &str, now: i64) -> Result<()> {
        let backend = self.backend();
        let of_store = "tenant_type = 'store' AND tenant_id = $1";
        let store_id_only = || -> Vec<sea_orm::Value> { vec![store_id.into()] };
        let id_and_now = || -> Vec<sea_orm::Value> { vec![store_id.into(), now.into()] };
        let statements: [(String, Vec<sea_orm::Value>); 11] = [
            ("UPDATE stores SET deleted_at = $2 WHERE id = $1".into(), id_and_now()),
            (
                format!(
                    "DELETE FROM webhook_secrets WHERE webhook_id IN (SELECT id FROM webhooks WHERE {of_store})"
                ),
                store_id_only(),
            ),
            (
                format!(
                    "INSERT INTO webhook_purges (webhook_id, requested_at) SELECT id, $2 FROM webhooks \
                     WHERE {of_store} ON CONFLICT (webhook_id) DO NOTHING"
                ),
                id_and_now(),
            ),
            (format!("DELETE FROM webhooks WHERE {of_store}"), store_id_only()),
            (format!("DELETE FROM targets WHERE {of_store}"), store_id_only()),
            (format!("DELETE FROM filters WHERE {of_store}"), store_id_only()),
            (format!("DELETE FROM sequences WHERE {of_store}"), store_id_only()),
            ("DELETE FROM installations WHERE store_id = $1".into(), store_id_only()),
            (
                "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE store_id = $1)".into(),
                store_id_only(),
            ),
            ("DELETE FROM users WHERE store_id = $1".into(), store_id_only()),
            ("DELETE FROM api_keys WHERE scope = $1".into(), vec![key_scope.into()]),
        ];
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await?;
        lock(&txn, &Tenant::store(store_id.to_string())).await?;
        for (sql, values) in statements {
            txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
        }
        txn.commit().await?;
        Ok(())
    }
}
