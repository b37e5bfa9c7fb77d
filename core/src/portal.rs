//! The embeddable portal: a partner app or platform asks for a one-time link for one tenant's
//! webhooks, the link opens a session of its own (no user account), and the session sees
//! exactly what the asking key would see of that tenant, never more. Also each tenant's list
//! of origins allowed to frame its portal.
//!
//! Who may ask is [`Services::reach`]'s rule, unchanged: an admin (any store or application),
//! a store's key (its store), an application's key (itself, or a store that installed it,
//! where the portal then sees only the application's own webhooks there).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::access::Reach;
use crate::entities::{portal_session, webhook};
use crate::error::{Error, Result};
use crate::{Scope, Services, Tenant, TenantType, new_id, now_ms};

/// How long a portal link may wait to be opened.
pub const PORTAL_LINK_TTL: Duration = Duration::from_secs(10 * 60);
/// How long the session an opened link starts lasts, at most (a revocation ends it sooner).
pub const PORTAL_SESSION_TTL: Duration = Duration::from_secs(3600);
/// Most origins one tenant may let frame its portal.
pub const MAX_PORTAL_ORIGINS: usize = 20;

/// A link just made: the token is in the URL and nowhere else (the database keeps its hash).
#[derive(Clone, Debug)]
pub struct PortalLink {
    pub id: String,
    pub token: String,
    pub expires_at: i64,
}

/// An open portal session: it shows `tenant`'s webhooks as `scope` sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalAccess {
    pub id: String,
    /// What the portal acts as: the tenant's own scope, or an application on a store that
    /// installed it.
    pub scope: Scope,
    pub tenant: Tenant,
    pub expires_at: i64,
}

/// Why a portal address answers no session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortalEnded {
    /// Never made, or removed long ago.
    Unknown,
    /// The link was opened before (it is one-time) or waited too long.
    LinkUsed,
    Expired,
    Revoked,
}

fn portal_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks one origin of an allow-list: `http` or `https`, a host, an optional port, and
/// nothing else (no path, query, credentials or wildcard). Answers it as browsers write
/// origins (lowercase host, no default port), which is what `frame-ancestors` compares.
pub fn parse_portal_origin(text: &str) -> Result<String> {
    let refuse = |why: &str| {
        Error::unprocessable(
            "origins",
            format!("{text:?} is not an origin ({why}); write e.g. https://app.example.com"),
        )
    };
    let text_trimmed = text.trim();
    if text_trimmed.is_empty() || text_trimmed.len() > 255 {
        return Err(refuse("it must have 1 to 255 characters"));
    }
    if text_trimmed.contains('*') {
        return Err(refuse("wildcards are not allowed"));
    }
    let Some((scheme, rest)) = text_trimmed.split_once("://") else {
        return Err(refuse("it needs a scheme"));
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return Err(refuse("the scheme must be http or https"));
    }
    if rest.contains(['/', '?', '#', '@', '\\']) || rest.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(refuse("an origin has no path, query, fragment or credentials"));
    }
    let url = url::Url::parse(text_trimmed).map_err(|e| refuse(&e.to_string()))?;
    if url.host().is_none() {
        return Err(refuse("it needs a host"));
    }
    Ok(url.origin().ascii_serialization())
}

impl Services {
    /// A one-time link for `tenant`'s webhooks, asked by `caller`: valid for
    /// [`PORTAL_LINK_TTL`]. 403 when the caller cannot manage that tenant's webhooks, 422
    /// when the tenant does not exist.
    pub async fn create_portal_link(&self, caller: &Scope, tenant: &Tenant) -> Result<PortalLink> {
        let reach = self.reach(caller, tenant).await?;
        if !self.tenant_exists(tenant).await? {
            return Err(Error::unprocessable("tenant_id", format!("No tenant {tenant} exists.")));
        }
        // The portal acts as the tenant itself, even when an admin asks: it is handed to the
        // tenant's people, never with an admin's reach.
        let scope = match reach {
            Reach::Installed(app) => Scope::Application(app),
            Reach::Owner => match tenant.kind {
                TenantType::Store => Scope::Store(tenant.id.clone()),
                TenantType::Application => Scope::Application(tenant.id.clone()),
            },
        };
        let now = now_ms();
        let store = self.store();
        store.prune_portal_sessions(now).await?;
        let token = portal_token();
        let row = portal_session::Model {
            id: new_id(),
            scope: scope.to_string(),
            tenant_type: tenant.kind,
            tenant_id: tenant.id.clone(),
            link_hash: token_hash(&token),
            link_expires_at: now + PORTAL_LINK_TTL.as_millis() as i64,
            session_hash: None,
            session_expires_at: None,
            opened_at: None,
            revoked_at: None,
            created_at: now,
        };
        let row = store.insert_portal_link(row).await?;
        Ok(PortalLink { id: row.id, token, expires_at: row.link_expires_at })
    }

    /// Opens a one-time link: answers the new session's token (valid for
    /// [`PORTAL_SESSION_TTL`]), or why the link opens nothing.
    pub async fn open_portal_link(
        &self,
        link_token: &str,
    ) -> Result<std::result::Result<String, PortalEnded>> {
        let now = now_ms();
        let session_token = portal_token();
        let link_hash = token_hash(link_token);
        let opened = self
            .store()
            .open_portal_link(
                &link_hash,
                &token_hash(&session_token),
                now,
                now + PORTAL_SESSION_TTL.as_millis() as i64,
            )
            .await?;
        if opened.is_some() {
            return Ok(Ok(session_token));
        }
        let why = match self.store().portal_session_by_link(&link_hash).await? {
            None => PortalEnded::Unknown,
            Some(row) if row.revoked_at.is_some() => PortalEnded::Revoked,
            Some(row) if row.opened_at.is_some() => PortalEnded::LinkUsed,
            Some(_) => PortalEnded::Expired,
        };
        Ok(Err(why))
    }

    /// The open session with this token, or why there is none. Asked on every portal
    /// request, so a revocation takes effect at once.
    pub async fn portal_access(
        &self,
        session_token: &str,
    ) -> Result<std::result::Result<PortalAccess, PortalEnded>> {
        let Some(row) = self.store().portal_session_by_hash(&token_hash(session_token)).await? else {
            return Ok(Err(PortalEnded::Unknown));
        };
        if row.revoked_at.is_some() {
            return Ok(Err(PortalEnded::Revoked));
        }
        let expires_at = row.session_expires_at.unwrap_or(0);
        if expires_at <= now_ms() {
            return Ok(Err(PortalEnded::Expired));
        }
        let Some(scope) = Scope::parse(&row.scope) else {
            return Ok(Err(PortalEnded::Unknown));
        };
        Ok(Ok(PortalAccess {
            id: row.id,
            scope,
            tenant: Tenant { kind: row.tenant_type, id: row.tenant_id },
            expires_at,
        }))
    }

    /// Ends a portal session (or an unopened link) at once. The caller must be an admin or
    /// act as the portal does; any other caller is told there is no such session.
    pub async fn revoke_portal_session(&self, caller: &Scope, id: &str) -> Result<()> {
        let store = self.store();
        match store.portal_session_by_id(id).await? {
            Some(row) if caller.is_admin() || caller.to_string() == row.scope => {
                store.revoke_portal_session(id, now_ms()).await
            }
            _ => Err(Error::NotFound("portal session")),
        }
    }

    /// One webhook as the portal may show it: seen by the portal's scope, and of the
    /// portal's tenant (an application's scope also reaches its other stores, which this
    /// portal is not about).
    pub async fn portal_webhook(&self, access: &PortalAccess, id: &str) -> Result<webhook::Model> {
        let found = self.webhook(&access.scope, id).await?;
        if found.tenant() != access.tenant {
            return Err(Error::NotFound("webhook"));
        }
        Ok(found)
    }

    /// Which tenants' allow-lists `caller` may read and write: its own (an admin's, any).
    fn may_set_origins(caller: &Scope, tenant: &Tenant) -> Result<()> {
        if caller.allows(tenant) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("This key cannot change the portal origins of {tenant}.")))
        }
    }

    /// The origins allowed to frame `tenant`'s portal.
    pub async fn portal_origins(&self, caller: &Scope, tenant: &Tenant) -> Result<Vec<String>> {
        Self::may_set_origins(caller, tenant)?;
        if !self.tenant_exists(tenant).await? {
            return Err(Error::NotFound(tenant_word(tenant)));
        }
        self.store().portal_origins(tenant).await
    }

    /// Replaces the origins allowed to frame `tenant`'s portal; answers the list as kept
    /// (each origin as browsers write it, sorted, without repeats). All or nothing: one
    /// refused origin changes nothing.
    pub async fn set_portal_origins(
        &self,
        caller: &Scope,
        tenant: &Tenant,
        origins: &[String],
    ) -> Result<Vec<String>> {
        Self::may_set_origins(caller, tenant)?;
        if !self.tenant_exists(tenant).await? {
            return Err(Error::NotFound(tenant_word(tenant)));
        }
        if origins.len() > MAX_PORTAL_ORIGINS {
            return Err(Error::unprocessable(
                "origins",
                format!("A tenant may list at most {MAX_PORTAL_ORIGINS} origins."),
            ));
        }
        let mut kept = origins.iter().map(|o| parse_portal_origin(o)).collect::<Result<Vec<_>>>()?;
        kept.sort();
        kept.dedup();
        self.store().replace_portal_origins(tenant, &kept, now_ms()).await?;
        Ok(kept)
    }

    /// The origins that may frame the portal page at a session's (or a link's) address,
    /// whatever the session's state: an ended session's page must still show, framed, that
    /// it ended. None for a token that names nothing. The list is the embedder's, whose
    /// scope the portal acts with: the store for a store's portal, the application for an
    /// application's (also on a store that installed it).
    pub async fn portal_frame_origins(&self, token: &str, is_link: bool) -> Result<Vec<String>> {
        let store = self.store();
        let hash = token_hash(token);
        let row = if is_link {
            store.portal_session_by_link(&hash).await?
        } else {
            store.portal_session_by_hash(&hash).await?
        };
        let Some(scope) = row.and_then(|r| Scope::parse(&r.scope)) else {
            return Ok(Vec::new());
        };
        match scope.own_tenant() {
            Some(embedder) => store.portal_origins(&embedder).await,
            None => Ok(Vec::new()),
        }
    }
}

fn tenant_word(tenant: &Tenant) -> &'static str {
    match tenant.kind {
        TenantType::Store => "store",
        TenantType::Application => "application",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(parse_portal_origin("https://App.Example.com").unwrap(), "https://app.example.com");
        assert_eq!(parse_portal_origin("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(parse_portal_origin("https://a.example:443").unwrap(), "https://a.example");
        for bad in [
            "",
            "app.example.com",
            "ftp://a.example",
            "https://a.example/",
            "https://a.example/path",
            "https://*.example.com",
            "https://a.example?x=1",
            "https://user@a.example",
            "https://a.example#x",
            "https://a.example; script-src *",
            "'self'",
            "https://",
        ] {
            let e = parse_portal_origin(bad).expect_err(bad);
            assert_eq!(e.field(), Some("origins"), "{bad}");
        }
    }
}
