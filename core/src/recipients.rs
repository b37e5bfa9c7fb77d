//! Who receives a tenant's events: its webhooks with their event filters and payload
//! conditions, the product lines of the applications installed on its stores, and the
//! webhooks' signing secrets for the hand-off.
//!
//! Publishing keeps them in memory per tenant, labelled with the tenant's number in
//! `recipient_versions`, which database triggers move whenever any of it changes, in any
//! process (the migration `m20261216_000016_recipient_versions` lists what moves it). A publish
//! reads that number in the statement that takes its sequence numbers
//! ([`crate::store::events::advance_counters`]) and reads the webhooks again only when it moved.
//! The label is read before the rows it labels, so a copy is never labelled newer than it is:
//! at worst it is read again once more than needed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::entities::{installation, webhook, webhook_secret};
use crate::error::Result;
use crate::events::{Audience, OPERATIONAL_GROUP, PublishRequest};
use crate::{Services, now_ms};
use hookline_domain::conditions::Conditions;
use hookline_domain::{EventFilter, Tenant, TenantType};

/// Most tenants whose recipients one process keeps; past it the copies are dropped and read
/// again as they are needed.
const MAX_TENANTS: usize = 10_000;

/// A webhook with what an event is matched against: its event filter and payload conditions.
type Recipient = (Arc<webhook::Model>, EventFilter, Option<Conditions>);

/// One tenant's recipients, as read at one version of them.
pub(crate) struct TenantRecipients {
    version: i64,
    /// Each with its event filter and payload conditions, parsed once.
    webhooks: Vec<Recipient>,
    /// (application, store) to the product lines it is installed for.
    lines: HashMap<(String, String), Vec<String>>,
    /// Each webhook's signing secrets, current first.
    secrets: HashMap<String, Arc<Vec<String>>>,
    /// When the first of those secrets expires: the copy is stale from then on (an expiry
    /// moves no trigger, time does).
    stale_at: Option<i64>,
}

/// The recipients of a batch's tenants.
#[derive(Default)]
pub(crate) struct Recipients {
    tenants: HashMap<Tenant, Arc<TenantRecipients>>,
}

impl Recipients {
    /// The webhooks that receive the event: subscribed to its type, in its audience, for a
    /// store-level webhook an application made, installed for the type's product line, and
    /// whose payload conditions it meets. The payload is parsed at most once per event, and
    /// only when a webhook it would otherwise reach has conditions; one that does not meet
    /// them gets no delivery at all (the explain view says which condition kept it out).
    pub(crate) fn of<'a>(
        &'a self,
        req: &'a PublishRequest,
        group: &'a str,
    ) -> impl Iterator<Item = &'a Arc<webhook::Model>> + 'a {
        let payload = std::cell::OnceCell::new();
        let tenant = self.tenants.get(&req.tenant);
        tenant
            .into_iter()
            .flat_map(|t| t.webhooks.iter())
            .filter(move |(w, filter, conditions)| {
                filter.matches(&req.event_type)
                    && tenant.is_some_and(|t| t.may_receive(w, req, group))
                    && conditions.as_ref().is_none_or(|c| {
                        // Accepted payloads are JSON; were one not, nothing it holds matches.
                        payload
                            .get_or_init(|| serde_json::from_str::<serde_json::Value>(&req.payload).ok())
                            .as_ref()
                            .is_some_and(|p| c.matches(p))
                    })
            })
            .map(|(w, _, _)| w)
    }

    /// The webhook's signing secrets, current first (none for a webhook whose secrets would
    /// not open: its attempt then fails and says so).
    pub(crate) fn secrets(&self, webhook: &webhook::Model) -> Arc<Vec<String>> {
        self.tenants
            .get(&webhook.tenant())
            .and_then(|t| t.secrets.get(&webhook.id).cloned())
            .unwrap_or_default()
    }
}

impl TenantRecipients {
    fn may_receive(&self, w: &webhook::Model, req: &PublishRequest, group: &str) -> bool {
        if let Audience::MadeBy(maker) = &req.audience
            && w.application_id != *maker
        {
            return false;
        }
        match (&w.application_id, req.tenant.kind) {
            (Some(app), TenantType::Store) if group != OPERATIONAL_GROUP => self
                .lines
                .get(&(app.clone(), req.tenant.id.clone()))
                .is_some_and(|lines| lines.iter().any(|l| l.eq_ignore_ascii_case(group))),
            _ => true,
        }
    }
}

/// This process's copies, by tenant.
#[derive(Default)]
pub(crate) struct RecipientCache {
    tenants: Mutex<HashMap<Tenant, Arc<TenantRecipients>>>,
}

impl RecipientCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Tenant, Arc<TenantRecipients>>> {
        self.tenants.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Services {
    /// The recipients of `tenants`, from this process's copies where their version is the
    /// one in `versions` (a tenant absent there has version 0: nothing of it ever changed),
    /// read on `conn` for the others.
    pub(crate) async fn recipients(
        &self,
        conn: &impl ConnectionTrait,
        tenants: &[Tenant],
        versions: &HashMap<Tenant, i64>,
    ) -> Result<Recipients> {
        let version = |t: &Tenant| versions.get(t).copied().unwrap_or(0);
        let (mut out, missing) = self.copies_of(tenants, versions);
        if missing.is_empty() {
            return Ok(out);
        }
        let read = self.read_recipients(conn, &missing, &version).await?;
        let mut copies = self.recipient_cache.lock();
        if copies.len() + read.len() > MAX_TENANTS {
            copies.clear();
        }
        for (t, r) in read {
            let r = Arc::new(r);
            copies.insert(t.clone(), r.clone());
            out.tenants.insert(t, r);
        }
        Ok(out)
    }

    /// [`Services::recipients`] when this process has a copy of each tenant's at its version:
    /// no read. `None` when one must be read.
    pub(crate) fn cached_recipients(
        &self,
        tenants: &[Tenant],
        versions: &HashMap<Tenant, i64>,
    ) -> Option<Recipients> {
        let (out, missing) = self.copies_of(tenants, versions);
        missing.is_empty().then_some(out)
    }

    /// This process's fresh copies of the recipients of each of `tenants`, whatever their
    /// version, with those versions: for a writer that checks, in its transaction, that they
    /// are still current. `None` unless it has one for each.
    pub(crate) fn kept_recipients(&self, tenants: &[Tenant]) -> Option<(Recipients, HashMap<Tenant, i64>)> {
        let now = now_ms();
        let copies = self.recipient_cache.lock();
        let mut out = Recipients::default();
        let mut versions = HashMap::with_capacity(tenants.len());
        for t in tenants {
            let c = copies.get(t).filter(|c| c.stale_at.is_none_or(|at| at > now))?;
            versions.insert(t.clone(), c.version);
            out.tenants.insert(t.clone(), c.clone());
        }
        Some((out, versions))
    }

    /// The copies of `tenants` at their version that are still fresh, and the tenants with
    /// none.
    fn copies_of(&self, tenants: &[Tenant], versions: &HashMap<Tenant, i64>) -> (Recipients, Vec<Tenant>) {
        let now = now_ms();
        let mut out = Recipients::default();
        let mut missing = Vec::new();
        let copies = self.recipient_cache.lock();
        for t in tenants {
            match copies.get(t) {
                Some(c)
                    if c.version == versions.get(t).copied().unwrap_or(0)
                        && c.stale_at.is_none_or(|at| at > now) =>
                {
                    out.tenants.insert(t.clone(), c.clone());
                }
                _ => missing.push(t.clone()),
            }
        }
        (out, missing)
    }

    /// The recipients of `tenants` as `conn` sees them now, without the copies (inside a
    /// transaction that may itself have changed them).
    pub(crate) async fn recipients_now(
        &self,
        conn: &impl ConnectionTrait,
        tenants: &[Tenant],
    ) -> Result<Recipients> {
        let read = self.read_recipients(conn, tenants, &|_| 0).await?;
        Ok(Recipients { tenants: read.into_iter().map(|(t, r)| (t, Arc::new(r))).collect() })
    }

    /// The webhooks of each tenant in one query; only when applications made some of them,
    /// those applications' installations in a second; the webhooks' live secrets in a third.
    async fn read_recipients(
        &self,
        conn: &impl ConnectionTrait,
        tenants: &[Tenant],
        version: &(dyn Fn(&Tenant) -> i64 + Sync),
    ) -> Result<HashMap<Tenant, TenantRecipients>> {
        let mut out: HashMap<Tenant, TenantRecipients> = tenants
            .iter()
            .map(|t| {
                let empty = TenantRecipients {
                    version: version(t),
                    webhooks: Vec::new(),
                    lines: HashMap::new(),
                    secrets: HashMap::new(),
                    stale_at: None,
                };
                (t.clone(), empty)
            })
            .collect();
        if tenants.is_empty() {
            return Ok(out);
        }
        let mut any = sea_orm::Condition::any();
        for t in tenants {
            any = any.add(
                sea_orm::Condition::all()
                    .add(webhook::Column::TenantType.eq(t.kind.as_str()))
                    .add(webhook::Column::TenantId.eq(&t.id)),
            );
        }
        let mut installed: Vec<(String, String)> = Vec::new();
        let mut ids = Vec::new();
        for w in webhook::Entity::find().filter(any).all(conn).await? {
            if let (Some(app), TenantType::Store) = (&w.application_id, w.tenant_type) {
                let key = (app.clone(), w.tenant_id.clone());
                if !installed.contains(&key) {
                    installed.push(key);
                }
            }
            ids.push(w.id.clone());
            let filter = w.subscription();
            let conditions = Conditions::from_stored(w.conditions.as_deref());
            if let Some(t) = out.get_mut(&w.tenant()) {
                t.webhooks.push((Arc::new(w), filter, conditions));
            }
        }
        if !installed.is_empty() {
            let mut pairs = sea_orm::Condition::any();
            for (app, store) in &installed {
                pairs = pairs.add(
                    sea_orm::Condition::all()
                        .add(installation::Column::ApplicationId.eq(app))
                        .add(installation::Column::StoreId.eq(store)),
                );
            }
            for i in installation::Entity::find().filter(pairs).all(conn).await? {
                let lines: Vec<String> = serde_json::from_str(&i.product_lines).unwrap_or_default();
                let store = Tenant { kind: TenantType::Store, id: i.store_id.clone() };
                if let Some(t) = out.get_mut(&store) {
                    t.lines.insert((i.application_id, i.store_id), lines);
                }
            }
        }
        if !ids.is_empty() {
            let now = now_ms();
            let rows = webhook_secret::Entity::find()
                .filter(webhook_secret::Column::WebhookId.is_in(ids))
                .filter(
                    sea_orm::Condition::any()
                        .add(webhook_secret::Column::ExpiresAt.is_null())
                        .add(webhook_secret::Column::ExpiresAt.gt(now)),
                )
                .order_by_desc(webhook_secret::Column::CreatedAt)
                .all(conn)
                .await?;
            let opened = self.open_secrets(
                rows.iter()
                    .filter(|s| s.expires_at.is_none())
                    .chain(rows.iter().filter(|s| s.expires_at.is_some())),
            );
            let tenant_of: HashMap<&str, Tenant> = out
                .values()
                .flat_map(|t| t.webhooks.iter().map(|(w, _, _)| (w.id.as_str(), w.tenant())))
                .collect();
            let mut stale_at: HashMap<Tenant, i64> = HashMap::new();
            for s in &rows {
                if let (Some(at), Some(t)) = (s.expires_at, tenant_of.get(s.webhook_id.as_str())) {
                    let first = stale_at.entry(t.clone()).or_insert(at);
                    *first = (*first).min(at);
                }
            }
            let mut secrets: Vec<(Tenant, String, Arc<Vec<String>>)> = Vec::new();
            for (id, s) in opened {
                if let Some(t) = tenant_of.get(id.as_str()) {
                    secrets.push((t.clone(), id, Arc::new(s)));
                }
            }
            for (t, id, s) in secrets {
                if let Some(r) = out.get_mut(&t) {
                    r.secrets.insert(id, s);
                }
            }
            for (t, at) in stale_at {
                if let Some(r) = out.get_mut(&t) {
                    r.stale_at = Some(at);
                }
            }
        }
        Ok(out)
    }
}
