//! Settings › API's "Listening now": the `hookline listen` commands connected to the store
//! right now (each a temporary listener that ends when the command stops), and the server
//! function that lists them.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListenerRow {
    pub id: String,
    pub since: String,
    /// `None` for every event type.
    pub event_types: Option<Vec<String>>,
    /// The partner app whose key opened it, if one did.
    pub application: Option<String>,
}

/// The store's connected listeners, oldest first (a handful at most).
#[server(prefix = "/ui", endpoint = "listeners")]
pub async fn store_listeners(store: Option<String>) -> Result<Vec<ListenerRow>, AppError> {
    use crate::format::human_time;
    use crate::session::{services, signed_in, viewed_store};
    let user = signed_in().await?;
    let store = viewed_store(&user, store).await?;
    let rows = services()?.tenant_listeners(&hookline_core::Tenant::store(store.id)).await?;
    Ok(rows
        .into_iter()
        .map(|l| ListenerRow {
            id: l.id,
            since: human_time(l.since),
            event_types: l.event_types,
            application: l.application_id,
        })
        .collect())
}

/// One line per connected `hookline listen`; nothing when there is none.
#[component]
pub fn ListeningNow(store: Signal<Option<String>>) -> impl IntoView {
    let listeners = Resource::new(move || store.get(), store_listeners);
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match listeners.await {
                    Ok(rows) if rows.is_empty() => ().into_any(),
                    Ok(rows) => view! {
                        <section class="card" aria-labelledby="listeners-title" data-testid="listeners">
                            <h2 id="listeners-title">"Listening now"</h2>
                            <ul class="listeners">
                                {rows.into_iter().map(|l| {
                                    let events = l.event_types.map_or_else(|| "all".to_string(), |t| t.join(", "));
                                    let by = l.application.map(|a| format!(" (app {a})")).unwrap_or_default();
                                    view! {
                                        <li data-listener=l.id>
                                            <code>"hookline listen"</code>{by}", since "{l.since}", events: "{events}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                            <p class="hint">"Each ends when its command stops. See docs/listen.md."</p>
                        </section>
                    }.into_any(),
                    Err(e) => view! { <crate::components::ErrorBox error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}
