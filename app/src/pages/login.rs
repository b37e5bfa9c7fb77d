//! The sign-in page. A refused sign-in from a plain form post (before the WebAssembly has
//! loaded) comes back to this page with a code in its address, and the page says its own
//! sentence for that code: no text from the address reaches the page, so a link cannot make
//! the sign-in page say what its author wants.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

mod server;

use server::SignIn;
pub(crate) use server::SignOut;

#[cfg(feature = "ssr")]
use crate::error::AppError;

/// Why a sign-in was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignInRefusal {
    /// The email and password do not match an account.
    Credentials,
    /// Too many tries; the next one is taken after this many seconds.
    Throttled { retry_after_secs: u64 },
    /// The server could not check (its database did not answer, say).
    Unavailable,
}

impl SignInRefusal {
    pub(crate) fn sentence(self) -> String {
        match self {
            SignInRefusal::Credentials => "That email and password do not match.".to_string(),
            SignInRefusal::Throttled { retry_after_secs } => {
                let wait = match retry_after_secs {
                    0 | 1 => "a second".to_string(),
                    s @ 2..60 => format!("{s} seconds"),
                    60..120 => "a minute".to_string(),
                    s => format!("{} minutes", s.div_ceil(60)),
                };
                format!("Too many sign-in attempts. Try again in {wait}.")
            }
            SignInRefusal::Unavailable => {
                "Signing in is not possible right now. Try again in a moment.".to_string()
            }
        }
    }

    /// The login page's address saying this refusal.
    #[cfg(any(feature = "ssr", test))]
    pub(crate) fn address(self) -> String {
        match self {
            SignInRefusal::Credentials => "/login?error=credentials".to_string(),
            SignInRefusal::Throttled { retry_after_secs } => {
                format!("/login?error=throttled&retry={retry_after_secs}")
            }
            SignInRefusal::Unavailable => "/login?error=unavailable".to_string(),
        }
    }

    /// The refusal an address says; anything else says none.
    fn from_address(error: Option<&str>, retry: Option<&str>) -> Option<Self> {
        match error? {
            "credentials" => Some(SignInRefusal::Credentials),
            "throttled" => Some(SignInRefusal::Throttled {
                // A day at most: the number is the address's, not ours.
                retry_after_secs: retry.and_then(|r| r.parse::<u64>().ok()).unwrap_or(0).min(86_400),
            }),
            "unavailable" => Some(SignInRefusal::Unavailable),
            _ => None,
        }
    }
}

/// Refuses a sign-in: the error the hydrated form shows, and for a plain form post a
/// redirect back to this page with the refusal's code (in place of Leptos's redirect, which
/// would carry the error's text in the address).
#[cfg(feature = "ssr")]
pub(crate) fn refuse_sign_in(refusal: SignInRefusal) -> AppError {
    use crate::error::set_error_status;
    use crate::session::is_html_form_post;
    let error = AppError::Invalid { field: None, message: refusal.sentence() };
    if is_html_form_post() {
        leptos_axum::redirect(&refusal.address());
    }
    set_error_status(&error);
    error
}

/// Any other failure of a sign-in: the hydrated form shows the error itself, and a plain form
/// post comes back to this page saying that signing in is unavailable.
#[cfg(feature = "ssr")]
pub(crate) fn sign_in_failed(error: AppError) -> AppError {
    if crate::session::is_html_form_post() {
        leptos_axum::redirect(&SignInRefusal::Unavailable.address());
    }
    error
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<SignIn>::new();
    let query = use_query_map();
    // Before this page's own call, the refusal its address names; Leptos would also fill the
    // action from an error written in the address, which anyone can write.
    let error = move || {
        if login.version().get() > 0 {
            login.value().get().and_then(Result::err).map(|e| e.to_string())
        } else {
            let query = query.read();
            SignInRefusal::from_address(query.get_str("error"), query.get_str("retry"))
                .map(SignInRefusal::sentence)
        }
    };
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

#[cfg(test)]
mod tests {
    use super::SignInRefusal;

    #[test]
    fn the_login_address_says_only_codes_the_page_owns() {
        for refusal in [
            SignInRefusal::Credentials,
            SignInRefusal::Throttled { retry_after_secs: 90 },
            SignInRefusal::Unavailable,
        ] {
            let address = refusal.address();
            let query = address.split_once('?').map(|(_, q)| q).unwrap_or_default();
            let get = |name: &str| {
                query.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
            };
            assert_eq!(SignInRefusal::from_address(get("error"), get("retry")), Some(refusal));
        }
        assert_eq!(SignInRefusal::from_address(Some("Injected text"), None), None);
        assert_eq!(
            SignInRefusal::from_address(Some("throttled"), Some("soon"))
                .map(SignInRefusal::sentence)
                .as_deref(),
            Some("Too many sign-in attempts. Try again in a second.")
        );
        assert_eq!(
            SignInRefusal::Throttled { retry_after_secs: 150 }.sentence(),
            "Too many sign-in attempts. Try again in 3 minutes."
        );
    }
}
