//! Webhooks (a target URL plus an event filter), their signing secrets, and the views of
//! their deliveries. Every function takes the caller's scope: a webhook outside it is
//! "not found", exactly as one that does not exist.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use crate::access::Reach;
use crate::conditions::{CheckedControl, DeliveryControl, DeliveryControlPatch};
use crate::entities::{attempt, delivery, event, event_type, webhook, webhook_purge, webhook_secret};
use crate::error::{Error, Result};
use crate::{Services, new_id, now_ms};
use hookline_domain::{
    DeliveryStatus, DisabledReason, EventFilter, Health, Page, PageRequest, PauseReason, Scope, Tenant,
    WebhookUrl,
};

pub const SECRET_PREFIX: &str = "whsec_";
const MAX_DESCRIPTION: usize = 500;
/// Most event types one webhook or filter names: far more than the catalog holds, and few
/// enough that checking them is one small query on either database.
pub const MAX_EVENT_TYPES: usize = 500;

/// A new signing secret: `whsec_` and the base64 of 32 random bytes (Standard Webhooks).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

#[derive(Clone, Debug)]
pub struct NewWebhook {
    pub tenant: Tenant,
    pub url: String,
    pub description: String,
    /// `None` for every event type.
    pub event_types: Option<Vec<String>>,
}

/// A change to a webhook; fields left `None` stay as they are.
#[derive(Clone, Debug, Default)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Option<Vec<String>>>,
}

/// The health chart's unit.
pub const HOUR_MS: i64 = 3_600_000;

/// How many deliveries the status totals of [`Services::search_deliveries`] count at most.
pub const TOTALS_WINDOW: u64 = 10_000;

/// The number of each status among the latest matching deliveries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryTotals {
    /// (status, count), in the order pending, delivering, succeeded, failed, skipped.
    pub by_status: Vec<(String, u64)>,
    /// True when [`TOTALS_WINDOW`] deliveries were counted: more match, and the counts are of
    /// the latest ones.
    pub capped: bool,
}

/// What the admin's delivery history is narrowed to; every part is optional.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct DeliveryFilter {
    pub store: Option<String>,
    pub webhook: Option<String>,
    pub event_type: Option<String>,
    pub status: Option<String>,
    /// Unix milliseconds, inclusive.
    pub from: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub to: Option<i64>,
}

/// Who made a webhook: an application working store-level, the three-step flow, or neither.
#[derive(Default)]
pub(crate) struct Made {
    pub application: Option<String>,
    pub subscription: Option<(String, String)>,
}

pub struct WebhookWithSecret {
    pub webhook: webhook::Model,
    pub secret: String,
}

/// One row of a webhook's delivery log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_duration_ms: Option<i32>,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
}

impl DeliveryView {
    /// Delivery `d` of `webhook`, as its log shows it. A pending delivery's next attempt is
    /// when it is due, except behind an open circuit breaker: there the backlog is parked a
    /// hold past the breaker's next probe, and the probe's success brings it back at once
    /// ([`crate::store::queue::parked_until`]), so what is parked within the hold shows the
    /// probe's time, the earliest it can go. `webhook` may be left out when it is known to have
    /// no open breaker ([`Services::open_breakers_of`]).
    pub fn of(d: delivery::Model, webhook: Option<&webhook::Model>) -> Self {
        let next_attempt_at = shown_next_attempt(d.status, d.next_attempt_at, webhook);
        DeliveryView {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_duration_ms: d.last_duration_ms,
            next_attempt_at,
            created_at: d.created_at,
        }
    }
}

/// A delivery's next attempt as the merchant is shown it, given its status and stored due time:
/// only a pending one has one, and behind its webhook's open breaker it is the breaker's next
/// probe ([`behind_breaker`]). The delivery log, a blocked key's head and explain's sentence
/// about it all show this.
pub(crate) fn shown_next_attempt(
    status: DeliveryStatus,
    due: Option<i64>,
    webhook: Option<&webhook::Model>,
) -> Option<i64> {
    match status {
        DeliveryStatus::Pending => due.map(|due| webhook.map_or(due, |hook| behind_breaker(due, hook))),
        _ => None,
    }
}

/// When a pending delivery due at `due` can go at the earliest: its webhook's next probe if an
/// open breaker parked it past the probe (what its closing brings back), `due` otherwise.
fn behind_breaker(due: i64, webhook: &webhook::Model) -> i64 {
    match (webhook.pause_reason, webhook.paused_until) {
        (reason @ Some(PauseReason::CircuitOpen), Some(probe))
            if due > probe && crate::store::queue::held_by_pause(reason, probe, due) =>
        {
            probe
        }
        _ => due,
    }
}

impl webhook::Model {
    pub fn tenant(&self) -> Tenant {
        Tenant { kind: self.tenant_type, id: self.tenant_id.clone() }
    }

    /// The event types it subscribes to, or `None` for all of them.
    pub fn event_filter(&self) -> Option<Vec<String>> {
        self.subscription().into_types()
    }

    /// Which event types it receives, read from its column: read it once and match many.
    pub fn subscription(&self) -> EventFilter {
        EventFilter::from_stored(self.event_types.as_deref())
    }

    pub fn subscribes_to(&self, event_type: &str) -> bool {
        self.subscription().matches(event_type)
    }

    /// How it is doing, as the dashboard shows it.
    pub fn health(&self) -> Health {
        Health::of(
            self.enabled,
            self.disabled_reason,
            self.disabled_at,
            self.consecutive_failures,
            self.failing_since,
        )
    }
}

impl Services {
    pub(crate) async fn check_event_types(
        &self,
        tenant: &Tenant,
        types: &Option<Vec<String>>,
    ) -> Result<Option<String>> {
        let Some(types) = types else { return Ok(None) };
        if types.is_empty() {
            return Err(Error::invalid("event_types", "Choose at least one event type, or all events."));
        }
        if types.len() > MAX_EVENT_TYPES {
            return Err(Error::unprocessable(
                "event_types",
                format!(
                    "A webhook or filter names at most {MAX_EVENT_TYPES} event types; this one names {}.",
                    types.len()
                ),
            ));
        }
        let mut names: Vec<String> = types.iter().map(|t| t.trim().to_string()).collect();
        names.sort();
        names.dedup();
        let known = event_type::Entity::find()
            .filter(event_type::Column::Name.is_in(names.clone()))
            .all(&self.db)
            .await?;
        let unknown: Vec<&str> =
            names.iter().filter(|n| !known.iter().any(|k| &k.name == *n)).map(String::as_str).collect();
        if !unknown.is_empty() {
            return Err(Error::unprocessable(
                "event_types",
                format!("Unknown event type: {}.", unknown.join(", ")),
            ));
        }
        let wrong_tenant: Vec<&str> =
            known.iter().filter(|k| !k.tenant_type.admits(tenant.kind)).map(|k| k.name.as_str()).collect();
        if !wrong_tenant.is_empty() {
            return Err(Error::unprocessable(
                "event_types",
                format!("Not an event of a {} tenant: {}.", tenant.kind.as_str(), wrong_tenant.join(", ")),
            ));
        }
        Ok(Some(serde_json::to_string(&names).unwrap_or_default()))
    }

    pub(crate) fn check_description(description: &str) -> Result<String> {
        let description = description.trim();
        Error::refuse_hidden("description", description)?;
        if description.chars().count() > MAX_DESCRIPTION {
            return Err(Error::invalid(
                "description",
                format!("A description has at most {MAX_DESCRIPTION} characters."),
            ));
        }
        Ok(description.to_string())
    }

    pub async fn create_webhook(&self, scope: &Scope, new: NewWebhook) -> Result<WebhookWithSecret> {
        self.create_webhook_with(scope, new, DeliveryControl::default()).await
    }

    /// [`Self::create_webhook`] with the delivery-control fields (ordering, rate limit,
    /// conditions, fields sent), all checked before anything is written.
    pub async fn create_webhook_with(
        &self,
        scope: &Scope,
        new: NewWebhook,
        control: DeliveryControl,
    ) -> Result<WebhookWithSecret> {
        let reach = self.reach(scope, &new.tenant).await?;
        let control = control.check()?;
        let url = WebhookUrl::parse(&new.url, &self.settings.url_policy)?;
        let description = Self::check_description(&new.description)?;
        if !self.tenant_exists(&new.tenant).await? {
            return Err(Error::unprocessable("tenant_id", format!("No tenant {} exists.", new.tenant)));
        }
        let event_types = self.check_event_types(&new.tenant, &new.event_types).await?;
        let made = Made { application: reach.application(), subscription: None };
        self.insert_webhook(&new.tenant, url, description, event_types, made, control).await
    }

    /// Writes a checked webhook and its first secret.
    pub(crate) async fn insert_webhook(
        &self,
        tenant: &Tenant,
        url: WebhookUrl,
        description: String,
        event_types: Option<String>,
        made: Made,
        control: CheckedControl,
    ) -> Result<WebhookWithSecret> {
        let now = now_ms();
        let id = new_id();
        let secret = generate_secret();
        let (target_id, filter_id) = made.subscription.unzip();
        // The count and the insert are one step: on SQLite under the write turn, on
        // PostgreSQL under a lock on the tenant's row, so two creates cannot both take the
        // last place.
        let turn = self.write_turn().await;
        let txn = self.db.begin().await?;
        self.lock_tenant(&txn, tenant).await?;
        let limit = self.settings.max_webhooks_per_tenant;
        let existing = webhook::Entity::find()
            .filter(webhook::Column::TenantType.eq(tenant.kind.as_str()))
            .filter(webhook::Column::TenantId.eq(&tenant.id))
            .count(&txn)
            .await?;
        if existing >= u64::from(limit) {
            return Err(Error::unprocessable(
                "tenant_id",
                format!(
                    "{tenant} already has {existing} webhooks, the most a tenant may have \
                     (HOOKLINE_MAX_WEBHOOKS_PER_TENANT = {limit}). Delete one first."
                ),
            ));
        }
        let model = webhook::ActiveModel {
            id: Set(id.clone()),
            tenant_type: Set(tenant.kind),
            tenant_id: Set(tenant.id.clone()),
            url: Set(url.into_string()),
            description: Set(description),
            event_types: Set(event_types),
            enabled: Set(true),
            disabled_reason: Set(None),
            disabled_at: Set(None),
            consecutive_failures: Set(0),
            failing_since: Set(None),
            last_success_at: Set(None),
            target_id: Set(target_id),
            filter_id: Set(filter_id),
            application_id: Set(made.application),
            ordering: Set(control.ordering.unwrap_or(false)),
            rate_limit: Set(control.rate_limit.flatten()),
            conditions: Set(control.conditions.flatten()),
            include_fields: Set(control.include_fields.flatten()),
            paused_until: Set(None),
            pause_reason: Set(None),
            probe_interval_ms: Set(None),
            alert_state: Set(None),
            alert_streak: Set(None),
            alert_at: Set(None),
            alert_due: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        webhook_secret::ActiveModel {
            id: Set(new_id()),
            secret: Set(self.seal_secret(&id, &secret)),
            webhook_id: Set(id),
            created_at: Set(now),
            expires_at: Set(None),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        drop(turn);
        Ok(WebhookWithSecret { webhook: model, secret })
    }

    /// The tenant's webhooks, oldest first.
    pub async fn list_webhooks(
        &self,
        scope: &Scope,
        tenant: &Tenant,
        page: &PageRequest,
    ) -> Result<Page<webhook::Model>> {
        let reach = self.reach(scope, tenant).await?;
        let mut query = webhook::Entity::find()
            .filter(webhook::Column::TenantType.eq(tenant.kind.as_str()))
            .filter(webhook::Column::TenantId.eq(&tenant.id))
            .order_by_asc(webhook::Column::Id)
            .limit(page.limit() + 1);
        if let Reach::Installed(app) = &reach {
            query = query.filter(webhook::Column::ApplicationId.eq(app));
        }
        if let Some(cursor) = &page.cursor {
            query = query.filter(webhook::Column::Id.gt(cursor));
        }
        let rows = query.all(&self.db).await?;
        Ok(Page::from_rows(rows, page.limit(), |w| w.id.clone()))
    }

    pub async fn webhook(&self, scope: &Scope, id: &str) -> Result<webhook::Model> {
        match webhook::Entity::find_by_id(id).one(&self.db).await? {
            Some(w) if self.sees(scope, &w.tenant(), w.application_id.as_deref()).await? => Ok(w),
            _ => Err(Error::NotFound("webhook")),
        }
    }

    pub async fn set_webhook_enabled(
        &self,
        scope: &Scope,
        id: &str,
        enabled: bool,
    ) -> Result<webhook::Model> {
        let found = self.webhook(scope, id).await?;
        if found.enabled == enabled {
            return Ok(found);
        }
        if !enabled {
            let now = now_ms();
            let which = crate::store::webhooks::Which::One(&found.id);
            crate::store::webhooks::turn_off(&self.db, which, crate::DisabledReason::Manual, now).await?;
            return Ok(webhook::Model {
                enabled: false,
                disabled_reason: Some(crate::DisabledReason::Manual),
                disabled_at: Some(now),
                updated_at: now,
                ..found
            });
        }
        let mut model = found.into_active_model();
        model.enabled = Set(true);
        model.disabled_reason = Set(None);
        model.disabled_at = Set(None);
        model.consecutive_failures = Set(0);
        model.failing_since = Set(None);
        model.updated_at = Set(now_ms());
        Ok(model.update(&self.db).await?)
    }

    pub async fn update_webhook(
        &self,
        scope: &Scope,
        id: &str,
        patch: WebhookPatch,
    ) -> Result<webhook::Model> {
        self.update_webhook_with(scope, id, patch, DeliveryControlPatch::default()).await
    }

    /// [`Self::update_webhook`] with the delivery-control fields: absent ones stay, `null`
    /// clears. Every field is checked before the one write.
    pub async fn update_webhook_with(
        &self,
        scope: &Scope,
        id: &str,
        patch: WebhookPatch,
        control: DeliveryControlPatch,
    ) -> Result<webhook::Model> {
        let found = self.webhook(scope, id).await?;
        let control = control.check()?;
        let tenant = found.tenant();
        let mut model = found.into_active_model();
        if let Some(ordering) = control.ordering {
            model.ordering = Set(ordering);
        }
        if let Some(rate_limit) = control.rate_limit {
            model.rate_limit = Set(rate_limit);
        }
        if let Some(conditions) = control.conditions {
            model.conditions = Set(conditions);
        }
        if let Some(include_fields) = control.include_fields {
            model.include_fields = Set(include_fields);
        }
        if let Some(url) = patch.url {
            model.url = Set(WebhookUrl::parse(&url, &self.settings.url_policy)?.into_string());
        }
        if let Some(description) = patch.description {
            model.description = Set(Self::check_description(&description)?);
        }
        if let Some(types) = patch.event_types {
            model.event_types = Set(self.check_event_types(&tenant, &types).await?);
        }
        model.updated_at = Set(now_ms());
        Ok(model.update(&self.db).await?)
    }

    /// Deletes the webhook and its secrets at once; its deliveries, attempts and hourly
    /// counters are removed in the background in small steps
    /// ([`Services::purge_deleted_webhooks_step`]), so a long log never holds a lock that
    /// publishing waits on. Its queued deliveries are skipped meanwhile: their webhook is gone.
    pub async fn delete_webhook(&self, scope: &Scope, id: &str) -> Result<()> {
        let found = self.webhook(scope, id).await?;
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await?;
        webhook_secret::Entity::delete_many()
            .filter(webhook_secret::Column::WebhookId.eq(&found.id))
            .exec(&txn)
            .await?;
        webhook_purge::Entity::insert(webhook_purge::ActiveModel {
            webhook_id: Set(found.id.clone()),
            requested_at: Set(now_ms()),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(webhook_purge::Column::WebhookId).do_nothing().to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        webhook::Entity::delete_by_id(&found.id).exec(&txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The secret that signs new deliveries.
    pub async fn current_secret(&self, scope: &Scope, webhook_id: &str) -> Result<String> {
        let found = self.webhook(scope, webhook_id).await?;
        let secrets = self.signing_secrets(&found.id).await?;
        secrets.into_iter().next().ok_or(Error::NotFound("secret"))
    }

    /// Every secret that signs a delivery now: the current one first, then rotated-out ones
    /// still inside their grace period. For the delivery workers; not tenant-scoped.
    pub async fn signing_secrets(&self, webhook_id: &str) -> Result<Vec<String>> {
        let mut all = self.signing_secrets_of(&[webhook_id.to_string()]).await?;
        Ok(all.remove(webhook_id).unwrap_or_default())
    }

    /// [`Self::signing_secrets`] of several webhooks in one query.
    pub async fn signing_secrets_of(&self, webhook_ids: &[String]) -> Result<HashMap<String, Vec<String>>> {
        let now = now_ms();
        let rows = webhook_secret::Entity::find()
            .filter(webhook_secret::Column::WebhookId.is_in(webhook_ids.iter().cloned()))
            .filter(
                sea_orm::Condition::any()
                    .add(webhook_secret::Column::ExpiresAt.is_null())
                    .add(webhook_secret::Column::ExpiresAt.gt(now)),
            )
            .order_by_desc(webhook_secret::Column::CreatedAt)
            .all(&self.db)
            .await?;
        // The current secret (no expiry) first, then the rotated ones, newest first.
        Ok(self.open_secrets(
            rows.iter()
                .filter(|s| s.expires_at.is_none())
                .chain(rows.iter().filter(|s| s.expires_at.is_some())),
        ))
    }

    /// Replaces the current secret; the old one keeps signing for the grace period.
    pub async fn rotate_secret(&self, scope: &Scope, webhook_id: &str) -> Result<String> {
        let found = self.webhook(scope, webhook_id).await?;
        let now = now_ms();
        let secret = generate_secret();
        let txn = self.db.begin().await?;
        webhook_secret::Entity::update_many()
            .col_expr(
                webhook_secret::Column::ExpiresAt,
                Expr::value(now + self.settings.secret_grace.as_millis() as i64),
            )
            .filter(webhook_secret::Column::WebhookId.eq(&found.id))
            .filter(webhook_secret::Column::ExpiresAt.is_null())
            .exec(&txn)
            .await?;
        webhook_secret::ActiveModel {
            id: Set(new_id()),
            webhook_id: Set(found.id.clone()),
            secret: Set(self.seal_secret(&found.id, &secret)),
            created_at: Set(now),
            expires_at: Set(None),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(secret)
    }

    /// How many of the webhook's deliveries were skipped because it was off.
    pub async fn skipped_count(&self, scope: &Scope, webhook_id: &str) -> Result<u64> {
        let found = self.webhook(scope, webhook_id).await?;
        Ok(delivery::Entity::find()
            .filter(delivery::Column::WebhookId.eq(&found.id))
            .filter(status_is(DeliveryStatus::Skipped))
            .count(&self.db)
            .await?)
    }

    /// Queues again every delivery the webhook skipped while it was off; answers how many.
    /// The webhook must be on. Events whose payload retention removed the payload have
    /// nothing left to send and stay skipped.
    pub async fn replay_skipped(&self, scope: &Scope, webhook_id: &str) -> Result<u64> {
        let found = self.webhook(scope, webhook_id).await?;
        if !found.enabled {
            return Err(Error::Conflict("Turn the webhook on before replaying what it skipped.".into()));
        }
        let now = now_ms();
        let done = delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, Expr::value(DeliveryStatus::Pending.as_str()))
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(now))
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
            .filter(delivery::Column::WebhookId.eq(&found.id))
            .filter(status_is(DeliveryStatus::Skipped))
            .filter(Expr::cust(
                "NOT EXISTS (SELECT 1 FROM events e WHERE e.id = deliveries.event_id AND e.payload_pruned_at IS NOT NULL)",
            ))
            .exec(&self.db)
            .await?;
        self.wake_workers();
        Ok(done.rows_affected)
    }

    /// Deliveries across every store (admins only), newest first, with the number of each
    /// status among the latest [`TOTALS_WINDOW`] under the same filters: exact below it, and
    /// a bounded read above it however large the log grows.
    pub async fn search_deliveries(
        &self,
        scope: &Scope,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> Result<(Page<delivery::Model>, DeliveryTotals)> {
        if !scope.is_admin() {
            return Err(Error::Forbidden("Only admins see every store's deliveries.".into()));
        }
        let mut condition = sea_orm::Condition::all();
        if let Some(store) = filter.store.as_deref().filter(|s| !s.is_empty()) {
            condition = condition
                .add(delivery::Column::TenantType.eq(crate::TenantType::Store))
                .add(delivery::Column::TenantId.eq(store));
        }
        if let Some(hook) = filter.webhook.as_deref().filter(|s| !s.is_empty()) {
            condition = condition.add(delivery::Column::WebhookId.eq(hook));
        }
        if let Some(kind) = filter.event_type.as_deref().filter(|s| !s.is_empty()) {
            condition = condition.add(delivery::Column::EventType.eq(kind));
        }
        if let Some(from) = filter.from {
            condition = condition.add(delivery::Column::CreatedAt.gte(from));
        }
        if let Some(to) = filter.to {
            condition = condition.add(delivery::Column::CreatedAt.lt(to));
        }
        let mut by_status = self.store().status_counts(condition.clone(), TOTALS_WINDOW).await?;
        by_status.sort_by_key(|(status, _)| DeliveryStatus::ALL.iter().position(|s| s.as_str() == status));
        let counted: u64 = by_status.iter().map(|(_, n)| n).sum();
        let totals = DeliveryTotals { by_status, capped: counted >= TOTALS_WINDOW };
        if let Some(status) = filter.status.as_deref().filter(|s| !s.is_empty()) {
            condition = condition.add(delivery::Column::Status.eq(status));
        }
        let mut query = delivery::Entity::find()
            .filter(condition)
            .order_by_desc(delivery::Column::Id)
            .limit(page.limit() + 1);
        if let Some(cursor) = &page.cursor {
            query = query.filter(delivery::Column::Id.lt(cursor));
        }
        let rows = query.all(&self.db).await?;
        Ok((Page::from_rows(rows, page.limit(), |d| d.id.clone()), totals))
    }

    /// Attempts per hour over the last 24 hours, oldest hour first: (hour start, succeeded,
    /// failed). Read from the counters the delivery workers keep.
    pub async fn hourly_health(&self, scope: &Scope, webhook_id: &str) -> Result<Vec<(i64, u64, u64)>> {
        let found = self.webhook(scope, webhook_id).await?;
        let first = (now_ms() / HOUR_MS - 23) * HOUR_MS;
        let rows = self.store().hours_of_webhook(&found.id, first).await?;
        let mut hours: Vec<(i64, u64, u64)> = (0..24).map(|i| (first + i * HOUR_MS, 0, 0)).collect();
        for (hour, succeeded, failed) in rows {
            if let Some(slot) = usize::try_from((hour - first) / HOUR_MS).ok().and_then(|b| hours.get_mut(b))
            {
                slot.1 += succeeded as u64;
                slot.2 += failed as u64;
            }
        }
        Ok(hours)
    }

    /// A webhook's delivery log, newest first.
    pub async fn list_deliveries(
        &self,
        scope: &Scope,
        webhook_id: &str,
        page: &PageRequest,
    ) -> Result<Page<DeliveryView>> {
        self.list_deliveries_filtered(scope, webhook_id, &DeliveryFilter::default(), page).await
    }

    /// A webhook's delivery log narrowed by status, event type and time (its store and
    /// webhook parts are ignored).
    pub async fn list_deliveries_filtered(
        &self,
        scope: &Scope,
        webhook_id: &str,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> Result<Page<DeliveryView>> {
        let found = self.webhook(scope, webhook_id).await?;
        let mut query = delivery::Entity::find()
            .filter(delivery::Column::WebhookId.eq(&found.id))
            .order_by_desc(delivery::Column::Id)
            .limit(page.limit() + 1);
        if let Some(status) = filter.status.as_deref().filter(|s| !s.is_empty()) {
            query = match DeliveryStatus::parse(status) {
                Some(known) => query.filter(status_is(known)),
                None => query.filter(delivery::Column::Status.eq(status)),
            };
        }
        if let Some(kind) = filter.event_type.as_deref().filter(|s| !s.is_empty()) {
            query = query.filter(delivery::Column::EventType.eq(kind));
        }
        if let Some(from) = filter.from {
            query = query.filter(delivery::Column::CreatedAt.gte(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(delivery::Column::CreatedAt.lt(to));
        }
        if let Some(cursor) = &page.cursor {
            query = query.filter(delivery::Column::Id.lt(cursor));
        }
        let rows = query.all(&self.db).await?;
        Ok(Page::from_rows(rows, page.limit(), |d| d.id.clone()).map(|d| DeliveryView::of(d, Some(&found))))
    }

    /// The webhooks of `deliveries` whose circuit breaker is open, by id: one query for a page
    /// of any number of webhooks' deliveries, none when none of them is pending.
    pub async fn open_breakers_of(
        &self,
        deliveries: &[delivery::Model],
    ) -> Result<HashMap<String, webhook::Model>> {
        let mut ids: Vec<&str> = deliveries
            .iter()
            .filter(|d| d.status == DeliveryStatus::Pending)
            .map(|d| d.webhook_id.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(webhook::Entity::find()
            .filter(webhook::Column::Id.is_in(ids))
            .filter(webhook::Column::PauseReason.eq(PauseReason::CircuitOpen))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|w| (w.id.clone(), w))
            .collect())
    }

    /// One delivery with its webhook, its event and its attempts, oldest attempt first.
    pub async fn delivery_detail(
        &self,
        scope: &Scope,
        delivery_id: &str,
    ) -> Result<(delivery::Model, webhook::Model, event::Model, Vec<attempt::Model>)> {
        let found = delivery::Entity::find_by_id(delivery_id).one(&self.db).await?;
        let Some(found) = found else {
            return Err(Error::NotFound("delivery"));
        };
        // Seen through its webhook: an application sees only its own webhooks' deliveries.
        let hook = self.webhook(scope, &found.webhook_id).await.map_err(|_| Error::NotFound("delivery"))?;
        let ev = event::Entity::find_by_id(&found.event_id)
            .one(&self.db)
            .await?
            .ok_or(Error::NotFound("event"))?;
        let attempts = attempt::Entity::find()
            .filter(attempt::Column::DeliveryId.eq(&found.id))
            .order_by_asc(attempt::Column::Id)
            .all(&self.db)
            .await?;
        Ok((found, hook, ev, attempts))
    }

    /// Webhooks Hookline turned off by itself (failures, 410 Gone), across every tenant,
    /// most recently turned off first. Admins only.
    pub async fn auto_disabled_webhooks(&self, scope: &Scope) -> Result<Vec<webhook::Model>> {
        if !scope.is_admin() {
            return Err(Error::Forbidden("Only admins see every store's webhooks.".into()));
        }
        Ok(webhook::Entity::find()
            .filter(webhook::Column::Enabled.eq(false))
            .filter(webhook::Column::DisabledReason.is_in(DisabledReason::BY_HOOKLINE))
            .order_by_desc(webhook::Column::DisabledAt)
            .limit(500)
            .all(&self.db)
            .await?)
    }
}

/// `status = '<status>'`, written out rather than bound: SQLite uses a partial index (one per
/// status a log is filtered by) only when the query states the index's condition word for word.
fn status_is(status: DeliveryStatus) -> Expr {
    Expr::cust(format!("status = '{}'", status.as_str()))
}
