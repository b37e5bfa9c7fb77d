//! The SQL of `hookline listen`'s listeners: registering one, its heartbeat, removing it
//! (and those whose process is gone), and the events of its tenant after a point, oldest first.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::entities::{event, listener};
use hookline_domain::Tenant;

pub(crate) async fn insert(conn: &impl ConnectionTrait, row: listener::Model) -> Result<(), DbErr> {
    listener::Entity::insert(listener::ActiveModel::from(row)).exec_without_returning(conn).await?;
    Ok(())
}

/// Removes the tenant's listeners whose heartbeat is older than `stale_before`, then counts
/// the rest.
pub(crate) async fn count_live(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    stale_before: i64,
) -> Result<u64, DbErr> {
    remove_stale(conn, stale_before).await?;
    listener::Entity::find()
        .filter(listener::Column::TenantType.eq(tenant.kind.as_str()))
        .filter(listener::Column::TenantId.eq(&tenant.id))
        .count(conn)
        .await
}

/// Every listener whose process stopped refreshing it.
pub(crate) async fn remove_stale(conn: &impl ConnectionTrait, stale_before: i64) -> Result<u64, DbErr> {
    let done = listener::Entity::delete_many()
        .filter(listener::Column::HeartbeatAt.lt(stale_before))
        .exec(conn)
        .await?;
    Ok(done.rows_affected)
}

/// The tenant's live listeners, oldest first (a tenant has a handful at most).
pub(crate) async fn of_tenant(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    stale_before: i64,
) -> Result<Vec<listener::Model>, DbErr> {
    listener::Entity::find()
        .filter(listener::Column::TenantType.eq(tenant.kind.as_str()))
        .filter(listener::Column::TenantId.eq(&tenant.id))
        .filter(listener::Column::HeartbeatAt.gte(stale_before))
        .order_by_asc(listener::Column::CreatedAt)
        .order_by_asc(listener::Column::Id)
        .all(conn)
        .await
}

/// Refreshes the heartbeat; `false` when the row is gone (removed as stale, or closed).
pub(crate) async fn heartbeat(conn: &impl ConnectionTrait, id: &str, now: i64) -> Result<bool, DbErr> {
    let done = listener::Entity::update_many()
        .col_expr(listener::Column::HeartbeatAt, Expr::value(now))
        .filter(listener::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(done.rows_affected > 0)
}

pub(crate) async fn remove(conn: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    listener::Entity::delete_by_id(id).exec(conn).await?;
    Ok(())
}

/// At most `limit` events of the tenant with an id above `after` (event ids are UUIDv7, in
/// time order, and `events_by_tenant` indexes them per tenant), of the given types if any,
/// oldest first.
pub(crate) async fn events_after(
    conn: &impl ConnectionTrait,
    tenant: &Tenant,
    after: &str,
    types: Option<&[String]>,
    limit: u64,
) -> Result<Vec<event::Model>, DbErr> {
    let mut query = event::Entity::find()
        .filter(event::Column::TenantType.eq(tenant.kind.as_str()))
        .filter(event::Column::TenantId.eq(&tenant.id))
        .filter(event::Column::Id.gt(after));
    if let Some(types) = types {
        query = query.filter(event::Column::EventType.is_in(types.iter().cloned()));
    }
    query.order_by_asc(event::Column::Id).limit(limit).all(conn).await
}
