//! The `recipient_versions` table: one number per tenant that database triggers move whenever
//! something a publish reads about the tenant's recipients changes (its webhooks, their
//! secrets, its installations). Publishing reads it to know whether its copy of them is
//! current ([`crate::recipients`]); nothing writes it but the triggers.
use hookline_domain::TenantType;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "recipient_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_type: TenantType,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
