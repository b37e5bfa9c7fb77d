//! Users: the admin's list of every user (disable, enable, end sessions, delete), and each
//! user's own account page (change the password).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

mod server;

use server::{ChangePassword, DeleteUser, EndUserSessions, SetUserDisabled, UserRow, users};

use crate::components::{ErrorBox, Frame};
use crate::error::AppError;
use crate::paging::{Pager, Trail};

/// Where the list keeps its place in the address.
const USERS: &str = "users";

#[component]
pub fn AdminUsersPage() -> impl IntoView {
    let query = use_query_map();
    let set_disabled = ServerAction::<SetUserDisabled>::new();
    let end_sessions = ServerAction::<EndUserSessions>::new();
    let delete = ServerAction::<DeleteUser>::new();
    let list = Resource::new(
        move || {
            (
                Trail::from_query(&query.read(), USERS).cursor(),
                set_disabled.version().get(),
                end_sessions.version().get(),
                delete.version().get(),
            )
        },
        |(cursor, ..)| users(cursor),
    );
    let failure = move || {
        [set_disabled.value().get().and_then(Result::err), delete.value().get().and_then(Result::err)]
            .into_iter()
            .flatten()
            .next()
    };
    view! {
        <Title text="Users"/>
        <Frame>
            <h1>"Users"</h1>
            {move || failure().map(|e| view! { <ErrorBox error=e/> })}
            {move || end_sessions.value().get().and_then(Result::ok).map(|n| view! {
                <p class="notice" role="status">{format!("{n} sessions ended.")}</p>
            })}
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(list) => {
                            let pages = Trail::from_query(&query.read(), USERS).links("/admin/users", &query.read(), list.next_cursor.as_deref());
                            view! {
                                <UserTable rows=list.users set_disabled end_sessions delete/>
                                <Pager links=pages list=USERS label="Pages of users"/>
                            }.into_any()
                        }
                        Err(AppError::NotFound) => view! {
                            <div class="card"><h1>"Not found"</h1><p>"There is nothing at this address for your account."</p></div>
                        }.into_any(),
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    }
                })}
            </Suspense>
        </Frame>
    }
}

#[component]
fn UserTable(
    rows: Vec<UserRow>,
    set_disabled: ServerAction<SetUserDisabled>,
    end_sessions: ServerAction<EndUserSessions>,
    delete: ServerAction<DeleteUser>,
) -> impl IntoView {
    view! {
        <div class="card table-card">
            <table class="users">
                <thead>
                    <tr><th>"Email"</th><th>"Role"</th><th>"Store"</th><th>"Created"</th><th>"Status"</th><th>"Actions"</th></tr>
                </thead>
                <tbody>
                    {rows.into_iter().map(|u| {
                        let email = u.email.clone();
                        let status = match &u.disabled {
                            Some(at) => format!("Disabled at {at}"),
                            None => "Active".to_string(),
                        };
                        let disabled = u.disabled.is_some();
                        let toggle_label = format!("{} {email}", if disabled { "Enable" } else { "Disable" });
                        let end_label = format!("End the sessions of {email}");
                        let delete_label = format!("Delete {email}");
                        let confirm_text = format!(" Delete {email} and end their sessions");
                        let (email_1, email_2, email_3) = (email.clone(), email.clone(), email);
                        view! {
                            <tr>
                                <td>{u.email.clone()}</td>
                                <td>{u.role.clone()}</td>
                                <td>{u.store.clone().unwrap_or_default()}</td>
                                <td>{u.created.clone()}</td>
                                <td>{status}</td>
                                <td class="actions">
                                    {(!u.is_me).then(move || view! {
                                        <ActionForm action=set_disabled attr:class="inline">
                                            <input type="hidden" name="email" value=email_1/>
                                            <input type="hidden" name="disabled" value=(!disabled).to_string()/>
                                            <button type="submit" aria-label=toggle_label>
                                                {if disabled { "Enable" } else { "Disable" }}
                                            </button>
                                        </ActionForm>
                                        <ActionForm action=end_sessions attr:class="inline">
                                            <input type="hidden" name="email" value=email_2/>
                                            <button type="submit" aria-label=end_label>"End sessions"</button>
                                        </ActionForm>
                                        <details class="confirm-delete">
                                            <summary>"Delete…"</summary>
                                            <ActionForm action=delete attr:class="confirm" attr:aria-label=delete_label>
                                                <input type="hidden" name="email" value=email_3/>
                                                <label class="check">
                                                    <input type="checkbox" name="confirm" value="yes" required/>
                                                    {confirm_text}
                                                </label>
                                                <button type="submit" class="danger">"Delete user"</button>
                                            </ActionForm>
                                        </details>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let error = move |field: &'static str| {
        move || change.value().get().and_then(Result::err).and_then(|e| e.for_field(field))
    };
    let other = move || {
        change
            .value()
            .get()
            .and_then(Result::err)
            .filter(|e| e.for_field("current_password").is_none() && e.for_field("password").is_none())
    };
    view! {
        <Title text="Account"/>
        <Frame>
            <h1>"Account"</h1>
            <ActionForm action=change attr:class="card form" attr:aria-label="Change password">
                <h2>"Change password"</h2>
                <label for="current_password">"Current password"</label>
                <input id="current_password" name="current_password" type="password" autocomplete="current-password" required/>
                <p class="field-error">{error("current_password")}</p>
                <label for="new_password">"New password"</label>
                <input id="new_password" name="new_password" type="password" autocomplete="new-password" minlength="10" required/>
                <p class="field-error">{error("password")}</p>
                {move || other().map(|e| view! { <ErrorBox error=e/> })}
                {move || change.value().get().and_then(Result::ok).map(|m| view! { <p class="notice" role="status">{m}</p> })}
                <button type="submit" class="primary" disabled=move || change.pending().get()>
                    {move || if change.pending().get() { "Changing…" } else { "Change password" }}
                </button>
            </ActionForm>
        </Frame>
    }
}
