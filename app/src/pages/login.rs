use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::Login;

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let error = move || login.value().get().and_then(Result::err).map(|e| e.to_string());
    view! {
        <Title text="Sign in"/>
        <main class="login">
            <h1 class="brand">"Hookline"</h1>
            <ActionForm action=login attr:class="card form" attr:aria-label="Sign in">
                <h2>"Sign in"</h2>
                <label for="email">"Email"</label>
                <input id="email" name="email" type="email" autocomplete="username" required/>
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" autocomplete="current-password" required/>
                {move || error().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
                <button type="submit" class="primary" disabled=move || login.pending().get()>
                    {move || if login.pending().get() { "Signing in…" } else { "Sign in" }}
                </button>
            </ActionForm>
        </main>
    }
}
