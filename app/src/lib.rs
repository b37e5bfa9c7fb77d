//! Hookline's dashboard: Settings > API for merchants, and the admin views. Components render
//! on the server and hydrate in the browser; every form is an `ActionForm` over a server
//! function, so it also works as a plain HTML form before the WebAssembly has loaded.
//!
//! `pages/<page>.rs` is a page's view and `pages/<page>/server.rs` its server functions, each
//! a thin call of a `hookline_core` service with the signed-in user's scope. `session.rs`
//! knows who is signed in (once per request) and which store is viewed, `error.rs` is the
//! server functions' one error, `paging.rs` the lists' page links, `components.rs` the
//! pieces pages share.

mod components;
mod error;
#[cfg(feature = "ssr")]
mod format;
mod pages;
mod paging;
mod session;

use leptos::nonce::use_nonce;
use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{Redirect, Route, Router, Routes};
use leptos_router::{SsrMode, path};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                // Behaviour that works before the WebAssembly has loaded (copy buttons, the
                // event-type picker); the page's Content-Security-Policy runs no inline handler.
                <script src="/ui.js" defer nonce=use_nonce()></script>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Every part of the page asks who is signed in; the request looks it up once.
    #[cfg(feature = "ssr")]
    session::provide_request_session();
    view! {
        <Stylesheet id="hookline" href="/pkg/hookline.css"/>
        <Title formatter=|page: String| if page.is_empty() { "Hookline".to_string() } else { format!("{page} · Hookline") }/>
        <Router>
            <Routes fallback=pages::NotFound>
                <Route path=path!("/") view=|| view! { <Redirect path="/settings/api"/> }/>
                <Route path=path!("/login") view=pages::LoginPage/>
                // Pages with data render whole before the first byte, so a not-found status
                // or a redirect to the login page reaches the browser as HTTP.
                <Route path=path!("/settings/api") view=pages::SettingsApiPage ssr=SsrMode::Async/>
                <Route path=path!("/settings/api/webhooks/:id") view=pages::WebhookPage ssr=SsrMode::Async/>
                <Route path=path!("/settings/api/events") view=pages::EventCatalogPage ssr=SsrMode::Async/>
                <Route path=path!("/events/:id") view=pages::EventPage ssr=SsrMode::Async/>
                <Route path=path!("/docs/events") view=pages::PublicEventCatalogPage ssr=SsrMode::Async/>
                <Route path=path!("/admin") view=pages::AdminOverviewPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/deliveries") view=pages::AdminDeliveriesPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/webhooks") view=pages::AdminWebhooksPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/stores") view=pages::AdminStoresPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/users") view=pages::AdminUsersPage ssr=SsrMode::Async/>
                <Route path=path!("/account") view=pages::AccountPage ssr=SsrMode::Async/>
                // The embeddable portal: the session is the token in the address (no cookie).
                <Route path=path!("/portal/:session/webhooks") view=pages::PortalWebhooksPage ssr=SsrMode::Async/>
                <Route path=path!("/portal/:session/webhooks/:id") view=pages::PortalWebhookPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}
