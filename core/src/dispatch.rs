//! The delivery engine as the services see it. The engine lives in the server; it registers
//! itself here as the [`Dispatcher`], so the REST API and the dashboard reach it through the
//! same tenant-checked services for attempts made on request (a manual resend, a test event),
//! and publishing hands it fresh deliveries ([`Reservation`], [`Handoff`], each carrying the
//! engine's [`Slot`]). Also what a claim's attempts need, loaded at once
//! ([`Services::load_claimed`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sea_orm::{ActiveValue::Set, EntityTrait, TransactionTrait};
use serde::{Deserialize, Serialize};

use crate::entities::{delivery, event, event_type, webhook};
use crate::error::{Error, Result};
use crate::events::next_sequence;
use crate::slots::Slot;
use crate::store::queue::{Claimed, Loaded};
use crate::{Services, new_id, now_ms};
use hookline_domain::{DeliveryStatus, Scope, human_duration};

pub use hookline_domain::AttemptTrigger;

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
    pub hold: Slot,
}

/// A delivery written leased to the engine, with what its first attempt needs.
pub struct Handoff {
    pub delivery_id: String,
    pub event: Arc<event::Model>,
    pub webhook: Arc<webhook::Model>,
    /// The webhook's signing secrets, current first, as the publish read them with it.
    pub secrets: Arc<Vec<String>>,
    pub hold: Slot,
}

/// A claimed delivery with what its attempt needs: its event and webhook (`None` when gone
/// since it was queued) and the webhook's signing secrets.
pub struct ClaimedDelivery {
    pub claim: Claimed,
    pub webhook: Option<Arc<webhook::Model>>,
    pub event: Option<Arc<event::Model>>,
    pub secrets: Arc<Vec<String>>,
}

impl Services {
    /// Loads what the attempts of a claim need: three queries however many deliveries it
    /// holds (events, webhooks, signing secrets). In the claim's order.
    pub async fn load_claimed(&self, claims: Vec<Claimed>) -> Result<Vec<ClaimedDelivery>> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let webhook_ids = crate::store::queue::webhook_ids(&claims);
        let Loaded { events, webhooks } = self.store().load(&claims, &webhook_ids).await?;
        let secrets: HashMap<String, Arc<Vec<String>>> = self
            .signing_secrets_of(&webhook_ids)
            .await?
            .into_iter()
            .map(|(id, s)| (id, Arc::new(s)))
            .collect();
        Ok(claims
            .into_iter()
            .map(|claim| ClaimedDelivery {
                webhook: webhooks.get(&claim.webhook_id).cloned(),
                event: events.get(&claim.event_id).cloned(),
                secrets: secrets.get(&claim.webhook_id).cloned().unwrap_or_default(),
                claim,
            })
            .collect())
    }

    /// The engine of this process, if it delivers.
    pub(crate) fn engine(&self) -> Option<Arc<dyn Dispatcher>> {
        self.dispatcher.get().and_then(std::sync::Weak::upgrade)
    }

    fn dispatcher(&self) -> Result<Arc<dyn Dispatcher>> {
        self.engine().ok_or_else(|| Error::Conflict("This Hookline process does not send deliveries.".into()))
    }

    /// One more attempt of a delivery, now, recorded as manual. It is an extra attempt: it
    /// never uses up the delivery's automatic retries.
    pub async fn resend(&self, scope: &Scope, delivery_id: &str) -> Result<AttemptResult> {
        let (found, _, event, _) = self.delivery_detail(scope, delivery_id).await?;
        if event.payload_pruned_at.is_some() {
            return Err(Error::Conflict(
                "This event's payload was removed after the payload retention; there is nothing left to send again."
                    .into(),
            ));
        }
        self.limit_on_request(&crate::Tenant { kind: found.tenant_type, id: found.tenant_id.clone() })?;
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
                    human_duration(wait)
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
            tenant_type: Set(tenant.kind),
            tenant_id: Set(tenant.id.clone()),
            event_type: Set(kind.name.clone()),
            payload: Set(kind.example_payload.clone()),
            idempotency_key: Set(None),
            sequence: Set(sequence),
            received_at: Set(now),
            payload_pruned_at: Set(None),
            ordering_key: Set(None),
        })
        .exec_without_returning(&txn)
        .await?;
        // Held by no worker and due never: only the attempt below sends it.
        delivery::Entity::insert(delivery::ActiveModel {
            id: Set(delivery_id.clone()),
            event_id: Set(event_id),
            webhook_id: Set(hook.id.clone()),
            tenant_type: Set(tenant.kind),
            tenant_id: Set(tenant.id.clone()),
            event_type: Set(kind.name.clone()),
            status: Set(DeliveryStatus::Delivering),
            attempts: Set(0),
            manual_attempts: Set(0),
            next_attempt_at: Set(None),
            leased_by: Set(None),
            last_status_code: Set(None),
            last_duration_ms: Set(None),
            ordering_key: Set(None),
            ordering_seq: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        self.dispatcher()?.attempt_now(&delivery_id, AttemptTrigger::Test).await
    }
}
