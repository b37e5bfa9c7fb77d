//! Pieces the pages share: the frame with its top bar, the on/off switch, the health badge.

use hookline_domain::{Health, WebhookUrl};
use leptos::prelude::*;
use leptos_router::components::{A, Redirect};

use crate::error::AppError;
use crate::pages::login::SignOut;
use crate::pages::webhook::SwitchWebhook;
use crate::session::{Viewer, signed_in_viewer};

/// The page frame: the top bar with the signed-in user, and the page. Anyone not signed in
/// is sent to the login page. The page's own content is created outside the user check, so
/// its resources belong to a stable owner.
#[component]
pub fn Frame(children: Children) -> impl IntoView {
    let me = Resource::new(|| (), |_| signed_in_viewer());
    let logout = ServerAction::<SignOut>::new();
    view! {
        <header class="topbar">
            <A href="/settings/api" attr:class="brand">"Hookline"</A>
            <nav aria-label="Main">
                <A href="/settings/api">"Settings › API"</A>
            </nav>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match me.await {
                        Ok(viewer) => view! { <WhoAmI viewer logout/> }.into_any(),
                        Err(AppError::Unauthenticated) => view! { <Redirect path="/login"/> }.into_any(),
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    }
                })}
            </Suspense>
        </header>
        <main class="page">{children()}</main>
    }
}

#[component]
fn WhoAmI(viewer: Viewer, logout: ServerAction<SignOut>) -> impl IntoView {
    view! {
        {viewer.is_admin.then(|| view! {
            <nav class="admin-nav" aria-label="Admin">
                <A href="/admin" exact=true>"Overview"</A>
                <A href="/admin/deliveries">"Deliveries"</A>
                <A href="/admin/webhooks">"Turned-off webhooks"</A>
                <A href="/admin/stores">"Stores"</A>
                <A href="/admin/users">"Users"</A>
            </nav>
        })}
        <div class="who">
            <A href="/account" attr:class="email" attr:title="Account: change your password">{viewer.email.clone()}</A>
            {viewer.is_admin.then(|| view! { <span class="role">"admin"</span> })}
            <ActionForm action=logout attr:class="inline">
                <button type="submit" class="link">"Sign out"</button>
            </ActionForm>
        </div>
    }
}

#[component]
pub fn ErrorBox(error: AppError) -> impl IntoView {
    match error {
        // The frame sends the browser to the login page; nothing to show here.
        AppError::Unauthenticated => ().into_any(),
        error => view! { <div class="error-box" role="alert">{error.to_string()}</div> }.into_any(),
    }
}

/// A webhook's health as a badge (its words are the domain's, `Health::badge`), with its
/// sentence (`text`) as the title.
#[component]
pub fn HealthBadge(kind: Health, text: String) -> impl IntoView {
    let class = match kind {
        Health::Healthy => "badge ok",
        Health::Failing { .. } => "badge warn",
        Health::Off { .. } => "badge off",
    };
    view! { <span class=class title=text>{kind.badge()}</span> }
}

/// The webhook's on/off switch: a form with one button, so it works without JavaScript, and
/// a `role=switch` for assistive technology and the keyboard.
#[component]
pub fn WebhookSwitch(
    id: String,
    enabled: bool,
    url: String,
    #[prop(into)] on_change: Callback<()>,
) -> impl IntoView {
    let toggle = ServerAction::<SwitchWebhook>::new();
    let state = RwSignal::new(enabled);
    Effect::new(move |_| {
        if let Some(Ok(now)) = toggle.value().get() {
            state.set(now);
            on_change.run(());
        }
    });
    let label = format!("Deliveries to {url}");
    view! {
        <ActionForm action=toggle attr:class="switch-form">
            <input type="hidden" name="id" value=id/>
            <input type="hidden" name="enabled" value=move || (!state.get()).to_string()/>
            <button
                type="submit"
                class="switch"
                role="switch"
                aria-checked=move || state.get().to_string()
                aria-label=label
                disabled=move || toggle.pending().get()
            >
                <span class="knob"></span>
                <span class="switch-text">{move || if state.get() { "On" } else { "Off" }}</span>
            </button>
        </ActionForm>
        {move || toggle.value().get().and_then(Result::err).map(|e| view! { <span class="field-error">{e.to_string()}</span> })}
    }
}

/// Copies `text` to the clipboard. `/ui.js` does it, so it works before the WebAssembly has
/// loaded.
#[component]
pub fn CopyButton(text: String) -> impl IntoView {
    view! {
        <button type="button" class="copy" data-copy=text>
            "Copy"
        </button>
    }
}

/// The webhook URL input with its message: the browser's check as the user types, else the
/// server's answer.
#[component]
pub fn UrlField(
    #[prop(into)] initial: String,
    #[prop(into)] server_error: Signal<Option<String>>,
    id: &'static str,
) -> impl IntoView {
    let typed = RwSignal::new(None::<String>);
    let message =
        move || typed.get().and_then(|t| WebhookUrl::problem_while_typing(&t)).or_else(|| server_error.get());
    let error_id = format!("{id}-error");
    view! {
        <label for=id>"Endpoint URL"</label>
        <input
            id=id
            name="url"
            type="text"
            inputmode="url"
            placeholder="https://example.com/webhooks"
            autocomplete="off"
            value=initial
            aria-describedby=error_id.clone()
            aria-invalid=move || message().is_some().to_string()
            on:input=move |ev| typed.set(Some(event_target_value(&ev)))
        />
        <p id=error_id class="field-error" aria-live="polite">{message}</p>
    }
}
