//! The `portal_origins` table: the origins a tenant lets frame its portal.
use hookline_domain::TenantType;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "portal_origins")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_type: TenantType,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    /// `scheme://host[:port]`, as the browser serializes an origin.
    #[sea_orm(primary_key, auto_increment = false)]
    pub origin: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
