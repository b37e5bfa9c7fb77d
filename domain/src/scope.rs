//! What a caller may reach: everything (admin), one store, or one application.
//! Merchants' sessions and API keys are both turned into a scope before any service runs.

use std::fmt;

use crate::tenant::{Tenant, TenantType};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Admin,
    Store(String),
    Application(String),
}

impl Scope {
    /// Parses `admin`, `store:ID` or `application:ID`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.split_once(':') {
            None if s == "admin" => Some(Scope::Admin),
            Some(("store", id)) if !id.is_empty() => Some(Scope::Store(id.to_string())),
            Some(("application", id)) if !id.is_empty() => Some(Scope::Application(id.to_string())),
            _ => None,
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Scope::Admin)
    }

    /// Whether this scope may read and change the tenant's webhooks and events.
    pub fn allows(&self, tenant: &Tenant) -> bool {
        match self {
            Scope::Admin => true,
            Scope::Store(id) => tenant.kind == TenantType::Store && &tenant.id == id,
            Scope::Application(id) => tenant.kind == TenantType::Application && &tenant.id == id,
        }
    }

    /// The tenant a scoped caller means when it leaves the tenant fields out.
    pub fn own_tenant(&self) -> Option<Tenant> {
        match self {
            Scope::Admin => None,
            Scope::Store(id) => Some(Tenant::store(id.clone())),
            Scope::Application(id) => Some(Tenant::application(id.clone())),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Admin => f.write_str("admin"),
            Scope::Store(id) => write!(f, "store:{id}"),
            Scope::Application(id) => write!(f, "application:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_reject_garbage() {
        for s in ["admin", "store:abc", "application:app-1"] {
            assert_eq!(Scope::parse(s).unwrap().to_string(), s);
        }
        for s in ["", "store:", "root", "store", "tenant:x"] {
            assert!(Scope::parse(s).is_none(), "{s}");
        }
    }

    #[test]
    fn a_store_scope_reaches_only_its_store() {
        let scope = Scope::Store("a".into());
        assert!(scope.allows(&Tenant::store("a")));
        assert!(!scope.allows(&Tenant::store("b")));
        assert!(!scope.allows(&Tenant::application("a")));
    }
}
