//! Who reaches which tenant's webhooks, targets and filters. Admins reach every tenant; a
//! store's key reaches its store; an application's key reaches its own application tenant
//! and, store-level, the stores that installed it, where it sees only what it made itself.

use sea_orm::EntityTrait;

use crate::Services;
use crate::entities::installation;
use crate::error::{Error, Result};
use hookline_domain::{Scope, Tenant, TenantType};

/// How a caller reaches a tenant it may manage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// The tenant is the caller's own (or the caller is an admin).
    Owner,
    /// An application installed on the store: it manages only its own records there.
    Installed(String),
}

impl Reach {
    /// The application a new record is made by, if made store-level by one.
    pub(crate) fn application(&self) -> Option<String> {
        match self {
            Reach::Owner => None,
            Reach::Installed(app) => Some(app.clone()),
        }
    }
}

impl Services {
    pub(crate) async fn is_installed(&self, application_id: &str, store_id: &str) -> Result<bool> {
        Ok(installation::Entity::find_by_id((application_id.to_string(), store_id.to_string()))
            .one(&self.db)
            .await?
            .is_some())
    }

    /// Whether the scope may create and list records of the tenant: 403 when it may not.
    pub(crate) async fn reach(&self, scope: &Scope, tenant: &Tenant) -> Result<Reach> {
        if scope.allows(tenant) {
            return Ok(Reach::Owner);
        }
        if let (Scope::Application(app), TenantType::Store) = (scope, tenant.kind) {
            if self.is_installed(app, &tenant.id).await? {
                return Ok(Reach::Installed(app.clone()));
            }
            return Err(Error::Forbidden(format!(
                "Application {app} is not installed on store {}.",
                tenant.id
            )));
        }
        Err(Error::Forbidden(format!("This key cannot manage webhooks of {tenant}.")))
    }

    /// Whether the scope sees one record of the tenant, made by `made_by` (an application,
    /// or none). A record the caller cannot see is answered as not found.
    pub(crate) async fn sees(&self, scope: &Scope, tenant: &Tenant, made_by: Option<&str>) -> Result<bool> {
        if scope.allows(tenant) {
            return Ok(true);
        }
        match (scope, tenant.kind, made_by) {
            (Scope::Application(app), TenantType::Store, Some(maker)) if app == maker => {
                self.is_installed(app, &tenant.id).await
            }
            _ => Ok(false),
        }
    }
}
