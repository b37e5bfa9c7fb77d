//! The portal's server functions. Each takes the portal session's token (the secret in the
//! page's address) and derives everything it may reach from it: one tenant's webhooks, as
//! the portal's scope sees them. None of them reads the sign-in cookie, so a dashboard user's
//! session in the same browser adds nothing.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::pages::settings::EventTypeInfo;
use crate::pages::webhook::WebhookRow;
use crate::pages::webhook::delivery_control::ControlForm;
#[cfg(feature = "ssr")]
use crate::pages::webhook::delivery_control::control_from_form;
use crate::pages::webhook::server::{AttemptOutcome, DeliveryLog};

/// What the portal's pages show about the session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PortalState {
    /// Whose webhooks: "store shop-1", or "store shop-1 (Reviews app)".
    pub title: String,
    /// When the session ends, as people read it.
    pub ends: String,
    /// Set when the session has ended: what the page says instead.
    pub ended: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PortalWebhookList {
    pub webhooks: Vec<WebhookRow>,
    pub next_cursor: Option<String>,
}

/// What an ended session's pages say.
pub const SESSION_ENDED: &str =
    "This session has ended. Open the webhooks page again from the app that brought you here.";

#[cfg(feature = "ssr")]
mod ssr {
    use hookline_core::{PortalAccess, PortalEnded, Services};

    use leptos::prelude::*;

    use crate::error::AppError;

    pub fn services() -> Result<Services, AppError> {
        crate::session::services()
    }

    /// The open session named by the token, or 410 Gone (its pages then say it ended; the
    /// page's own status is the same whichever of its parts answers first).
    pub async fn access(session: &str) -> Result<(Services, PortalAccess), AppError> {
        let services = services()?;
        match services.portal_access(session).await? {
            Ok(access) => Ok((services, access)),
            Err(_) => {
                ended_status();
                Err(AppError::Unauthenticated)
            }
        }
    }

    /// 410 Gone on the answer, but for a plain form post (Leptos answers it with a redirect).
    pub fn ended_status() {
        if let Some(res) = use_context::<leptos_axum::ResponseOptions>()
            && !crate::session::is_html_form_post()
        {
            res.set_status(http::StatusCode::GONE);
        }
    }

    /// Why a session is not open, in words.
    pub fn ended_text(why: PortalEnded) -> String {
        match why {
            PortalEnded::Revoked | PortalEnded::Expired | PortalEnded::LinkUsed => {
                super::SESSION_ENDED.into()
            }
            PortalEnded::Unknown => "There is no portal session at this address.".into(),
        }
    }

    /// `events` is `all` or `selected` with the chosen names, as on the dashboard's forms.
    pub fn chosen(events: Option<String>, event_types: Option<Vec<String>>) -> Option<Vec<String>> {
        match events.as_deref() {
            Some("selected") => Some(event_types.unwrap_or_default()),
            _ => None,
        }
    }

    pub fn list_href(session: &str) -> String {
        format!("/portal/{session}/webhooks")
    }
}

/// The session: whose webhooks, until when, or that it ended (answered, not refused, so the
/// page can say so).
#[server(prefix = "/ui", endpoint = "portal_info")]
pub async fn portal_info(session: String) -> Result<PortalState, AppError> {
    let services = ssr::services()?;
    match services.portal_access(&session).await? {
        Ok(access) => {
            let title = match (&access.scope, access.tenant.kind) {
                (hookline_core::Scope::Application(app), hookline_core::TenantType::Store) => {
                    format!("Store {} · {app}", access.tenant.id)
                }
                (_, kind) => format!(
                    "{} {}",
                    if kind == hookline_core::TenantType::Store { "Store" } else { "Application" },
                    access.tenant.id
                ),
            };
            Ok(PortalState { title, ends: crate::format::human_time(access.expires_at), ended: None })
        }
        Err(why) => {
            ssr::ended_status();
            Ok(PortalState { title: String::new(), ends: String::new(), ended: Some(ssr::ended_text(why)) })
        }
    }
}

/// A page of the portal tenant's webhooks, oldest first.
#[server(prefix = "/ui", endpoint = "portal_webhooks")]
pub async fn portal_webhooks(session: String, cursor: Option<String>) -> Result<PortalWebhookList, AppError> {
    let (services, access) = ssr::access(&session).await?;
    let page = hookline_core::PageRequest {
        limit: Some(crate::paging::PAGE_SIZE),
        cursor: cursor.filter(|c| !c.is_empty()),
    };
    let found = services.list_webhooks(&access.scope, &access.tenant, &page).await?;
    Ok(PortalWebhookList {
        webhooks: found.items.into_iter().map(crate::pages::webhook::server::webhook_row).collect(),
        next_cursor: found.next_cursor,
    })
}

/// The event types the portal tenant's webhooks can choose from.
#[server(prefix = "/ui", endpoint = "portal_event_types")]
pub async fn portal_event_types(session: String) -> Result<Vec<EventTypeInfo>, AppError> {
    let (services, access) = ssr::access(&session).await?;
    Ok(services
        .event_types()
        .await?
        .into_iter()
        .filter(|t| t.tenant_type.admits(access.tenant.kind))
        .map(|t| EventTypeInfo { name: t.name, description: t.description, group: t.product_group })
        .collect())
}

#[server(prefix = "/ui", endpoint = "portal_create_webhook")]
pub async fn portal_create_webhook(
    session: String,
    url: String,
    description: Option<String>,
    events: Option<String>,
    event_types: Option<Vec<String>>,
    control: Option<ControlForm>,
) -> Result<String, AppError> {
    let (services, access) = ssr::access(&session).await?;
    let control = control_from_form(control).map_err(crate::error::refused)?;
    let created = services
        .create_webhook_with(
            &access.scope,
            hookline_core::NewWebhook {
                tenant: access.tenant.clone(),
                url,
                description: description.unwrap_or_default(),
                event_types: ssr::chosen(events, event_types),
            },
            control,
        )
        .await?;
    leptos_axum::redirect(&ssr::list_href(&session));
    Ok(created.webhook.id)
}

#[server(prefix = "/ui", endpoint = "portal_webhook")]
pub async fn portal_webhook(session: String, id: String) -> Result<WebhookRow, AppError> {
    let (services, access) = ssr::access(&session).await?;
    let found = services.portal_webhook(&access, &id).await;
    if matches!(found, Err(hookline_core::Error::NotFound(_)))
        && let Some(res) = use_context::<leptos_axum::ResponseOptions>()
    {
        res.set_status(http::StatusCode::NOT_FOUND);
    }
    Ok(crate::pages::webhook::server::webhook_row(found?))
}

#[server(prefix = "/ui", endpoint = "portal_update_webhook")]
pub async fn portal_update_webhook(
    session: String,
    id: String,
    url: String,
    description: Option<String>,
    events: Option<String>,
    event_types: Option<Vec<String>>,
    control: Option<ControlForm>,
) -> Result<WebhookRow, AppError> {
    let (services, access) = ssr::access(&session).await?;
    services.portal_webhook(&access, &id).await?;
    let control = control_from_form(control).map_err(crate::error::refused)?;
    let patch = hookline_core::WebhookPatch {
        url: Some(url),
        description: Some(description.unwrap_or_default()),
        event_types: Some(ssr::chosen(events, event_types)),
    };
    Ok(crate::pages::webhook::server::webhook_row(
        services.update_webhook_with(&access.scope, &id, patch, control).await?,
    ))
}

/// What the conditions bench may read for the webhook `id` of the session's tenant (the
/// bench is the dashboard's, [`crate::pages::webhook::conditions_bench`]).
#[cfg(feature = "ssr")]
pub(crate) struct PortalBench {
    pub services: hookline_core::Services,
    pub scope: hookline_core::Scope,
    /// The event types the webhook can receive: the only ones the bench reads (for an
    /// application's webhook on a store, its product lines' only, so the bench never reads
    /// the store's other events).
    pub types: Vec<String>,
}

/// The session's bench of webhook `id`: 410 for an ended session, 404 for a webhook it does
/// not reach.
#[cfg(feature = "ssr")]
pub(crate) async fn portal_bench(session: &str, id: &str) -> Result<PortalBench, AppError> {
    let (services, access) = ssr::access(session).await?;
    services.portal_webhook(&access, id).await?;
    let types = services.receivable_event_types(&access.scope, id).await?;
    Ok(PortalBench { services, scope: access.scope, types })
}

/// The event types the conditions bench offers for the webhook.
#[server(prefix = "/ui", endpoint = "portal_bench_types")]
pub async fn portal_bench_types(session: String, id: String) -> Result<Vec<String>, AppError> {
    Ok(portal_bench(&session, &id).await?.types)
}

/// Turns deliveries to the webhook on or off; answers whether they are on now.
#[server(prefix = "/ui", endpoint = "portal_switch_webhook")]
pub async fn portal_switch_webhook(session: String, id: String, enabled: bool) -> Result<bool, AppError> {
    let (services, access) = ssr::access(&session).await?;
    services.portal_webhook(&access, &id).await?;
    Ok(services.set_webhook_enabled(&access.scope, &id, enabled).await?.enabled)
}

#[server(prefix = "/ui", endpoint = "portal_delete_webhook")]
pub async fn portal_delete_webhook(session: String, id: String) -> Result<(), AppError> {
    let (services, access) = ssr::access(&session).await?;
    services.portal_webhook(&access, &id).await?;
    services.delete_webhook(&access.scope, &id).await?;
    leptos_axum::redirect(&ssr::list_href(&session));
    Ok(())
}

#[server(prefix = "/ui", endpoint = "portal_reveal_secret")]
pub async fn portal_reveal_secret(session: String, id: String) -> Result<String, AppError> {
    let (services, access) = ssr::access(&session).await?;
    services.portal_webhook(&access, &id).await?;
    Ok(services.current_secret(&access.scope, &id).await?)
}

#[server(prefix = "/ui", endpoint = "portal_rotate_secret")]
pub async fn portal_rotate_secret(session: String, id: String) -> Result<String, AppError> {
    let (services, access) = ssr::access(&session).await?;
    services.portal_webhook(&access, &id).await?;
    services.rotate_secret(&access.scope, &id).await?;
    let hours = services.settings.secret_grace.as_secs() / 3600;
    Ok(format!("New secret created. The previous one keeps signing deliveries for {hours} hours."))
}

#[server(prefix = "/ui", endpoint = "portal_send_test")]
pub async fn portal_send_test(session: String, id: String) -> Result<AttemptOutcome, AppError> {
    let (services, access) = ssr::access(&session).await?;
    services.portal_webhook(&access, &id).await?;
    let result = services.send_test_event(&access.scope, &id, None).await?;
    Ok(crate::pages::webhook::server::outcome(result))
}

/// The webhook's delivery log, newest first, 25 a page.
#[server(prefix = "/ui", endpoint = "portal_deliveries")]
pub async fn portal_deliveries(
    session: String,
    webhook_id: String,
    cursor: Option<String>,
) -> Result<DeliveryLog, AppError> {
    let (services, access) = ssr::access(&session).await?;
    services.portal_webhook(&access, &webhook_id).await?;
    let page = hookline_core::PageRequest { limit: Some(25), cursor: cursor.filter(|c| !c.is_empty()) };
    let found = services.list_deliveries(&access.scope, &webhook_id, &page).await?;
    Ok(DeliveryLog {
        items: found.items.into_iter().map(crate::pages::webhook::server::delivery_row).collect(),
        next_cursor: found.next_cursor,
    })
}
