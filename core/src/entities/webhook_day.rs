//! The `webhook_days` table: a webhook's hourly counters (`webhook_hours`) of one UTC day
//! added up, written by the overview's background rollup (`store::overview`) once the day is
//! over, so the admin overview's week reads seven rows per webhook instead of 168. Valid only
//! for the days `rollup_days` marks as rolled up.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_days")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub webhook_id: String,
    /// The day's start (midnight UTC), in milliseconds since the epoch.
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub duration_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
