//! The portal's tables: one-time links and the sessions they start (`portal_sessions`), and
//! the origins each tenant lets frame its portal (`portal_origins`). Tokens arrive here
//! already hashed; nothing here checks who may ask (the portal service does).

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};

use super::Store;
use crate::Tenant;
use crate::entities::{portal_origin, portal_session};
use crate::error::Result;

/// How long an ended session's row is kept (revoked or expired), so that its page can still
/// say that it ended rather than that it never was.
pub const ENDED_KEPT_MS: i64 = 24 * 3600 * 1000;

impl Store<'_> {
    pub async fn insert_portal_link(&self, row: portal_session::Model) -> Result<portal_session::Model> {
        let _turn = self.write_turn().await;
        Ok(portal_session::ActiveModel::from(row).insert(self.db).await?)
    }

    /// Opens the link with this hash, once: answers the row when this call opened it; `None`
    /// when it is unknown, expired, revoked or was opened already. One conditional update, so
    /// two browsers racing for the same link cannot both win.
    pub async fn open_portal_link(
        &self,
        link_hash: &str,
        session_hash: &str,
        now: i64,
        session_expires_at: i64,
    ) -> Result<Option<portal_session::Model>> {
        use portal_session::Column as C;
        let _turn = self.write_turn().await;
        let done = portal_session::Entity::update_many()
            .col_expr(C::SessionHash, Expr::value(session_hash))
            .col_expr(C::SessionExpiresAt, Expr::value(session_expires_at))
            .col_expr(C::OpenedAt, Expr::value(now))
            .filter(C::LinkHash.eq(link_hash))
            .filter(C::OpenedAt.is_null())
            .filter(C::RevokedAt.is_null())
            .filter(C::LinkExpiresAt.gt(now))
            .exec(self.db)
            .await?;
        if done.rows_affected != 1 {
            return Ok(None);
        }
        Ok(portal_session::Entity::find().filter(C::LinkHash.eq(link_hash)).one(self.db).await?)
    }

    /// The session with this token hash, whatever its state (the caller tells live from ended).
    pub async fn portal_session_by_hash(&self, session_hash: &str) -> Result<Option<portal_session::Model>> {
        Ok(portal_session::Entity::find()
            .filter(portal_session::Column::SessionHash.eq(session_hash))
            .one(self.db)
            .await?)
    }

    pub async fn portal_session_by_link(&self, link_hash: &str) -> Result<Option<portal_session::Model>> {
        Ok(portal_session::Entity::find()
            .filter(portal_session::Column::LinkHash.eq(link_hash))
            .one(self.db)
            .await?)
    }

    pub async fn portal_session_by_id(&self, id: &str) -> Result<Option<portal_session::Model>> {
        Ok(portal_session::Entity::find_by_id(id).one(self.db).await?)
    }

    /// Ends the session (and its link, if unopened) now; a second revocation keeps the first
    /// one's time.
    pub async fn revoke_portal_session(&self, id: &str, now: i64) -> Result<()> {
        use portal_session::Column as C;
        let _turn = self.write_turn().await;
        portal_session::Entity::update_many()
            .col_expr(C::RevokedAt, Expr::value(now))
            .filter(C::Id.eq(id))
            .filter(C::RevokedAt.is_null())
            .exec(self.db)
            .await?;
        Ok(())
    }

    /// Removes links never opened and sessions that ended more than [`ENDED_KEPT_MS`] ago;
    /// answers how many.
    pub async fn prune_portal_sessions(&self, now: i64) -> Result<u64> {
        use portal_session::Column as C;
        let before = now - ENDED_KEPT_MS;
        let _turn = self.write_turn().await;
        let done = portal_session::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(Condition::all().add(C::OpenedAt.is_null()).add(C::LinkExpiresAt.lte(before)))
                    .add(C::SessionExpiresAt.lte(before))
                    .add(C::RevokedAt.lte(before)),
            )
            .exec(self.db)
            .await?;
        Ok(done.rows_affected)
    }

    /// The tenant's allowed framing origins, in the order they sort.
    pub async fn portal_origins(&self, tenant: &Tenant) -> Result<Vec<String>> {
        use portal_origin::Column as C;
        let rows = portal_origin::Entity::find()
            .filter(C::TenantType.eq(tenant.kind))
            .filter(C::TenantId.eq(&tenant.id))
            .order_by_asc(C::Origin)
            .all(self.db)
            .await?;
        Ok(rows.into_iter().map(|r| r.origin).collect())
    }

    /// Replaces the tenant's list with `origins` (checked and without repeats), in one step.
    pub async fn replace_portal_origins(&self, tenant: &Tenant, origins: &[String], now: i64) -> Result<()> {
        use portal_origin::Column as C;
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await?;
        portal_origin::Entity::delete_many()
            .filter(C::TenantType.eq(tenant.kind))
            .filter(C::TenantId.eq(&tenant.id))
            .exec(&txn)
            .await?;
        if !origins.is_empty() {
            portal_origin::Entity::insert_many(origins.iter().map(|origin| portal_origin::ActiveModel {
                tenant_type: Set(tenant.kind),
                tenant_id: Set(tenant.id.clone()),
                origin: Set(origin.clone()),
                created_at: Set(now),
            }))
            .exec(&txn)
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }
}
