//! Writes to `webhooks` that more than one part of Hookline makes: turning a webhook off,
//! whoever decides it (a person, the engine after failures or a 410, an application's
//! disconnection), and locking a webhook's row for the rest of a transaction.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, Statement};

use crate::entities::webhook;
use crate::{ApplicationId, DisabledReason, StoreId, TenantType};

/// Which webhooks to turn off.
#[derive(Clone, Copy, Debug)]
pub enum Which<'a> {
    One(&'a str),
    /// The store-level webhooks an application made in a store.
    OfApplicationInStore {
        application_id: &'a ApplicationId,
        store_id: &'a StoreId,
    },
}

/// Turns the webhooks off for `reason` at `now`. Only those still on are touched, so the
/// first reason stays; answers how many.
pub(crate) async fn turn_off(
    conn: &impl ConnectionTrait,
    which: Which<'_>,
    reason: DisabledReason,
    now: i64,
) -> Result<u64, DbErr> {
    let mut update = webhook::Entity::update_many()
        .col_expr(webhook::Column::Enabled, Expr::value(false))
        .col_expr(webhook::Column::DisabledReason, Expr::value(reason.as_str()))
        .col_expr(webhook::Column::DisabledAt, Expr::value(now))
        .col_expr(webhook::Column::UpdatedAt, Expr::value(now));
    update = match which {
        Which::One(id) => update.filter(webhook::Column::Id.eq(id)),
        Which::OfApplicationInStore { application_id, store_id } => update
            .filter(webhook::Column::TenantType.eq(TenantType::Store))
            .filter(webhook::Column::TenantId.eq(store_id.as_str()))
            .filter(webhook::Column::ApplicationId.eq(application_id.as_str())),
    };
    let done = update.filter(webhook::Column::Enabled.eq(true)).exec(conn).await?;
    Ok(done.rows_affected)
}

/// On PostgreSQL, locks the webhook's row until the transaction ends, so a check of what the
/// webhook has (a running replay) and the write after it are one step. SQLite serialises
/// writers already (the caller holds the write turn).
pub(crate) async fn lock(conn: &impl ConnectionTrait, webhook_id: &str) -> Result<(), DbErr> {
    if conn.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    conn.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT id FROM webhooks WHERE id = $1 FOR UPDATE",
        [webhook_id.into()],
    ))
    .await?;
    Ok(())
}
