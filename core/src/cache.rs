//! What the hot path would otherwise read on every request: tenants that exist, catalog
//! entries with their compiled payload validators, and API keys. Tenants and API keys are
//! kept briefly, so that a store deleted or a key revoked in another process is refused there
//! within [`TENANT_TTL`] and [`KEY_TTL`] (in this process, at once); catalog entries for
//! [`CATALOG_TTL`], so that a schema an admin changes in another process applies there as
//! soon (event types are never deleted).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::entities::event_type;
use hookline_domain::{Scope, Tenant};

pub(crate) const KEY_TTL: Duration = Duration::from_secs(2);
pub(crate) const TENANT_TTL: Duration = Duration::from_secs(10);
pub(crate) const CATALOG_TTL: Duration = Duration::from_secs(10);

/// An event type as last read, with its payload validator once one was compiled for it.
struct CatalogEntry {
    model: event_type::Model,
    read_at: Instant,
    validator: Option<Arc<jsonschema::Validator>>,
}

#[derive(Default)]
pub(crate) struct Caches {
    /// When each tenant was last found to exist.
    tenants: Mutex<HashMap<Tenant, Instant>>,
    catalog: Mutex<HashMap<String, CatalogEntry>>,
    /// By the key's SHA-256: its scope and when it was checked.
    keys: Mutex<HashMap<String, (Scope, Instant)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Caches {
    pub(crate) fn tenant_known(&self, tenant: &Tenant) -> bool {
        lock(&self.tenants).get(tenant).is_some_and(|at| at.elapsed() < TENANT_TTL)
    }

    pub(crate) fn remember_tenant(&self, tenant: &Tenant) {
        lock(&self.tenants).insert(tenant.clone(), Instant::now());
    }

    pub(crate) fn forget_tenant(&self, tenant: &Tenant) {
        lock(&self.tenants).remove(tenant);
    }

    pub(crate) fn event_type(&self, name: &str) -> Option<event_type::Model> {
        lock(&self.catalog).get(name).filter(|e| e.read_at.elapsed() < CATALOG_TTL).map(|e| e.model.clone())
    }

    /// Keeps the entry as read; its validator stays if the entry did not change.
    pub(crate) fn remember_event_type(&self, model: &event_type::Model) {
        let mut catalog = lock(&self.catalog);
        let validator =
            catalog.get(&model.name).filter(|e| e.model == *model).and_then(|e| e.validator.clone());
        catalog.insert(
            model.name.clone(),
            CatalogEntry { model: model.clone(), read_at: Instant::now(), validator },
        );
    }

    /// After an admin changed the entry: the next publish reads it again.
    pub(crate) fn forget_event_type(&self, name: &str) {
        lock(&self.catalog).remove(name);
    }

    /// The validator compiled for exactly this version of the entry.
    pub(crate) fn validator(&self, model: &event_type::Model) -> Option<Arc<jsonschema::Validator>> {
        lock(&self.catalog).get(&model.name).filter(|e| e.model == *model).and_then(|e| e.validator.clone())
    }

    pub(crate) fn remember_validator(
        &self,
        model: &event_type::Model,
        validator: &Arc<jsonschema::Validator>,
    ) {
        let mut catalog = lock(&self.catalog);
        match catalog.get_mut(&model.name) {
            Some(entry) if entry.model == *model => entry.validator = Some(validator.clone()),
            // A newer version is kept: it compiles its own.
            Some(_) => {}
            None => {
                catalog.insert(
                    model.name.clone(),
                    CatalogEntry {
                        model: model.clone(),
                        read_at: Instant::now(),
                        validator: Some(validator.clone()),
                    },
                );
            }
        }
    }

    pub(crate) fn key(&self, hash: &str) -> Option<Scope> {
        let keys = lock(&self.keys);
        keys.get(hash).filter(|(_, at)| at.elapsed() < KEY_TTL).map(|(scope, _)| scope.clone())
    }

    pub(crate) fn remember_key(&self, hash: &str, scope: &Scope) {
        let mut keys = lock(&self.keys);
        if keys.len() > 10_000 {
            keys.retain(|_, (_, at)| at.elapsed() < KEY_TTL);
        }
        keys.insert(hash.to_string(), (scope.clone(), Instant::now()));
    }

    pub(crate) fn forget_key(&self, hash: &str) {
        lock(&self.keys).remove(hash);
    }
}
