//! "Blocked keys" on the webhook page: for a webhook with ordering on, the ordering keys whose
//! first undelivered event keeps failing, so every later event of the key waits. The merchant
//! retries that event now or skips it. Shown only while some key is blocked.

use hookline_domain::DeliveryStatus;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::components::ErrorBox;
use crate::error::AppError;

/// A blocked key as the page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockedKeyRow {
    pub key: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub waiting: i64,
    /// When it is tried next, while retries are scheduled.
    pub next_attempt: Option<String>,
}

/// The webhook's first blocked keys, by key.
#[server(prefix = "/ui", endpoint = "blocked_keys")]
pub async fn blocked_keys(id: String) -> Result<Vec<BlockedKeyRow>, AppError> {
    // The first 50 (the API pages through all of them).
    let user = crate::session::signed_in().await?;
    let page = hookline_core::PageRequest { limit: Some(50), cursor: None };
    let found = crate::session::services()?.blocked_keys(&user.scope(), &id, &page).await?;
    Ok(found
        .items
        .into_iter()
        .map(|b| BlockedKeyRow {
            key: b.ordering_key,
            event_id: b.event_id,
            event_type: b.event_type,
            status: b.status,
            attempts: b.attempts,
            waiting: b.waiting,
            next_attempt: b.next_attempt_at.map(hookline_core::human_time),
        })
        .collect())
}

/// Sends the key's first event again now, with a fresh retry schedule.
#[server(prefix = "/ui", endpoint = "retry_blocked_key")]
pub async fn retry_blocked_key(id: String, key: String) -> Result<String, AppError> {
    let user = crate::session::signed_in().await?;
    crate::session::services()?.retry_blocked_key(&user.scope(), &id, &key).await?;
    Ok(format!("The first event of {key} is queued again."))
}

/// Skips the key's first event; the next one goes.
#[server(prefix = "/ui", endpoint = "skip_blocked_key")]
pub async fn skip_blocked_key(id: String, key: String) -> Result<String, AppError> {
    let user = crate::session::signed_in().await?;
    crate::session::services()?.skip_blocked_key(&user.scope(), &id, &key).await?;
    Ok(format!("The first event of {key} was skipped; the next one is on its way."))
}

#[component]
pub(crate) fn BlockedKeysPanel(id: String) -> impl IntoView {
    let retry = ServerAction::<RetryBlockedKey>::new();
    let skip = ServerAction::<SkipBlockedKey>::new();
    let keys = Resource::new(
        {
            let id = id.clone();
            move || (id.clone(), retry.version().get(), skip.version().get())
        },
        |(id, _, _)| blocked_keys(id),
    );
    let id = StoredValue::new(id);
    let outcome = move || {
        let last = if retry.version().get() >= skip.version().get() {
            retry.value().get()
        } else {
            skip.value().get()
        };
        last.map(|r| match r {
            Ok(message) => {
                view! { <p class="result ok" role="status" id="blocked-key-result">{message}</p> }.into_any()
            }
            Err(e) => view! { <ErrorBox error=e/> }.into_any(),
        })
    };
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let rows = match keys.await {
                    Ok(rows) => rows,
                    Err(e) => return view! { <ErrorBox error=e/> }.into_any(),
                };
                if rows.is_empty() {
                    return view! { <div>{outcome}</div> }.into_any();
                }
                view! {
                    <section class="card" aria-labelledby="blocked-keys-title" id="blocked-keys">
                        <h2 id="blocked-keys-title">"Blocked keys"</h2>
                        <p class="hint">
                            "Events with the same ordering key are delivered one at a time, in order. "
                            "The first event of each key below keeps failing, so the events behind it wait. "
                            "Retry it now, or skip it to let the next one go."
                        </p>
                        <table class="log-table blocked-keys">
                            <thead>
                                <tr>
                                    <th scope="col">"Ordering key"</th>
                                    <th scope="col">"Event"</th>
                                    <th scope="col">"Status"</th>
                                    <th scope="col">"Attempts"</th>
                                    <th scope="col">"Waiting"</th>
                                    <th scope="col">"Action"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {rows.into_iter().map(|row| {
                                    let status = match &row.next_attempt {
                                        Some(at) if row.status == DeliveryStatus::Pending => format!("retrying, next {at}"),
                                        _ => row.status.to_string(),
                                    };
                                    let (retry_label, skip_label) = (format!("Retry {}", row.key), format!("Skip {}", row.key));
                                    let (retry_key, skip_key) = (row.key.clone(), row.key.clone());
                                    view! {
                                        <tr class="blocked-key">
                                            <td><code>{row.key.clone()}</code></td>
                                            <td>{row.event_type.clone()}<br/><code class="id">{row.event_id.clone()}</code></td>
                                            <td>{status}</td>
                                            <td>{row.attempts}</td>
                                            <td>{row.waiting}</td>
                                            <td>
                                                <ActionForm action=retry attr:class="inline">
                                                    <input type="hidden" name="id" value=id.get_value()/>
                                                    <input type="hidden" name="key" value=retry_key/>
                                                    <button type="submit" aria-label=retry_label>"Retry"</button>
                                                </ActionForm>
                                                <ActionForm action=skip attr:class="inline">
                                                    <input type="hidden" name="id" value=id.get_value()/>
                                                    <input type="hidden" name="key" value=skip_key/>
                                                    <button type="submit" aria-label=skip_label>"Skip"</button>
                                                </ActionForm>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        {outcome}
                    </section>
                }.into_any()
            })}
        </Suspense>
    }
}
