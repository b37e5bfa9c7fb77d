//! One event at `/events/:id`: its type, time, sequence, ordering key and payload; "Why
//! didn't it arrive?" for every webhook of its tenant; and, when it has an ordering key, the
//! key's events in publish order (`?key_cursor=` pages on). Linked from the delivery logs.

use hookline_domain::Outcome;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

mod server;

use server::{EventPageData, ExplainRow, KeyEventRow, event_explained};

use crate::components::{ErrorBox, Frame};
use crate::error::AppError;
use crate::paging::href;

#[component]
pub fn EventPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let data = Resource::new(
        move || (params.read().get("id").unwrap_or_default(), query.read().get("key_cursor")),
        |(id, cursor)| event_explained(id, cursor),
    );
    view! {
        <Title text="Event"/>
        <Frame>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(data) => view! { <EventBody data/> }.into_any(),
                        Err(AppError::NotFound) => view! {
                            <div class="card">
                                <h1>"Event not found"</h1>
                                <p>"There is no event at this address, or it belongs to another store."</p>
                            </div>
                        }.into_any(),
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </Frame>
    }
}

#[component]
fn EventBody(data: EventPageData) -> impl IntoView {
    let EventPageData {
        id,
        event_type,
        tenant,
        received,
        sequence,
        ordering_key,
        payload,
        webhooks,
        more_webhooks,
        timeline,
        timeline_next,
    } = data;
    // Each section's view type is erased: the page's whole type is too deep for the
    // WebAssembly build otherwise.
    let key_section = ordering_key.clone().map(|key| {
        let current = id.clone();
        view! { <KeyTimeline key current events=timeline next=timeline_next/> }.into_any()
    });
    let event_section = view! {
        <section class="card" aria-labelledby="event-title">
            <h1 id="event-title"><code>{event_type}</code></h1>
            <dl class="facts">
                <dt>"Event"</dt><dd><code id="event-id">{id.clone()}</code></dd>
                <dt>"Received"</dt><dd>{received}</dd>
                <dt>"Tenant"</dt><dd>{tenant}</dd>
                <dt>"Sequence"</dt><dd>{sequence}</dd>
                <dt>"Ordering key"</dt>
                <dd>{match ordering_key {
                    Some(k) => view! { <code id="ordering-key">{k}</code> }.into_any(),
                    None => "None".into_any(),
                }}</dd>
            </dl>
            <h2>"Payload"</h2>
            {match payload {
                Some(p) => view! { <pre class="body">{p}</pre> }.into_any(),
                None => view! { <p class="notice payload-removed">"The payload was removed after the payload retention."</p> }.into_any(),
            }}
        </section>
    }
    .into_any();
    let explain_section = view! {
        <section class="card" aria-labelledby="explain-title">
            <h2 id="explain-title">"Why didn't it arrive?"</h2>
            <p class="hint">"What happened with this event for each webhook of the store."</p>
            <ExplainTable rows=webhooks/>
            {more_webhooks.then(|| view! { <p class="hint">"More webhooks than shown here: the API lists them all (GET /api/v1/events/{id}/explain)."</p> })}
        </section>
    }
    .into_any();
    view! {
        <p class="crumbs"><A href="/settings/api">"Settings › API"</A>" › Event"</p>
        {event_section}
        {explain_section}
        {key_section}
    }
}

/// The outcome's colour: the delivery log's status classes.
fn outcome_class(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Delivered => "status succeeded",
        Outcome::Failed | Outcome::BlockedKey => "status failed",
        Outcome::Queued | Outcome::Paused => "status pending",
        Outcome::NotSubscribed | Outcome::FilteredOut | Outcome::WebhookOff | Outcome::Skipped => "status",
    }
}

#[component]
fn ExplainTable(rows: Vec<ExplainRow>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="empty">"This store has no webhooks."</p> }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="explain" id="explain-table">
                <thead>
                    <tr>
                        <th scope="col">"Webhook"</th>
                        <th scope="col">"Outcome"</th>
                        <th scope="col">"Why"</th>
                        <th scope="col">"When"</th>
                    </tr>
                </thead>
                <tbody>
                    {rows.into_iter().map(|r| {
                        let page = format!("/settings/api/webhooks/{}", r.webhook_id);
                        let delivery = r.delivery_id.clone().map(|d| {
                            let link = href(&page, &[("delivery", &d)]);
                            view! { " " <A href=link attr:class="delivery-link">"Delivery"</A> }
                        });
                        let blocking = r.blocking_event_id.clone().map(|e| {
                            view! { " " <A href=format!("/events/{e}") attr:class="blocking-event">"Open the event holding the key"</A> }
                        });
                        view! {
                            <tr data-webhook-id=r.webhook_id.clone() data-outcome=r.outcome.as_str()>
                                <td>
                                    <A href=page.clone() attr:class="webhook-url">{r.url.clone()}</A>
                                    {(!r.description.is_empty()).then(|| view! { <div class="hint">{r.description.clone()}</div> })}
                                </td>
                                <td><span class=outcome_class(r.outcome)>{r.outcome.label()}</span></td>
                                <td class="detail">{r.detail.clone()}{delivery}{blocking}</td>
                                <td>{r.at.clone().unwrap_or_else(|| "—".into())}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// The ordering key's events, oldest first, with each webhook's delivery status.
#[component]
fn KeyTimeline(
    key: String,
    current: String,
    events: Vec<KeyEventRow>,
    next: Option<String>,
) -> impl IntoView {
    let here = format!("/events/{current}");
    let older = next.map(|c| {
        let link = href(&here, &[("key_cursor", &c)]);
        view! { <p class="pager"><A href=link attr:rel="next">"Later events of the key →"</A></p> }
    });
    let query = use_query_map();
    let paged = query.read_untracked().get("key_cursor").is_some();
    view! {
        <section class="card" aria-labelledby="timeline-title">
            <h2 id="timeline-title">"Ordering key " <code>{key}</code></h2>
            <p class="hint">"The key's events in publish order, with each webhook's delivery."</p>
            <div class="table-wrap">
                <table class="log-table" id="key-timeline">
                    <thead>
                        <tr>
                            <th scope="col">"Received"</th>
                            <th scope="col">"Event type"</th>
                            <th scope="col">"Sequence"</th>
                            <th scope="col">"Deliveries"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {events.into_iter().map(|e| {
                            let this = e.id == current;
                            view! {
                                <tr data-event-id=e.id.clone() aria-current=this.then_some("true")>
                                    <td><A href=format!("/events/{}", e.id)>{e.received.clone()}</A></td>
                                    <td><code>{e.event_type.clone()}</code>{this.then_some(" (this event)")}</td>
                                    <td>{e.sequence}</td>
                                    <td>
                                        {e.deliveries.into_iter().map(|(webhook, status)| view! {
                                            <span class=format!("status {status}") title=format!("Webhook {webhook}")>{status.clone()}</span>" "
                                        }).collect_view()}
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            {paged.then(|| view! { <p class="pager"><A href=here.clone()>"← First events of the key"</A></p> })}
            {older}
        </section>
    }
    .into_any()
}
