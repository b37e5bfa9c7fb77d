//! Tenants (stores and applications), to which every webhook, event and delivery belongs, and
//! the roles of dashboard users.

use std::fmt;

#[cfg(feature = "sea-orm")]
use sea_orm::sea_query::StringLen;
use serde::{Deserialize, Serialize}; // named by the active enums' `db_type`

use crate::input_error::InputError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "sea-orm", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
#[cfg_attr(feature = "sea-orm", sea_orm(rs_type = "String", db_type = "String(StringLen::None)"))]
#[serde(rename_all = "lowercase")]
pub enum TenantType {
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "store"))]
    Store,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "application"))]
    Application,
}

impl TenantType {
    pub const ALL: [TenantType; 2] = [TenantType::Store, TenantType::Application];

    pub fn as_str(self) -> &'static str {
        match self {
            TenantType::Store => "store",
            TenantType::Application => "application",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

stored_as_str!(TenantType, "tenant type");

/// Which tenants an event type of the catalog is for: stores, applications, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "sea-orm", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
#[cfg_attr(feature = "sea-orm", sea_orm(rs_type = "String", db_type = "String(StringLen::None)"))]
#[serde(rename_all = "lowercase")]
pub enum EventTenantType {
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "store"))]
    Store,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "application"))]
    Application,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "any"))]
    Any,
}

impl EventTenantType {
    pub const ALL: [EventTenantType; 3] =
        [EventTenantType::Store, EventTenantType::Application, EventTenantType::Any];

    pub fn as_str(self) -> &'static str {
        match self {
            EventTenantType::Store => "store",
            EventTenantType::Application => "application",
            EventTenantType::Any => "any",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether a tenant of this type publishes (and its webhooks receive) the event type.
    pub fn admits(self, kind: TenantType) -> bool {
        match self {
            EventTenantType::Any => true,
            EventTenantType::Store => kind == TenantType::Store,
            EventTenantType::Application => kind == TenantType::Application,
        }
    }
}

stored_as_str!(EventTenantType, "event tenant type");

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tenant {
    pub kind: TenantType,
    pub id: String,
}

impl Tenant {
    pub fn store(id: impl Into<String>) -> Self {
        Tenant { kind: TenantType::Store, id: id.into() }
    }

    pub fn application(id: impl Into<String>) -> Self {
        Tenant { kind: TenantType::Application, id: id.into() }
    }

    /// Builds a tenant from the two request fields, refusing an unknown type or an empty id.
    pub fn from_fields(kind: &str, id: &str) -> Result<Self, InputError> {
        let kind = TenantType::parse(kind).ok_or_else(|| {
            InputError::new("tenant_type", "tenant_type must be \"store\" or \"application\".")
        })?;
        if id.trim().is_empty() {
            return Err(InputError::new("tenant_id", "tenant_id must not be empty."));
        }
        Ok(Tenant { kind, id: id.to_string() })
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}

/// What a dashboard user is: an admin of the whole installation, or a merchant of one store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "sea-orm", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
#[cfg_attr(feature = "sea-orm", sea_orm(rs_type = "String", db_type = "String(StringLen::None)"))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "admin"))]
    Admin,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "merchant"))]
    Merchant,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Admin, Role::Merchant];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Merchant => "merchant",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == s)
    }
}

stored_as_str!(Role, "role");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_types_and_roles_round_trip_through_their_strings() {
        for kind in TenantType::ALL {
            assert_eq!(TenantType::parse(kind.as_str()), Some(kind));
        }
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(TenantType::parse("Store"), None);
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn an_event_types_tenants_round_trip_and_admit_their_tenants() {
        for t in EventTenantType::ALL {
            assert_eq!(EventTenantType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(EventTenantType::parse("both"), None);
        assert!(
            EventTenantType::Any.admits(TenantType::Store)
                && EventTenantType::Any.admits(TenantType::Application)
        );
        assert!(EventTenantType::Store.admits(TenantType::Store));
        assert!(!EventTenantType::Store.admits(TenantType::Application));
        assert!(!EventTenantType::Application.admits(TenantType::Store));
        assert!(EventTenantType::Any == "any" && EventTenantType::Store != "any");
    }

    #[test]
    fn a_tenant_needs_a_known_type_and_an_id() {
        assert_eq!(Tenant::from_fields("store", "s-1"), Ok(Tenant::store("s-1")));
        assert_eq!(Tenant::from_fields("shop", "s-1").unwrap_err().field, "tenant_type");
        assert_eq!(Tenant::from_fields("application", " ").unwrap_err().field, "tenant_id");
        assert_eq!(Tenant::application("a").to_string(), "application:a");
    }
}
