//! The admin overview at `/admin`: attempts per hour across every store, the most failing and
//! the slowest endpoints, the queue, and the webhooks turned off, over the last 24 hours or
//! 7 days (`?period=7d`). Anyone else gets a not-found page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

mod server;

use server::{EndpointRow, OverviewData, TurnedOffRow, admin_overview};

use crate::components::{ErrorBox, Frame};
use crate::error::AppError;
use crate::pages::webhook::HealthChart;

#[component]
pub fn AdminOverviewPage() -> impl IntoView {
    let query = use_query_map();
    let overview = Resource::new(move || query.read().get("period"), admin_overview);
    view! {
        <Title text="Overview"/>
        <Frame>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match overview.await {
                        Ok(data) => view! { <OverviewBody data/> }.into_any(),
                        Err(AppError::NotFound) => view! {
                            <div class="card">
                                <h1>"Not found"</h1>
                                <p>"There is nothing at this address for your account."</p>
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
fn OverviewBody(data: OverviewData) -> impl IntoView {
    let OverviewData { period, span, hours, most_failing, slowest, due, oldest_due_wait, turned_off } = data;
    let tab = |href: &'static str, label: &'static str, current: bool| {
        view! { <A href=href attr:aria-current=current.then_some("page")>{label}</A> }
    };
    view! {
        <div class="section-head">
            <h1>"Overview"</h1>
            <nav class="filters" aria-label="Period">
                {tab("/admin", "Last 24 hours", period == "24h")}
                " "
                {tab("/admin?period=7d", "Last 7 days", period == "7d")}
            </nav>
        </div>
        <section class="card" aria-labelledby="queue-title">
            <h2 id="queue-title">"Queue"</h2>
            <dl class="facts">
                <dt>"Deliveries due now"</dt>
                <dd id="queue-due">{due}</dd>
                <dt>"Oldest due delivery"</dt>
                <dd id="queue-oldest">{oldest_due_wait.map(|w| format!("waiting for {w}")).unwrap_or_else(|| "Nothing is waiting.".into())}</dd>
            </dl>
        </section>
        <section class="card" aria-labelledby="attempts-title">
            <h2 id="attempts-title">"Attempts per hour"</h2>
            <p class="hint">"Every store's delivery attempts, by outcome (UTC)."</p>
            <HealthChart hours span=span.clone()/>
        </section>
        <section class="card" aria-labelledby="failing-title">
            <h2 id="failing-title">"Most failing endpoints"</h2>
            <EndpointTable rows=most_failing label="Most failing endpoints" empty=format!("No attempt failed {span}.")/>
        </section>
        <section class="card" aria-labelledby="slowest-title">
            <h2 id="slowest-title">"Slowest endpoints"</h2>
            <EndpointTable rows=slowest label="Slowest endpoints" empty=format!("No attempt was made {span}.")/>
        </section>
        <section class="card" aria-labelledby="off-title">
            <h2 id="off-title">"Turned off"</h2>
            <TurnedOffTable rows=turned_off empty=format!("No webhook was turned off {span}.")/>
        </section>
    }
}

#[component]
fn EndpointTable(rows: Vec<EndpointRow>, label: &'static str, empty: String) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="empty">{empty}</p> }.into_any();
    }
    view! {
        <table class="admin-table" aria-label=label>
            <thead><tr><th>"Webhook"</th><th>"Tenant"</th><th>"Attempts"</th><th>"Failed"</th><th>"Mean time"</th></tr></thead>
            <tbody>
                {rows.into_iter().map(|r| view! {
                    <tr data-webhook-id=r.id.clone()>
                        <td><A href=format!("/settings/api/webhooks/{}", r.id) attr:class="webhook-url">{r.url}</A></td>
                        <td>{r.tenant}</td>
                        <td>{r.attempts}</td>
                        <td>{r.failed}</td>
                        <td>{format!("{} ms", r.mean_ms)}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
fn TurnedOffTable(rows: Vec<TurnedOffRow>, empty: String) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="empty">{empty}</p> }.into_any();
    }
    view! {
        <table class="admin-table" aria-label="Webhooks turned off">
            <thead><tr><th>"Webhook"</th><th>"Tenant"</th><th>"Why"</th><th>"When"</th></tr></thead>
            <tbody>
                {rows.into_iter().map(|r| view! {
                    <tr data-webhook-id=r.id.clone()>
                        <td><A href=format!("/settings/api/webhooks/{}", r.id) attr:class="webhook-url">{r.url}</A></td>
                        <td>{r.tenant}</td>
                        <td>{r.reason}</td>
                        <td>{r.when}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
