//! The event type catalog: the types the platform publishes, with their description, product
//! group, tenant level and example payload. Seeded by the migrations; admins may add to it.

use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Deserialize;

use crate::entities::event_type;
use crate::error::{Error, Result};
use crate::{Services, now_ms};
use hookline_domain::{Page, PageRequest, Scope};

/// A new entry of the event type catalog.
#[derive(Clone, Debug, Deserialize)]
pub struct NewEventType {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub product_group: String,
    pub tenant_type: String,
    /// What the sequence number counts; defaults to the type's name.
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub example_payload: Option<serde_json::Value>,
}

impl Services {
    /// Adds an event type to the catalog (admins only).
    pub async fn create_event_type(&self, scope: &Scope, new: NewEventType) -> Result<event_type::Model> {
        if !scope.is_admin() {
            return Err(Error::Forbidden("Only an admin key adds event types.".into()));
        }
        let name = new.name.trim();
        let valid_name = !name.is_empty()
            && name.len() <= 128
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid_name {
            return Err(Error::invalid(
                "name",
                "An event type name is 1 to 128 letters, digits, '-', '_' or '.'.",
            ));
        }
        if name.starts_with(crate::OPERATIONAL_PREFIX) {
            return Err(Error::invalid(
                "name",
                format!(
                    "Names starting with {:?} are kept for the events Hookline emits itself.",
                    crate::OPERATIONAL_PREFIX
                ),
            ));
        }
        if new.description.chars().count() > 500 {
            return Err(Error::invalid("description", "A description has at most 500 characters."));
        }
        let group = new.product_group.trim();
        if group.is_empty() || group.len() > 64 {
            return Err(Error::invalid("product_group", "A product group is 1 to 64 characters."));
        }
        Error::refuse_hidden("description", &new.description)?;
        Error::refuse_hidden("product_group", group)?;
        if !["store", "application", "any"].contains(&new.tenant_type.as_str()) {
            return Err(Error::invalid(
                "tenant_type",
                "tenant_type is \"store\", \"application\" or \"any\".",
            ));
        }
        let resource = new.resource.as_deref().map(str::trim).filter(|r| !r.is_empty()).unwrap_or(name);
        let example = match &new.example_payload {
            None => "{}".to_string(),
            Some(v) => v.to_string(),
        };
        if event_type::Entity::find_by_id(name).one(&self.db).await?.is_some() {
            return Err(Error::Conflict(format!("The event type {name} already exists.")));
        }
        Ok(event_type::ActiveModel {
            name: Set(name.to_string()),
            description: Set(new.description.trim().to_string()),
            product_group: Set(group.to_string()),
            tenant_type: Set(new.tenant_type.clone()),
            resource: Set(resource.to_string()),
            example_payload: Set(example),
            created_at: Set(now_ms()),
        }
        .insert(&self.db)
        .await?)
    }

    /// One entry of the catalog.
    pub(crate) async fn catalog_entry(&self, name: &str) -> Result<Option<event_type::Model>> {
        if let Some(found) = self.cache.event_type(name) {
            return Ok(Some(found));
        }
        let found = event_type::Entity::find_by_id(name).one(&self.db).await?;
        if let Some(found) = &found {
            self.cache.remember_event_type(found);
        }
        Ok(found)
    }

    /// The catalog by name, a page at a time.
    pub async fn event_types_page(&self, page: &PageRequest) -> Result<Page<event_type::Model>> {
        let mut query =
            event_type::Entity::find().order_by_asc(event_type::Column::Name).limit(page.limit() + 1);
        if let Some(cursor) = &page.cursor {
            query = query.filter(event_type::Column::Name.gt(cursor));
        }
        Ok(Page::from_rows(query.all(&self.db).await?, page.limit(), |t| t.name.clone()))
    }

    pub async fn event_types(&self) -> Result<Vec<event_type::Model>> {
        Ok(event_type::Entity::find()
            .order_by_asc(event_type::Column::ProductGroup)
            .order_by_asc(event_type::Column::Name)
            .all(&self.db)
            .await?)
    }
}
