use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <main class="page narrow">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address, or it belongs to another store."</p>
            <p><A href="/settings/api">"Back to Settings › API"</A></p>
        </main>
    }
}
