//! The `replays` table: bulk replays of one webhook's deliveries (issue 14).
use hookline_domain::{ReplayState, TenantType};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "replays")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub webhook_id: String,
    pub tenant_type: TenantType,
    pub tenant_id: String,
    /// The chosen deliveries' creation time, from (inclusive) and to (exclusive).
    pub from_at: Option<i64>,
    pub to_at: Option<i64>,
    /// JSON array of delivery statuses; `None` for every settled status.
    pub statuses: Option<String>,
    /// JSON array of event types; `None` for every type.
    pub event_types: Option<String>,
    pub state: ReplayState,
    /// Deliveries chosen when the replay started, and how many have been queued again.
    pub total: i64,
    pub done: i64,
    /// The last delivery id queued again: a restarted process resumes after it.
    pub cursor: Option<String>,
    pub requested_by: Option<String>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
