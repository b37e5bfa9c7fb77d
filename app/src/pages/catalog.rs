//! The event catalog: every event type with its description, product group, tenant level,
//! JSON Schema and example payload, searchable with a plain GET form (`?q=`), so it works
//! before the WebAssembly has loaded. Signed-in users read it at `/settings/api/events`,
//! where admins also set a type's schema and turn checking payloads on or off; anyone reads
//! it at `/docs/events`.

use hookline_domain::EventTenantType;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

pub(crate) mod server;

use server::{Catalog, CatalogEntry, ChangeEventSchema, public_catalog, signed_in_catalog};

use crate::components::{ErrorBox, Frame};
use crate::error::AppError;

/// `/settings/api/events`, for signed-in users.
#[component]
pub fn EventCatalogPage() -> impl IntoView {
    view! {
        <Title text="Event catalog"/>
        <Frame>
            <p class="crumbs"><A href="/settings/api">"Settings › API"</A>" › Event catalog"</p>
            <CatalogView public=false/>
        </Frame>
    }
}

/// `/docs/events`, for anyone: what a developer reads before having an account.
#[component]
pub fn PublicEventCatalogPage() -> impl IntoView {
    view! {
        <Title text="Event catalog"/>
        <header class="topbar">
            <a class="brand" href="/settings/api">"Hookline"</a>
            <nav aria-label="Main" class="docs-nav">
                <a href="/docs/api">"API reference"</a>
                <a href="/docs/events" aria-current="page">"Event catalog"</a>
            </nav>
        </header>
        <main class="page">
            <CatalogView public=true/>
        </main>
    }
}

#[component]
fn CatalogView(public: bool) -> impl IntoView {
    let query = use_query_map();
    let q = move || query.read().get("q").filter(|s| !s.trim().is_empty());
    let change = ServerAction::<ChangeEventSchema>::new();
    // Read again after a saved change, not after a refused one: that would remount the form
    // and lose what the admin typed.
    let saved = RwSignal::new(0u32);
    Effect::new(move |_| {
        if let Some(Ok(_)) = change.value().get() {
            saved.update(|n| *n += 1);
        }
    });
    let catalog = Resource::new(
        move || (q(), saved.get()),
        move |(q, _)| async move { if public { public_catalog(q).await } else { signed_in_catalog(q).await } },
    );
    let action = if public { "/docs/events" } else { "/settings/api/events" };
    view! {
        <h1>"Event catalog"</h1>
        <p class="hint">
            "Every event type Hookline sends: what it means, whose events they are, the JSON Schema of its payload "
            "and an example. A test event carries the example. "
            <a href="/docs/api">"API reference"</a>
        </p>
        <form method="get" action=action class="filters catalog-search" role="search" aria-label="Search the event catalog">
            <label>
                "Search"
                <input type="search" name="q" id="catalog-q" value=move || q().unwrap_or_default() placeholder="e.g. sms, unsubscribe, review"/>
            </label>
            <div class="actions">
                <button type="submit">"Search"</button>
                {move || q().map(|_| view! { <a href=action>"Clear"</a> })}
            </div>
        </form>
        <Transition fallback=|| view! { <p class="loading">"Loading the catalog…"</p> }>
            {move || Suspend::new(async move {
                match catalog.await {
                    Ok(catalog) => view! { <CatalogEntries catalog query=q() change/> }.into_any(),
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The entries by product group, in the catalog's order.
#[component]
fn CatalogEntries(
    catalog: Catalog,
    query: Option<String>,
    change: ServerAction<ChangeEventSchema>,
) -> impl IntoView {
    let Catalog { entries, can_edit } = catalog;
    let count = match entries.len() {
        1 => "1 event type".to_string(),
        n => format!("{n} event types"),
    };
    if entries.is_empty() {
        let message = match query {
            Some(q) => format!("No event type matches “{q}”."),
            None => "The catalog is empty.".to_string(),
        };
        return view! { <p class="empty" id="catalog-count">{message}</p> }.into_any();
    }
    let mut groups: Vec<(String, Vec<CatalogEntry>)> = Vec::new();
    for entry in entries {
        match groups.iter_mut().find(|(g, _)| *g == entry.group) {
            Some((_, items)) => items.push(entry),
            None => groups.push((entry.group.clone(), vec![entry])),
        }
    }
    view! {
        <p class="hint" id="catalog-count" role="status">{count}</p>
        {groups.into_iter().map(|(group, items)| view! {
            <section class="card catalog-group" aria-label=format!("{group} events")>
                <h2>{group.clone()}</h2>
                {items.into_iter().map(|entry| view! { <EntryView entry can_edit change/> }).collect_view()}
            </section>
        }).collect_view()}
    }
    .into_any()
}

fn tenant_level(tenant_type: EventTenantType) -> &'static str {
    match tenant_type {
        EventTenantType::Store => "Store events",
        EventTenantType::Application => "Application events",
        EventTenantType::Any => "Store and application events",
    }
}

#[component]
fn EntryView(entry: CatalogEntry, can_edit: bool, change: ServerAction<ChangeEventSchema>) -> impl IntoView {
    let source =
        if entry.custom_schema { "Schema set by an admin" } else { "Schema inferred from the example" };
    view! {
        <article class="catalog-entry" id=entry.name.clone() data-event-type=entry.name.clone()>
            <h3><code>{entry.name.clone()}</code></h3>
            <p>{entry.description.clone()}</p>
            <p class="facts-line">
                <span class="badge off">{tenant_level(entry.tenant_type)}</span>
                " "
                <span class="badge off">{source}</span>
                {entry.validate_payloads.then(|| view! { " " <span class="badge ok">"Payloads checked"</span> })}
            </p>
            <details>
                <summary>"JSON Schema"</summary>
                <pre class="body schema">{entry.schema.clone()}</pre>
            </details>
            <details>
                <summary>"Example payload"</summary>
                <pre class="body example">{entry.example.clone()}</pre>
            </details>
            {can_edit.then(|| view! { <SchemaForm entry=entry.clone() change/> })}
        </article>
    }
}

/// An admin's form: the schema as JSON (empty: infer it from the example) and whether
/// publishing refuses payloads that do not match it.
#[component]
fn SchemaForm(entry: CatalogEntry, change: ServerAction<ChangeEventSchema>) -> impl IntoView {
    let name = StoredValue::new(entry.name.clone());
    // Which entry's form was sent last: its answer shows under it.
    let sent = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let Some(input) = change.input().get() {
            sent.set(Some(input.name));
        }
    });
    let mine = move || sent.get().is_some_and(|n| n == name.get_value());
    // A saved change reads the catalog again, which makes this form anew: the answer is
    // found by the entry's name. A refused one keeps the form, and what was typed in it.
    let answer = move || match change.value().get() {
        Some(Ok(saved)) if saved.name == name.get_value() => Some(Ok(saved)),
        Some(Err(e)) if mine() => Some(Err(e)),
        _ => None,
    };
    let field_id = format!("schema-{}", entry.name);
    let label = format!("Schema of {}", entry.name);
    view! {
        <details class="schema-editor" open=move || answer().is_some_and(|r| r.is_err())>
            <summary>"Change schema"</summary>
            <ActionForm action=change attr:class="form" attr:aria-label=label>
                <input type="hidden" name="name" value=entry.name.clone()/>
                <label for=field_id.clone()>"JSON Schema " <span class="optional">"(empty: inferred from the example)"</span></label>
                <textarea id=field_id name="schema" rows="10" spellcheck="false" class="schema-input">
                    {entry.custom_schema.then(|| entry.schema.clone())}
                </textarea>
                <label class="check">
                    <input type="checkbox" name="validate_payloads" value="on" checked=entry.validate_payloads/>
                    " Refuse published payloads that do not match (422)"
                </label>
                <div class="actions">
                    <button type="submit" class="primary" disabled=move || change.pending().get()>
                        {move || if change.pending().get() && mine() { "Saving…" } else { "Save" }}
                    </button>
                </div>
            </ActionForm>
            {move || answer().map(|r| match r {
                Ok(saved) => view! { <p class="result ok" role="status">{format!("Saved the schema of {}.", saved.name)}</p> }.into_any(),
                Err(AppError::Invalid { message, .. }) => view! { <p class="form-error" role="alert">{message}</p> }.into_any(),
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
            })}
        </details>
    }
}
