//! The admin overview's daily rollups (issue 15): its week view summed 168 hourly counters
//! per webhook on every view; whole days now come from rows written once, off the hot path.
//!
//! - `webhook_days`: each webhook's `webhook_hours` of one UTC day added up (succeeded,
//!   failed, duration_ms), for the per-webhook rankings; keyed like `webhook_hours`, with an
//!   index on `day` for the week's range;
//! - `hour_totals`: every webhook's counters of one hour added up, for the per-hour chart;
//! - `rollup_days`: which days the two hold, and when they were rolled up (NULL: not rolled
//!   up, or forgotten since because counters of the day were deleted). The overview reads
//!   only the days marked here, and the hourly counters for every other hour.
//!
//! A background step fills them (`Services::overview_rollup_step`); the recorder never
//! writes them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("webhook_days")
                .if_not_exists()
                .col(string("webhook_id"))
                .col(big_integer("day"))
                .col(big_integer("succeeded").default(0))
                .col(big_integer("failed").default(0))
                .col(big_integer("duration_ms").default(0))
                .primary_key(Index::create().col("webhook_id").col("day"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("webhook_days_by_day")
                .table("webhook_days")
                .col("day")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("hour_totals")
                .if_not_exists()
                .col(big_integer("hour").primary_key())
                .col(big_integer("succeeded").default(0))
                .col(big_integer("failed").default(0))
                .col(big_integer("duration_ms").default(0))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("rollup_days")
                .if_not_exists()
                .col(big_integer("day").primary_key())
                .col(big_integer_null("rolled_at"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["rollup_days", "hour_totals", "webhook_days"] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
