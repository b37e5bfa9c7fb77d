//! Settings › API: the store's webhooks, with "Create Webhook" (or "Add" once some exist).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

mod listeners;
pub(crate) mod server;

use server::{
    ApiKeyRow, CreateApiKey, CreateWebhook, RevokeApiKey, WebhookList, store_api_keys, store_webhooks,
};
pub(crate) use server::{EventTypeInfo, event_catalog};

use crate::components::{CopyButton, ErrorBox, Frame, HealthBadge, UrlField, WebhookSwitch};
use crate::error::AppError;
use crate::pages::webhook::delivery_control::{ControlValues, DeliveryControlFields, is_control_field};
use crate::pages::webhook::{DeleteWebhook, RotateSecret, SendTestEvent};
use crate::paging::{Pager, Trail, href};

/// Where each list of the page keeps its place in the address.
const KEYS: &str = "keys";
const WEBHOOKS: &str = "webhooks";

#[component]
pub fn SettingsApiPage() -> impl IntoView {
    view! {
        <Title text="Settings › API"/>
        <Frame>
            <SettingsApi/>
        </Frame>
    }
}

#[component]
fn SettingsApi() -> impl IntoView {
    let query = use_query_map();
    let picked_store = move || query.read().get("store");
    let create = ServerAction::<CreateWebhook>::new();
    let changed = RwSignal::new(0u32);
    // Refetch after a webhook was created, not after a failed try: that would remount the
    // form and lose what the merchant typed.
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            changed.update(|n| *n += 1);
        }
    });
    let webhooks_cursor = move || Trail::from_query(&query.read(), WEBHOOKS).cursor();
    let list = Resource::new(
        move || (picked_store(), webhooks_cursor(), changed.get()),
        |(store, cursor, _)| store_webhooks(store, cursor),
    );
    let wants_form =
        move || query.read().get("new").is_some() || create.value().get().is_some_and(|r| r.is_err());
    // Created here, not inside the form, so that it belongs to the page's owner.
    let catalog = Resource::new(wants_form, |wanted| async move {
        if wanted { event_catalog().await.map(Some) } else { Ok(None) }
    });
    let create_key = ServerAction::<CreateApiKey>::new();
    let revoke_key = ServerAction::<RevokeApiKey>::new();
    let keys_cursor = move || Trail::from_query(&query.read(), KEYS).cursor();
    let keys = Resource::new(
        move || (picked_store(), keys_cursor(), create_key.version().get(), revoke_key.version().get()),
        |(store, cursor, _, _)| store_api_keys(store, cursor),
    );
    view! {
        <h1>"API"</h1>
        <section class="card" aria-labelledby="keys-title">
            <Transition fallback=|| view! { <p class="loading">"Loading API keys…"</p> }>
                {move || Suspend::new(async move {
                    match keys.await {
                        Ok(keys) => {
                            let pages = Trail::from_query(&query.read(), KEYS).links("/settings/api", &query.read(), keys.next_cursor.as_deref());
                            view! {
                                <ApiKeysSection keys=keys.keys created=keys.created store=picked_store().unwrap_or_default() create=create_key revoke=revoke_key/>
                                <Pager links=pages list=KEYS label="Pages of API keys"/>
                            }.into_any()
                        }
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <section class="card" aria-labelledby="webhooks-title">
            <Transition fallback=|| view! { <p class="loading">"Loading webhooks…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(list) => {
                            let pages = Trail::from_query(&query.read(), WEBHOOKS).links("/settings/api", &query.read(), list.next_cursor.as_deref());
                            view! {
                                <WebhooksSection list create catalog wants_form=Signal::derive(wants_form) changed/>
                                <Pager links=pages list=WEBHOOKS label="Pages of webhooks"/>
                            }.into_any()
                        }
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <listeners::ListeningNow store=Signal::derive(picked_store)/>
    }
}

#[component]
fn WebhooksSection(
    list: WebhookList,
    create: ServerAction<CreateWebhook>,
    catalog: Resource<Result<Option<Vec<EventTypeInfo>>, AppError>>,
    wants_form: Signal<bool>,
    changed: RwSignal<u32>,
) -> impl IntoView {
    let add_href = href("/settings/api", &[("store", &list.store_id), ("new", "1")]);
    let cancel_href = href("/settings/api", &[("store", &list.store_id)]);
    let empty = list.webhooks.is_empty();
    let store_id = list.store_id.clone();
    view! {
        <div class="section-head">
            <h2 id="webhooks-title">"Webhooks"</h2>
            <A href=add_href attr:class="button primary" attr:id="add-webhook">
                {if empty { "Create Webhook" } else { "Add" }}
            </A>
        </div>
        <p class="hint">
            "Webhooks notify your systems when something happens in "
            <strong>{list.store_name.clone()}</strong>
            ". Each webhook receives every event unless you choose event types."
        </p>
        <Show when=move || wants_form.get()>
            <WebhookForm create catalog store_id=store_id.clone() cancel_href=cancel_href.clone()/>
        </Show>
        {if empty {
            view! { <p class="empty">"No webhooks yet."</p> }.into_any()
        } else {
            view! {
                <ul class="webhooks" aria-label="Webhooks">
                    {list.webhooks.into_iter().map(|w| {
                        let href = format!("/settings/api/webhooks/{}", w.id);
                        let summary = w.events_summary();
                        let (action_id, action_url) = (w.id.clone(), w.url.clone());
                        view! {
                            <li class="webhook-row" data-webhook-id=w.id.clone()>
                                <WebhookSwitch id=w.id.clone() enabled=w.enabled url=w.url.clone() on_change=move |_| changed.update(|n| *n += 1)/>
                                <div class="webhook-main">
                                    <A href=href attr:class="webhook-url">{w.url.clone()}</A>
                                    {(!w.description.is_empty()).then(|| view! { <p class="desc">{w.description.clone()}</p> })}
                                    <p class="events">{summary}</p>
                                </div>
                                <HealthBadge kind=w.health.clone() text=w.health_text.clone()/>
                                <RowActions id=action_id url=action_url changed/>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            }.into_any()
        }}
    }
}

#[component]
fn WebhookForm(
    create: ServerAction<CreateWebhook>,
    catalog: Resource<Result<Option<Vec<EventTypeInfo>>, AppError>>,
    store_id: String,
    cancel_href: String,
) -> impl IntoView {
    let error = move || create.value().get().and_then(Result::err);
    let field_error = move |name: &'static str| error().and_then(|e| e.for_field(name));
    let other_error = move || {
        error().filter(|e| !matches!(e, AppError::Invalid { field: Some(f), .. } if f == "url" || f == "event_types" || f == "description") && !is_control_field(e))
    };
    view! {
        <ActionForm action=create attr:class="form webhook-form" attr:aria-label="New webhook">
            <input type="hidden" name="store" value=store_id/>
            <UrlField id="webhook-url" initial="" server_error=Signal::derive(move || field_error("url"))/>
            <label for="webhook-description">"Description " <span class="optional">"(optional)"</span></label>
            <input id="webhook-description" name="description" type="text" maxlength="500"/>
            <p class="field-error">{move || field_error("description")}</p>
            <fieldset class="events-picker">
                <legend>"Events to send"</legend>
                <label class="radio"><input type="radio" name="events" value="all" checked/>" All events"</label>
                <label class="radio"><input type="radio" name="events" value="selected"/>" Selected events"</label>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        match catalog.await {
                            Ok(types) => view! { <EventGroups types=types.unwrap_or_default() selected=Vec::new()/> }.into_any(),
                            Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                        }
                    })}
                </Suspense>
                <p class="field-error">{move || field_error("event_types")}</p>
            </fieldset>
            <DeliveryControlFields prefix="webhook" initial=ControlValues::default() error=Signal::derive(error)/>
            {move || other_error().map(|e| view! { <p class="form-error" role="alert">{e.to_string()}</p> })}
            <div class="actions">
                <button type="submit" class="primary" disabled=move || create.pending().get()>
                    {move || if create.pending().get() { "Creating…" } else { "Create" }}
                </button>
                <A href=cancel_href attr:class="button">"Cancel"</A>
            </div>
        </ActionForm>
    }
}

/// The catalog by product group, with "All" per group; `selected` are checked. `/ui.js`
/// makes "All" check its group, before the WebAssembly has loaded too.
#[component]
pub(crate) fn EventGroups(types: Vec<EventTypeInfo>, selected: Vec<String>) -> AnyView {
    let mut groups: Vec<(String, Vec<(usize, EventTypeInfo)>)> = Vec::new();
    for (i, t) in types.into_iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, items)) => items.push((i, t)),
            None => groups.push((t.group.clone(), vec![(i, t)])),
        }
    }
    view! {
        <div class="event-groups">
            {groups.into_iter().map(|(group, items)| view! {
                <fieldset class="event-group">
                    <legend>{group.clone()}</legend>
                    <label class="check group-all">
                        <input
                            type="checkbox"
                            aria-label=format!("All {group} events")
                            data-group-all=""
                        />
                        " All " {group.clone()}
                    </label>
                    {items.into_iter().map(|(i, t)| {
                        let checked = selected.contains(&t.name);
                        view! {
                            <label class="check" title=t.description.clone()>
                                <input
                                    type="checkbox"
                                    name=format!("event_types[{i}]")
                                    value=t.name.clone()
                                    checked=checked
                                    data-event-type=""
                                />
                                " " <code>{t.name.clone()}</code>
                            </label>
                        }
                    }).collect_view()}
                </fieldset>
            }).collect_view()}
        </div>
    }
    .into_any()
}

/// The store's API keys: create one with a name (shown once), see when each was last used,
/// revoke.
#[component]
fn ApiKeysSection(
    keys: Vec<ApiKeyRow>,
    /// A key created by a plain form post, before the WebAssembly loaded.
    created: Option<String>,
    store: String,
    create: ServerAction<CreateApiKey>,
    revoke: ServerAction<RevokeApiKey>,
) -> impl IntoView {
    let new_key = move || create.value().get().and_then(Result::ok).or_else(|| created.clone());
    let create_error = move || create.value().get().and_then(Result::err);
    let empty = keys.is_empty();
    let revoke_store = store.clone();
    // Which key's revocation is under way.
    let revoking = move |id: &str| revoke.pending().get() && revoke.input().get().is_some_and(|r| r.id == id);
    view! {
        <div class="section-head">
            <h2 id="keys-title">"API keys"</h2>
        </div>
        <p class="hint">
            "Keys let your systems call the Hookline API for this store. A key is shown once, when it is created. "
            <a href="/docs/api" rel="external">"API reference"</a>
            " · "
            <A href="/settings/api/events" attr:id="event-catalog">"Event catalog"</A>
        </p>
        <ActionForm action=create attr:class="form inline-form" attr:aria-label="New API key">
            <input type="hidden" name="store" value=store/>
            <label for="key-name">"Key name"</label>
            <input id="key-name" name="name" type="text" maxlength="200" placeholder="e.g. Order service" required/>
            <button type="submit" id="create-key" disabled=move || create.pending().get()>
                {move || if create.pending().get() { "Creating…" } else { "Create key" }}
            </button>
        </ActionForm>
        {move || create_error().map(|e| view! { <p class="form-error" role="alert">{e.to_string()}</p> })}
        {move || new_key().map(|key| view! {
            <div class="banner ok" role="status">
                <p>"Copy this key now. It will not be shown again."</p>
                <code class="secret" id="new-api-key">{key.clone()}</code>
                <CopyButton text=key/>
            </div>
        })}
        {if empty {
            view! { <p class="empty">"No API keys yet."</p> }.into_any()
        } else {
            view! {
                <table class="keys" aria-label="API keys">
                    <thead><tr><th>"Name"</th><th>"Key"</th><th>"Created"</th><th>"Last used"</th><th></th></tr></thead>
                    <tbody>
                        {keys.into_iter().map(|k| {
                            let store = revoke_store.clone();
                            let key_id = k.id.clone();
                            let row_id = k.id.clone();
                            view! {
                                <tr data-key-id=k.id.clone()>
                                    <td>{k.name.clone()}</td>
                                    <td><code>{format!("{}…", k.prefix)}</code></td>
                                    <td>{k.created.clone()}</td>
                                    <td>{k.last_used.clone().unwrap_or_else(|| "Never".into())}</td>
                                    <td>
                                        {match k.revoked.clone() {
                                            Some(at) => view! { <span class="badge off">{format!("Revoked {at}")}</span> }.into_any(),
                                            None => view! {
                                                <ActionForm action=revoke attr:class="inline">
                                                    <input type="hidden" name="store" value=store/>
                                                    <input type="hidden" name="id" value=row_id/>
                                                    <button type="submit" class="danger" disabled=move || revoke.pending().get()>
                                                        {move || if revoking(&key_id) { "Revoking…" } else { "Revoke" }}
                                                    </button>
                                                </ActionForm>
                                            }.into_any(),
                                        }}
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        {move || revoke.value().get().and_then(Result::err).map(|e| view! { <ErrorBox error=e/> })}
    }
}

/// A webhook row's actions menu: a `<details>`, so it opens without JavaScript.
#[component]
fn RowActions(id: String, url: String, changed: RwSignal<u32>) -> impl IntoView {
    let test = ServerAction::<SendTestEvent>::new();
    let rotate = ServerAction::<RotateSecret>::new();
    let delete = ServerAction::<DeleteWebhook>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = delete.value().get() {
            changed.update(|n| *n += 1);
        }
    });
    let edit_href = href(&format!("/settings/api/webhooks/{id}"), &[("edit", "1")]);
    // The latest action's answer.
    let last = RwSignal::new(None::<Result<(bool, String), AppError>>);
    Effect::new(move |_| {
        if let Some(r) = test.value().get() {
            last.set(Some(r.map(|o| (o.succeeded, o.summary))));
        }
    });
    Effect::new(move |_| {
        if let Some(r) = rotate.value().get() {
            last.set(Some(r.map(|m| (true, m))));
        }
    });
    Effect::new(move |_| {
        if let Some(Err(e)) = delete.value().get() {
            last.set(Some(Err(e)));
        }
    });
    let result = move || last.get();
    let (id_test, id_rotate) = (id.clone(), id.clone());
    view! {
        <details class="row-actions">
            <summary aria-label=format!("Actions for {url}")>"Actions"</summary>
            <div class="menu" role="menu">
                <A href=edit_href attr:role="menuitem">"Edit"</A>
                <ActionForm action=test attr:class="inline">
                    <input type="hidden" name="id" value=id_test/>
                    <button type="submit" role="menuitem" disabled=move || test.pending().get()>
                        {move || if test.pending().get() { "Sending…" } else { "Send test event" }}
                    </button>
                </ActionForm>
                <ActionForm action=rotate attr:class="inline">
                    <input type="hidden" name="id" value=id_rotate/>
                    <button type="submit" role="menuitem" disabled=move || rotate.pending().get()>
                        {move || if rotate.pending().get() { "Rotating…" } else { "Rotate secret" }}
                    </button>
                </ActionForm>
                <details class="confirm-delete">
                    <summary role="menuitem">"Delete…"</summary>
                    <ActionForm action=delete attr:class="confirm" attr:role="alertdialog" attr:aria-label="Confirm deletion">
                        <input type="hidden" name="id" value=id/>
                        <p>"Delete this webhook and its delivery log?"</p>
                        <button type="submit" class="danger" disabled=move || delete.pending().get()>
                            {move || if delete.pending().get() { "Deleting…" } else { "Delete webhook" }}
                        </button>
                    </ActionForm>
                </details>
            </div>
        </details>
        {move || result().map(|r| match r {
            Ok((ok, text)) => view! { <p class=if ok { "result ok row-result" } else { "result bad row-result" } role="status">{text}</p> }.into_any(),
            Err(e) => view! { <p class="result bad row-result" role="alert">{e.to_string()}</p> }.into_any(),
        })}
    }
}
