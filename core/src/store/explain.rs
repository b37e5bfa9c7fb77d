//! What "why didn't it arrive?" reads, each read a bounded index probe, never a scan of
//! deliveries: a tenant's webhooks a page at a time (`webhooks_by_tenant`), an event's
//! deliveries (`deliveries_by_event`), the delivery that holds an ordered delivery's key (the
//! partial index `deliveries_ordered`, with its predicate repeated so both databases use it),
//! and an ordering key's events (`events_by_ordering_key`, each with its number from its
//! deliveries through `deliveries_by_event`).

use migration::m20261215_000012_delivery_control::ORDERED_PREDICATE;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement};

use super::Store;
use crate::entities::{delivery, webhook};
use crate::error::Result;
use hookline_domain::{DeliveryStatus, Tenant};

/// The delivery that holds an ordered delivery's key: the earliest of the same webhook and
/// key, before it, that is not settled or has failed for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyHead {
    pub delivery_id: String,
    pub event_id: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: Option<i64>,
    pub ordering_seq: i64,
    pub last_status_code: Option<i32>,
}

/// One event of an ordering key's timeline (without its payload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEvent {
    pub id: String,
    pub event_type: String,
    pub sequence: i64,
    pub received_at: i64,
    /// Its number of the tenant's ordering counter, as its ordered deliveries carry it;
    /// `None` when no webhook with ordering on got it (the events table does not keep it).
    pub ordering_seq: Option<i64>,
}

/// Where an ordering key's timeline goes on after: an event with its ordering number, or one
/// without (those come after all numbered ones, by time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyEventsAfter {
    Numbered { ordering_seq: i64, id: String },
    Unnumbered { received_at: i64, id: String },
}

impl KeyEvent {
    /// The place of this event, for the next page.
    pub fn place(&self) -> KeyEventsAfter {
        match self.ordering_seq {
            Some(ordering_seq) => KeyEventsAfter::Numbered { ordering_seq, id: self.id.clone() },
            None => KeyEventsAfter::Unnumbered { received_at: self.received_at, id: self.id.clone() },
        }
    }
}

impl Store<'_> {
    /// Up to `limit` webhooks of the tenant after `after` (by id), only those `made_by` made
    /// when it is given.
    pub async fn tenant_webhooks(
        &self,
        tenant: &Tenant,
        made_by: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<webhook::Model>> {
        let mut query = webhook::Entity::find()
            .filter(webhook::Column::TenantType.eq(tenant.kind.as_str()))
            .filter(webhook::Column::TenantId.eq(&tenant.id));
        if let Some(app) = made_by {
            query = query.filter(webhook::Column::ApplicationId.eq(app));
        }
        if let Some(after) = after {
            query = query.filter(webhook::Column::Id.gt(after));
        }
        Ok(query.order_by_asc(webhook::Column::Id).limit(limit).all(self.db).await?)
    }

    /// The event's deliveries (one per webhook it went to: a handful, through
    /// `deliveries_by_event` alone, whatever the webhooks' own logs hold).
    pub async fn event_deliveries(&self, event_id: &str) -> Result<Vec<delivery::Model>> {
        Ok(delivery::Entity::find().filter(delivery::Column::EventId.eq(event_id)).all(self.db).await?)
    }

    /// Whether the event has a delivery to a webhook the application made.
    pub async fn event_reaches_application(&self, event_id: &str, application_id: &str) -> Result<bool> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.backend(),
                "SELECT 1 AS found FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                 WHERE d.event_id = $1 AND w.application_id = $2 LIMIT 1",
                [event_id.into(), application_id.into()],
            ))
            .await?;
        Ok(row.is_some())
    }

    /// The delivery holding the key of an ordered delivery numbered `before` (the claim's own
    /// rule): one probe of the partial index.
    pub async fn key_head(&self, webhook_id: &str, key: &str, before: i64) -> Result<Option<KeyHead>> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.backend(),
                format!(
                    "SELECT id, event_id, status, attempts, next_attempt_at, ordering_seq, last_status_code \
                     FROM deliveries WHERE webhook_id = $1 AND ordering_key = $2 AND ordering_seq < $3 \
                     AND {ORDERED_PREDICATE} ORDER BY ordering_seq LIMIT 1"
                ),
                [webhook_id.into(), key.into(), before.into()],
            ))
            .await?;
        let Some(r) = row else { return Ok(None) };
        let status: String = r.try_get("", "status")?;
        Ok(Some(KeyHead {
            delivery_id: r.try_get("", "id")?,
            event_id: r.try_get("", "event_id")?,
            status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Pending),
            attempts: r.try_get("", "attempts")?,
            next_attempt_at: r.try_get("", "next_attempt_at")?,
            ordering_seq: r.try_get("", "ordering_seq")?,
            last_status_code: r.try_get("", "last_status_code")?,
        }))
    }

    /// Up to `limit` events of the tenant's ordering key after `after`, in publish order: by
    /// the tenant's ordering counter, the number an ordered delivery is sent by (`sequence` is
    /// per event type's resource, so it cannot order a key's events of several types). The
    /// events table does not keep that number; an event's ordered deliveries do (all of them
    /// the same), so an event no webhook with ordering on got has none: those follow the
    /// numbered ones, by the time they were received (taken under the counter's lock after
    /// the number, so in the counter's order on one clock), then id.
    ///
    /// Reads the key's events (`events_by_ordering_key`) and each one's deliveries
    /// (`deliveries_by_event`): a key's events are few; stored on the event, the number would
    /// make this one index range (see docs/explain.md).
    pub async fn key_events(
        &self,
        tenant: &Tenant,
        key: &str,
        after: Option<&KeyEventsAfter>,
        limit: u64,
    ) -> Result<Vec<KeyEvent>> {
        let mut values: Vec<sea_orm::Value> =
            vec![tenant.kind.as_str().into(), tenant.id.clone().into(), key.into()];
        let range = match after {
            Some(KeyEventsAfter::Numbered { ordering_seq, id }) => {
                values.extend([(*ordering_seq).into(), id.clone().into()]);
                "WHERE ordering_seq IS NULL OR ordering_seq > $4 OR (ordering_seq = $4 AND id > $5)"
            }
            Some(KeyEventsAfter::Unnumbered { received_at, id }) => {
                values.extend([(*received_at).into(), id.clone().into()]);
                "WHERE ordering_seq IS NULL AND (received_at > $4 OR (received_at = $4 AND id > $5))"
            }
            None => "",
        };
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                self.backend(),
                format!(
                    "SELECT id, event_type, sequence, received_at, ordering_seq FROM ( \
                       SELECT e.id, e.event_type, e.sequence, e.received_at, \
                         (SELECT MIN(d.ordering_seq) FROM deliveries d \
                          WHERE d.event_id = e.id AND d.ordering_seq IS NOT NULL) AS ordering_seq \
                       FROM events e WHERE e.tenant_type = $1 AND e.tenant_id = $2 \
                       AND e.ordering_key = $3 AND e.ordering_key IS NOT NULL) AS keyed \
                     {range} \
                     ORDER BY CASE WHEN ordering_seq IS NULL THEN 1 ELSE 0 END, ordering_seq, received_at, id \
                     LIMIT {limit}"
                ),
                values,
            ))
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(KeyEvent {
                id: r.try_get("", "id")?,
                event_type: r.try_get("", "event_type")?,
                sequence: r.try_get("", "sequence")?,
                received_at: r.try_get("", "received_at")?,
                ordering_seq: r.try_get("", "ordering_seq")?,
            });
        }
        Ok(out)
    }

    /// The deliveries of these events, each event's through `deliveries_by_event`.
    pub async fn deliveries_of_events(&self, event_ids: &[String]) -> Result<Vec<delivery::Model>> {
        if event_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(delivery::Entity::find()
            .filter(delivery::Column::EventId.is_in(event_ids.iter().cloned()))
            .order_by_asc(delivery::Column::EventId)
            .order_by_asc(delivery::Column::WebhookId)
            .all(self.db)
            .await?)
    }
}
