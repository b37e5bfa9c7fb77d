//! The `portal_sessions` table: a portal's one-time link and the session it starts.
use hookline_domain::TenantType;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "portal_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// What the portal acts as: `store:ID` or `application:ID`.
    pub scope: String,
    pub tenant_type: TenantType,
    pub tenant_id: String,
    /// SHA-256 of the one-time link's token.
    pub link_hash: String,
    pub link_expires_at: i64,
    /// SHA-256 of the session's token, once the link was opened.
    pub session_hash: Option<String>,
    pub session_expires_at: Option<i64>,
    pub opened_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
