//! The three-step flow of the seeds (Yotpo): a target (callback URL), a filter (event types),
//! and a subscription of the two. A subscription is a webhook like any other: the dashboard
//! shows it, and `/subscriptions` lists every webhook of the tenant, however it was made.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::access::Reach;
use crate::conditions::{CheckedControl, check_conditions};
use crate::entities::{filter, target, webhook};
use crate::error::{Error, Result};
use crate::webhooks::{Made, WebhookWithSecret};
use crate::{Services, new_id, now_ms};
use hookline_domain::{Page, PageRequest, Scope, Tenant, WebhookUrl};

impl target::Model {
    pub fn tenant(&self) -> Tenant {
        Tenant { kind: self.tenant_type, id: self.tenant_id.clone() }
    }
}

impl filter::Model {
    pub fn tenant(&self) -> Tenant {
        Tenant { kind: self.tenant_type, id: self.tenant_id.clone() }
    }

    pub fn event_names(&self) -> Vec<String> {
        serde_json::from_str(&self.events).unwrap_or_default()
    }
}

impl Services {
    async fn check_tenant(&self, scope: &Scope, tenant: &Tenant) -> Result<Reach> {
        let reach = self.reach(scope, tenant).await?;
        if !self.tenant_exists(tenant).await? {
            return Err(Error::unprocessable("tenant_id", format!("No tenant {tenant} exists.")));
        }
        Ok(reach)
    }

    pub async fn create_target(&self, scope: &Scope, tenant: &Tenant, url: &str) -> Result<target::Model> {
        let reach = self.check_tenant(scope, tenant).await?;
        let url = WebhookUrl::parse(url, &self.settings.url_policy)?;
        Ok(target::ActiveModel {
            id: Set(new_id()),
            tenant_type: Set(tenant.kind),
            tenant_id: Set(tenant.id.clone()),
            url: Set(url.into_string()),
            application_id: Set(reach.application()),
            created_at: Set(now_ms()),
        }
        .insert(&self.db)
        .await?)
    }

    pub async fn create_filter(
        &self,
        scope: &Scope,
        tenant: &Tenant,
        events: Vec<String>,
        conditions: Option<&serde_json::Value>,
    ) -> Result<filter::Model> {
        let reach = self.check_tenant(scope, tenant).await?;
        let conditions = conditions.map(|c| check_conditions("conditions", c)).transpose()?.flatten();
        let events = self
            .check_event_types(tenant, &Some(events))
            .await
            .map_err(|e| match e {
                Error::Invalid { message, .. } => Error::invalid("events", message),
                Error::Unprocessable { message, .. } => Error::unprocessable("events", message),
                other => other,
            })?
            .unwrap_or_default();
        Ok(filter::ActiveModel {
            id: Set(new_id()),
            tenant_type: Set(tenant.kind),
            tenant_id: Set(tenant.id.clone()),
            events: Set(events),
            application_id: Set(reach.application()),
            conditions: Set(conditions),
            created_at: Set(now_ms()),
        }
        .insert(&self.db)
        .await?)
    }

    pub async fn target(&self, scope: &Scope, id: &str) -> Result<target::Model> {
        match target::Entity::find_by_id(id).one(&self.db).await? {
            Some(t) if self.sees(scope, &t.tenant(), t.application_id.as_deref()).await? => Ok(t),
            _ => Err(Error::NotFound("target")),
        }
    }

    pub async fn filter(&self, scope: &Scope, id: &str) -> Result<filter::Model> {
        match filter::Entity::find_by_id(id).one(&self.db).await? {
            Some(f) if self.sees(scope, &f.tenant(), f.application_id.as_deref()).await? => Ok(f),
            _ => Err(Error::NotFound("filter")),
        }
    }

    pub async fn list_targets(
        &self,
        scope: &Scope,
        tenant: &Tenant,
        page: &PageRequest,
    ) -> Result<Page<target::Model>> {
        let reach = self.reach(scope, tenant).await?;
        let mut query = target::Entity::find()
            .filter(target::Column::TenantType.eq(tenant.kind.as_str()))
            .filter(target::Column::TenantId.eq(&tenant.id))
            .order_by_asc(target::Column::Id)
            .limit(page.limit() + 1);
        if let Reach::Installed(app) = &reach {
            query = query.filter(target::Column::ApplicationId.eq(app));
        }
        if let Some(cursor) = &page.cursor {
            query = query.filter(target::Column::Id.gt(cursor));
        }
        Ok(Page::from_rows(query.all(&self.db).await?, page.limit(), |t| t.id.clone()))
    }

    pub async fn list_filters(
        &self,
        scope: &Scope,
        tenant: &Tenant,
        page: &PageRequest,
    ) -> Result<Page<filter::Model>> {
        let reach = self.reach(scope, tenant).await?;
        let mut query = filter::Entity::find()
            .filter(filter::Column::TenantType.eq(tenant.kind.as_str()))
            .filter(filter::Column::TenantId.eq(&tenant.id))
            .order_by_asc(filter::Column::Id)
            .limit(page.limit() + 1);
        if let Reach::Installed(app) = &reach {
            query = query.filter(filter::Column::ApplicationId.eq(app));
        }
        if let Some(cursor) = &page.cursor {
            query = query.filter(filter::Column::Id.gt(cursor));
        }
        Ok(Page::from_rows(query.all(&self.db).await?, page.limit(), |f| f.id.clone()))
    }

    /// Deletes a target no subscription uses (409 otherwise).
    pub async fn delete_target(&self, scope: &Scope, id: &str) -> Result<()> {
        let found = self.target(scope, id).await?;
        let users =
            webhook::Entity::find().filter(webhook::Column::TargetId.eq(&found.id)).count(&self.db).await?;
        if users > 0 {
            return Err(Error::Conflict(format!(
                "{users} subscription(s) use this target; delete them first."
            )));
        }
        target::Entity::delete_by_id(&found.id).exec(&self.db).await?;
        Ok(())
    }

    /// Deletes a filter no subscription uses (409 otherwise).
    pub async fn delete_filter(&self, scope: &Scope, id: &str) -> Result<()> {
        let found = self.filter(scope, id).await?;
        let users =
            webhook::Entity::find().filter(webhook::Column::FilterId.eq(&found.id)).count(&self.db).await?;
        if users > 0 {
            return Err(Error::Conflict(format!(
                "{users} subscription(s) use this filter; delete them first."
            )));
        }
        filter::Entity::delete_by_id(&found.id).exec(&self.db).await?;
        Ok(())
    }

    /// Subscribes a target to a filter: a webhook to the target's URL for the filter's
    /// events, delivering from now on. Both must belong to the tenant.
    pub async fn create_subscription(
        &self,
        scope: &Scope,
        tenant: &Tenant,
        target_id: &str,
        filter_id: &str,
    ) -> Result<WebhookWithSecret> {
        let reach = self.check_tenant(scope, tenant).await?;
        let missing = |what: &'static str, id: &str| {
            Error::unprocessable(what, format!("No {what} {id} in this tenant."))
        };
        let t = self.target(scope, target_id).await.map_err(|_| missing("target_id", target_id))?;
        let f = self.filter(scope, filter_id).await.map_err(|_| missing("filter_id", filter_id))?;
        if &t.tenant() != tenant {
            return Err(missing("target_id", target_id));
        }
        if &f.tenant() != tenant {
            return Err(missing("filter_id", filter_id));
        }
        // The target was checked when it was made; the policy may have changed since.
        let url = WebhookUrl::parse(&t.url, &self.settings.url_policy)?;
        let made = Made { application: reach.application(), subscription: Some((t.id, f.id)) };
        // The filter's payload conditions were checked when it was made; the webhook keeps
        // its own copy, so publishing reads one table and the merchant may edit them there.
        let control = CheckedControl { conditions: Some(f.conditions.clone()), ..CheckedControl::default() };
        self.insert_webhook(tenant, url, String::new(), Some(f.events.clone()), made, control).await
    }
}
