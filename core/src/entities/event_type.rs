//! The `event_types` table.
use hookline_domain::EventTenantType;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_types")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub description: String,
    pub product_group: String,
    pub tenant_type: EventTenantType,
    pub resource: String,
    pub example_payload: String,
    pub created_at: i64,
    /// A JSON Schema an admin set, as JSON text; without one the catalog infers one from the
    /// example payload.
    pub payload_schema: Option<String>,
    /// Whether publishing checks payloads against the schema (off by default).
    pub validate_payloads: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
