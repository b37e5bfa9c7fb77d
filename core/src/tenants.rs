//! Tenants: stores and applications. Every webhook, event and delivery belongs to one.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use crate::entities::{api_key, application, event_type, installation, store};
use crate::error::{Error, Result};
use crate::events::PublishRequest;
use crate::{Services, now_ms};
use hookline_domain::{ApplicationId, EventId, Page, PageRequest, Scope, StoreId, Tenant, TenantType};

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
    Error::refuse_hidden("name", name)
}

impl Services {
    /// On PostgreSQL, locks the tenant's row until the transaction ends, so that checks of
    /// the tenant's totals (how many webhooks it has) and the writes after them are one step.
    /// SQLite serialises writers already (the caller holds the write turn).
    pub(crate) async fn lock_tenant(&self, txn: &impl ConnectionTrait, tenant: &Tenant) -> Result<()> {
        Ok(crate::store::tenants::lock(txn, tenant).await?)
    }

    /// Whether the tenant exists. Tenants are never created implicitly.
    pub async fn tenant_exists(&self, tenant: &Tenant) -> Result<bool> {
        if self.cache.tenant_known(tenant) {
            return Ok(true);
        }
        let exists = match tenant.kind {
            TenantType::Store => self.live_store(&tenant.id).await?.is_some(),
            TenantType::Application => {
                application::Entity::find_by_id(&tenant.id).one(&self.db).await?.is_some()
            }
        };
        if exists {
            self.cache.remember_tenant(tenant);
        }
        Ok(exists)
    }

    pub async fn create_store(&self, id: &str, name: &str) -> Result<store::Model> {
        check_tenant_id("id", id)?;
        check_name(name)?;
        match store::Entity::find_by_id(id).one(&self.db).await? {
            Some(s) if s.deleted_at.is_some() => {
                return Err(Error::Conflict(format!(
                    "The store {id} was deleted and its data is still being removed; try again in a few minutes."
                )));
            }
            Some(_) => return Err(Error::Conflict(format!("A store with id {id} already exists."))),
            None => {}
        }
        let model = store::ActiveModel {
            id: Set(id.to_string()),
            name: Set(name.trim().to_string()),
            created_at: Set(now_ms()),
            retention_ms: Set(None),
            deleted_at: Set(None),
        };
        Ok(model.insert(&self.db).await?)
    }

    pub async fn stores_page(&self, page: &PageRequest) -> Result<Page<store::Model>> {
        let mut query = store::Entity::find()
            .filter(store::Column::DeletedAt.is_null())
            .order_by_asc(store::Column::Id)
            .limit(page.limit() + 1);
        if let Some(cursor) = &page.cursor {
            query = query.filter(store::Column::Id.gt(cursor));
        }
        Ok(Page::from_rows(query.all(&self.db).await?, page.limit(), |s| s.id.clone()))
    }

    /// A page of applications by id, each with the stores it is installed on (for the
    /// admin's stores page).
    pub async fn applications_page(
        &self,
        page: &PageRequest,
    ) -> Result<Page<(application::Model, Vec<installation::Model>)>> {
        let mut query =
            application::Entity::find().order_by_asc(application::Column::Id).limit(page.limit() + 1);
        if let Some(cursor) = &page.cursor {
            query = query.filter(application::Column::Id.gt(cursor));
        }
        let apps = Page::from_rows(query.all(&self.db).await?, page.limit(), |a| a.id.clone());
        let shown: Vec<String> = apps.items.iter().map(|a| a.id.clone()).collect();
        let installs = installation::Entity::find()
            .filter(installation::Column::ApplicationId.is_in(shown))
            .order_by_asc(installation::Column::StoreId)
            .all(&self.db)
            .await?;
        Ok(apps.map(|a| {
            let mine = installs.iter().filter(|i| i.application_id == a.id).cloned().collect();
            (a, mine)
        }))
    }

    pub async fn list_stores(&self) -> Result<Vec<store::Model>> {
        Ok(store::Entity::find().filter(store::Column::DeletedAt.is_null()).all(&self.db).await?)
    }

    /// Deletes a store and all of its data (admins only). At once, in one transaction: the
    /// store leaves every list and nothing more is published for it, and its webhooks with
    /// their secrets, targets, filters, sequence counters, installations, API keys, users and
    /// their sessions go. What can be large is removed in the background in small steps, so
    /// a store with a long history never holds up publishing: its webhooks' deliveries,
    /// attempts and hourly counters as for a deleted webhook, then its events and last its
    /// row ([`Services::purge_deleted_stores_step`]).
    pub async fn delete_store(&self, scope: &Scope, id: &str) -> Result<()> {
        if !scope.is_admin() {
            return Err(Error::Forbidden("Only admins delete stores.".into()));
        }
        let found = self.live_store(id).await?.ok_or(Error::NotFound("store"))?;
        let tenant = Tenant::store(found.id.clone());
        let key_scope = Scope::Store(found.id.clone()).to_string();
        let key_hashes: Vec<String> = api_key::Entity::find()
            .select_only()
            .column(api_key::Column::KeyHash)
            .filter(api_key::Column::Scope.eq(&key_scope))
            .into_tuple()
            .all(&self.db)
            .await?;
        self.store().delete_store(&found.id, &key_scope, now_ms()).await?;
        self.cache.forget_tenant(&tenant);
        for hash in key_hashes {
            self.cache.forget_key(&hash);
        }
        Ok(())
    }

    /// The store, unless it does not exist or was deleted.
    pub async fn live_store(&self, id: &str) -> Result<Option<store::Model>> {
        Ok(store::Entity::find_by_id(id).one(&self.db).await?.filter(|s| s.deleted_at.is_none()))
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

    /// Installs the application on the store (again: a no-op), for the given product lines
    /// (default Reviews). From then on the application's key reaches the store store-level.
    pub async fn install_application(
        &self,
        application_id: &ApplicationId,
        store_id: &StoreId,
        product_lines: Option<Vec<String>>,
    ) -> Result<installation::Model> {
        let (application_id, store_id) = (application_id.as_str(), store_id.as_str());
        if application::Entity::find_by_id(application_id).one(&self.db).await?.is_none() {
            return Err(Error::NotFound("application"));
        }
        if self.live_store(store_id).await?.is_none() {
            return Err(Error::unprocessable("store_id", format!("No store has id {store_id}.")));
        }
        let lines = product_lines.unwrap_or_else(|| vec!["Reviews".to_string()]);
        if lines.is_empty() || lines.iter().any(|l| l.trim().is_empty() || l.len() > 64) {
            return Err(Error::invalid("product_lines", "product_lines is a list of product names."));
        }
        let existing = installation::Entity::find_by_id((application_id.to_string(), store_id.to_string()))
            .one(&self.db)
            .await?;
        if let Some(existing) = existing {
            return Ok(existing);
        }
        Ok(installation::ActiveModel {
            application_id: Set(application_id.to_string()),
            store_id: Set(store_id.to_string()),
            created_at: Set(now_ms()),
            product_lines: Set(serde_json::to_string(&lines).unwrap_or_default()),
        }
        .insert(&self.db)
        .await?)
    }

    /// The stores an application is installed on, oldest first.
    pub async fn installations(
        &self,
        scope: &Scope,
        application_id: &str,
        page: &PageRequest,
    ) -> Result<Page<installation::Model>> {
        let own = matches!(scope, Scope::Application(a) if a == application_id);
        if !(scope.is_admin() || own)
            || application::Entity::find_by_id(application_id).one(&self.db).await?.is_none()
        {
            return Err(Error::NotFound("application"));
        }
        let mut query = installation::Entity::find()
            .filter(installation::Column::ApplicationId.eq(application_id))
            .order_by_asc(installation::Column::StoreId)
            .limit(page.limit() + 1);
        if let Some(cursor) = &page.cursor {
            query = query.filter(installation::Column::StoreId.gt(cursor));
        }
        Ok(Page::from_rows(query.all(&self.db).await?, page.limit(), |i| i.store_id.clone()))
    }

    /// Disconnects the application from the store, in one transaction: the installation goes,
    /// the application's store-level webhooks there are turned off, and
    /// `integrations.applications.disconnected.v3` is published to the application's
    /// app-level subscriptions.
    pub async fn disconnect_application(
        &self,
        application_id: &ApplicationId,
        store_id: &StoreId,
    ) -> Result<EventId> {
        let key = (application_id.to_string(), store_id.to_string());
        let Some(found) = installation::Entity::find_by_id(key.clone()).one(&self.db).await? else {
            return Err(Error::NotFound("installation"));
        };
        let lines: Vec<String> = serde_json::from_str(&found.product_lines).unwrap_or_default();
        // The seed's shape: {"topic", "name", "store", "product_lines": "[Reviews]"}.
        let payload = serde_json::json!({
            "topic": DISCONNECTED,
            "name": "Application disconnected",
            "store": store_id.as_str(),
            "product_lines": format!("[{}]", lines.join(", ")),
        });
        let kind = event_type::Entity::find_by_id(DISCONNECTED)
            .one(&self.db)
            .await?
            .ok_or(Error::NotFound("event type"))?;
        let now = now_ms();
        let txn = self.db.begin().await?;
        installation::Entity::delete_by_id(key).exec(&txn).await?;
        let disconnected = crate::store::webhooks::Which::OfApplicationInStore { application_id, store_id };
        crate::store::webhooks::turn_off(&txn, disconnected, crate::DisabledReason::Disconnected, now)
            .await?;
        let request = PublishRequest {
            tenant: Tenant::application(application_id.as_str()),
            event_type: DISCONNECTED.into(),
            payload: payload.to_string(),
            idempotency_key: None,
            ordering_key: None,
            audience: crate::events::Audience::Everyone,
        };
        let event_id = self.insert_event(&txn, &request, &kind).await?;
        txn.commit().await?;
        self.wake_workers();
        Ok(EventId::new(event_id))
    }
}

const DISCONNECTED: &str = "integrations.applications.disconnected.v3";
