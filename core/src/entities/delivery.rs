//! The `deliveries` table.
use hookline_domain::{DeliveryStatus, TenantType};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub event_id: String,
    pub webhook_id: String,
    pub tenant_type: TenantType,
    pub tenant_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Every attempt made, scheduled or on request.
    pub attempts: i32,
    /// The attempts made on request (manual resends): they never use up the retry schedule.
    pub manual_attempts: i32,
    pub next_attempt_at: Option<i64>,
    pub leased_by: Option<String>,
    pub last_status_code: Option<i32>,
    pub last_duration_ms: Option<i32>,
    /// The event's ordering key, on the deliveries of a webhook with ordering on only.
    pub ordering_key: Option<String>,
    /// The event's tenant sequence, beside `ordering_key`.
    pub ordering_seq: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
