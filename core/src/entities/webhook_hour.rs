//! The `webhook_hours` table: attempts counted per webhook and hour as the delivery engine
//! records them, so the webhook page's health chart reads 24 rows however busy the webhook
//! is. The engine writes them in batches (`store::attempts`); this entity reads and prunes them.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_hours")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub webhook_id: String,
    /// The hour's start, in milliseconds since the epoch.
    #[sea_orm(primary_key, auto_increment = false)]
    pub hour: i64,
    pub succeeded: i64,
    pub failed: i64,
    /// The attempts' durations added up, in milliseconds: the admin overview's slowest
    /// endpoints divide it by the attempts.
    pub duration_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
