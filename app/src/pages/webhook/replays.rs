//! "Replay deliveries" on the webhook page: the merchant (or an admin, on any store's webhook)
//! chooses deliveries by time, status and event type, checks the count and a sample first, then
//! starts a replay that runs in the background; the page lists the webhook's replays with
//! their progress. The check is a plain GET form (its answer is part of the page, so it works
//! before the WebAssembly loads); starting and cancelling are action forms.

use hookline_domain::DeliveryStatus;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::components::ErrorBox;
use crate::error::AppError;

/// A dry run's answer as the page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayCheck {
    pub count: u64,
    pub sample: Vec<SampleRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleRow {
    pub delivery_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    pub created: String,
}

/// One replay and its progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayRow {
    pub id: String,
    pub state: hookline_domain::ReplayState,
    pub done: i64,
    pub total: i64,
    /// What it chose, in words.
    pub choice: String,
    pub started: String,
    pub error: Option<String>,
}

#[cfg(feature = "ssr")]
mod ssr {
    /// The form's choice as the services read it. A `datetime-local` input gives no zone: the
    /// form says its times are UTC.
    pub fn request(
        from: Option<String>,
        to: Option<String>,
        status: Option<String>,
        event_types: Option<String>,
    ) -> hookline_core::ReplayRequest {
        let time = |t: Option<String>| {
            t.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).map(|t| match t.len() {
                16 => format!("{t}:00Z"),
                19 => format!("{t}Z"),
                _ => t,
            })
        };
        let types: Vec<String> = event_types
            .unwrap_or_default()
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        hookline_core::ReplayRequest {
            from: time(from),
            to: time(to),
            statuses: status.filter(|s| !s.is_empty()).map(|s| vec![s]),
            event_types: (!types.is_empty()).then_some(types),
        }
    }
}

#[server(prefix = "/ui", endpoint = "replay_check")]
pub async fn check_replay(
    id: String,
    from: Option<String>,
    to: Option<String>,
    status: Option<String>,
    event_types: Option<String>,
) -> Result<ReplayCheck, AppError> {
    let user = crate::session::signed_in().await?;
    let request = ssr::request(from, to, status, event_types);
    let preview = crate::session::services()?.preview_replay(&user.scope(), &id, &request).await?;
    Ok(ReplayCheck {
        count: preview.count,
        sample: preview
            .sample
            .into_iter()
            .map(|d| SampleRow {
                delivery_id: d.id,
                event_id: d.event_id,
                event_type: d.event_type,
                status: d.status.to_string(),
                created: crate::format::human_time(d.created_at),
            })
            .collect(),
    })
}

#[server(prefix = "/ui", endpoint = "replay_start")]
pub async fn start_replay(
    id: String,
    from: Option<String>,
    to: Option<String>,
    status: Option<String>,
    event_types: Option<String>,
) -> Result<String, AppError> {
    let user = crate::session::signed_in().await?;
    let request = ssr::request(from, to, status, event_types);
    let started = crate::session::services()?
        .start_replay(&user.scope(), &id, &request, Some(user.email.clone()))
        .await?;
    Ok(started.id)
}

#[server(prefix = "/ui", endpoint = "replay_cancel")]
pub async fn cancel_replay(replay_id: String) -> Result<(), AppError> {
    let user = crate::session::signed_in().await?;
    crate::session::services()?.cancel_replay(&user.scope(), &replay_id).await?;
    Ok(())
}

/// The webhook's latest replays, newest first.
#[server(prefix = "/ui", endpoint = "replays")]
pub async fn webhook_replays(id: String) -> Result<Vec<ReplayRow>, AppError> {
    let user = crate::session::signed_in().await?;
    let page = hookline_core::PageRequest { limit: Some(5), cursor: None };
    let found = crate::session::services()?.list_replays(&user.scope(), &id, &page).await?;
    Ok(found
        .items
        .into_iter()
        .map(|r| {
            let choice = hookline_core::store::replays::ReplayChoice::of(&r);
            let statuses: Vec<&str> = choice.statuses.iter().map(|s| s.as_str()).collect();
            let mut words = vec![statuses.join(", ")];
            if let Some(types) = &choice.event_types {
                words.push(types.join(", "));
            }
            if let Some(from) = r.from_at {
                words.push(format!("from {}", crate::format::human_time(from)));
            }
            if let Some(to) = r.to_at {
                words.push(format!("before {}", crate::format::human_time(to)));
            }
            ReplayRow {
                id: r.id,
                state: r.state,
                done: r.done,
                total: r.total,
                choice: words.join("; "),
                started: crate::format::human_time(r.created_at),
                error: r.error,
            }
        })
        .collect())
}

/// The form's fields, read from the page's address (`replay_*`).
#[derive(Clone, Debug, Default, PartialEq)]
struct Choice {
    from: Option<String>,
    to: Option<String>,
    status: Option<String>,
    event_types: Option<String>,
}

#[component]
pub(crate) fn ReplayPanel(id: String) -> impl IntoView {
    let base = format!("/settings/api/webhooks/{id}");
    let query = use_query_map();
    let choice = move || {
        let q = query.read();
        let get = |k: &str| q.get(k).filter(|v| !v.trim().is_empty());
        (
            q.get("replay_check").is_some(),
            Choice {
                from: get("replay_from"),
                to: get("replay_to"),
                status: get("replay_status"),
                event_types: get("replay_types"),
            },
        )
    };
    let current = move |k: &str| query.read().get(k).unwrap_or_default();
    let start = ServerAction::<StartReplay>::new();
    let cancel = ServerAction::<CancelReplay>::new();
    let refresh = RwSignal::new(0u32);
    let check = Resource::new(
        {
            let id = id.clone();
            move || (id.clone(), choice())
        },
        |(id, (asked, c))| async move {
            if !asked {
                return Ok(None);
            }
            check_replay(id, c.from, c.to, c.status, c.event_types).await.map(Some)
        },
    );
    let replays = Resource::new(
        {
            let id = id.clone();
            move || (id.clone(), refresh.get(), start.version().get(), cancel.version().get())
        },
        |(id, ..)| webhook_replays(id),
    );
    let id = StoredValue::new(id);
    let statuses = DeliveryStatus::SETTLED.map(DeliveryStatus::as_str);
    view! {
        <section class="card" aria-labelledby="replay-title" id="replays">
            <div class="section-head">
                <h2 id="replay-title">"Replay deliveries"</h2>
                <button type="button" id="refresh-replays" on:click=move |_| refresh.update(|n| *n += 1)>"Update progress"</button>
            </div>
            <p class="hint">
                "Sends deliveries again, with the same webhook-id, through the normal queue: the webhook's rate limit and back-off apply. Check how many match first."
            </p>
            <form method="get" action=base.clone() class="filters" id="replay-form" aria-label="Choose deliveries to replay">
                <input type="hidden" name="replay_check" value="1"/>
                <label>
                    "Ended as"
                    <select name="replay_status">
                        <option value="">"Any settled"</option>
                        {statuses.into_iter().map(|s| view! { <option value=s selected=move || current("replay_status") == s>{s}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Event types" <input type="text" name="replay_types" value=move || current("replay_types") placeholder="all, or e.g. review-created"/></label>
                <label>"From (UTC)" <input type="datetime-local" name="replay_from" value=move || current("replay_from")/></label>
                <label>"Before (UTC)" <input type="datetime-local" name="replay_to" value=move || current("replay_to")/></label>
                <div class="actions">
                    <button type="submit" id="check-replay">"Check deliveries"</button>
                </div>
            </form>
            <Transition fallback=|| view! { <p class="loading">"Counting deliveries…"</p> }>
                {move || Suspend::new(async move {
                    let c = choice().1;
                    match check.await {
                        Ok(Some(found)) => view! { <CheckResult found choice=c id=id.get_value() start/> }.into_any(),
                        Ok(None) => ().into_any(),
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    }
                })}
            </Transition>
            {move || start.value().get().and_then(Result::err).map(|e| view! { <ErrorBox error=e/> })}
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match replays.await {
                        Ok(rows) if rows.is_empty() => ().into_any(),
                        Ok(rows) => view! { <ReplayTable rows cancel/> }.into_any(),
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    }
                })}
            </Transition>
            <p class="hint"><a href=format!("{base}#replays")>"Reload to see the latest progress"</a></p>
        </section>
    }
    // Its own type ends here: the webhook page's view type stays shallow.
    .into_any()
}

/// The count and sample of a check, and the button that starts the replay.
#[component]
fn CheckResult(
    found: ReplayCheck,
    choice: Choice,
    id: String,
    start: ServerAction<StartReplay>,
) -> impl IntoView {
    let n = found.count;
    let words = if n == 1 { "1 delivery matches.".to_string() } else { format!("{n} deliveries match.") };
    let button = if n == 1 { "Replay 1 delivery".to_string() } else { format!("Replay {n} deliveries") };
    let field = |v: Option<String>| v.unwrap_or_default();
    view! {
        <div class="replay-check" id="replay-check" role="status">
            <p id="replay-count">{words}</p>
            {(!found.sample.is_empty()).then(|| view! {
                <table class="log-table" aria-label="Some of the deliveries to replay">
                    <thead><tr><th>"Delivery"</th><th>"Event type"</th><th>"Status"</th><th>"Created"</th></tr></thead>
                    <tbody>
                        {found.sample.into_iter().map(|s| view! {
                            <tr>
                                <td><code title=format!("webhook-id {}", s.event_id)>{s.delivery_id}</code></td>
                                <td>{s.event_type}</td>
                                <td>{s.status}</td>
                                <td>{s.created}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
            {(n > 0).then(|| view! {
                <ActionForm action=start attr:class="inline" attr:aria-label="Start the replay">
                    <input type="hidden" name="id" value=id/>
                    <input type="hidden" name="from" value=field(choice.from)/>
                    <input type="hidden" name="to" value=field(choice.to)/>
                    <input type="hidden" name="status" value=field(choice.status)/>
                    <input type="hidden" name="event_types" value=field(choice.event_types)/>
                    <button type="submit" class="primary" id="start-replay" disabled=move || start.pending().get()>
                        {move || if start.pending().get() { "Starting…".to_string() } else { button.clone() }}
                    </button>
                </ActionForm>
            })}
        </div>
    }
}

#[component]
fn ReplayTable(rows: Vec<ReplayRow>, cancel: ServerAction<CancelReplay>) -> impl IntoView {
    view! {
        <table class="log-table" id="replay-list" aria-label="Replays of this webhook">
            <thead><tr><th>"Started"</th><th>"Deliveries"</th><th>"Progress"</th><th>"State"</th><th></th></tr></thead>
            <tbody>
                {rows.into_iter().map(|r| {
                    let running = r.state == hookline_domain::ReplayState::Running;
                    let state = match r.error.clone() {
                        Some(e) => format!("{}: {e}", r.state),
                        None => r.state.to_string(),
                    };
                    view! {
                        <tr class="replay" data-state=r.state.as_str()>
                            <td>{r.started}</td>
                            <td>{r.choice}</td>
                            <td class="replay-progress">{format!("{} of {} queued", r.done, r.total)}</td>
                            <td class="replay-state">{state}</td>
                            <td>
                                {running.then(|| view! {
                                    <ActionForm action=cancel attr:class="inline">
                                        <input type="hidden" name="replay_id" value=r.id.clone()/>
                                        <button type="submit">"Cancel"</button>
                                    </ActionForm>
                                })}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
