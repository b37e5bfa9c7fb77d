//! The dashboard: Leptos pages rendered on the server and hydrated in the browser, with the
//! services handed to every server function through the Leptos context.

use std::sync::LazyLock;

use axum::Router;
use hookline_core::Services;
use leptos::config::LeptosOptions;
use leptos::nonce::Nonce;
use leptos::prelude::{provide_context, use_context};
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};

use crate::browser::ScriptNonce;
use crate::config::Config;

/// The dashboard's routes, listed once per process. Listing them renders the app with a
/// process-wide switch on that parks, for good, every resource first polled meanwhile
/// (leptos_server 0.8's `SuppressResourceLoad`): a second application started in a process
/// that already serves pages, as the tests do, would leave a page waiting on its data until
/// the request's time limit. The routes are fixed at compile time, so once is enough.
static ROUTES: LazyLock<Vec<AxumRouteListing>> = LazyLock::new(|| generate_route_list(app::App));

pub fn router(services: Services, cfg: &Config) -> Router {
    let options = LeptosOptions::builder()
        .output_name("hookline")
        .site_root(cfg.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(cfg.listen)
        .build();
    let routes = ROUTES.clone();
    let portal = services.clone();
    let context = move || {
        provide_context(services.clone());
        // The page's scripts carry the nonce its Content-Security-Policy allows (browser.rs),
        // in place of the one Leptos made up.
        let nonce =
            use_context::<http::request::Parts>().and_then(|p| p.extensions.get::<ScriptNonce>().cloned());
        if let Some(ScriptNonce(nonce)) = nonce {
            provide_context(Nonce::from_value(nonce));
        }
    };
    Router::new()
        .leptos_routes_with_context(&options, routes, context.clone(), {
            let options = options.clone();
            move || app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context(context, app::shell))
        .with_state(options)
        .merge(crate::portal::router(portal.clone()))
        .layer(axum::middleware::from_fn_with_state(portal, crate::portal::frame_ancestors))
        // Pages, CSS, JavaScript and the WebAssembly, brotli or gzip as the browser accepts:
        // the release WebAssembly is a third of its size compressed.
        .layer(tower_http::compression::CompressionLayer::new().br(true).gzip(true))
        // Asset names carry no hash and pages carry a user's data: every use revalidates
        // (a 304 when unchanged), and no shared cache keeps a copy.
        .layer(tower_http::set_header::SetResponseHeaderLayer::if_not_present(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("private, no-cache"),
        ))
}
