//! "Send test event" on the webhook page: the merchant picks one of the event types the
//! webhook receives, and Hookline sends that type's example payload from the catalog, signed
//! like any delivery. The attempt shows in the delivery log.

use leptos::prelude::*;
use leptos_router::components::A;

use super::server::AttemptOutcome;
use crate::components::ErrorBox;
use crate::error::AppError;

/// The catalog's event types this webhook receives (its event types, or every type of its
/// tenant level when it receives all), in the catalog's order.
#[server(prefix = "/ui", endpoint = "test_event_types")]
pub async fn test_event_types(id: String) -> Result<Vec<String>, AppError> {
    let user = crate::session::signed_in().await?;
    let services = crate::session::services()?;
    let hook = services.webhook(&user.scope(), &id).await?;
    let receives = hook.subscription();
    let level = hook.tenant_type;
    Ok(services
        .event_types()
        .await?
        .into_iter()
        .filter(|t| t.tenant_type.admits(level) && receives.matches(&t.name))
        .map(|t| t.name)
        .collect())
}

/// Sends the example payload of `event_type` (the webhook's first type when it is empty).
#[server(prefix = "/ui", endpoint = "send_test_of_type")]
pub async fn send_test_event_of_type(
    id: String,
    event_type: Option<String>,
) -> Result<AttemptOutcome, AppError> {
    let user = crate::session::signed_in().await?;
    let sent = crate::session::services()?.send_test_event(&user.scope(), &id, event_type).await?;
    Ok(super::server::outcome(sent))
}

#[component]
pub(crate) fn TestEventPanel(id: String, refresh: RwSignal<u32>) -> impl IntoView {
    let test = ServerAction::<SendTestEventOfType>::new();
    Effect::new(move |_| {
        if test.value().get().is_some() {
            refresh.update(|n| *n += 1);
        }
    });
    let types = Resource::new(
        {
            let id = id.clone();
            move || id.clone()
        },
        test_event_types,
    );
    view! {
        <section class="card" aria-labelledby="test-title">
            <h2 id="test-title">"Test"</h2>
            <ActionForm action=test attr:class="form inline-form test-event" attr:aria-label="Send a test event">
                <input type="hidden" name="id" value=id/>
                <label for="test-event-type">"Event type to send"</label>
                <Suspense fallback=|| view! { <select id="test-event-type" name="event_type" disabled=true></select> }>
                    {move || Suspend::new(async move {
                        match types.await {
                            Ok(types) => view! {
                                <select id="test-event-type" name="event_type">
                                    {types.into_iter().map(|t| view! { <option value=t.clone()>{t.clone()}</option> }).collect_view()}
                                </select>
                            }.into_any(),
                            Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                        }
                    })}
                </Suspense>
                <button type="submit" id="send-test" disabled=move || test.pending().get()>
                    {move || if test.pending().get() { "Sending…" } else { "Send test event" }}
                </button>
            </ActionForm>
            <p class="hint">
                "Sends the example payload of the chosen event type, signed like any delivery. "
                <A href="/settings/api/events">"Event catalog"</A>
            </p>
            {move || test.value().get().map(|r: Result<AttemptOutcome, AppError>| match r {
                Ok(o) => view! { <p class=if o.succeeded { "result ok" } else { "result bad" } role="status">{o.summary}</p> }.into_any(),
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
            })}
        </section>
    }
}
