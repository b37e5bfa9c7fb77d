//! The `events` table.
use hookline_domain::TenantType;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_type: TenantType,
    pub tenant_id: String,
    pub event_type: String,
    pub payload: String,
    pub idempotency_key: Option<String>,
    pub sequence: i64,
    pub received_at: i64,
    /// When the payload was cleared after the payload retention; it is then `null`.
    pub payload_pruned_at: Option<i64>,
    /// The publisher's ordering key, if it gave one.
    pub ordering_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
