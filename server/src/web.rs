//! The dashboard: Leptos pages rendered on the server and hydrated in the browser, with the
//! services handed to every server function through the Leptos context.

use axum::Router;
use hookline_core::Services;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};

use crate::config::Config;

pub fn router(services: Services, cfg: &Config) -> Router {
    let options = LeptosOptions::builder()
        .output_name("hookline")
        .site_root(cfg.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(cfg.listen)
        .build();
    let routes = generate_route_list(app::App);
    let context = move || provide_context(services.clone());
    Router::new()
        .leptos_routes_with_context(&options, routes, context, {
            let options = options.clone();
            move || app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler(app::shell))
        .with_state(options)
}
