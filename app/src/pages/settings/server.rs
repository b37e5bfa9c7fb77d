//! Settings › API's server functions: the store's webhooks and API keys, a page at a time,
//! the event catalog for the new-webhook form, creating a webhook, creating and revoking keys.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::pages::webhook::WebhookRow;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookList {
    pub store_id: String,
    pub store_name: String,
    pub webhooks: Vec<WebhookRow>,
    /// The cursor of the page after this one, if there is one.
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventTypeInfo {
    pub name: String,
    pub description: String,
    pub group: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub last_used: Option<String>,
    pub revoked: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKeys {
    pub keys: Vec<ApiKeyRow>,
    /// The cursor of the page after this one, if there is one.
    pub next_cursor: Option<String>,
    /// A key just created by a plain form post, shown this once.
    pub created: Option<String>,
}

/// How a key created by a plain form post waits in the session for the page after it.
#[cfg(feature = "ssr")]
const FLASH_API_KEY: &str = "api-key ";

/// A page of the store's webhooks (the merchant's own store, or the one an admin picked),
/// oldest first.
#[server(prefix = "/ui", endpoint = "webhooks")]
pub async fn store_webhooks(store: Option<String>, cursor: Option<String>) -> Result<WebhookList, AppError> {
    use crate::session::{services, signed_in, viewed_store};
    let user = signed_in().await?;
    let store = viewed_store(&user, store).await?;
    let tenant = hookline_core::Tenant::store(store.id.clone());
    let page = hookline_core::PageRequest {
        limit: Some(crate::paging::PAGE_SIZE),
        cursor: cursor.filter(|c| !c.is_empty()),
    };
    let found = services()?.list_webhooks(&user.scope(), &tenant, &page).await?;
    Ok(WebhookList {
        store_id: store.id,
        store_name: store.name,
        webhooks: found.items.into_iter().map(crate::pages::webhook::server::webhook_row).collect(),
        next_cursor: found.next_cursor,
    })
}

/// The event types a store's webhook can choose from.
#[server(prefix = "/ui", endpoint = "event_types")]
pub async fn event_catalog() -> Result<Vec<EventTypeInfo>, AppError> {
    crate::session::signed_in().await?;
    let types = crate::session::services()?.event_types().await?;
    Ok(types
        .into_iter()
        .filter(|t| t.tenant_type != hookline_domain::EventTenantType::Application)
        .map(|t| EventTypeInfo { name: t.name, description: t.description, group: t.product_group })
        .collect())
}

/// `events` is `all` (the default) or `selected`, with the chosen names in `event_types`;
/// the delivery-control inputs as on the webhook page's form.
#[server(prefix = "/ui", endpoint = "create_webhook")]
pub async fn create_webhook(
    store: Option<String>,
    url: String,
    description: Option<String>,
    events: Option<String>,
    event_types: Option<Vec<String>>,
    control: Option<crate::pages::webhook::delivery_control::ControlForm>,
) -> Result<String, AppError> {
    use crate::session::{services, signed_in, viewed_store};
    let user = signed_in().await?;
    let control =
        crate::pages::webhook::delivery_control::control_from_form(control).map_err(crate::error::refused)?;
    let store = viewed_store(&user, store).await?;
    let event_types = match events.as_deref() {
        Some("selected") => Some(event_types.unwrap_or_default()),
        _ => None,
    };
    let created = services()?
        .create_webhook_with(
            &user.scope(),
            hookline_core::NewWebhook {
                tenant: hookline_core::Tenant::store(store.id.clone()),
                url,
                description: description.unwrap_or_default(),
                event_types,
            },
            control,
        )
        .await?;
    let back = if user.scope().is_admin() {
        crate::paging::href("/settings/api", &[("store", &store.id)])
    } else {
        "/settings/api".into()
    };
    leptos_axum::redirect(&back);
    Ok(created.webhook.id)
}

/// A page of the store's API keys, oldest first, and a key a plain form post just created.
#[server(prefix = "/ui", endpoint = "api_keys")]
pub async fn store_api_keys(store: Option<String>, cursor: Option<String>) -> Result<ApiKeys, AppError> {
    use crate::format::human_time;
    use crate::session::{services, session_token, signed_in, viewed_store};
    let user = signed_in().await?;
    let store = viewed_store(&user, store).await?;
    let page = hookline_core::PageRequest {
        limit: Some(crate::paging::PAGE_SIZE),
        cursor: cursor.filter(|c| !c.is_empty()),
    };
    let services = services()?;
    let created = match session_token() {
        Some(token) => services
            .take_session_flash(&token)
            .await?
            .and_then(|m| m.strip_prefix(FLASH_API_KEY).map(str::to_string)),
        None => None,
    };
    let found = services.list_api_keys(&store.scope(), &page).await?;
    let keys = found
        .items
        .into_iter()
        .map(|k| ApiKeyRow {
            id: k.id,
            name: k.name,
            prefix: k.key_prefix,
            created: human_time(k.created_at),
            last_used: k.last_used_at.map(human_time),
            revoked: k.revoked_at.map(human_time),
        })
        .collect();
    Ok(ApiKeys { keys, next_cursor: found.next_cursor, created })
}

/// Creates a key for the store and returns it: the only time it is shown.
#[server(prefix = "/ui", endpoint = "create_api_key")]
pub async fn create_api_key(store: Option<String>, name: String) -> Result<String, AppError> {
    use crate::session::{is_html_form_post, services, session_token, signed_in, viewed_store};
    let user = signed_in().await?;
    let store = viewed_store(&user, store).await?;
    let services = services()?;
    let created = services.create_api_key(&store.scope(), &name).await?;
    // Without the WebAssembly the browser is sent back to the page: the key waits there.
    if is_html_form_post()
        && let Some(token) = session_token()
    {
        services.set_session_flash(&token, &format!("{FLASH_API_KEY}{}", created.key)).await?;
    }
    Ok(created.key)
}

#[server(prefix = "/ui", endpoint = "revoke_api_key")]
pub async fn revoke_api_key(store: Option<String>, id: String) -> Result<(), AppError> {
    use crate::session::{services, signed_in, viewed_store};
    let user = signed_in().await?;
    let store = viewed_store(&user, store).await?;
    services()?.revoke_api_key(&store.scope(), &id).await?;
    Ok(())
}
