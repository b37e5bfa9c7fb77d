//! The `listeners` table: the temporary listeners of `hookline listen`, one per open stream.
use hookline_domain::TenantType;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "listeners")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_type: TenantType,
    pub tenant_id: String,
    /// The application whose key opened it on a store it is installed on: the listener
    /// receives what a webhook that application made there would receive.
    pub application_id: Option<String>,
    /// JSON array of event type names, as a webhook's; `None` for every type.
    pub event_types: Option<String>,
    pub created_at: i64,
    /// Refreshed by the process serving the stream; an old one means that process is gone.
    pub heartbeat_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
