//! The signature check's server functions: the webhook's secrets and original body for the
//! check in the browser, and the whole check for a plain form post before the WebAssembly has
//! loaded. Both reach only what revealing the webhook's secret reaches.

use hookline_domain::signature::{KnownSecret, Verdict};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// What the browser's check compares a pasted request with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Material {
    /// The current secret first, then the rotated-out ones.
    pub secrets: Vec<KnownSecret>,
    /// The body Hookline sent with the pasted `webhook-id`, if it is this webhook's delivery.
    pub original_body: Option<String>,
    /// The server's clock, in seconds since the epoch.
    pub now_secs: i64,
}

#[cfg(feature = "ssr")]
async fn load(id: &str, event_id: Option<&str>) -> Result<Material, AppError> {
    use hookline_core::{EventId, WebhookId};
    let user = crate::session::signed_in().await?;
    // A pasted `webhook-id` may come with the spaces around it.
    let event_id = event_id.map(str::trim).filter(|id| !id.is_empty()).map(EventId::from);
    let found = crate::session::services()?
        .signature_material(&user.scope(), &WebhookId::from(id), event_id.as_ref())
        .await?;
    Ok(Material { secrets: found.secrets, original_body: found.original_body, now_secs: found.now_secs })
}

/// The webhook's secrets, and the body of its delivery of `event_id` (the pasted `webhook-id`).
#[server(prefix = "/ui", endpoint = "signature_material")]
pub async fn signature_material(id: String, event_id: Option<String>) -> Result<Material, AppError> {
    load(&id, event_id.as_deref()).await
}

/// Checks a pasted request on the server: the plain form's path. A browser posting the form
/// is sent back to the webhook page, which shows the verdict.
#[server(prefix = "/ui", endpoint = "check_signature")]
pub async fn check_signature(
    id: String,
    headers: String,
    body: String,
    secret: Option<String>,
) -> Result<Verdict, AppError> {
    use hookline_domain::signature::{ReceivedRequest, diagnose};
    // A form posts a textarea with CRLF line ends; the browser's own check reads it with LF.
    let request = ReceivedRequest::parse(&headers, &body.replace("\r\n", "\n"));
    let material = load(&id, request.webhook_id()).await?;
    let verdict = diagnose(
        &request,
        &material.secrets,
        secret.as_deref(),
        material.original_body.as_deref(),
        material.now_secs,
    );
    if crate::session::is_html_form_post() {
        // `id` named a webhook of this user (the lookup above): no address of anyone else's.
        let page = format!("/settings/api/webhooks/{id}");
        let back = crate::paging::href(&page, &[("signature_check", &verdict.encode())]);
        leptos_axum::redirect(&format!("{back}#signature-check"));
    }
    Ok(verdict)
}
