//! The `filters` table: a list of event types, step two of the three-step flow.
use hookline_domain::TenantType;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "filters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_type: TenantType,
    pub tenant_id: String,
    /// JSON array of event type names.
    pub events: String,
    /// The application that made this store-level record, if one did.
    pub application_id: Option<String>,
    /// Payload conditions as JSON; `None` for none.
    pub conditions: Option<String>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
