//! The admin's views across every store: the webhooks Hookline turned off by itself, and the
//! stores with their users. Anyone else gets a not-found page.

use hookline_domain::DeliveryStatus;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use leptos_router::hooks::use_query_map;

mod server;

use server::{
    ApplicationInfo, CreateApplication, CreateMerchantUser, CreateStore, DeleteStore, DeliveryHistory,
    DisabledWebhook, DisconnectApplication, InstallApplication, SetStoreRetention, StoreList, applications,
    deliveries_across_stores, stores_with_users, turned_off_webhooks,
};

use crate::components::{ErrorBox, Frame};
use crate::error::AppError;
use crate::pages::webhook::{DeliveryPager, SwitchWebhook};
use crate::paging::{Pager, Trail, href};

/// Where each list of the stores page keeps its place in the address.
const STORES: &str = "stores";
const APPLICATIONS: &str = "applications";

#[component]
fn NotForYou() -> impl IntoView {
    view! {
        <div class="card">
            <h1>"Not found"</h1>
            <p>"There is nothing at this address for your account."</p>
        </div>
    }
}

#[component]
pub fn AdminWebhooksPage() -> impl IntoView {
    let enable = ServerAction::<SwitchWebhook>::new();
    let list = Resource::new(move || enable.version().get(), |_| turned_off_webhooks());
    view! {
        <Title text="Turned-off webhooks"/>
        <Frame>
            <h1>"Webhooks turned off automatically"</h1>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(items) => view! { <DisabledList items enable/> }.into_any(),
                        Err(AppError::NotFound) => view! { <NotForYou/> }.into_any(),
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    }
                })}
            </Transition>
            {move || enable.value().get().and_then(Result::err).map(|e| view! { <ErrorBox error=e/> })}
        </Frame>
    }
}

#[component]
fn DisabledList(items: Vec<DisabledWebhook>, enable: ServerAction<SwitchWebhook>) -> impl IntoView {
    let enabling = move |id: &str| enable.pending().get() && enable.input().get().is_some_and(|t| t.id == id);
    if items.is_empty() {
        return view! { <p class="card empty">"No webhook is turned off. Every endpoint is being delivered to."</p> }
            .into_any();
    }
    view! {
        <section class="card">
            <table class="admin-table" aria-label="Webhooks turned off">
                <thead><tr><th>"Webhook"</th><th>"Tenant"</th><th>"Why"</th><th>"When"</th><th></th></tr></thead>
                <tbody>
                    {items.into_iter().map(|d| {
                        let href = format!("/settings/api/webhooks/{}", d.row.id);
                        let id = d.row.id.clone();
                        view! {
                            <tr data-webhook-id=d.row.id.clone()>
                                <td><A href=href attr:class="webhook-url">{d.row.url.clone()}</A></td>
                                <td>{d.store.clone()}</td>
                                <td>{d.reason.clone()}</td>
                                <td>{d.row.health_text.clone()}</td>
                                <td>
                                    <ActionForm action=enable attr:class="inline">
                                        <input type="hidden" name="id" value=id.clone()/>
                                        <input type="hidden" name="enabled" value="true"/>
                                        <button type="submit" class="primary" disabled=move || enable.pending().get()>
                                            {move || if enabling(&id) { "Re-enabling…" } else { "Re-enable" }}
                                        </button>
                                    </ActionForm>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any()
}

#[component]
pub fn AdminStoresPage() -> impl IntoView {
    let query = use_query_map();
    let create_store = ServerAction::<CreateStore>::new();
    let create_user = ServerAction::<CreateMerchantUser>::new();
    let store_actions = StoreActions {
        retention: ServerAction::<SetStoreRetention>::new(),
        delete: ServerAction::<DeleteStore>::new(),
    };
    let stores = Resource::new(
        move || {
            (
                Trail::from_query(&query.read(), STORES).cursor(),
                create_store.version().get(),
                create_user.version().get(),
                store_actions.retention.version().get(),
                store_actions.delete.version().get(),
            )
        },
        |(cursor, ..)| stores_with_users(cursor),
    );
    let create_app = ServerAction::<CreateApplication>::new();
    let install = ServerAction::<InstallApplication>::new();
    let disconnect = ServerAction::<DisconnectApplication>::new();
    let apps = Resource::new(
        move || {
            (
                Trail::from_query(&query.read(), APPLICATIONS).cursor(),
                create_app.version().get(),
                install.version().get(),
                disconnect.version().get(),
                create_store.version().get(),
                store_actions.delete.version().get(),
            )
        },
        |(cursor, ..)| applications(cursor),
    );
    let app_actions = AppActions { create: create_app, install, disconnect };
    view! {
        <Title text="Stores"/>
        <Frame>
            <h1>"Stores"</h1>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match stores.await {
                        Ok(stores) => {
                            let pages = Trail::from_query(&query.read(), STORES).links("/admin/stores", &query.read(), stores.next_cursor.as_deref());
                            view! { <StoresBody stores pages create_store create_user store_actions/> }.into_any()
                        }
                        Err(AppError::NotFound) => view! { <NotForYou/> }.into_any(),
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    }
                })}
            </Transition>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let stores: Vec<String> = match stores.await {
                        Ok(s) => s.stores.into_iter().map(|s| s.id).collect(),
                        Err(_) => return ().into_any(),
                    };
                    match apps.await {
                        Ok(apps) => {
                            let pages = Trail::from_query(&query.read(), APPLICATIONS).links("/admin/stores", &query.read(), apps.next_cursor.as_deref());
                            view! { <Applications apps=apps.applications pages stores actions=app_actions/> }.into_any()
                        }
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </Frame>
    }
}

/// What an admin does to one store: shorten its retention, delete it.
#[derive(Clone, Copy)]
struct StoreActions {
    retention: ServerAction<SetStoreRetention>,
    delete: ServerAction<DeleteStore>,
}

#[component]
fn StoresBody(
    stores: StoreList,
    pages: crate::paging::PageLinks,
    create_store: ServerAction<CreateStore>,
    create_user: ServerAction<CreateMerchantUser>,
    store_actions: StoreActions,
) -> impl IntoView {
    let StoreActions { retention, delete } = store_actions;
    let store_error = move || create_store.value().get().and_then(Result::err);
    let user_error = move || create_user.value().get().and_then(Result::err);
    let row_error = move || {
        retention.value().get().and_then(Result::err).or_else(|| delete.value().get().and_then(Result::err))
    };
    let StoreList { stores, retention: global, .. } = stores;
    let options: Vec<(String, String)> = stores.iter().map(|s| (s.id.clone(), s.name.clone())).collect();
    let hint = format!(
        "Events, deliveries and attempts are kept {global} (HOOKLINE_RETENTION); a store's own retention can only be shorter."
    );
    view! {
        <section class="card">
            <p class="hint">{hint}</p>
            {move || row_error().map(|e| view! { <p class="form-error" role="alert">{e.to_string()}</p> })}
            {move || delete.value().get().and_then(Result::ok).map(|id| view! {
                <p class="result ok" role="status">{format!("Store {id} is deleted; its data is being removed in the background.")}</p>
            })}
            <table class="admin-table" aria-label="Stores">
                <thead><tr><th>"Store"</th><th>"Id"</th><th>"Created"</th><th>"Users"</th><th>"Retention"</th><th></th></tr></thead>
                <tbody>
                    {stores.into_iter().map(|s| {
                        let settings_href = href("/settings/api", &[("store", &s.id)]);
                        let retention_label = format!("Retention of {}", s.id);
                        let delete_label = format!("Delete store {}", s.id);
                        let confirm_text = format!(" Delete {} with all of its webhooks, events, deliveries, users and API keys", s.id);
                        let (id_1, id_2) = (s.id.clone(), s.id.clone());
                        let (form_label, placeholder) = (retention_label.clone(), global.clone());
                        view! {
                            <tr data-store-id=s.id.clone()>
                                <td>{s.name.clone()}</td>
                                <td><code>{s.id.clone()}</code></td>
                                <td>{s.created.clone()}</td>
                                <td>{if s.users.is_empty() { "None".to_string() } else { s.users.join(", ") }}</td>
                                <td>
                                    <ActionForm action=retention attr:class="inline" attr:aria-label=form_label>
                                        <input type="hidden" name="store" value=id_1/>
                                        <input type="text" name="retention" size="5" maxlength="16" aria-label=retention_label
                                            value=s.retention.clone().unwrap_or_default() placeholder=placeholder/>
                                        <button type="submit">"Save"</button>
                                    </ActionForm>
                                </td>
                                <td class="actions">
                                    <A href=settings_href>"Settings › API"</A>
                                    <details class="confirm-delete">
                                        <summary>"Delete…"</summary>
                                        <ActionForm action=delete attr:class="confirm" attr:aria-label=delete_label>
                                            <input type="hidden" name="store" value=id_2/>
                                            <label class="check">
                                                <input type="checkbox" name="confirm" value="yes" required/>
                                                {confirm_text}
                                            </label>
                                            <button type="submit" class="danger">"Delete store"</button>
                                        </ActionForm>
                                    </details>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            <Pager links=pages list=STORES label="Pages of stores"/>
        </section>
        <section class="card" aria-labelledby="new-store-title">
            <h2 id="new-store-title">"New store"</h2>
            <ActionForm action=create_store attr:class="form" attr:aria-label="New store">
                <label for="store-id">"Store id (app key)"</label>
                <input id="store-id" name="id" type="text" required maxlength="128"/>
                <label for="store-name">"Name"</label>
                <input id="store-name" name="name" type="text" required maxlength="200"/>
                <div class="actions">
                    <button type="submit" class="primary" disabled=move || create_store.pending().get()>
                        {move || if create_store.pending().get() { "Creating…" } else { "Create store" }}
                    </button>
                </div>
            </ActionForm>
            {move || store_error().map(|e| view! { <p class="form-error" role="alert">{e.to_string()}</p> })}
        </section>
        <section class="card" aria-labelledby="new-user-title">
            <h2 id="new-user-title">"New merchant user"</h2>
            <ActionForm action=create_user attr:class="form" attr:aria-label="New merchant user">
                <label for="user-store">"Store"</label>
                <select id="user-store" name="store">
                    {options.into_iter().map(|(id, name)| view! { <option value=id.clone()>{format!("{name} ({id})")}</option> }).collect_view()}
                </select>
                <label for="user-email">"Email"</label>
                <input id="user-email" name="email" type="email" required/>
                <label for="user-password">"Password " <span class="optional">"(at least 10 characters)"</span></label>
                <input id="user-password" name="password" type="password" required minlength="10"/>
                <div class="actions">
                    <button type="submit" class="primary" disabled=move || create_user.pending().get()>
                        {move || if create_user.pending().get() { "Creating…" } else { "Create user" }}
                    </button>
                </div>
            </ActionForm>
            {move || user_error().map(|e| view! { <p class="form-error" role="alert">{e.to_string()}</p> })}
            {move || create_user.value().get().and_then(Result::ok).map(|email| view! { <p class="result ok" role="status">{format!("{email} can now sign in.")}</p> })}
        </section>
    }
}

/// Delivery history across every store, filtered by the query string (a plain GET form, so
/// it works before the WebAssembly has loaded), newest first, 50 a page.
#[component]
pub fn AdminDeliveriesPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |name: &str| query.read().get(name).filter(|v| !v.is_empty());
    let history = Resource::new(
        move || {
            (
                param("store"),
                param("webhook"),
                param("event_type"),
                param("status"),
                param("from"),
                param("to"),
                param("cursor"),
            )
        },
        |(store, webhook, event_type, status, from, to, cursor)| {
            deliveries_across_stores(store, webhook, event_type, status, from, to, cursor)
        },
    );
    view! {
        <Title text="Deliveries"/>
        <Frame>
            <h1>"Deliveries"</h1>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match history.await {
                        Ok(h) => view! { <History h current=Filters::from_query(&query.read())/> }.into_any(),
                        Err(AppError::NotFound) => view! { <NotForYou/> }.into_any(),
                        Err(e) => view! {
                            <ErrorBox error=e/>
                            <p><A href="/admin/deliveries">"Clear the filters"</A></p>
                        }.into_any(),
                    }
                })}
            </Transition>
        </Frame>
    }
}

#[derive(Clone, Default)]
struct Filters {
    store: String,
    webhook: String,
    event_type: String,
    status: String,
    from: String,
    to: String,
}

impl Filters {
    fn from_query(q: &leptos_router::params::ParamsMap) -> Self {
        let get = |k: &str| q.get(k).unwrap_or_default();
        Filters {
            store: get("store"),
            webhook: get("webhook"),
            event_type: get("event_type"),
            status: get("status"),
            from: get("from"),
            to: get("to"),
        }
    }
}

/// The history's filters, which its pages keep.
const FILTERS: [&str; 6] = ["store", "webhook", "event_type", "status", "from", "to"];

/// 12345 → "12,345".
fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[component]
fn History(h: DeliveryHistory, current: Filters) -> impl IntoView {
    let total: u64 = h.totals.iter().map(|(_, n)| n).sum();
    // The pages before and after keep the filters.
    let query = use_query_map();
    let pages = Trail::from_query(&query.read_untracked(), "cursor").links_keeping(
        "/admin/deliveries",
        &query.read_untracked(),
        h.next_cursor.as_deref(),
        |k| FILTERS.contains(&k),
    );
    let select = |name: &'static str, label: &'static str, options: Vec<String>, chosen: String| {
        view! {
            <label>
                {label}
                <select name=name>
                    <option value="">"Any"</option>
                    {options.into_iter().map(|o| {
                        let selected = o == chosen;
                        view! { <option value=o.clone() selected=selected>{o.clone()}</option> }
                    }).collect_view()}
                </select>
            </label>
        }
    };
    view! {
        <section class="card">
            <form method="get" action="/admin/deliveries" class="filters" aria-label="Filter deliveries">
                {select("store", "Store", h.stores.clone(), current.store.clone())}
                {select("event_type", "Event type", h.event_types.clone(), current.event_type.clone())}
                {select("status", "Status", DeliveryStatus::ALL.iter().map(|s| s.as_str().to_string()).collect(), current.status.clone())}
                <label>"Webhook id" <input type="text" name="webhook" value=current.webhook.clone()/></label>
                <label>"From" <input type="date" name="from" value=current.from.clone()/></label>
                <label>"To" <input type="date" name="to" value=current.to.clone()/></label>
                <div class="actions">
                    <button type="submit" class="primary">"Filter"</button>
                    <A href="/admin/deliveries">"Clear"</A>
                </div>
            </form>
            <p class="totals" aria-label="Totals">
                <span class="total">{match h.counted_latest {
                    Some(n) => format!("More than {} deliveries; the latest {} by status:", group_digits(n), group_digits(n)),
                    None => format!("{} deliveries", group_digits(total)),
                }}</span>
                {h.totals.iter().map(|(status, n)| view! {
                    <span class=format!("badge status-{status}") data-status=status.clone()>{format!("{status}: {}", group_digits(*n))}</span>
                }).collect_view()}
            </p>
        </section>
        <section class="card">
            {if h.items.is_empty() {
                view! { <p class="empty">"No deliveries match."</p> }.into_any()
            } else {
                view! {
                    <table class="admin-table" aria-label="Deliveries">
                        <thead><tr><th>"Time"</th><th>"Store"</th><th>"Event type"</th><th>"Status"</th><th>"HTTP"</th><th>"Duration"</th><th>"Attempts"</th></tr></thead>
                        <tbody>
                            {h.items.into_iter().map(|d| {
                                let href = href(&format!("/settings/api/webhooks/{}", d.webhook_id), &[("delivery", &d.row.id)]);
                                view! {
                                    <tr data-delivery-id=d.row.id.clone()>
                                        <td><A href=href>{d.row.time.clone()}</A></td>
                                        <td>{d.store.clone()}</td>
                                        <td><A href=format!("/events/{}", d.row.event_id) attr:class="event-link" attr:title="Why didn't it arrive?"><code>{d.row.event_type.clone()}</code></A></td>
                                        <td><span class=format!("badge status-{}", d.row.status)>{d.row.status.clone()}</span></td>
                                        <td>{d.row.http_status.map(|c| c.to_string()).unwrap_or_else(|| "—".into())}</td>
                                        <td>{d.row.duration_ms.map(|ms| format!("{ms} ms")).unwrap_or_else(|| "—".into())}</td>
                                        <td>{d.row.attempts}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
            <DeliveryPager links=pages older_id="older"/>
        </section>
    }
}

#[derive(Clone, Copy)]
struct AppActions {
    create: ServerAction<CreateApplication>,
    install: ServerAction<InstallApplication>,
    disconnect: ServerAction<DisconnectApplication>,
}

/// Partner applications: which stores installed them; install, disconnect, add one.
#[component]
fn Applications(
    apps: Vec<ApplicationInfo>,
    pages: crate::paging::PageLinks,
    stores: Vec<String>,
    actions: AppActions,
) -> impl IntoView {
    let AppActions { create, install, disconnect } = actions;
    let disconnecting = move |app: &str, store: &str| {
        disconnect.pending().get()
            && disconnect.input().get().is_some_and(|d| d.application == app && d.store == store)
    };
    let app_ids: Vec<String> = apps.iter().map(|a| a.id.clone()).collect();
    let errors = move || {
        create
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| install.value().get().and_then(Result::err))
            .or_else(|| disconnect.value().get().and_then(Result::err))
    };
    view! {
        <section class="card" aria-labelledby="apps-title">
            <h2 id="apps-title">"Applications"</h2>
            <p class="hint">"An installed application reaches the store's events store-level. Disconnecting turns its webhooks there off and sends it "<code>"integrations.applications.disconnected.v3"</code>"."</p>
            {if apps.is_empty() {
                view! { <p class="empty">"No applications yet."</p> }.into_any()
            } else {
                view! {
                    <table class="admin-table" aria-label="Applications">
                        <thead><tr><th>"Application"</th><th>"Installed on"</th></tr></thead>
                        <tbody>
                            {apps.into_iter().map(|a| {
                                let app_id = a.id.clone();
                                view! {
                                    <tr data-application-id=a.id.clone()>
                                        <td>{a.name.clone()}" "<code>{a.id.clone()}</code></td>
                                        <td>
                                            {if a.installations.is_empty() { Some("None") } else { None }}
                                            {a.installations.into_iter().map(|(store, lines)| {
                                                let app_id = app_id.clone();
                                                let (pending_app, pending_store) = (app_id.clone(), store.clone());
                                                view! {
                                                    <ActionForm action=disconnect attr:class="inline installation">
                                                        <input type="hidden" name="application" value=app_id.clone()/>
                                                        <input type="hidden" name="store" value=store.clone()/>
                                                        <span>{format!("{store} ({lines}) ")}</span>
                                                        <button type="submit" class="danger" aria-label=format!("Disconnect from {store}") disabled=move || disconnect.pending().get()>
                                                            {move || if disconnecting(&pending_app, &pending_store) { "Disconnecting…" } else { "Disconnect" }}
                                                        </button>
                                                    </ActionForm>
                                                }
                                            }).collect_view()}
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
            <Pager links=pages list=APPLICATIONS label="Pages of applications"/>
            <ActionForm action=install attr:class="form inline-form" attr:aria-label="Install an application">
                <label for="install-app">"Install"</label>
                <select id="install-app" name="application" aria-label="Application">
                    {app_ids.into_iter().map(|id| view! { <option value=id.clone()>{id.clone()}</option> }).collect_view()}
                </select>
                <select name="store" aria-label="On store">
                    {stores.into_iter().map(|id| view! { <option value=id.clone()>{id.clone()}</option> }).collect_view()}
                </select>
                <button type="submit" disabled=move || install.pending().get()>
                    {move || if install.pending().get() { "Installing…" } else { "Install" }}
                </button>
            </ActionForm>
            <ActionForm action=create attr:class="form inline-form" attr:aria-label="New application">
                <label for="app-id">"New application: id"</label>
                <input id="app-id" name="id" type="text" required maxlength="128"/>
                <input name="name" type="text" required maxlength="200" placeholder="Name" aria-label="Application name"/>
                <button type="submit" disabled=move || create.pending().get()>
                    {move || if create.pending().get() { "Creating…" } else { "Create application" }}
                </button>
            </ActionForm>
            {move || errors().map(|e| view! { <p class="form-error" role="alert">{e.to_string()}</p> })}
        </section>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn digits_are_grouped_by_thousands() {
        let cases = [(0, "0"), (999, "999"), (1_000, "1,000"), (10_000, "10,000"), (1_234_567, "1,234,567")];
        for (n, text) in cases {
            assert_eq!(super::group_digits(n), text);
        }
    }
}
