//! The `webhooks` table.
use hookline_domain::{DisabledReason, TenantType};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_type: TenantType,
    pub tenant_id: String,
    pub url: String,
    pub description: String,
    /// JSON array of event type names; `None` subscribes to every type.
    pub event_types: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<DisabledReason>,
    pub disabled_at: Option<i64>,
    pub consecutive_failures: i32,
    pub failing_since: Option<i64>,
    pub last_success_at: Option<i64>,
    pub target_id: Option<String>,
    pub filter_id: Option<String>,
    /// The application that made this store-level record, if one did.
    pub application_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
