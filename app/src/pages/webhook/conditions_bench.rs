//! The conditions test bench on the webhook page: the merchant enters conditions (the
//! webhook's own to start with) and picks event types, and sees, for the last 20 events of
//! those types published to the webhook's store, which would have been delivered and which
//! condition kept the others out. Nothing is sent or saved. Before the WebAssembly has loaded
//! the form posts to [`test_conditions`], which sends the browser back here with the inputs in
//! the address, and the page runs the bench while it renders. The embeddable portal's webhook
//! page shows the same bench: there the form carries the portal session's token, which alone
//! decides what it reaches (never the sign-in cookie).

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use super::test_event::test_event_types;
use crate::components::ErrorBox;
use crate::error::AppError;

/// One event of the bench.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchRow {
    pub event_id: String,
    pub event_type: String,
    pub time: String,
    /// `None` when the conditions let it through; else the condition that kept it out.
    pub filtered_out_by: Option<String>,
}

/// Runs `conditions` (empty: none) against the last 20 events of `event_types` (none
/// chosen: the types the webhook receives) of the webhook's store. A plain form post is sent
/// back to the webhook page with its inputs in the address. `session` is the portal's.
#[server(prefix = "/ui", endpoint = "test_conditions")]
pub async fn test_conditions(
    id: String,
    conditions: Option<String>,
    event_types: Option<Vec<String>>,
    session: Option<String>,
) -> Result<Vec<BenchRow>, AppError> {
    let conditions = conditions.unwrap_or_default();
    let event_types: Vec<String> =
        event_types.unwrap_or_default().into_iter().filter(|t| !t.is_empty()).collect();
    let rows = run_bench(session.as_deref(), &id, &conditions, &event_types).await?;
    if crate::session::is_html_form_post() {
        // `id` named a webhook this user or portal session reaches (the bench above): no
        // address of anyone else's.
        let page = match &session {
            Some(s) => format!("/portal/{s}/webhooks/{id}"),
            None => format!("/settings/api/webhooks/{id}"),
        };
        let types = event_types.join(",");
        let back = crate::paging::href(
            &page,
            &[("bench", "1"), ("bench_conditions", &conditions), ("bench_types", &types)],
        );
        leptos_axum::redirect(&format!("{back}#conditions-bench"));
    }
    Ok(rows)
}

/// The bench of a plain form post, run while the page renders from its address. Never a
/// redirect: the page's own request is a browser's too.
#[server(prefix = "/ui", endpoint = "conditions_bench")]
pub async fn posted_bench(
    id: String,
    conditions: String,
    event_types: Vec<String>,
    session: Option<String>,
) -> Result<Vec<BenchRow>, AppError> {
    run_bench(session.as_deref(), &id, &conditions, &event_types).await
}

/// With a portal session, its scope (only a webhook of its tenant, only the types it can
/// receive); else the signed-in user's.
#[cfg(feature = "ssr")]
async fn run_bench(
    session: Option<&str>,
    id: &str,
    conditions: &str,
    event_types: &[String],
) -> Result<Vec<BenchRow>, AppError> {
    let found = match session {
        Some(session) => {
            // Only the types the portal's webhook can receive (for an application on a store,
            // its product lines'): the portal reaches no other event of the store.
            let bench = crate::pages::portal::server::portal_bench(session, id).await?;
            if let Some(other) = event_types.iter().find(|t| !bench.types.contains(t)) {
                return Err(crate::error::refused(AppError::Invalid {
                    field: Some("event_types".into()),
                    message: format!("This webhook does not receive {other}."),
                }));
            }
            let types = if event_types.is_empty() { bench.types.as_slice() } else { event_types };
            if types.is_empty() {
                return Ok(Vec::new());
            }
            bench.services.test_conditions(&bench.scope, id, conditions, types).await?
        }
        None => {
            let scope = crate::session::signed_in().await?.scope();
            crate::session::services()?.test_conditions(&scope, id, conditions, event_types).await?
        }
    };
    Ok(found
        .into_iter()
        .map(|r| BenchRow {
            event_id: r.event_id,
            event_type: r.event_type,
            time: crate::format::human_time(r.received_at),
            filtered_out_by: r.filtered_out_by,
        })
        .collect())
}

/// The bench; `session` is the portal session's token on the portal's page.
#[component]
pub(crate) fn ConditionsBench(
    id: String,
    conditions: Option<String>,
    #[prop(optional)] session: Option<String>,
) -> impl IntoView {
    let run = ServerAction::<TestConditions>::new();
    let query = use_query_map();
    // A plain form post's inputs, in the address the server sent the browser back to.
    let posted = query.with_untracked(|q| {
        q.get("bench").map(|_| {
            let types: Vec<String> = q
                .get("bench_types")
                .unwrap_or_default()
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect();
            (q.get("bench_conditions").unwrap_or_default(), types)
        })
    });
    let entered = posted.as_ref().map(|(c, _)| c.clone()).or(conditions).unwrap_or_default();
    let chosen: Vec<String> = posted.as_ref().map(|(_, t)| t.clone()).unwrap_or_default();
    let opened = posted.is_some();
    let posted_results = Resource::new(
        {
            let id = id.clone();
            let session = session.clone();
            move || (id.clone(), posted.clone(), session.clone())
        },
        |(id, posted, session)| async move {
            match posted {
                Some((conditions, types)) => posted_bench(id, conditions, types, session).await.map(Some),
                None => Ok(None),
            }
        },
    );
    let types = Resource::new(
        {
            let id = id.clone();
            let session = session.clone();
            move || (id.clone(), session.clone())
        },
        |(id, session)| async move {
            match session {
                Some(session) => crate::pages::portal::server::portal_bench_types(session, id).await,
                None => test_event_types(id).await,
            }
        },
    );
    let chosen = StoredValue::new(chosen);
    let entered_value = entered.clone();
    view! {
        <section class="card" id="conditions-bench" aria-labelledby="bench-title">
            <h2 id="bench-title">"Test conditions"</h2>
            <p class="hint">
                "Run conditions against the last 20 events of the chosen types sent to this store, "
                "to see which would have been delivered. Nothing is sent or saved."
            </p>
            // Folded until opened (or a plain post brought results): the page is long, and its
            // event type boxes would otherwise sit beside the edit form's.
            <details id="bench-details" open=opened>
                <summary>"Try conditions on recent events"</summary>
                <ActionForm action=run attr:class="form conditions-bench" attr:aria-label="Test conditions">
                    <input type="hidden" name="id" value=id/>
                    {session.map(|s| view! { <input type="hidden" name="session" value=s/> })}
                    <label for="bench-conditions">"Conditions " <span class="optional">"(JSON; empty for none)"</span></label>
                    // The property for a view made in the browser, the text for the server's page.
                    <textarea id="bench-conditions" name="conditions" rows="5" spellcheck="false" class="conditions-input" prop:value=entered_value>
                        {entered}
                    </textarea>
                    <fieldset class="bench-types">
                        <legend>"Event types " <span class="optional">"(none chosen: the webhook's types)"</span></legend>
                        <Suspense fallback=|| ()>
                            {move || Suspend::new(async move {
                                match types.await {
                                    Ok(types) => types.into_iter().enumerate().map(|(i, t)| {
                                        let checked = chosen.with_value(|c| c.contains(&t));
                                        view! {
                                            <label class="check">
                                                <input type="checkbox" name=format!("event_types[{i}]") value=t.clone() checked=checked/>
                                                " " <code>{t.clone()}</code>
                                            </label>
                                        }
                                    }).collect_view().into_any(),
                                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                                }
                            })}
                        </Suspense>
                    </fieldset>
                    <button type="submit" id="run-bench" disabled=move || run.pending().get()>
                        {move || if run.pending().get() { "Testing…" } else { "Test conditions" }}
                    </button>
                </ActionForm>
                {move || match run.value().get() {
                    Some(Ok(rows)) => view! { <BenchTable rows/> }.into_any(),
                    Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                    None => view! {
                        <Suspense fallback=|| ()>
                            {move || Suspend::new(async move {
                                match posted_results.await {
                                    Ok(Some(rows)) => view! { <BenchTable rows/> }.into_any(),
                                    Ok(None) => ().into_any(),
                                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                                }
                            })}
                        </Suspense>
                    }.into_any(),
                }}
            </details>
        </section>
    }
}

#[component]
fn BenchTable(rows: Vec<BenchRow>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="empty" id="bench-empty">"No events of these types yet."</p> }.into_any();
    }
    let matching = rows.iter().filter(|r| r.filtered_out_by.is_none()).count();
    let summary = format!("{matching} of {} events match.", rows.len());
    view! {
        <p class="result" role="status" id="bench-summary">{summary}</p>
        <div class="table-wrap">
            <table class="bench">
                <thead>
                    <tr>
                        <th scope="col">"Time"</th>
                        <th scope="col">"Event type"</th>
                        <th scope="col">"Event"</th>
                        <th scope="col">"Result"</th>
                    </tr>
                </thead>
                <tbody>
                    {rows.into_iter().map(|r| {
                        let matches = r.filtered_out_by.is_none().to_string();
                        let (class, result) = match r.filtered_out_by {
                            None => ("status succeeded", "matches".to_string()),
                            Some(why) => ("status skipped", format!("filtered out: {why}")),
                        };
                        view! {
                            <tr data-event-id=r.event_id.clone() data-matches=matches>
                                <td>{r.time.clone()}</td>
                                <td><code>{r.event_type.clone()}</code></td>
                                <td><code>{r.event_id.clone()}</code></td>
                                <td><span class=class>{result}</span></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}
