//! The delivery log's reads that are more than an entity query: the number of each status
//! among the latest deliveries under a filter, a webhook's hourly counters, and the body a
//! webhook's delivery of an event carried (the signature check compares with it).

use sea_orm::sea_query::{Asterisk, Expr, Func, Query};
use sea_orm::{
    Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Statement,
};

use super::Store;
use crate::entities::delivery;
use crate::error::Result;
use crate::{EventId, WebhookId};

impl Store<'_> {
    /// How many deliveries have each status among the latest `window` (by id) matching
    /// `condition`, as `(status, count)` in no particular order: a bounded read however
    /// large the log grows.
    pub async fn status_counts(&self, condition: Condition, window: u64) -> Result<Vec<(String, u64)>> {
        let latest = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Status)
            .filter(condition)
            .order_by_desc(delivery::Column::Id)
            .limit(window)
            .into_query();
        let count = Query::select()
            .column("status")
            .expr_as(Func::count(Expr::col(Asterisk)), "n")
            .from_subquery(latest, "latest")
            .group_by_col("status")
            .to_owned();
        let mut by_status = Vec::new();
        for row in self.db.query_all_raw(self.backend().build(&count)).await? {
            let status: String = row.try_get("", "status")?;
            let n: i64 = row.try_get("", "n")?;
            by_status.push((status, n as u64));
        }
        Ok(by_status)
    }

    /// The webhook's hourly counters from the hour starting at `from` on, as
    /// `(hour start, succeeded, failed)` in no particular order.
    pub async fn hours_of_webhook(&self, webhook_id: &str, from: i64) -> Result<Vec<(i64, i64, i64)>> {
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                self.backend(),
                "SELECT hour, succeeded, failed FROM webhook_hours WHERE webhook_id = $1 AND hour >= $2",
                [webhook_id.into(), from.into()],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                Ok((row.try_get("", "hour")?, row.try_get("", "succeeded")?, row.try_get("", "failed")?))
            })
            .collect()
    }

    /// The stored payload of the event `event_id` the webhook has a delivery of, unless there
    /// is no such delivery or retention removed the payload.
    pub async fn delivered_payload(
        &self,
        event_id: &EventId,
        webhook_id: &WebhookId,
    ) -> Result<Option<String>> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.backend(),
                "SELECT e.payload, e.payload_pruned_at FROM deliveries d JOIN events e ON e.id = d.event_id \
                 WHERE d.event_id = $1 AND d.webhook_id = $2 LIMIT 1",
                [event_id.as_str().into(), webhook_id.as_str().into()],
            ))
            .await?;
        Ok(match row {
            Some(row) if row.try_get::<Option<i64>>("", "payload_pruned_at")?.is_none() => {
                Some(row.try_get::<String>("", "payload")?)
            }
            _ => None,
        })
    }
}
