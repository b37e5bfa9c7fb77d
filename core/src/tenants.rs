//! Tenants: stores and applications. Every webhook, event and delivery belongs to one.

use std::fmt;

use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use serde::{Deserialize, Serialize};

use crate::entities::{application, installation, store};
use crate::error::{Error, Result};
use crate::{Services, now_ms};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantType {
    Store,
    Application,
}

impl TenantType {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantType::Store => "store",
            TenantType::Application => "application",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "store" => Some(TenantType::Store),
            "application" => Some(TenantType::Application),
            _ => None,
        }
    }
}

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

    /// Builds a tenant from the two request fields, with a 400 for an unknown type.
    pub fn from_fields(kind: &str, id: &str) -> Result<Self> {
        let kind = TenantType::parse(kind).ok_or_else(|| {
            Error::invalid("tenant_type", "tenant_type must be \"store\" or \"application\".")
        })?;
        if id.trim().is_empty() {
            return Err(Error::invalid("tenant_id", "tenant_id must not be empty."));
        }
        Ok(Tenant { kind, id: id.to_string() })
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}

fn check_tenant_id(field: &'static str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(field, "An id is 1 to 128 letters, digits, '-', '_' or '.'."))
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(Error::invalid("name", "A name is 1 to 200 characters."));
    }
    Ok(())
}

impl Services {
    /// Whether the tenant exists. Tenants are never created implicitly.
    pub async fn tenant_exists(&self, tenant: &Tenant) -> Result<bool> {
        Ok(match tenant.kind {
            TenantType::Store => store::Entity::find_by_id(&tenant.id).one(&self.db).await?.is_some(),
            TenantType::Application => {
                application::Entity::find_by_id(&tenant.id).one(&self.db).await?.is_some()
            }
        })
    }

    pub async fn create_store(&self, id: &str, name: &str) -> Result<store::Model> {
        check_tenant_id("id", id)?;
        check_name(name)?;
        if store::Entity::find_by_id(id).one(&self.db).await?.is_some() {
            return Err(Error::Conflict(format!("A store with id {id} already exists.")));
        }
        let model = store::ActiveModel {
            id: Set(id.to_string()),
            name: Set(name.trim().to_string()),
            created_at: Set(now_ms()),
        };
        Ok(model.insert(&self.db).await?)
    }

    pub async fn list_stores(&self) -> Result<Vec<store::Model>> {
        Ok(store::Entity::find().all(&self.db).await?)
    }

    pub async fn create_application(&self, id: &str, name: &str) -> Result<application::Model> {
        check_tenant_id("id", id)?;
        check_name(name)?;
        if application::Entity::find_by_id(id).one(&self.db).await?.is_some() {
            return Err(Error::Conflict(format!("An application with id {id} already exists.")));
        }
        let model = application::ActiveModel {
            id: Set(id.to_string()),
            name: Set(name.trim().to_string()),
            created_at: Set(now_ms()),
        };
        Ok(model.insert(&self.db).await?)
    }

    pub async fn install_application(&self, application_id: &str, store_id: &str) -> Result<()> {
        if application::Entity::find_by_id(application_id).one(&self.db).await?.is_none() {
            return Err(Error::NotFound("application"));
        }
        if store::Entity::find_by_id(store_id).one(&self.db).await?.is_none() {
            return Err(Error::unprocessable("store_id", format!("No store has id {store_id}.")));
        }
        let existing = installation::Entity::find_by_id((application_id.to_string(), store_id.to_string()))
            .one(&self.db)
            .await?;
        if existing.is_none() {
            installation::ActiveModel {
                application_id: Set(application_id.to_string()),
                store_id: Set(store_id.to_string()),
                created_at: Set(now_ms()),
            }
            .insert(&self.db)
            .await?;
        }
        Ok(())
    }
}
