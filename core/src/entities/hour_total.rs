//! The `hour_totals` table: every webhook's hourly counters of one hour added up, written by
//! the overview's background rollup with its day (`webhook_days`), for the week view's
//! per-hour chart. Hours without an attempt have no row. Valid only for the days
//! `rollup_days` marks as rolled up.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "hour_totals")]
pub struct Model {
    /// The hour's start, in milliseconds since the epoch.
    #[sea_orm(primary_key, auto_increment = false)]
    pub hour: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub duration_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
