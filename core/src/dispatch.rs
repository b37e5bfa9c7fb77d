//! Attempts made on request rather than on schedule: a manual resend and a test event. The
//! delivery engine lives in the server; it registers itself here as the [`Dispatcher`], so the
//! REST API and the dashboard reach it through the same tenant-checked services.

use std::future::Future;
use std::pin::Pin;

use sea_orm::{ActiveValue::Set, EntityTrait, TransactionTrait};
use serde::{Deserialize, Serialize};

use crate::entities::{delivery, event, event_type};
use crate::error::{Error, Result};
use crate::events::{DeliveryStatus, next_sequence};
use crate::scope::Scope;
use crate::{Services, new_id, now_ms};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptTrigger {
    Scheduled,
    Manual,
    Test,
}

impl AttemptTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptTrigger::Scheduled => "scheduled",
            AttemptTrigger::Manual => "manual",
            AttemptTrigger::Test => "test",
        }
    }
}

/// What one attempt made on request came to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttemptResult {
    pub delivery_id: String,
    pub succeeded: bool,
    pub response_status: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait Dispatcher: Send + Sync + 'static {
    /// Makes one attempt of the delivery now and records it with the trigger.
    fn attempt_now<'a>(
        &'a self,
        delivery_id: &'a str,
        trigger: AttemptTrigger,
    ) -> BoxFuture<'a, Result<AttemptResult>>;

    /// A place in this process's engine for a new delivery to the webhook, if one is free
    /// now. Publishing writes the delivery already leased to the engine and hands it over
    /// after the commit ([`Dispatcher::start`]), so a fresh event goes out without a claim.
    /// Dropped unused, the place is given back.
    fn reserve(&self, webhook_id: &str) -> Option<Reservation>;

    /// Starts deliveries written under reservations, once their transaction has committed.
    fn start(&self, fresh: Vec<Handoff>);
}

/// A place taken in the engine ([`Dispatcher::reserve`]): who the delivery is leased to and
/// until when, and the engine's own hold on its capacity.
pub struct Reservation {
    pub leased_by: String,
    pub lease_until: i64,
    pub hold: Box<dyn std::any::Any + Send>,
}

/// A delivery written leased to the engine, with what its first attempt needs.
pub struct Handoff {
    pub delivery_id: String,
    pub event: std::sync::Arc<event::Model>,
    pub webhook: std::sync::Arc<crate::entities::webhook::Model>,
    pub hold: Box<dyn std::any::Any + Send>,
}

impl Services {
    /// The engine of this process, if it delivers.
    pub(crate) fn engine(&self) -> Option<std::sync::Arc<dyn Dispatcher>> {
        self.dispatcher.get().and_then(std::sync::Weak::upgrade)
    }

    fn dispatcher(&self) -> Result<std::sync::Arc<dyn Dispatcher>> {
        self.engine().ok_or_else(|| Error::Conflict("This Hookline process does not send deliveries.".into()))
    }

    /// One more attempt of a delivery, now, recorded as manual. It is an extra attempt: it
    /// never uses up the delivery's automatic retries.
    pub async fn resend(&self, scope: &Scope, delivery_id: &str) -> Result<AttemptResult> {
        let (found, event, _) = self.delivery_detail(scope, delivery_id).await?;
        if event.payload_pruned_at.is_some() {
            return Err(Error::Conflict(
                "This event's payload was removed after the payload retention; there is nothing left to send again."
                    .into(),
            ));
        }
        self.limit_on_request(&crate::Tenant::from_fields(&found.tenant_type, &found.tenant_id)?)?;
        self.dispatcher()?.attempt_now(&found.id, AttemptTrigger::Manual).await
    }

    /// Resends and test sends are requests to a receiver that no event caused: a tenant may
    /// make a burst of them, then a few per second (429 beyond).
    fn limit_on_request(&self, tenant: &crate::Tenant) -> Result<()> {
        use governor::clock::{Clock, DefaultClock};
        self.on_request_limit.check_key(tenant).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            Error::TooManyRequests {
                message: format!(
                    "Too many resends and test events for {tenant}; try again in {}.",
                    crate::time::human_duration(wait)
                ),
                retry_after_secs: wait.as_secs().max(1),
            }
        })
    }

    /// Sends the catalog's example of an event type to one webhook, now, recorded as a test.
    /// The type defaults to the first one the webhook subscribes to. Test deliveries are not
    /// retried.
    pub async fn send_test_event(
        &self,
        scope: &Scope,
        webhook_id: &str,
        event_type: Option<String>,
    ) -> Result<AttemptResult> {
        let hook = self.webhook(scope, webhook_id).await?;
        let tenant = hook.tenant();
        self.limit_on_request(&tenant)?;
        let name = match event_type.filter(|t| !t.trim().is_empty()) {
            Some(t) => t,
            None => match hook.event_filter().and_then(|types| types.into_iter().next()) {
                Some(t) => t,
                None if tenant.kind == crate::TenantType::Application => {
                    "integrations.applications.disconnected.v3".to_string()
                }
                None => "review-created".to_string(),
            },
        };
        let Some(kind) = event_type::Entity::find_by_id(&name).one(&self.db).await? else {
            return Err(Error::unprocessable("event_type", format!("Unknown event type {name:?}.")));
        };
        let now = now_ms();
        let event_id = new_id();
        let delivery_id = new_id();
        let txn = self.db.begin().await?;
        let sequence = next_sequence(&txn, &tenant, &kind.resource).await?;
        event::Entity::insert(event::ActiveModel {
            id: Set(event_id.clone()),
            tenant_type: Set(tenant.kind.as_str().to_string()),
            tenant_id: Set(tenant.id.clone()),
            event_type: Set(kind.name.clone()),
            payload: Set(kind.example_payload.clone()),
            idempotency_key: Set(None),
            sequence: Set(sequence),
            received_at: Set(now),
            payload_pruned_at: Set(None),
        })
        .exec_without_returning(&txn)
        .await?;
        // Held by no worker and due never: only the attempt below sends it.
        delivery::Entity::insert(delivery::ActiveModel {
            id: Set(delivery_id.clone()),
            event_id: Set(event_id),
            webhook_id: Set(hook.id.clone()),
            tenant_type: Set(tenant.kind.as_str().to_string()),
            tenant_id: Set(tenant.id.clone()),
            event_type: Set(kind.name.clone()),
            status: Set(DeliveryStatus::Delivering.as_str().to_string()),
            attempts: Set(0),
            manual_attempts: Set(0),
            next_attempt_at: Set(None),
            leased_by: Set(None),
            last_status_code: Set(None),
            last_duration_ms: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        self.dispatcher()?.attempt_now(&delivery_id, AttemptTrigger::Test).await
    }
}
