//! What the webhook page's signature check needs from the database: every signing secret the
//! webhook has had, each with when a rotation replaced it, and the body Hookline sent with a
//! `webhook-id`. The check itself is `hookline_domain::signature::diagnose`, which the
//! dashboard runs in the browser.

use hookline_domain::include_fields::IncludeFields;
use hookline_domain::signature::KnownSecret;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::entities::webhook_secret;
use crate::error::Result;
use crate::{EventId, Scope, Services, WebhookId, now_ms};

/// The secrets and the original body a signature check compares a received request with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureMaterial {
    /// The current secret first, then the rotated-out ones, newest first.
    pub secrets: Vec<KnownSecret>,
    /// The payload of the webhook's delivery of the event named by `webhook-id`, if there is one.
    pub original_body: Option<String>,
    /// The server's clock, in seconds: the browser has none the check could trust.
    pub now_secs: i64,
}

impl Services {
    /// The webhook's secrets (whoever may reveal its secret may have them) and, given the
    /// request's `webhook-id`, the body its delivery of that event carried.
    pub async fn signature_material(
        &self,
        scope: &Scope,
        webhook_id: &WebhookId,
        event_id: Option<&EventId>,
    ) -> Result<SignatureMaterial> {
        let found = self.webhook(scope, webhook_id.as_str()).await?;
        let rows = webhook_secret::Entity::find()
            .filter(webhook_secret::Column::WebhookId.eq(&found.id))
            .order_by_desc(webhook_secret::Column::CreatedAt)
            .all(&self.db)
            .await?;
        // A rotation makes the new secret at the moment the old one stops being current: each
        // secret was rotated out when the next newer one was made. Unreadable ones are skipped.
        let mut secrets = Vec::with_capacity(rows.len());
        let mut newer: Option<i64> = None;
        for row in &rows {
            let rotated_out_at = if row.expires_at.is_some() { newer.or(row.expires_at) } else { None };
            newer = Some(row.created_at);
            if let Ok(secret) = self.settings.keyring.open(&row.secret, &row.webhook_id) {
                secrets.push(KnownSecret { secret, rotated_out_at });
            }
        }
        secrets.sort_by_key(|k| k.rotated_out_at.is_some());
        let original_body = match event_id.filter(|id| !id.as_str().is_empty()) {
            Some(event_id) => {
                // A webhook with include_fields was sent (and signed) the projection.
                self.store().delivered_payload(event_id, webhook_id).await?.map(|payload| {
                    match IncludeFields::from_stored(found.include_fields.as_deref()) {
                        Some(fields) => fields.project(&payload),
                        None => payload,
                    }
                })
            }
            None => None,
        };
        Ok(SignatureMaterial { secrets, original_body, now_secs: now_ms() / 1000 })
    }
}
