//! Writes to `webhooks` that more than one part of Hookline makes: turning a webhook off,
//! whoever decides it (a person, the engine after failures or a 410, an application's
//! disconnection).

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use crate::DisabledReason;
use crate::entities::webhook;

/// Which webhooks to turn off.
#[derive(Clone, Copy, Debug)]
pub enum Which<'a> {
    One(&'a str),
    /// The store-level webhooks an application made in a store.
    OfApplicationInStore {
        application_id: &'a str,
        store_id: &'a str,
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
            .filter(webhook::Column::TenantType.eq("store"))
            .filter(webhook::Column::TenantId.eq(store_id))
            .filter(webhook::Column::ApplicationId.eq(application_id)),
    };
    let done = update.filter(webhook::Column::Enabled.eq(true)).exec(conn).await?;
    Ok(done.rows_affected)
}
