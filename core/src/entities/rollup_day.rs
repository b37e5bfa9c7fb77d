//! The `rollup_days` table: the days whose counters `webhook_days` and `hour_totals` hold.
//! A day with `rolled_at` set is read from the rollups; any other hour from `webhook_hours`.
//! Deleting a day's hourly counters (retention, a deleted webhook's purge) clears the mark,
//! and the rollup step adds the day up again.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rollup_days")]
pub struct Model {
    /// The day's start (midnight UTC), in milliseconds since the epoch.
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: i64,
    /// When the day was added up; `None` while it is not (or no longer) valid.
    pub rolled_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
