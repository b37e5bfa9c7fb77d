//! The embeddable portal: one tenant's webhooks (list, create, edit, on/off, test, secret,
//! delivery control and its conditions bench, delivery log) for a partner app's or platform's
//! users, without a user account. The
//! session is the token in the address (`/portal/{session}/…`), made by opening a one-time
//! link from `POST /api/v1/portal-sessions`; every server function derives its scope from
//! it. No top bar, no link to the rest of the dashboard: the page lives in another site's
//! iframe.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

pub(crate) mod server;

use server::{
    PortalCreateWebhook, PortalDeleteWebhook, PortalRevealSecret, PortalRotateSecret, PortalSendTest,
    PortalState, PortalSwitchWebhook, PortalUpdateWebhook, PortalWebhookList, SESSION_ENDED,
    portal_deliveries, portal_event_types, portal_info, portal_webhook, portal_webhooks,
};

use crate::components::{CopyButton, HealthBadge, UrlField};
use crate::error::AppError;
use crate::pages::settings::{EventGroups, EventTypeInfo};
use crate::pages::webhook::conditions_bench::ConditionsBench;
use crate::pages::webhook::delivery_control::{
    ControlFacts, ControlValues, DeliveryControlFields, is_control_field,
};
use crate::pages::webhook::server::DeliveryLog;
use crate::pages::webhook::{DeliveryRows, WebhookRow};
use crate::paging::{Pager, Trail, href};

/// The session token of the page's address.
fn use_session() -> Memo<String> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get("session").unwrap_or_default())
}

/// An error as the portal says it: an ended session in words, not "please sign in".
#[component]
fn PortalError(error: AppError) -> impl IntoView {
    let text = match error {
        AppError::Unauthenticated => SESSION_ENDED.to_string(),
        AppError::NotFound => "Not found: there is no such webhook here.".to_string(),
        other => other.to_string(),
    };
    view! { <div class="error-box" role="alert">{text}</div> }
}

/// The portal's frame: whose webhooks and until when, or that the session ended (then
/// nothing else).
#[component]
fn PortalShell(info: Resource<Result<PortalState, AppError>>, children: ChildrenFn) -> impl IntoView {
    view! {
        <main class="page portal">
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {
                    let children = children.clone();
                    move || {
                        let children = children.clone();
                        Suspend::new(async move {
                            match info.await {
                                Ok(PortalState { ended: None, title, ends }) => view! {
                                    <p class="crumbs portal-head">
                                        <span id="portal-title">{title}</span>
                                        <span class="hint">" · session ends " {ends}</span>
                                    </p>
                                    {children()}
                                }.into_any(),
                                Ok(PortalState { ended: Some(text), .. }) => view! {
                                    <div class="card" id="portal-ended">
                                        <h1>"Session ended"</h1>
                                        <p>{text}</p>
                                    </div>
                                }.into_any(),
                                Err(e) => view! { <PortalError error=e/> }.into_any(),
                            }
                        })
                    }
                }
            </Transition>
        </main>
    }
}

/// `/portal/{session}/webhooks`: the list, with "Create Webhook" (or "Add").
#[component]
pub fn PortalWebhooksPage() -> impl IntoView {
    let session = use_session();
    let query = use_query_map();
    let info = Resource::new(move || session.get(), portal_info);
    let create = ServerAction::<PortalCreateWebhook>::new();
    let changed = RwSignal::new(0u32);
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            changed.update(|n| *n += 1);
        }
    });
    let cursor = move || Trail::from_query(&query.read(), "cursor").cursor();
    let list = Resource::new(
        move || (session.get(), cursor(), changed.get()),
        |(s, cursor, _)| portal_webhooks(s, cursor),
    );
    let wants_form =
        move || query.read().get("new").is_some() || create.value().get().is_some_and(|r| r.is_err());
    let catalog = Resource::new(
        move || (session.get(), wants_form()),
        |(s, wanted)| async move { if wanted { portal_event_types(s).await.map(Some) } else { Ok(None) } },
    );
    view! {
        <Title text="Webhooks"/>
        <PortalShell info>
            <section class="card" aria-labelledby="webhooks-title">
                <Transition fallback=|| view! { <p class="loading">"Loading webhooks…"</p> }>
                    {move || Suspend::new(async move {
                        match list.await {
                            Ok(list) => {
                                let base = format!("/portal/{}/webhooks", session.get_untracked());
                                let pages = Trail::from_query(&query.read(), "cursor").links(&base, &query.read(), list.next_cursor.as_deref());
                                view! {
                                    <PortalList list session=session.get_untracked() create catalog wants_form=Signal::derive(wants_form)/>
                                    <Pager links=pages list="cursor" label="Pages of webhooks"/>
                                }.into_any()
                            }
                            Err(e) => view! { <PortalError error=e/> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
        </PortalShell>
    }
}

#[component]
fn PortalList(
    list: PortalWebhookList,
    session: String,
    create: ServerAction<PortalCreateWebhook>,
    catalog: Resource<Result<Option<Vec<EventTypeInfo>>, AppError>>,
    wants_form: Signal<bool>,
) -> impl IntoView {
    let base = format!("/portal/{session}/webhooks");
    let add_href = href(&base, &[("new", "1")]);
    let empty = list.webhooks.is_empty();
    let form_session = session.clone();
    view! {
        <div class="section-head">
            <h1 id="webhooks-title">"Webhooks"</h1>
            <A href=add_href attr:class="button primary" attr:id="add-webhook">
                {if empty { "Create Webhook" } else { "Add" }}
            </A>
        </div>
        <p class="hint">"Webhooks notify your systems when something happens. Each webhook receives every event unless you choose event types."</p>
        <Show when=move || wants_form.get()>
            <PortalWebhookForm create catalog session=form_session.clone() cancel_href=base.clone()/>
        </Show>
        {if empty {
            view! { <p class="empty">"No webhooks yet."</p> }.into_any()
        } else {
            view! {
                <ul class="webhooks" aria-label="Webhooks">
                    {list.webhooks.into_iter().map(|w| {
                        let link = format!("/portal/{session}/webhooks/{}", w.id);
                        let summary = w.events_summary();
                        let manage = format!("Manage {}", w.url);
                        view! {
                            <li class="webhook-row" data-webhook-id=w.id.clone()>
                                // The dashboard's row has the on/off switch here; the portal's is on the webhook's page.
                                <span aria-hidden="true"></span>
                                <div class="webhook-main">
                                    <A href=link.clone() attr:class="webhook-url">{w.url.clone()}</A>
                                    {(!w.description.is_empty()).then(|| view! { <p class="desc">{w.description.clone()}</p> })}
                                    <p class="events">{summary}</p>
                                </div>
                                <HealthBadge kind=w.health.clone() text=w.health_text.clone()/>
                                <A href=link attr:class="button" attr:aria-label=manage>"Manage"</A>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            }.into_any()
        }}
    }
}

#[component]
fn PortalWebhookForm(
    create: ServerAction<PortalCreateWebhook>,
    catalog: Resource<Result<Option<Vec<EventTypeInfo>>, AppError>>,
    session: String,
    cancel_href: String,
) -> impl IntoView {
    let error = move || create.value().get().and_then(Result::err);
    let field_error = move |name: &'static str| error().and_then(|e| e.for_field(name));
    let other_error = move || {
        error().filter(|e| {
            e.for_field("url").is_none()
                && e.for_field("description").is_none()
                && e.for_field("event_types").is_none()
                && !is_control_field(e)
        })
    };
    view! {
        <ActionForm action=create attr:class="form webhook-form" attr:aria-label="New webhook">
            <input type="hidden" name="session" value=session/>
            <UrlField id="webhook-url" initial="" server_error=Signal::derive(move || field_error("url"))/>
            <label for="webhook-description">"Description " <span class="optional">"(optional)"</span></label>
            <input id="webhook-description" name="description" type="text" maxlength="500"/>
            <p class="field-error">{move || field_error("description")}</p>
            <EventsPicker catalog selected=None/>
            <p class="field-error">{move || field_error("event_types")}</p>
            <DeliveryControlFields prefix="webhook" initial=ControlValues::default() error=Signal::derive(error)/>
            {move || other_error().map(|e| view! { <PortalError error=e/> })}
            <div class="actions">
                <button type="submit" class="primary" disabled=move || create.pending().get()>
                    {move || if create.pending().get() { "Creating…" } else { "Create" }}
                </button>
                <A href=cancel_href attr:class="button">"Cancel"</A>
            </div>
        </ActionForm>
    }
}

/// "All events" or the chosen ones; `selected` is `None` for all.
#[component]
fn EventsPicker(
    catalog: Resource<Result<Option<Vec<EventTypeInfo>>, AppError>>,
    selected: Option<Vec<String>>,
) -> impl IntoView {
    let all = selected.is_none();
    let selected = selected.unwrap_or_default();
    view! {
        <fieldset class="events-picker">
            <legend>"Events to send"</legend>
            <label class="radio"><input type="radio" name="events" value="all" checked=all/>" All events"</label>
            <label class="radio"><input type="radio" name="events" value="selected" checked=!all/>" Selected events"</label>
            <Suspense fallback=|| ()>
                {move || {
                    let selected = selected.clone();
                    Suspend::new(async move {
                        match catalog.await {
                            Ok(types) => view! { <EventGroups types=types.unwrap_or_default() selected/> }.into_any(),
                            Err(e) => view! { <PortalError error=e/> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </fieldset>
    }
}

/// `/portal/{session}/webhooks/{id}`: one webhook.
#[component]
pub fn PortalWebhookPage() -> impl IntoView {
    let session = use_session();
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let query = use_query_map();
    let info = Resource::new(move || session.get(), portal_info);
    let refresh = RwSignal::new(0u32);
    let hook =
        Resource::new(move || (session.get(), id(), refresh.get()), |(s, id, _)| portal_webhook(s, id));
    let log = Resource::new(
        move || (session.get(), id(), Trail::from_query(&query.read(), "cursor").cursor(), refresh.get()),
        |(s, id, cursor, _)| portal_deliveries(s, id, cursor),
    );
    let editing = RwSignal::new(query.read_untracked().get("edit").is_some());
    let catalog = Resource::new(
        move || (session.get(), editing.get()),
        |(s, wanted)| async move { if wanted { portal_event_types(s).await.map(Some) } else { Ok(None) } },
    );
    let actions = Actions {
        update: ServerAction::new(),
        switch: ServerAction::new(),
        test: ServerAction::new(),
        reveal: ServerAction::new(),
        rotate: ServerAction::new(),
        delete: ServerAction::new(),
    };
    Effect::new(move |_| {
        if let Some(Ok(_)) = actions.update.value().get() {
            editing.set(false);
            refresh.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        if actions.switch.value().get().is_some() || actions.test.value().get().is_some() {
            refresh.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = actions.rotate.value().get() {
            actions.reveal.clear();
        }
    });
    view! {
        <Title text="Webhook"/>
        <PortalShell info>
            <p class="crumbs"><A href=move || format!("/portal/{}/webhooks", session.get())>"Webhooks"</A>" › Webhook"</p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match hook.await {
                        Ok(row) => view! { <PortalWebhookBody row session=session.get_untracked() actions editing catalog/> }.into_any(),
                        Err(AppError::NotFound) => view! {
                            <div class="card">
                                <h1>"Webhook not found"</h1>
                                <p>"There is no webhook at this address here."</p>
                            </div>
                        }.into_any(),
                        Err(e) => view! { <PortalError error=e/> }.into_any(),
                    }
                })}
            </Transition>
            <section class="card" aria-labelledby="log-title">
                <div class="section-head">
                    <h2 id="log-title">"Delivery log"</h2>
                    <button type="button" id="refresh-log" on:click=move |_| refresh.update(|n| *n += 1)>"Refresh"</button>
                </div>
                <Transition fallback=|| view! { <p class="loading">"Loading deliveries…"</p> }>
                    {move || Suspend::new(async move {
                        match log.await {
                            Ok(log) => {
                                let base = format!("/portal/{}/webhooks/{}", session.get_untracked(), id());
                                view! { <PortalDeliveries log base/> }.into_any()
                            }
                            Err(AppError::NotFound) => ().into_any(),
                            Err(e) => view! { <PortalError error=e/> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
        </PortalShell>
    }
}

/// The webhook page's actions, made by the page so their answers outlive a refetch.
#[derive(Clone, Copy)]
struct Actions {
    update: ServerAction<PortalUpdateWebhook>,
    switch: ServerAction<PortalSwitchWebhook>,
    test: ServerAction<PortalSendTest>,
    reveal: ServerAction<PortalRevealSecret>,
    rotate: ServerAction<PortalRotateSecret>,
    delete: ServerAction<PortalDeleteWebhook>,
}

#[component]
fn PortalWebhookBody(
    row: WebhookRow,
    session: String,
    actions: Actions,
    editing: RwSignal<bool>,
    catalog: Resource<Result<Option<Vec<EventTypeInfo>>, AppError>>,
) -> impl IntoView {
    let Actions { update, switch, test, reveal, rotate, delete } = actions;
    let summary = row.events_summary();
    let secret = move || reveal.value().get().and_then(Result::ok);
    let update_error = move || update.value().get().and_then(Result::err);
    let field_error = move |name: &'static str| update_error().and_then(|e| e.for_field(name));
    let other_error = move || {
        update_error().filter(|e| {
            e.for_field("url").is_none()
                && e.for_field("description").is_none()
                && e.for_field("event_types").is_none()
                && !is_control_field(e)
        })
    };
    let bench = view! { <ConditionsBench id=row.id.clone() conditions=row.conditions.clone() session=session.clone()/> };
    let s = StoredValue::new(session);
    let r = StoredValue::new(row.clone());
    let wid = StoredValue::new(row.id.clone());
    view! {
        <section class="card webhook-head">
            <div class="section-head">
                <h1 class="webhook-url">{row.url.clone()}</h1>
                <HealthBadge kind=row.health.clone() text=row.health_text.clone()/>
            </div>
            {(!row.enabled).then(|| view! { <div class="banner off" role="status">{row.health_text.clone()}</div> })}
            {(!row.description.is_empty()).then(|| view! { <p class="desc">{row.description.clone()}</p> })}
            <dl class="facts">
                <dt>"Events"</dt><dd>{summary}</dd>
                <dt>"Status"</dt>
                <dd>
                    <ActionForm action=switch attr:class="inline">
                        <input type="hidden" name="session" value=s.get_value()/>
                        <input type="hidden" name="id" value=wid.get_value()/>
                        <input type="hidden" name="enabled" value=(!row.enabled).to_string()/>
                        <span>{if row.enabled { "On " } else { "Off " }}</span>
                        <button type="submit" id="switch-webhook">{if row.enabled { "Turn off" } else { "Turn on" }}</button>
                    </ActionForm>
                </dd>
                <ControlFacts row=row.clone()/>
            </dl>
        </section>
        <section class="card" aria-labelledby="edit-title">
            <div class="section-head">
                <h2 id="edit-title">"Settings"</h2>
                <Show when=move || !editing.get()>
                    <button type="button" id="edit-webhook" on:click=move |_| editing.set(true)>"Edit"</button>
                </Show>
            </div>
            <Show when=move || editing.get()>
                {move || {
                    let row = r.get_value();
                    view! {
                        <ActionForm action=update attr:class="form webhook-form" attr:aria-label="Edit webhook">
                            <input type="hidden" name="session" value=s.get_value()/>
                            <input type="hidden" name="id" value=wid.get_value()/>
                            <UrlField id="edit-url" initial=row.url.clone() server_error=Signal::derive(move || field_error("url"))/>
                            <label for="edit-description">"Description " <span class="optional">"(optional)"</span></label>
                            <input id="edit-description" name="description" type="text" maxlength="500" value=row.description.clone()/>
                            <p class="field-error">{move || field_error("description")}</p>
                            <EventsPicker catalog selected=row.event_types.clone()/>
                            <p class="field-error">{move || field_error("event_types")}</p>
                            <DeliveryControlFields prefix="edit" initial=ControlValues::from(&row) error=Signal::derive(update_error)/>
                            {move || other_error().map(|e| view! { <PortalError error=e/> })}
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
        {bench}
        <section class="card" aria-labelledby="test-title">
            <div class="section-head">
                <h2 id="test-title">"Test"</h2>
                <ActionForm action=test attr:class="inline">
                    <input type="hidden" name="session" value=s.get_value()/>
                    <input type="hidden" name="id" value=wid.get_value()/>
                    <button type="submit" id="send-test" disabled=move || test.pending().get()>
                        {move || if test.pending().get() { "Sending…" } else { "Send test event" }}
                    </button>
                </ActionForm>
            </div>
            {move || test.value().get().map(|r| match r {
                Ok(o) => view! { <p class=if o.succeeded { "result ok" } else { "result bad" } role="status">{o.summary}</p> }.into_any(),
                Err(e) => view! { <PortalError error=e/> }.into_any(),
            })}
        </section>
        <section class="card" aria-labelledby="secret-title">
            <h2 id="secret-title">"Signing secret"</h2>
            <p class="hint">"Every delivery is signed with this secret in the Standard Webhooks format. Verify it before trusting a delivery."</p>
            <div class="secret-row">
                {move || match secret() {
                    Some(v) => view! { <code class="secret" id="signing-secret">{v.clone()}</code> <CopyButton text=v/> }.into_any(),
                    None => view! { <code class="secret hidden-secret">"whsec_••••••••••••••••••••"</code> }.into_any(),
                }}
                <ActionForm action=reveal attr:class="inline">
                    <input type="hidden" name="session" value=s.get_value()/>
                    <input type="hidden" name="id" value=wid.get_value()/>
                    <button type="submit" id="reveal-secret" disabled=move || reveal.pending().get() || secret().is_some()>"Reveal"</button>
                </ActionForm>
                <ActionForm action=rotate attr:class="inline">
                    <input type="hidden" name="session" value=s.get_value()/>
                    <input type="hidden" name="id" value=wid.get_value()/>
                    <button type="submit" id="rotate-secret" disabled=move || rotate.pending().get()>
                        {move || if rotate.pending().get() { "Rotating…" } else { "Rotate" }}
                    </button>
                </ActionForm>
            </div>
            {move || reveal.value().get().and_then(Result::err).map(|e| view! { <PortalError error=e/> })}
            {move || rotate.value().get().map(|r| match r {
                Ok(message) => view! { <p class="result ok" role="status" id="rotate-result">{message}</p> }.into_any(),
                Err(e) => view! { <PortalError error=e/> }.into_any(),
            })}
        </section>
        <section class="card danger" aria-labelledby="delete-title">
            <h2 id="delete-title">"Delete webhook"</h2>
            <details class="confirm-delete">
                <summary id="delete-webhook">"Delete…"</summary>
                <ActionForm action=delete attr:class="confirm" attr:role="alertdialog" attr:aria-label="Confirm deletion">
                    <input type="hidden" name="session" value=s.get_value()/>
                    <input type="hidden" name="id" value=wid.get_value()/>
                    <p><strong>"Delete this webhook and its delivery log? This cannot be undone."</strong></p>
                    <button type="submit" class="danger" id="confirm-delete" disabled=move || delete.pending().get()>"Delete webhook"</button>
                </ActionForm>
            </details>
            {move || delete.value().get().and_then(Result::err).map(|e| view! { <PortalError error=e/> })}
        </section>
    }
}

#[component]
fn PortalDeliveries(log: DeliveryLog, base: String) -> impl IntoView {
    if log.items.is_empty() {
        return view! { <p class="empty">"No deliveries yet. Events sent to this webhook appear here."</p> }
            .into_any();
    }
    let query = use_query_map();
    let links = Trail::from_query(&query.read_untracked(), "cursor").links(
        &base,
        &query.read_untracked(),
        log.next_cursor.as_deref(),
    );
    view! {
        <DeliveryRows items=log.items detail_base=None/>
        <Pager links list="cursor" label="Pages of deliveries"/>
    }
    .into_any()
}
