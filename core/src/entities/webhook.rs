//! The `webhooks` table.
use hookline_domain::{AlertState, DisabledReason, PauseReason, TenantType};
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
    /// Deliveries of one ordering key go one at a time, in publish order.
    pub ordering: bool,
    /// Requests per second at most; `None` for no limit.
    pub rate_limit: Option<i32>,
    /// Payload conditions as JSON ([`hookline_domain::conditions`]); `None` for none.
    pub conditions: Option<String>,
    /// JSON array of the payload paths sent; `None` sends the whole payload.
    pub include_fields: Option<String>,
    /// Claims of its deliveries wait until then (the receiver's `Retry-After`, or the circuit
    /// breaker's next probe).
    pub paused_until: Option<i64>,
    /// Why it is paused: `retry_after` or `circuit_open`.
    pub pause_reason: Option<PauseReason>,
    /// The circuit breaker's probe interval while it is open; `None` while closed.
    pub probe_interval_ms: Option<i64>,
    /// The last state the alerts announced (`store::alerts`); `None` while there is nothing to
    /// say.
    pub alert_state: Option<AlertState>,
    /// The `failing_since` of the streak that state is about.
    pub alert_streak: Option<i64>,
    /// When that state was entered.
    pub alert_at: Option<i64>,
    /// When its announcement (email and operational event) is owed; `None` once sent.
    pub alert_due: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
