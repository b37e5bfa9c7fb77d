//! Who is signed in, and what the request says about the browser. The signed-in user is
//! looked up once per request and kept in the request's context: a page asks from the frame
//! and from each of its sections, and each asking would otherwise cost a query of sessions
//! and one of users. Also the store a settings page is about, and the admin check.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The signed-in user, as the top bar shows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Viewer {
    pub email: String,
    pub is_admin: bool,
    pub store_id: Option<String>,
}

/// Who is signed in (any page's frame asks).
#[server(prefix = "/ui", endpoint = "viewer")]
pub async fn signed_in_viewer() -> Result<Viewer, AppError> {
    let user = signed_in().await?;
    Ok(Viewer {
        email: user.email.clone(),
        is_admin: user.scope().is_admin(),
        store_id: user.store_id.clone(),
    })
}

#[cfg(feature = "ssr")]
pub(crate) use ssr::*;

#[cfg(feature = "ssr")]
mod ssr {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hookline_core::{PageRequest, Scope, Services, SessionUser};
    use leptos::prelude::*;

    use crate::error::{AppError, refused};

    pub const SESSION_COOKIE: &str = "hookline_session";

    /// The request's signed-in user, once looked up. The page's shell provides one per page
    /// render ([`provide_request_session`]); a server-function call gets one on its first
    /// asking, in the request's own context.
    #[derive(Clone, Default)]
    pub struct RequestSession(Arc<Slot>);

    #[derive(Default)]
    struct Slot {
        /// `None` inside: nobody is signed in. A failed lookup is not kept, so the next
        /// asking tries again.
        user: tokio::sync::OnceCell<Option<SessionUser>>,
        lookups: AtomicUsize,
    }

    impl RequestSession {
        async fn user(&self) -> Result<Option<SessionUser>, AppError> {
            let found = self
                .0
                .user
                .get_or_try_init(|| async {
                    self.0.lookups.fetch_add(1, Ordering::Relaxed);
                    match session_token() {
                        Some(token) => Ok::<_, AppError>(services()?.session_user(&token).await?),
                        None => Ok(None),
                    }
                })
                .await?;
            Ok(found.clone())
        }

        /// How many times this request looked the session up (once, whoever asked).
        #[cfg(test)]
        pub fn lookups(&self) -> usize {
            self.0.lookups.load(Ordering::Relaxed)
        }
    }

    /// Gives the request being rendered its [`RequestSession`], for every part of the page.
    pub fn provide_request_session() {
        if use_context::<RequestSession>().is_none() {
            provide_context(RequestSession::default());
        }
    }

    fn request_session() -> RequestSession {
        use_context::<RequestSession>().unwrap_or_else(|| {
            let session = RequestSession::default();
            provide_context(session.clone());
            session
        })
    }

    /// The signed-in user; nobody signed in is answered 401.
    pub async fn signed_in() -> Result<SessionUser, AppError> {
        request_session().user().await?.ok_or_else(|| refused(AppError::Unauthenticated))
    }

    /// The signed-in admin; anyone else gets the not-found answer of a page that is not theirs.
    pub async fn require_admin() -> Result<SessionUser, AppError> {
        let user = signed_in().await?;
        if !user.scope().is_admin() {
            return Err(refused(AppError::NotFound));
        }
        Ok(user)
    }

    /// The store a settings page is about.
    pub struct ViewedStore {
        pub id: String,
        pub name: String,
    }

    impl ViewedStore {
        pub fn scope(&self) -> Scope {
            Scope::Store(self.id.clone())
        }
    }

    /// A merchant's own store, or the one an admin picked (the first store when none is
    /// picked).
    pub async fn viewed_store(user: &SessionUser, picked: Option<String>) -> Result<ViewedStore, AppError> {
        let services = services()?;
        let wanted = match user.scope() {
            Scope::Store(id) => Some(id),
            _ => picked.filter(|s| !s.is_empty()),
        };
        let store = match wanted {
            Some(id) => services.live_store(&id).await?,
            None => {
                let first = PageRequest { limit: Some(1), cursor: None };
                services.stores_page(&first).await?.items.into_iter().next()
            }
        };
        match store {
            Some(s) => Ok(ViewedStore { id: s.id, name: s.name }),
            // Shown in place on the page, which keeps its own status.
            None if user.scope().is_admin() => Err(AppError::Invalid {
                field: None,
                message: "There are no stores yet. Create one with `hookline create-store`.".into(),
            }),
            None => Err(AppError::NotFound),
        }
    }

    pub fn services() -> Result<Services, AppError> {
        use_context::<Services>().ok_or_else(|| AppError::Server("the server is not set up".into()))
    }

    fn request_parts() -> Option<http::request::Parts> {
        use_context::<http::request::Parts>()
    }

    pub fn session_token() -> Option<String> {
        let parts = request_parts()?;
        parts
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == SESSION_COOKIE)
            .map(|(_, value)| value.to_string())
    }

    /// A plain HTML form post (the page's WebAssembly has not loaded): Leptos answers it
    /// with a redirect back to the page, so what the call returns is not seen.
    pub fn is_html_form_post() -> bool {
        request_parts().is_some_and(|p| {
            p.headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/html"))
        })
    }

    /// Whether the browser reached us over https (directly or through a proxy).
    pub fn is_https() -> bool {
        request_parts().is_some_and(|p| {
            p.uri.scheme_str() == Some("https")
                || p.headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https")
        })
    }

    /// The client's address, as the server worked it out (behind a trusted proxy, the
    /// address it forwards), else as the connection gives it.
    pub fn client_address() -> Option<std::net::IpAddr> {
        let parts = request_parts()?;
        parts.extensions.get::<hookline_core::ClientAddress>().map(|c| c.0).or_else(|| {
            parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip())
        })
    }

    pub fn set_response_header(name: http::HeaderName, value: &str) {
        if let (Some(res), Ok(value)) =
            (use_context::<leptos_axum::ResponseOptions>(), http::HeaderValue::from_str(value))
        {
            res.append_header(name, value);
        }
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use hookline_core::{Services, Settings};
    use leptos::prelude::*;
    use leptos::reactive::computed::ScopedFuture;

    use super::*;
    use crate::pages::settings::event_catalog;

    async fn services() -> (Services, std::path::PathBuf) {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let path =
            std::env::temp_dir().join(format!("hookline-app-{}-{}.db", std::process::id(), nanos.as_nanos()));
        let db = hookline_core::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .expect("a database");
        hookline_core::migrate(&db).await.expect("migrated");
        (Services::new(db, Settings::default()), path)
    }

    /// The request as leptos_axum gives it to a page: its parts, the services, and the
    /// session slot the shell provides.
    fn request(services: &Services, cookie: &str) -> (Owner, RequestSession) {
        let (parts, ()) = http::Request::builder()
            .header(http::header::COOKIE, cookie)
            .body(())
            .expect("a request")
            .into_parts();
        let owner = Owner::new();
        let session = owner.with(|| {
            provide_context(parts);
            provide_context(services.clone());
            provide_request_session();
            expect_context::<RequestSession>()
        });
        (owner, session)
    }

    /// Runs `fut` as one section of the page does: in an owner of its own under the page's.
    fn section<F: std::future::Future>(page: &Owner, fut: impl FnOnce() -> F) -> ScopedFuture<F> {
        page.with(|| Owner::new().with(|| ScopedFuture::new(fut())))
    }

    #[tokio::test]
    async fn a_page_looks_the_session_up_once_however_many_sections_ask() {
        let (services, path) = services().await;
        services.create_store("store-a", "Store A").await.expect("a store");
        let user = services
            .create_merchant("merchant@a.test", "correct horse battery", "store-a")
            .await
            .expect("a user");
        let token = services.create_session(&user.id).await.expect("a session");
        let (page, session) = request(&services, &format!("{SESSION_COOKIE}={token}"));

        // Settings › API: the frame, the API keys, the webhooks and the new-webhook form.
        let (viewer, keys, webhooks, catalog) = tokio::join!(
            section(&page, signed_in_viewer),
            section(&page, || crate::pages::settings::server::store_api_keys(None, None)),
            section(&page, || crate::pages::settings::server::store_webhooks(None, None)),
            section(&page, event_catalog),
        );
        assert_eq!(viewer.expect("signed in").email, "merchant@a.test");
        assert!(keys.is_ok() && webhooks.is_ok() && catalog.is_ok());
        assert_eq!(session.lookups(), 1);

        // Nobody signed in: still one lookup, and every section hears 401.
        let (page, session) = request(&services, "hookline_session=forged");
        let (viewer, keys) = tokio::join!(
            section(&page, signed_in_viewer),
            section(&page, || crate::pages::settings::server::store_api_keys(None, None)),
        );
        assert_eq!(viewer, Err(AppError::Unauthenticated));
        assert_eq!(keys.map(|k| k.keys.len()), Err(AppError::Unauthenticated));
        assert_eq!(session.lookups(), 1);
        let _ = std::fs::remove_file(path);
    }
}
