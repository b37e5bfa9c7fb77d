//! Which event types a webhook can receive, as publish delivers them: the catalog's types of
//! its tenant's level that its event types take, and for an application's webhook on a store
//! only those of the product lines the store installed the application for (and Hookline's own
//! `Webhooks` events). The portal's conditions bench reads no other type's events.

use sea_orm::EntityTrait;

use crate::Services;
use crate::entities::installation;
use crate::error::Result;
use crate::events::OPERATIONAL_GROUP;
use hookline_domain::{Scope, TenantType};

impl Services {
    /// The event types the webhook `id` (as `scope` reaches it) can receive, in the catalog's
    /// order; none for an application's webhook on a store that no longer has it installed.
    pub async fn receivable_event_types(&self, scope: &Scope, id: &str) -> Result<Vec<String>> {
        let hook = self.webhook(scope, id).await?;
        let lines: Option<Vec<String>> = match (&hook.application_id, hook.tenant_type) {
            (Some(app), TenantType::Store) => Some(
                installation::Entity::find_by_id((app.clone(), hook.tenant_id.clone()))
                    .one(&self.db)
                    .await?
                    .map(|i| serde_json::from_str::<Vec<String>>(&i.product_lines).unwrap_or_default())
                    .unwrap_or_default(),
            ),
            _ => None,
        };
        let receives = hook.subscription();
        Ok(self
            .event_types()
            .await?
            .into_iter()
            .filter(|t| t.tenant_type.admits(hook.tenant_type) && receives.matches(&t.name))
            .filter(|t| {
                lines.as_ref().is_none_or(|lines| {
                    t.product_group == OPERATIONAL_GROUP
                        || lines.iter().any(|l| l.eq_ignore_ascii_case(&t.product_group))
                })
            })
            .map(|t| t.name)
            .collect())
    }
}
