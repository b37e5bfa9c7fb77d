//! One webhook: its state, signing secret and delivery log, with each delivery's attempts.

use hookline_domain::DeliveryStatus;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

mod blocked_keys;
pub(crate) mod conditions_bench;
pub(crate) mod delivery_control;
mod replays;
pub(crate) mod server;
mod signature_check;
mod test_event;

pub(crate) use server::{DeleteWebhook, RotateSecret, SendTestEvent, SwitchWebhook, WebhookRow};
use server::{
    DeliveryInfo, DeliveryLog, HourBar, LogFilter, ReplaySkipped, ResendDelivery, RevealSecret,
    UpdateWebhook, delivery_with_attempts, hourly_health, skipped_while_off, webhook_delivery_log,
    webhook_detail,
};

use crate::components::{CopyButton, ErrorBox, Frame, HealthBadge, UrlField, WebhookSwitch};
use crate::error::AppError;
use crate::pages::settings::{EventGroups, EventTypeInfo, event_catalog};
use crate::paging::{PageLinks, Trail, href};

#[component]
pub fn WebhookPage() -> impl IntoView {
    view! {
        <Title text="Webhook"/>
        <Frame>
            <WebhookView/>
        </Frame>
    }
}

#[component]
fn WebhookView() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let query = use_query_map();
    let refresh = RwSignal::new(0u32);
    let log_refresh = RwSignal::new(0u32);
    // Every resource of the page is created here, outside the Suspend closures below.
    let hook = Resource::new(move || (id(), refresh.get()), |(id, _)| webhook_detail(id));
    let log_filter = move || {
        let q = query.read();
        let get = |k: &str| q.get(k).filter(|v| !v.is_empty());
        LogFilter { status: get("status"), event_type: get("event_type"), from: get("from"), to: get("to") }
    };
    let log = Resource::new(
        move || (id(), Trail::from_query(&query.read(), "cursor").cursor(), log_filter(), log_refresh.get()),
        |(id, cursor, f, _)| webhook_delivery_log(id, cursor, f.status, f.event_type, f.from, f.to),
    );
    let health = Resource::new(move || (id(), log_refresh.get()), |(id, _)| hourly_health(id));
    let detail = Resource::new(
        move || (query.read().get("delivery"), log_refresh.get()),
        |(selected, _)| async move {
            match selected {
                Some(d) => delivery_with_attempts(d).await.map(Some),
                None => Ok(None),
            }
        },
    );
    // `?edit` (from the actions menu of the webhook list) opens the form at once.
    let editing = RwSignal::new(query.read_untracked().get("edit").is_some());
    let catalog = Resource::new(
        move || editing.get(),
        |wanted| async move { if wanted { event_catalog().await.map(Some) } else { Ok(None) } },
    );
    let update = ServerAction::<UpdateWebhook>::new();
    let replay = ServerAction::<ReplaySkipped>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = update.value().get() {
            editing.set(false);
            refresh.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = replay.value().get() {
            log_refresh.update(|n| *n += 1);
        }
    });
    let skipped = Resource::new(
        move || (id(), refresh.get(), replay.version().get()),
        |(id, _, _)| skipped_while_off(id),
    );
    let edit = EditPanels { editing, catalog, update, replay, skipped };
    let resend = ServerAction::<ResendDelivery>::new();
    Effect::new(move |_| {
        if resend.value().get().is_some() {
            log_refresh.update(|n| *n += 1);
        }
    });
    let panels = LogPanels { log, detail, refresh: log_refresh, resend, health };
    view! {
        <p class="crumbs"><A href="/settings/api">"Settings › API"</A>" › Webhook"</p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match hook.await {
                    Ok(row) => view! { <WebhookBody row refresh panels edit/> }.into_any(),
                    Err(AppError::NotFound) => view! {
                        <div class="card">
                            <h1>"Webhook not found"</h1>
                            <p>"There is no webhook at this address, or it belongs to another store."</p>
                        </div>
                    }.into_any(),
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The edit form's and the replay offer's state, made by the page.
#[derive(Clone, Copy)]
struct EditPanels {
    editing: RwSignal<bool>,
    catalog: Resource<Result<Option<Vec<EventTypeInfo>>, AppError>>,
    update: ServerAction<UpdateWebhook>,
    replay: ServerAction<ReplaySkipped>,
    skipped: Resource<Result<u64, AppError>>,
}

#[component]
fn WebhookBody(
    row: WebhookRow,
    refresh: RwSignal<u32>,
    panels: LogPanels,
    edit: EditPanels,
) -> impl IntoView {
    let summary = row.events_summary();
    let off_banner = (!row.enabled)
        .then(|| view! { <div class="banner off" role="status">{row.health_text.clone()}</div> });
    view! {
        <section class="card webhook-head">
            <div class="section-head">
                <h1 class="webhook-url">{row.url.clone()}</h1>
                <HealthBadge kind=row.health.clone() text=row.health_text.clone()/>
            </div>
            {off_banner}
            <ReplayOffer id=row.id.clone() enabled=row.enabled edit/>
            {(!row.description.is_empty()).then(|| view! { <p class="desc">{row.description.clone()}</p> })}
            <dl class="facts">
                <dt>"Events"</dt><dd>{summary}</dd>
                <dt>"Status"</dt>
                <dd><WebhookSwitch id=row.id.clone() enabled=row.enabled url=row.url.clone() on_change=move |_| refresh.update(|n| *n += 1)/></dd>
                <delivery_control::ControlFacts row=row.clone()/>
            </dl>
        </section>
        <EditPanel row=row.clone() edit/>
        <conditions_bench::ConditionsBench id=row.id.clone() conditions=row.conditions.clone()/>
        <blocked_keys::BlockedKeysPanel id=row.id.clone()/>
        <test_event::TestEventPanel id=row.id.clone() refresh=panels.refresh/>
        <replays::ReplayPanel id=row.id.clone()/>
        <SecretPanel id=row.id.clone()/>
        <signature_check::SignatureCheck id=row.id.clone()/>
        <DeliveryLogPanel id=row.id.clone() panels/>
        <DeletePanel id=row.id.clone()/>
    }
}

/// Deleting asks once more: the first button only opens the confirmation.
#[component]
fn DeletePanel(id: String) -> impl IntoView {
    let delete = ServerAction::<DeleteWebhook>::new();
    let confirming = RwSignal::new(false);
    let id = StoredValue::new(id);
    view! {
        <section class="card danger" aria-labelledby="delete-title">
            <h2 id="delete-title">"Delete webhook"</h2>
            <p class="hint">"Deliveries stop at once, and the webhook's delivery log is deleted with it."</p>
            <Show
                when=move || confirming.get()
                fallback=move || view! {
                    <button type="button" class="danger" id="delete-webhook" on:click=move |_| confirming.set(true)>
                        "Delete…"
                    </button>
                }
            >
                <ActionForm action=delete attr:class="confirm" attr:role="alertdialog" attr:aria-label="Confirm deletion">
                    <input type="hidden" name="id" value=id.get_value()/>
                    <p><strong>"Delete this webhook and its delivery log? This cannot be undone."</strong></p>
                    <button type="submit" class="danger" id="confirm-delete" disabled=move || delete.pending().get()>
                        {move || if delete.pending().get() { "Deleting…" } else { "Delete webhook" }}
                    </button>
                    <button type="button" on:click=move |_| confirming.set(false)>"Cancel"</button>
                </ActionForm>
            </Show>
            {move || delete.value().get().and_then(Result::err).map(|e| view! { <ErrorBox error=e/> })}
        </section>
    }
}

#[component]
fn SecretPanel(id: String) -> impl IntoView {
    let reveal = ServerAction::<RevealSecret>::new();
    let rotate = ServerAction::<RotateSecret>::new();
    // A rotation hides the secret again: the one shown is no longer current.
    Effect::new(move |_| {
        if let Some(Ok(_)) = rotate.value().get() {
            reveal.clear();
        }
    });
    let secret = move || reveal.value().get().and_then(Result::ok);
    let reveal_id = id.clone();
    view! {
        <section class="card" aria-labelledby="secret-title">
            <h2 id="secret-title">"Signing secret"</h2>
            <p class="hint">
                "Every delivery is signed with this secret in the Standard Webhooks format "
                "(the " <code>"webhook-signature"</code> " header). Verify it before trusting a delivery."
            </p>
            <div class="secret-row">
                {move || match secret() {
                    Some(s) => view! { <code class="secret" id="signing-secret">{s.clone()}</code> <CopyButton text=s/> }.into_any(),
                    None => view! { <code class="secret hidden-secret">"whsec_••••••••••••••••••••"</code> }.into_any(),
                }}
                <ActionForm action=reveal attr:class="inline">
                    <input type="hidden" name="id" value=reveal_id/>
                    <button type="submit" id="reveal-secret" disabled=move || reveal.pending().get() || secret().is_some()>
                        "Reveal"
                    </button>
                </ActionForm>
                <ActionForm action=rotate attr:class="inline">
                    <input type="hidden" name="id" value=id/>
                    <button type="submit" id="rotate-secret" disabled=move || rotate.pending().get()>
                        {move || if rotate.pending().get() { "Rotating…" } else { "Rotate" }}
                    </button>
                </ActionForm>
            </div>
            {move || rotate.value().get().map(|r| match r {
                Ok(message) => view! { <p class="result ok" role="status" id="rotate-result">{message}</p> }.into_any(),
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
            })}
        </section>
    }
}

/// The delivery log's resources, made by the page and shown by the panel.
#[derive(Clone, Copy)]
struct LogPanels {
    log: Resource<Result<DeliveryLog, AppError>>,
    detail: Resource<Result<Option<DeliveryInfo>, AppError>>,
    refresh: RwSignal<u32>,
    /// Made by the page, so its result outlives the detail's refetch.
    resend: ServerAction<ResendDelivery>,
    health: Resource<Result<Vec<HourBar>, AppError>>,
}

#[component]
fn DeliveryLogPanel(id: String, panels: LogPanels) -> impl IntoView {
    let LogPanels { log, detail, refresh, resend, health } = panels;
    let base = format!("/settings/api/webhooks/{id}");
    let query = use_query_map();
    let current = move |k: &str| query.read().get(k).unwrap_or_default();
    // The outcomes first: they are what a person looking at the log asks about.
    let statuses = [
        DeliveryStatus::Succeeded,
        DeliveryStatus::Failed,
        DeliveryStatus::Pending,
        DeliveryStatus::Delivering,
        DeliveryStatus::Skipped,
    ]
    .map(DeliveryStatus::as_str);
    view! {
        <section class="card" aria-labelledby="health-title">
            <h2 id="health-title">"Last 24 hours"</h2>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match health.await {
                        Ok(hours) => view! { <HealthChart hours/> }.into_any(),
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <section class="card" aria-labelledby="log-title">
            <div class="section-head">
                <h2 id="log-title">"Delivery log"</h2>
                <button type="button" id="refresh-log" on:click=move |_| refresh.update(|n| *n += 1)>"Refresh"</button>
            </div>
            <form method="get" action=base.clone() class="filters" aria-label="Filter the delivery log">
                <label>
                    "Status"
                    <select name="status">
                        <option value="">"Any"</option>
                        {statuses.into_iter().map(|s| view! { <option value=s selected=move || current("status") == s>{s}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Event type" <input type="text" name="event_type" value=move || current("event_type") placeholder="e.g. review-created"/></label>
                <label>"From" <input type="date" name="from" value=move || current("from")/></label>
                <label>"To" <input type="date" name="to" value=move || current("to")/></label>
                <div class="actions">
                    <button type="submit">"Filter"</button>
                    <A href=base.clone()>"Clear"</A>
                </div>
            </form>
            <Transition fallback=|| view! { <p class="loading">"Loading deliveries…"</p> }>
                {
                    let base = base.clone();
                    move || {
                        let base = base.clone();
                        Suspend::new(async move {
                            match log.await {
                                Ok(log) => view! { <DeliveryTable log base/> }.into_any(),
                                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                            }
                        })
                    }
                }
            </Transition>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match detail.await {
                        Ok(Some(info)) => view! { <DeliveryDetail info resend/> }.into_any(),
                        Ok(None) => ().into_any(),
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn DeliveryTable(log: DeliveryLog, base: String) -> impl IntoView {
    if log.items.is_empty() {
        return view! { <p class="empty">"No deliveries yet. Events sent to this webhook appear here."</p> }
            .into_any();
    }
    // The pages before and after keep the filters, not an open delivery.
    let query = use_query_map();
    let links = Trail::from_query(&query.read_untracked(), "cursor").links_keeping(
        &base,
        &query.read_untracked(),
        log.next_cursor.as_deref(),
        |k| ["status", "event_type", "from", "to"].contains(&k),
    );
    view! {
        <DeliveryRows items=log.items detail_base=Some(base)/>
        <DeliveryPager links/>
    }
    .into_any()
}

/// A page of deliveries as a table; each time links to the delivery's detail when there is
/// one to open (the dashboard's log), not in the portal's.
#[component]
pub(crate) fn DeliveryRows(items: Vec<server::DeliveryRow>, detail_base: Option<String>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="deliveries">
                <thead>
                    <tr>
                        <th scope="col">"Time"</th>
                        <th scope="col">"Event type"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"HTTP"</th>
                        <th scope="col">"Duration"</th>
                        <th scope="col">"Attempts"</th>
                    </tr>
                </thead>
                <tbody>
                    {items.into_iter().map(|d| {
                        let time = match &detail_base {
                            Some(base) => {
                                let link = href(base, &[("delivery", &d.id)]);
                                view! { <A href=link>{d.time.clone()}</A> }.into_any()
                            }
                            None => d.time.clone().into_any(),
                        };
                        view! {
                            <tr data-delivery-id=d.id.clone() data-status=d.status.clone()>
                                <td>{time}</td>
                                // The event's page says why it did or did not arrive (not in the portal).
                                <td><code>{d.event_type.clone()}</code></td>
                                <td><span class=format!("status {}", d.status)>{d.status.clone()}</span></td>
                                <td class="http">{d.http_status.map(|s| s.to_string()).unwrap_or_else(|| "—".into())}</td>
                                <td class="duration">{d.duration_ms.map(|ms| format!("{ms} ms")).unwrap_or_else(|| "—".into())}</td>
                                <td class="attempts">{d.attempts}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn DeliveryDetail(info: DeliveryInfo, resend: ServerAction<ResendDelivery>) -> impl IntoView {
    let id = info.row.id.clone();
    let result = move || resend.value().get().filter(|r| r.as_ref().map_or(true, |o| o.delivery_id == id));
    view! {
        <div class="delivery-detail" aria-label="Delivery detail">
            <div class="section-head">
                <h3>"Delivery of " <code>{info.row.event_type.clone()}</code></h3>
                // A payload the retention removed cannot be sent again.
                {info.payload_removed.is_none().then(|| view! {
                    <ActionForm action=resend attr:class="inline">
                        <input type="hidden" name="delivery_id" value=info.row.id.clone()/>
                        <button type="submit" id="resend" disabled=move || resend.pending().get()>
                            {move || if resend.pending().get() { "Resending…" } else { "Resend" }}
                        </button>
                    </ActionForm>
                })}
            </div>
            {move || result().map(|r| match r {
                Ok(o) => view! { <p class=if o.succeeded { "result ok" } else { "result bad" } role="status">{o.summary}</p> }.into_any(),
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
            })}
            // The event's page says why it did or did not arrive at each webhook.
            <p class="hint">"Event " <A href=format!("/events/{}", info.event_id) attr:class="event-link"><code>{info.event_id.clone()}</code></A> " · status " {info.row.status.clone()}</p>
            <h4>"Payload"</h4>
            {match info.payload_removed.clone() {
                Some(note) => view! { <p class="notice payload-removed">{note}</p> }.into_any(),
                None => view! { <pre class="body">{info.payload.clone()}</pre> }.into_any(),
            }}
            {info.attempts.into_iter().enumerate().map(|(i, a)| view! {
                <article class="attempt">
                    <h4>{format!("Attempt {} · {} · {}", i + 1, a.started, a.trigger)}</h4>
                    <p>
                        {a.response_status.map(|s| format!("HTTP {s}")).unwrap_or_else(|| "No response".into())}
                        {format!(" in {} ms", a.duration_ms)}
                        {a.error.clone().map(|e| view! { <span class="field-error">" · " {e}</span> })}
                    </p>
                    <details>
                        <summary>"Request headers"</summary>
                        <Headers pairs=a.request_headers/>
                    </details>
                    <details>
                        <summary>"Response"</summary>
                        <Headers pairs=a.response_headers/>
                        <pre class="body">{a.response_body.unwrap_or_default()}</pre>
                    </details>
                </article>
            }).collect_view()}
        </div>
    }
}

#[component]
fn Headers(pairs: Vec<(String, String)>) -> impl IntoView {
    view! {
        <table class="headers">
            <tbody>
                {pairs.into_iter().map(|(k, v)| view! { <tr><th scope="row">{k}</th><td>{v}</td></tr> }).collect_view()}
            </tbody>
        </table>
    }
}

/// What the webhook skipped while it was off: shown with a replay button once it is on, and
/// as a count while it is off.
#[component]
fn ReplayOffer(id: String, enabled: bool, edit: EditPanels) -> impl IntoView {
    let EditPanels { replay, skipped, .. } = edit;
    let id = StoredValue::new(id);
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let n = skipped.await.unwrap_or(0);
                let done = replay.value().get().and_then(Result::ok);
                let failed = replay.value().get().and_then(Result::err);
                if let Some(replayed) = done {
                    return view! { <div class="banner ok" role="status" id="replay-result"><p>{format!("{replayed} skipped events queued for delivery.")}</p></div> }.into_any();
                }
                if n == 0 {
                    return ().into_any();
                }
                let events = if n == 1 { "1 event was".to_string() } else { format!("{n} events were") };
                if !enabled {
                    return view! { <p class="hint" id="skipped-count">{format!("{events} not delivered while this webhook was off. Turn it on to replay them.")}</p> }.into_any();
                }
                view! {
                    <div class="banner warn" role="status" id="replay-offer">
                        <p>{format!("{events} not delivered while this webhook was off.")}</p>
                        <ActionForm action=replay attr:class="inline">
                            <input type="hidden" name="id" value=id.get_value()/>
                            <button type="submit" class="primary" disabled=move || replay.pending().get()>
                                {move || if replay.pending().get() { "Replaying…".to_string() } else { format!("Replay {n}") }}
                            </button>
                        </ActionForm>
                        {failed.map(|e| view! { <ErrorBox error=e/> })}
                    </div>
                }.into_any()
            })}
        </Suspense>
    }
}

/// Change the URL, description and event types.
#[component]
fn EditPanel(row: WebhookRow, edit: EditPanels) -> impl IntoView {
    let EditPanels { editing, catalog, update, .. } = edit;
    let error = move || update.value().get().and_then(Result::err);
    let field_error = move |name: &'static str| error().and_then(|e| e.for_field(name));
    let row = StoredValue::new(row);
    view! {
        <section class="card" aria-labelledby="edit-title">
            <div class="section-head">
                <h2 id="edit-title">"Settings"</h2>
                <Show when=move || !editing.get()>
                    <button type="button" id="edit-webhook" on:click=move |_| editing.set(true)>"Edit"</button>
                </Show>
            </div>
            <Show when=move || editing.get()>
                {move || {
                    let r = row.get_value();
                    let all = r.event_types.is_none();
                    let selected = r.event_types.clone().unwrap_or_default();
                    view! {
                        <ActionForm action=update attr:class="form webhook-form" attr:aria-label="Edit webhook">
                            <input type="hidden" name="id" value=r.id.clone()/>
                            <UrlField id="edit-url" initial=r.url.clone() server_error=Signal::derive(move || field_error("url"))/>
                            <label for="edit-description">"Description " <span class="optional">"(optional)"</span></label>
                            <input id="edit-description" name="description" type="text" maxlength="500" value=r.description.clone()/>
                            <p class="field-error">{move || field_error("description")}</p>
                            <fieldset class="events-picker">
                                <legend>"Events to send"</legend>
                                <label class="radio"><input type="radio" name="events" value="all" checked=all/>" All events"</label>
                                <label class="radio"><input type="radio" name="events" value="selected" checked=!all/>" Selected events"</label>
                                <Suspense fallback=|| ()>
                                    {
                                        let selected = selected.clone();
                                        move || {
                                            let selected = selected.clone();
                                            Suspend::new(async move {
                                                match catalog.await {
                                                    Ok(types) => view! { <EventGroups types=types.unwrap_or_default() selected/> }.into_any(),
                                                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                                                }
                                            })
                                        }
                                    }
                                </Suspense>
                                <p class="field-error">{move || field_error("event_types")}</p>
                            </fieldset>
                            <delivery_control::DeliveryControlFields prefix="edit" initial=delivery_control::ControlValues::from(&r) error=Signal::derive(error)/>
                            {move || error().filter(|e| e.for_field("url").is_none() && e.for_field("description").is_none() && e.for_field("event_types").is_none() && !delivery_control::is_control_field(e)).map(|e| view! { <p class="form-error" role="alert">{e.to_string()}</p> })}
                            <div class="actions">
                                <button type="submit" class="primary" id="save-webhook" disabled=move || update.pending().get()>
                                    {move || if update.pending().get() { "Saving…" } else { "Save" }}
                                </button>
                                <button type="button" on:click=move |_| editing.set(false)>"Cancel"</button>
                            </div>
                        </ActionForm>
                    }
                }}
            </Show>
        </section>
    }
}

/// Successes and failures per hour over the last day, drawn on the server as SVG: bars of
/// attempts, failures stacked on top in red, each hour with its numbers as a tooltip.
#[component]
pub(crate) fn HealthChart(
    hours: Vec<HourBar>,
    #[prop(into, default = "in the last 24 hours".into())] span: String,
) -> impl IntoView {
    let succeeded: u64 = hours.iter().map(|h| h.succeeded).sum();
    let failed: u64 = hours.iter().map(|h| h.failed).sum();
    let peak = hours.iter().map(|h| h.succeeded + h.failed).max().unwrap_or(0).max(1) as f64;
    let (width, height, gap) = (480.0, 96.0, 2.0);
    let bar = width / hours.len().max(1) as f64;
    let summary = format!("{succeeded} successful and {failed} failed attempts {span}");
    let first = hours.first().map(|h| h.hour.clone()).unwrap_or_default();
    let last = hours.last().map(|h| h.hour.clone()).unwrap_or_default();
    view! {
        <figure class="health-chart">
            <svg viewBox=format!("0 0 {width} {}", height + 16.0) role="img" aria-label=summary.clone() preserveAspectRatio="none">
                <line x1="0" y1=height x2=width y2=height class="axis"/>
                {hours.into_iter().enumerate().map(|(i, h)| {
                    let x = i as f64 * bar + gap / 2.0;
                    let ok_h = h.succeeded as f64 / peak * height;
                    let bad_h = h.failed as f64 / peak * height;
                    let tip = format!("{} UTC: {} succeeded, {} failed", h.hour, h.succeeded, h.failed);
                    view! {
                        <g class="hour">
                            <title>{tip}</title>
                            <rect x=x y=height - ok_h width=bar - gap height=ok_h class="ok"/>
                            <rect x=x y=height - ok_h - bad_h width=bar - gap height=bad_h class="bad"/>
                        </g>
                    }
                }).collect_view()}
                <text x="0" y=height + 13.0 class="label">{first}</text>
                <text x=width y=height + 13.0 class="label" text-anchor="end">{last}</text>
            </svg>
            <figcaption id="health-summary">{summary}</figcaption>
        </figure>
    }
}

/// The delivery log's links to newer and older deliveries.
#[component]
pub(crate) fn DeliveryPager(
    links: PageLinks,
    #[prop(optional)] older_id: Option<&'static str>,
) -> impl IntoView {
    let PageLinks { previous, next } = links;
    (previous.is_some() || next.is_some()).then(move || {
        view! {
            <p class="pager">
                {previous.map(|href| view! { <A href=href attr:rel="prev">"← Newer deliveries"</A> })}
                " "
                {next.map(|href| view! { <A href=href attr:id=older_id attr:rel="next">"Older deliveries →"</A> })}
            </p>
        }
    })
}
