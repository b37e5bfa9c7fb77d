//! The event catalog's server functions: the catalog narrowed by a search, for signed-in
//! users and for the public reference, and an admin's change of a type's schema.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One event type as the catalog shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub name: String,
    pub description: String,
    pub group: String,
    pub tenant_type: hookline_domain::EventTenantType,
    /// The example payload, indented.
    pub example: String,
    /// The JSON Schema, indented.
    pub schema: String,
    /// Whether an admin set the schema (else it is inferred from the example).
    pub custom_schema: bool,
    pub validate_payloads: bool,
}

/// The catalog as a page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub entries: Vec<CatalogEntry>,
    /// Whether the viewer may change schemas (an admin).
    pub can_edit: bool,
}

#[cfg(feature = "ssr")]
fn entry(t: hookline_core::entities::event_type::Model) -> CatalogEntry {
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    let (schema, source) = hookline_core::event_schema(&t);
    CatalogEntry {
        example: pretty(&hookline_core::example_payload(&t)),
        schema: pretty(&schema),
        custom_schema: source == hookline_core::SchemaSource::Custom,
        validate_payloads: t.validate_payloads,
        name: t.name,
        description: t.description,
        group: t.product_group,
        tenant_type: t.tenant_type,
    }
}

#[cfg(feature = "ssr")]
async fn search(query: Option<String>) -> Result<Vec<CatalogEntry>, AppError> {
    let query = query.unwrap_or_default();
    let found = crate::session::services()?.search_event_types(&query).await?;
    Ok(found.into_iter().map(entry).collect())
}

/// The catalog for a signed-in user, narrowed by `q` (words of the name, description or
/// product group).
#[server(prefix = "/ui", endpoint = "catalog")]
pub async fn signed_in_catalog(q: Option<String>) -> Result<Catalog, AppError> {
    let user = crate::session::signed_in().await?;
    Ok(Catalog { entries: search(q).await?, can_edit: user.scope().is_admin() })
}

/// The catalog for anyone: what a developer reads before having an account.
#[server(prefix = "/ui", endpoint = "public_catalog")]
pub async fn public_catalog(q: Option<String>) -> Result<Catalog, AppError> {
    Ok(Catalog { entries: search(q).await?, can_edit: false })
}

/// Sets a type's schema (JSON text; empty removes it, and the catalog infers one from the
/// example again) and turns checking payloads on (`validate_payloads` present, as a checked
/// box sends it) or off. Admins only.
#[server(prefix = "/ui", endpoint = "event_schema")]
pub async fn change_event_schema(
    name: String,
    schema: Option<String>,
    validate_payloads: Option<String>,
) -> Result<CatalogEntry, AppError> {
    let user = crate::session::require_admin().await?;
    let schema = match schema.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(serde_json::from_str::<serde_json::Value>(text).map_err(|e| {
            crate::error::refused(AppError::Invalid {
                field: Some("schema".into()),
                message: format!("The schema is not valid JSON: {e}."),
            })
        })?),
    };
    let change = hookline_core::SchemaChange {
        schema: Some(schema),
        validate_payloads: Some(validate_payloads.is_some()),
    };
    let changed = crate::session::services()?.change_event_schema(&user.scope(), &name, change).await?;
    Ok(entry(changed))
}
