//! What the hot path would otherwise read on every request: tenants that exist, catalog
//! entries, and API keys. Event types are never deleted, so a positive answer stays true;
//! tenants and API keys are kept briefly, so that a store deleted or a key revoked in another
//! process is refused there within [`TENANT_TTL`] and [`KEY_TTL`] (in this process, at once).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::entities::event_type;
use hookline_domain::{Scope, Tenant};

pub(crate) const KEY_TTL: Duration = Duration::from_secs(2);
pub(crate) const TENANT_TTL: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(crate) struct Caches {
    /// When each tenant was last found to exist.
    tenants: Mutex<HashMap<Tenant, Instant>>,
    catalog: Mutex<HashMap<String, event_type::Model>>,
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
        lock(&self.catalog).get(name).cloned()
    }

    pub(crate) fn remember_event_type(&self, model: &event_type::Model) {
        lock(&self.catalog).insert(model.name.clone(), model.clone());
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
