//! The admin views' server functions: the webhooks Hookline turned off by itself, the
//! stores (a page at a time, with their users and retention), partner applications (a page
//! at a time), and the delivery history across every store. Each answers a non-admin with
//! the not-found of a page that is not theirs.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::pages::webhook::WebhookRow;
use crate::pages::webhook::server::DeliveryRow;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DisabledWebhook {
    pub row: WebhookRow,
    pub store: String,
    pub reason: String,
}

/// The webhooks Hookline turned off by itself, across every store.
#[server(prefix = "/ui", endpoint = "admin_disabled")]
pub async fn turned_off_webhooks() -> Result<Vec<DisabledWebhook>, AppError> {
    use crate::pages::webhook::server::webhook_row;
    use crate::session::{require_admin, services};
    use hookline_domain::DisabledReason;
    let user = require_admin().await?;
    let found = services()?.auto_disabled_webhooks(&user.scope()).await?;
    Ok(found
        .into_iter()
        .map(|w| DisabledWebhook {
            store: format!("{} {}", w.tenant_type, w.tenant_id),
            // Only webhooks Hookline turned off are listed: a reason is always there.
            reason: w.disabled_reason.unwrap_or(DisabledReason::Automatic).cause(w.consecutive_failures),
            row: webhook_row(w),
        })
        .collect())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreInfo {
    pub id: String,
    pub name: String,
    pub created: String,
    pub users: Vec<String>,
    /// The store's own retention (`7d`), if an admin shortened it.
    pub retention: Option<String>,
}

/// A page of stores, with the global retention they are kept for unless shortened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreList {
    pub stores: Vec<StoreInfo>,
    pub retention: String,
    /// The cursor of the page after this one, if there is one.
    pub next_cursor: Option<String>,
}

/// A page of stores by id, each with its users.
#[server(prefix = "/ui", endpoint = "admin_stores")]
pub async fn stores_with_users(cursor: Option<String>) -> Result<StoreList, AppError> {
    use crate::format::human_time;
    use crate::session::{require_admin, services};
    require_admin().await?;
    let services = services()?;
    let page = hookline_core::PageRequest {
        limit: Some(crate::paging::PAGE_SIZE),
        cursor: cursor.filter(|c| !c.is_empty()),
    };
    let found = services.stores_page(&page).await?;
    let shown: Vec<String> = found.items.iter().map(|s| s.id.clone()).collect();
    let users = services.users_of_stores(&shown).await?;
    let stores = found
        .items
        .into_iter()
        .map(|s| StoreInfo {
            retention: s.retention_ms.map(|ms| {
                hookline_core::format_retention(std::time::Duration::from_millis(ms.max(0) as u64))
            }),
            users: users
                .iter()
                .filter(|u| u.store_id.as_deref() == Some(&s.id))
                .map(|u| u.email.clone())
                .collect(),
            created: human_time(s.created_at),
            id: s.id,
            name: s.name,
        })
        .collect();
    Ok(StoreList {
        stores,
        retention: hookline_core::format_retention(services.settings.retention),
        next_cursor: found.next_cursor,
    })
}

/// Sets how long a store's events, deliveries and attempts are kept (`7d`; empty for the
/// global retention).
#[server(prefix = "/ui", endpoint = "admin_store_retention")]
pub async fn set_store_retention(store: String, retention: String) -> Result<String, AppError> {
    use crate::session::{require_admin, services};
    let me = require_admin().await?;
    let done = services()?.set_store_retention(&me.scope(), &store, Some(&retention)).await?;
    Ok(done.id)
}

/// Deletes a store and all of its data; `confirm` must be "yes" (the form's confirmation box).
#[server(prefix = "/ui", endpoint = "admin_delete_store")]
pub async fn delete_store(store: String, confirm: Option<String>) -> Result<String, AppError> {
    use crate::error::refused;
    use crate::session::{require_admin, services};
    let me = require_admin().await?;
    if confirm.as_deref() != Some("yes") {
        return Err(refused(AppError::Invalid {
            field: Some("confirm".into()),
            message: "Tick the box to confirm the deletion.".into(),
        }));
    }
    services()?.delete_store(&me.scope(), &store).await?;
    Ok(store)
}

#[server(prefix = "/ui", endpoint = "admin_create_store")]
pub async fn create_store(id: String, name: String) -> Result<String, AppError> {
    use crate::session::{require_admin, services};
    require_admin().await?;
    let made = services()?.create_store(id.trim(), &name).await?;
    Ok(made.id)
}

/// Creates a merchant user of a store, who can then sign in.
#[server(prefix = "/ui", endpoint = "admin_create_user")]
pub async fn create_merchant_user(
    store: String,
    email: String,
    password: String,
) -> Result<String, AppError> {
    use crate::session::{require_admin, services};
    require_admin().await?;
    let made = services()?.create_merchant(&email, &password, &store).await?;
    Ok(made.email)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplicationInfo {
    pub id: String,
    pub name: String,
    /// (store id, product lines)
    pub installations: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplicationList {
    pub applications: Vec<ApplicationInfo>,
    /// The cursor of the page after this one, if there is one.
    pub next_cursor: Option<String>,
}

/// A page of partner applications by id, with the stores each is installed on.
#[server(prefix = "/ui", endpoint = "admin_applications")]
pub async fn applications(cursor: Option<String>) -> Result<ApplicationList, AppError> {
    use crate::session::{require_admin, services};
    require_admin().await?;
    let page = hookline_core::PageRequest {
        limit: Some(crate::paging::PAGE_SIZE),
        cursor: cursor.filter(|c| !c.is_empty()),
    };
    let found = services()?.applications_page(&page).await?;
    Ok(ApplicationList {
        applications: found
            .items
            .into_iter()
            .map(|(a, installs)| ApplicationInfo {
                id: a.id,
                name: a.name,
                installations: installs
                    .into_iter()
                    .map(|i| {
                        let lines: Vec<String> = serde_json::from_str(&i.product_lines).unwrap_or_default();
                        (i.store_id, lines.join(", "))
                    })
                    .collect(),
            })
            .collect(),
        next_cursor: found.next_cursor,
    })
}

#[server(prefix = "/ui", endpoint = "admin_create_application")]
pub async fn create_application(id: String, name: String) -> Result<String, AppError> {
    use crate::session::{require_admin, services};
    require_admin().await?;
    Ok(services()?.create_application(id.trim(), &name).await?.id)
}

#[server(prefix = "/ui", endpoint = "admin_install")]
pub async fn install_application(application: String, store: String) -> Result<(), AppError> {
    use crate::session::{require_admin, services};
    require_admin().await?;
    services()?.install_application(&application.into(), &store.into(), None).await?;
    Ok(())
}

/// Disconnects the application from the store: its store-level webhooks there are turned off
/// and it receives `integrations.applications.disconnected.v3`.
#[server(prefix = "/ui", endpoint = "admin_disconnect")]
pub async fn disconnect_application(application: String, store: String) -> Result<(), AppError> {
    use crate::session::{require_admin, services};
    require_admin().await?;
    services()?.disconnect_application(&application.into(), &store.into()).await?;
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdminDeliveryRow {
    pub row: DeliveryRow,
    pub store: String,
    pub webhook_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryHistory {
    pub items: Vec<AdminDeliveryRow>,
    pub next_cursor: Option<String>,
    /// (status, count) among the latest matching deliveries.
    pub totals: Vec<(String, u64)>,
    /// When set, more deliveries match than were counted: the totals are of the latest this many.
    pub counted_latest: Option<u64>,
    pub stores: Vec<String>,
    pub event_types: Vec<String>,
}

/// Delivery history across every store, newest first, 50 a page. `from` and `to` are dates
/// (YYYY-MM-DD, UTC), `to` inclusive.
#[server(prefix = "/ui", endpoint = "admin_deliveries")]
pub async fn deliveries_across_stores(
    store: Option<String>,
    webhook: Option<String>,
    event_type: Option<String>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
) -> Result<DeliveryHistory, AppError> {
    use crate::format::date_bound;
    use crate::pages::webhook::server::delivery_row;
    use crate::session::{require_admin, services};
    let user = require_admin().await?;
    let filter = hookline_core::DeliveryFilter {
        store,
        webhook,
        event_type,
        status,
        from: date_bound("from", from, false)?,
        to: date_bound("to", to, true)?,
    };
    let services = services()?;
    let page = hookline_core::PageRequest { limit: Some(50), cursor: cursor.filter(|c| !c.is_empty()) };
    let (found, totals) = services.search_deliveries(&user.scope(), &filter, &page).await?;
    let breakers = services.open_breakers_of(&found.items).await?;
    Ok(DeliveryHistory {
        items: found
            .items
            .into_iter()
            .map(|d| {
                let breaker = breakers.get(&d.webhook_id);
                AdminDeliveryRow {
                    store: d.tenant_id.clone(),
                    webhook_id: d.webhook_id.clone(),
                    row: delivery_row(hookline_core::DeliveryView::of(d, breaker)),
                }
            })
            .collect(),
        next_cursor: found.next_cursor,
        counted_latest: totals.capped.then_some(hookline_core::TOTALS_WINDOW),
        totals: totals.by_status,
        stores: services.list_stores().await?.into_iter().map(|s| s.id).collect(),
        event_types: services.event_types().await?.into_iter().map(|t| t.name).collect(),
    })
}
