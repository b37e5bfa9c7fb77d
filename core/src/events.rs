//! Publishing an event: checked, stored with its sequence number, and fanned out to one
//! delivery per matching webhook, all in one transaction, so an accepted event is never lost
//! and a rejected one leaves nothing behind.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, Statement,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};

use crate::entities::{delivery, event, event_type, webhook};
use crate::error::{Error, Result};
use crate::scope::Scope;
use crate::tenants::Tenant;
use crate::{Services, new_id, now_ms};

/// How long an `Idempotency-Key` stays bound to the event it first published.
const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;
const MAX_IDEMPOTENCY_KEY: usize = 255;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivering,
    Succeeded,
    Failed,
    Skipped,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivering => "delivering",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Skipped => "skipped",
        }
    }
}

pub struct PublishRequest {
    pub tenant: Tenant,
    pub event_type: String,
    /// The payload exactly as the producer sent it: receivers get these bytes.
    pub payload: String,
    pub idempotency_key: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Published {
    pub event_id: String,
    /// True when the idempotency key matched an earlier event, which is returned instead.
    pub deduplicated: bool,
}

impl Services {
    pub async fn publish(&self, scope: &Scope, req: PublishRequest) -> Result<Published> {
        if !scope.allows(&req.tenant) {
            return Err(Error::Forbidden(format!("This key cannot publish events for {}.", req.tenant)));
        }
        if req.payload.len() > self.settings.max_payload {
            return Err(Error::PayloadTooLarge { size: req.payload.len(), limit: self.settings.max_payload });
        }
        if serde_json::from_str::<serde::de::IgnoredAny>(&req.payload).is_err() {
            return Err(Error::invalid("payload", "The payload must be valid JSON."));
        }
        if let Some(key) = &req.idempotency_key
            && (key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY)
        {
            return Err(Error::invalid(
                "Idempotency-Key",
                format!("An Idempotency-Key has 1 to {MAX_IDEMPOTENCY_KEY} characters."),
            ));
        }
        if !self.tenant_exists(&req.tenant).await? {
            return Err(Error::unprocessable("tenant_id", format!("No tenant {} exists.", req.tenant)));
        }
        let Some(kind) = event_type::Entity::find_by_id(&req.event_type).one(&self.db).await? else {
            return Err(Error::unprocessable(
                "event_type",
                format!("Unknown event type {:?}.", req.event_type),
            ));
        };
        if kind.tenant_type != "any" && kind.tenant_type != req.tenant.kind.as_str() {
            return Err(Error::unprocessable(
                "event_type",
                format!("{} is an event of {} tenants.", kind.name, kind.tenant_type),
            ));
        }

        let txn = self.db.begin().await?;
        if let Some(key) = &req.idempotency_key
            && let Some(earlier) = self.event_by_idempotency_key(&txn, &req.tenant, key).await?
        {
            return Ok(Published { event_id: earlier, deduplicated: true });
        }
        let event_id = self.insert_event(&txn, &req, &kind.resource).await?;
        txn.commit().await?;
        self.wake_workers();
        Ok(Published { event_id, deduplicated: false })
    }

    /// The event an idempotency key still names; a key older than the window is released.
    async fn event_by_idempotency_key(
        &self,
        txn: &DatabaseTransaction,
        tenant: &Tenant,
        key: &str,
    ) -> Result<Option<String>> {
        let found = event::Entity::find()
            .filter(event::Column::TenantType.eq(tenant.kind.as_str()))
            .filter(event::Column::TenantId.eq(&tenant.id))
            .filter(event::Column::IdempotencyKey.eq(key))
            .one(txn)
            .await?;
        match found {
            Some(e) if now_ms() - e.received_at < IDEMPOTENCY_WINDOW_MS => Ok(Some(e.id)),
            Some(e) => {
                event::Entity::update_many()
                    .col_expr(
                        event::Column::IdempotencyKey,
                        sea_orm::sea_query::Expr::value(Option::<String>::None),
                    )
                    .filter(event::Column::Id.eq(e.id))
                    .exec(txn)
                    .await?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    pub(crate) async fn insert_event(
        &self,
        txn: &DatabaseTransaction,
        req: &PublishRequest,
        resource: &str,
    ) -> Result<String> {
        let now = now_ms();
        let sequence = next_sequence(txn, &req.tenant, resource).await?;
        let event_id = new_id();
        event::Entity::insert(event::ActiveModel {
            id: Set(event_id.clone()),
            tenant_type: Set(req.tenant.kind.as_str().to_string()),
            tenant_id: Set(req.tenant.id.clone()),
            event_type: Set(req.event_type.clone()),
            payload: Set(req.payload.clone()),
            idempotency_key: Set(req.idempotency_key.clone()),
            sequence: Set(sequence),
            received_at: Set(now),
        })
        .exec_without_returning(txn)
        .await?;

        let webhooks = webhook::Entity::find()
            .filter(webhook::Column::TenantType.eq(req.tenant.kind.as_str()))
            .filter(webhook::Column::TenantId.eq(&req.tenant.id))
            .all(txn)
            .await?;
        let deliveries: Vec<delivery::ActiveModel> = webhooks
            .iter()
            .filter(|w| w.subscribes_to(&req.event_type))
            .map(|w| {
                // A webhook that is off still gets a record, so turning it back on can replay.
                let (status, next) = if w.enabled {
                    (DeliveryStatus::Pending, Some(now))
                } else {
                    (DeliveryStatus::Skipped, None)
                };
                delivery::ActiveModel {
                    id: Set(new_id()),
                    event_id: Set(event_id.clone()),
                    webhook_id: Set(w.id.clone()),
                    tenant_type: Set(req.tenant.kind.as_str().to_string()),
                    tenant_id: Set(req.tenant.id.clone()),
                    event_type: Set(req.event_type.clone()),
                    status: Set(status.as_str().to_string()),
                    attempts: Set(0),
                    next_attempt_at: Set(next),
                    leased_by: Set(None),
                    last_status_code: Set(None),
                    last_duration_ms: Set(None),
                    created_at: Set(now),
                    updated_at: Set(now),
                }
            })
            .collect();
        if !deliveries.is_empty() {
            delivery::Entity::insert_many(deliveries).exec_without_returning(txn).await?;
        }
        Ok(event_id)
    }
}

/// The next number of the tenant's counter for this resource: strictly increasing, because
/// the row is locked by the upsert until the publishing transaction ends.
pub(crate) async fn next_sequence(txn: &DatabaseTransaction, tenant: &Tenant, resource: &str) -> Result<i64> {
    let backend = txn.get_database_backend();
    let stmt = Statement::from_sql_and_values(
        backend,
        "INSERT INTO sequences (tenant_type, tenant_id, resource, value) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (tenant_type, tenant_id, resource) DO UPDATE SET value = sequences.value + 1 \
         RETURNING value",
        [tenant.kind.as_str().into(), tenant.id.clone().into(), resource.into()],
    );
    let row = txn.query_one_raw(stmt).await?.ok_or(Error::NotFound("sequence"))?;
    Ok(row.try_get::<i64>("", "value")?)
}
