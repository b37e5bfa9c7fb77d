//! Signing in and out: the session cookie.

use leptos::prelude::*;

use crate::error::AppError;

#[server(prefix = "/ui", endpoint = "login")]
pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
    use super::{SignInRefusal, refuse_sign_in, sign_in_failed};
    use crate::session::{
        SESSION_COOKIE, client_address, is_html_form_post, is_https, services, set_response_header,
    };
    let services = services()?;
    let user = match services.sign_in(&email, &password, client_address()).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(refuse_sign_in(SignInRefusal::Credentials)),
        Err(hookline_core::Error::TooManyRequests { retry_after_secs, .. }) => {
            let refused = refuse_sign_in(SignInRefusal::Throttled { retry_after_secs });
            // 429 with the wait, whether the form was posted by the page or by the browser.
            if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
                if !is_html_form_post() {
                    res.set_status(http::StatusCode::TOO_MANY_REQUESTS);
                }
                res.insert_header(http::header::RETRY_AFTER, http::HeaderValue::from(retry_after_secs));
            }
            return Err(refused);
        }
        Err(e) => return Err(sign_in_failed(e.into())),
    };
    let token = services.create_session(&user.id).await.map_err(|e| sign_in_failed(e.into()))?;
    let max_age = services.settings.session_ttl.as_secs();
    let secure = if is_https() { "; Secure" } else { "" };
    set_response_header(
        http::header::SET_COOKIE,
        &format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"),
    );
    leptos_axum::redirect("/settings/api");
    Ok(())
}

#[server(prefix = "/ui", endpoint = "logout")]
pub async fn sign_out() -> Result<(), AppError> {
    use crate::session::{SESSION_COOKIE, services, session_token, set_response_header};
    if let Some(token) = session_token() {
        services()?.end_session(&token).await?;
    }
    set_response_header(
        http::header::SET_COOKIE,
        &format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    leptos_axum::redirect("/login");
    Ok(())
}
