//! The dashboard's server functions and the data they exchange. Each is a thin wrapper over
//! a `hookline_core` service, called with the signed-in user's scope, so the dashboard can
//! reach exactly what that user's API key could.

use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AppError {
    /// A field breaks a rule; `field` names the form input it belongs to.
    Invalid {
        field: Option<String>,
        message: String,
    },
    Unauthenticated,
    NotFound,
    /// Too many tries; the next is taken after this many seconds (HTTP 429).
    Throttled {
        message: String,
        retry_after_secs: u64,
    },
    /// The database cannot be reached now (HTTP 503).
    Unavailable(String),
    Server(String),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::Invalid { message, .. } => f.write_str(message),
            AppError::Unauthenticated => f.write_str("Please sign in."),
            AppError::NotFound => f.write_str("Not found."),
            AppError::Throttled { message, .. } | AppError::Unavailable(message) => f.write_str(message),
            AppError::Server(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for AppError {}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        // Arguments that do not decode are the caller's mistake (a 400), not the server's.
        let error = match value {
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => {
                AppError::Invalid { field: None, message: value.to_string() }
            }
            other => AppError::Server(other.to_string()),
        };
        #[cfg(feature = "ssr")]
        ssr::set_error_status(&error);
        error
    }
}

impl AppError {
    /// The message for one form field, if this error is about it.
    pub fn for_field(&self, name: &str) -> Option<String> {
        match self {
            AppError::Invalid { field: Some(f), message } if f == name => Some(message.clone()),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Viewer {
    pub email: String,
    pub is_admin: bool,
    pub store_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HealthKind {
    Healthy,
    Failing,
    Off,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub description: String,
    pub event_types: Option<Vec<String>>,
    pub enabled: bool,
    pub health: HealthKind,
    pub health_text: String,
}

impl WebhookRow {
    pub fn events_summary(&self) -> String {
        match &self.event_types {
            None => "All events".to_string(),
            Some(types) if types.len() <= 3 => types.join(", "),
            Some(types) => format!("{}, {} and {} more", types[0], types[1], types.len() - 2),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookList {
    pub store_id: String,
    pub store_name: String,
    pub webhooks: Vec<WebhookRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventTypeInfo {
    pub name: String,
    pub description: String,
    pub group: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub id: String,
    pub time: String,
    pub event_type: String,
    pub status: String,
    pub http_status: Option<i32>,
    pub duration_ms: Option<i32>,
    pub attempts: i32,
    pub next_attempt: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryLog {
    pub items: Vec<DeliveryRow>,
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptInfo {
    pub started: String,
    pub trigger: String,
    pub duration_ms: i32,
    pub url: String,
    pub request_headers: Vec<(String, String)>,
    pub response_status: Option<i32>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryInfo {
    pub row: DeliveryRow,
    pub event_id: String,
    pub payload: String,
    /// What the log says instead of the payload once the payload retention removed it.
    pub payload_removed: Option<String>,
    pub attempts: Vec<AttemptInfo>,
}

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use hookline_core::{Scope, Services, SessionUser};
    use leptos::prelude::*;

    use super::{AppError, HealthKind, WebhookRow};

    pub const SESSION_COOKIE: &str = "hookline_session";

    impl From<hookline_core::Error> for AppError {
        fn from(e: hookline_core::Error) -> Self {
            use hookline_core::Error as E;
            let error = match e {
                E::NotFound(_) | E::Forbidden(_) => AppError::NotFound,
                E::TooManyRequests { message, retry_after_secs } => {
                    AppError::Throttled { message, retry_after_secs }
                }
                E::Unavailable(message) => AppError::Unavailable(message),
                E::Db(err) => {
                    tracing::error!(error = %err, "database error in a server function");
                    AppError::Server("Something went wrong on our side. Try again.".into())
                }
                other => {
                    AppError::Invalid { field: other.field().map(str::to_string), message: other.to_string() }
                }
            };
            set_error_status(&error);
            error
        }
    }

    /// Gives a failed server-function call the HTTP status its error deserves, except for
    /// plain HTML form posts, which Leptos answers with a redirect carrying the error.
    pub fn set_error_status(error: &AppError) {
        let Some(res) = use_context::<leptos_axum::ResponseOptions>() else {
            return;
        };
        if is_html_form_post() {
            return;
        }
        let status = match error {
            AppError::Invalid { .. } => http::StatusCode::BAD_REQUEST,
            AppError::Unauthenticated => http::StatusCode::UNAUTHORIZED,
            AppError::NotFound => http::StatusCode::NOT_FOUND,
            AppError::Throttled { .. } => http::StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => http::StatusCode::SERVICE_UNAVAILABLE,
            AppError::Server(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
        };
        res.set_status(status);
        let retry_after = match error {
            AppError::Throttled { retry_after_secs, .. } => Some(*retry_after_secs),
            AppError::Unavailable(_) => Some(hookline_core::UNAVAILABLE_RETRY_SECS),
            _ => None,
        };
        if let Some(secs) = retry_after {
            res.insert_header(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
    }

    /// A plain HTML form post (the page's WebAssembly has not loaded): Leptos answers it
    /// with a redirect back to the page, so what the call returns is not seen.
    pub fn is_html_form_post() -> bool {
        request_parts().is_some_and(|p| {
            p.headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/html"))
        })
    }

    /// An error a server function makes itself, answered with its status.
    pub fn refused(error: AppError) -> AppError {
        set_error_status(&error);
        error
    }

    /// The client's address, as the server worked it out (behind a trusted proxy, the
    /// address it forwards), else as the connection gives it.
    pub fn client_address() -> Option<std::net::IpAddr> {
        let parts = request_parts()?;
        parts.extensions.get::<hookline_core::ClientAddress>().map(|c| c.0).or_else(|| {
            parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip())
        })
    }

    pub fn services() -> Result<Services, AppError> {
        use_context::<Services>().ok_or_else(|| AppError::Server("the server is not set up".into()))
    }

    fn request_parts() -> Option<http::request::Parts> {
        use_context::<http::request::Parts>()
    }

    pub fn session_token() -> Option<String> {
        let parts = request_parts()?;
        parts
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == SESSION_COOKIE)
            .map(|(_, value)| value.to_string())
    }

    /// Whether the browser reached us over https (directly or through a proxy).
    pub fn is_https() -> bool {
        request_parts().is_some_and(|p| {
            p.uri.scheme_str() == Some("https")
                || p.headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https")
        })
    }

    pub async fn signed_in() -> Result<SessionUser, AppError> {
        let user = match session_token() {
            Some(token) => services()?.session_user(&token).await?,
            None => None,
        };
        user.ok_or_else(|| {
            set_error_status(&AppError::Unauthenticated);
            AppError::Unauthenticated
        })
    }

    /// The store a settings page is about: a merchant's own, or the one an admin picked
    /// (the first store when none is picked).
    pub async fn settings_store(
        user: &SessionUser,
        picked: Option<String>,
    ) -> Result<(String, String), AppError> {
        let services = services()?;
        let stores = services.list_stores().await?;
        let wanted = match user.scope() {
            Scope::Store(id) => Some(id),
            _ => picked.filter(|s| !s.is_empty()),
        };
        let store = match wanted {
            Some(id) => stores.into_iter().find(|s| s.id == id),
            None => stores.into_iter().next(),
        };
        match store {
            Some(s) => Ok((s.id, s.name)),
            None if user.scope().is_admin() => Err(AppError::Invalid {
                field: None,
                message: "There are no stores yet. Create one with `hookline create-store`.".into(),
            }),
            None => Err(AppError::NotFound),
        }
    }

    /// The signed-in admin; anyone else gets the not-found answer of a page that is not theirs.
    pub async fn require_admin() -> Result<SessionUser, AppError> {
        let user = signed_in().await?;
        if !user.scope().is_admin() {
            set_error_status(&AppError::NotFound);
            return Err(AppError::NotFound);
        }
        Ok(user)
    }

    pub fn set_response_header(name: http::HeaderName, value: &str) {
        if let (Some(res), Ok(value)) =
            (use_context::<leptos_axum::ResponseOptions>(), http::HeaderValue::from_str(value))
        {
            res.append_header(name, value);
        }
    }

    pub fn row(w: hookline_core::entities::webhook::Model) -> WebhookRow {
        let (health, health_text) = if !w.enabled {
            let when = w.disabled_at.map(human_time).unwrap_or_default();
            let text = match w.disabled_reason.as_deref() {
                Some("automatic") => format!(
                    "Turned off automatically at {when} because {} consecutive deliveries failed{}.",
                    w.consecutive_failures,
                    w.failing_since.map(|t| format!(" since {}", human_time(t))).unwrap_or_default()
                ),
                Some("gone") => {
                    format!("Turned off automatically at {when} because the endpoint answered 410 Gone.")
                }
                _ => format!("Turned off at {when}."),
            };
            (HealthKind::Off, text)
        } else if let Some(since) = w.failing_since {
            (HealthKind::Failing, format!("Failing since {}", human_time(since)))
        } else {
            (HealthKind::Healthy, "Healthy".to_string())
        };
        WebhookRow {
            event_types: w.event_filter(),
            id: w.id,
            url: w.url,
            description: w.description,
            enabled: w.enabled,
            health,
            health_text,
        }
    }

    pub fn human_time(ms: i64) -> String {
        hookline_core::iso8601(ms).replace('T', " ").replace('Z', " UTC")
    }
}

#[server(prefix = "/ui", endpoint = "login")]
pub async fn login(email: String, password: String) -> Result<(), AppError> {
    use crate::pages::login::{SignInRefusal, refuse_sign_in, sign_in_failed};
    use ssr::*;
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
pub async fn logout() -> Result<(), AppError> {
    use ssr::*;
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

#[server(prefix = "/ui", endpoint = "viewer")]
pub async fn current_viewer() -> Result<Viewer, AppError> {
    let user = ssr::signed_in().await?;
    Ok(Viewer {
        email: user.email.clone(),
        is_admin: user.scope().is_admin(),
        store_id: user.store_id.clone(),
    })
}

#[server(prefix = "/ui", endpoint = "webhooks")]
pub async fn list_webhooks(store: Option<String>) -> Result<WebhookList, AppError> {
    use ssr::*;
    let user = signed_in().await?;
    let (store_id, store_name) = settings_store(&user, store).await?;
    let tenant = hookline_core::Tenant::store(store_id.clone());
    let mut webhooks = Vec::new();
    let mut page = hookline_core::PageRequest { limit: Some(250), cursor: None };
    loop {
        let found = services()?.list_webhooks(&user.scope(), &tenant, &page).await?;
        webhooks.extend(found.items.into_iter().map(row));
        match found.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    Ok(WebhookList { store_id, store_name, webhooks })
}

#[server(prefix = "/ui", endpoint = "event_types")]
pub async fn event_catalog() -> Result<Vec<EventTypeInfo>, AppError> {
    ssr::signed_in().await?;
    let types = ssr::services()?.event_types().await?;
    Ok(types
        .into_iter()
        .filter(|t| t.tenant_type != "application")
        .map(|t| EventTypeInfo { name: t.name, description: t.description, group: t.product_group })
        .collect())
}

/// `events` is `all` (the default) or `selected`, with the chosen names in `event_types`.
#[server(prefix = "/ui", endpoint = "create_webhook")]
pub async fn create_webhook(
    store: Option<String>,
    url: String,
    description: Option<String>,
    events: Option<String>,
    event_types: Option<Vec<String>>,
) -> Result<String, AppError> {
    use ssr::*;
    let user = signed_in().await?;
    let (store_id, _) = settings_store(&user, store).await?;
    let event_types = match events.as_deref() {
        Some("selected") => Some(event_types.unwrap_or_default()),
        _ => None,
    };
    let created = services()?
        .create_webhook(
            &user.scope(),
            hookline_core::NewWebhook {
                tenant: hookline_core::Tenant::store(store_id.clone()),
                url,
                description: description.unwrap_or_default(),
                event_types,
            },
        )
        .await?;
    let back = if user.scope().is_admin() {
        format!("/settings/api?store={store_id}")
    } else {
        "/settings/api".into()
    };
    leptos_axum::redirect(&back);
    Ok(created.webhook.id)
}

#[server(prefix = "/ui", endpoint = "toggle_webhook")]
pub async fn toggle_webhook(id: String, enabled: bool) -> Result<bool, AppError> {
    let user = ssr::signed_in().await?;
    let updated = ssr::services()?.set_webhook_enabled(&user.scope(), &id, enabled).await?;
    Ok(updated.enabled)
}

#[server(prefix = "/ui", endpoint = "webhook")]
pub async fn webhook_detail(id: String) -> Result<WebhookRow, AppError> {
    let user = ssr::signed_in().await?;
    let found = ssr::services()?.webhook(&user.scope(), &id).await;
    if matches!(found, Err(hookline_core::Error::NotFound(_))) {
        // Also when the page itself is rendered: an unknown webhook is a 404 page.
        if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
            res.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    Ok(ssr::row(found?))
}

#[server(prefix = "/ui", endpoint = "reveal_secret")]
pub async fn reveal_secret(id: String) -> Result<String, AppError> {
    let user = ssr::signed_in().await?;
    Ok(ssr::services()?.current_secret(&user.scope(), &id).await?)
}

/// What the delivery log is narrowed to: status, event type, and dates (YYYY-MM-DD, UTC,
/// `to` inclusive).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogFilter {
    pub status: Option<String>,
    pub event_type: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[cfg(feature = "ssr")]
fn date_bound(field: &str, s: Option<String>, end_of_day: bool) -> Result<Option<i64>, AppError> {
    match s.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => hookline_core::parse_date_ms(&s)
            .map(|ms| Some(if end_of_day { ms + 86_400_000 } else { ms }))
            .ok_or_else(|| AppError::Invalid {
                field: Some(field.to_string()),
                message: format!("{s} is not a date (YYYY-MM-DD)."),
            }),
    }
}

#[server(prefix = "/ui", endpoint = "deliveries")]
pub async fn load_delivery_log(
    webhook_id: String,
    cursor: Option<String>,
    status: Option<String>,
    event_type: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<DeliveryLog, AppError> {
    // Flat arguments: an all-empty struct would not survive the form encoding.
    let filter = LogFilter { status, event_type, from, to };
    use ssr::*;
    let user = signed_in().await?;
    let page = hookline_core::PageRequest { limit: Some(25), cursor };
    let narrowed = hookline_core::DeliveryFilter {
        status: filter.status,
        event_type: filter.event_type,
        from: date_bound("from", filter.from, false)?,
        to: date_bound("to", filter.to, true)?,
        ..Default::default()
    };
    let found = services()?.list_deliveries_filtered(&user.scope(), &webhook_id, &narrowed, &page).await?;
    Ok(DeliveryLog {
        items: found.items.into_iter().map(delivery_row).collect(),
        next_cursor: found.next_cursor,
    })
}

#[cfg(feature = "ssr")]
fn delivery_row(d: hookline_core::DeliveryView) -> DeliveryRow {
    DeliveryRow {
        id: d.id,
        time: ssr::human_time(d.created_at),
        event_type: d.event_type,
        status: d.status,
        http_status: d.last_status_code,
        duration_ms: d.last_duration_ms,
        attempts: d.attempts,
        next_attempt: d.next_attempt_at.map(ssr::human_time),
    }
}

#[server(prefix = "/ui", endpoint = "delivery")]
pub async fn load_delivery(delivery_id: String) -> Result<DeliveryInfo, AppError> {
    use ssr::*;
    let user = signed_in().await?;
    let services = services()?;
    let (delivery, event, attempts) = services.delivery_detail(&user.scope(), &delivery_id).await?;
    let payload_removed = event.payload_pruned_at.map(|at| services.payload_removed_note(at));
    let pairs = |json: Option<String>| -> Vec<(String, String)> {
        json.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default()
    };
    let payload = serde_json::from_str::<serde_json::Value>(&event.payload)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or(event.payload);
    Ok(DeliveryInfo {
        row: delivery_row(delivery.into()),
        event_id: event.id,
        payload,
        payload_removed,
        attempts: attempts
            .into_iter()
            .map(|a| AttemptInfo {
                started: human_time(a.started_at),
                trigger: a.trigger,
                duration_ms: a.duration_ms,
                url: a.url,
                request_headers: pairs(Some(a.request_headers)),
                response_status: a.response_status,
                response_headers: pairs(a.response_headers),
                response_body: a.response_body,
                error: match (a.error_class, a.error_message) {
                    (Some(class), Some(message)) => Some(format!("{class}: {message}")),
                    (Some(class), None) => Some(class),
                    _ => None,
                },
            })
            .collect(),
    })
}

/// The result of a resend or a test event, as the dashboard shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptOutcome {
    pub delivery_id: String,
    pub succeeded: bool,
    pub summary: String,
}

#[cfg(feature = "ssr")]
fn outcome(r: hookline_core::AttemptResult) -> AttemptOutcome {
    let status = r.response_status.map(|s| format!("HTTP {s}")).unwrap_or_else(|| "No response".into());
    let summary = match &r.error {
        None => format!("Delivered: {status} in {} ms.", r.duration_ms),
        Some(e) => format!("Failed: {e} ({} ms).", r.duration_ms),
    };
    AttemptOutcome { delivery_id: r.delivery_id, succeeded: r.succeeded, summary }
}

#[server(prefix = "/ui", endpoint = "send_test")]
pub async fn send_test(id: String) -> Result<AttemptOutcome, AppError> {
    let user = ssr::signed_in().await?;
    Ok(outcome(ssr::services()?.send_test_event(&user.scope(), &id, None).await?))
}

#[server(prefix = "/ui", endpoint = "resend")]
pub async fn resend_delivery(delivery_id: String) -> Result<AttemptOutcome, AppError> {
    let user = ssr::signed_in().await?;
    Ok(outcome(ssr::services()?.resend(&user.scope(), &delivery_id).await?))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub last_used: Option<String>,
    pub revoked: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKeys {
    pub keys: Vec<ApiKeyRow>,
    /// A key just created by a plain form post, shown this once.
    pub created: Option<String>,
}

/// How a key created by a plain form post waits in the session for the page after it.
#[cfg(feature = "ssr")]
const FLASH_API_KEY: &str = "api-key ";

/// The API keys of a store (the merchant's own, or the one an admin picked).
#[server(prefix = "/ui", endpoint = "api_keys")]
pub async fn list_api_keys(store: Option<String>) -> Result<ApiKeys, AppError> {
    use ssr::*;
    let user = signed_in().await?;
    let (store_id, _) = settings_store(&user, store).await?;
    let scope = hookline_core::Scope::Store(store_id);
    let page = hookline_core::PageRequest { limit: Some(250), cursor: None };
    let services = services()?;
    let created = match session_token() {
        Some(token) => services
            .take_session_flash(&token)
            .await?
            .and_then(|m| m.strip_prefix(FLASH_API_KEY).map(str::to_string)),
        None => None,
    };
    let keys = services.list_api_keys(&scope, &page).await?;
    let keys = keys
        .items
        .into_iter()
        .rev()
        .map(|k| ApiKeyRow {
            id: k.id,
            name: k.name,
            prefix: k.key_prefix,
            created: human_time(k.created_at),
            last_used: k.last_used_at.map(human_time),
            revoked: k.revoked_at.map(human_time),
        })
        .collect();
    Ok(ApiKeys { keys, created })
}

/// Creates a key for the store and returns it: the only time it is shown.
#[server(prefix = "/ui", endpoint = "create_api_key")]
pub async fn create_store_api_key(store: Option<String>, name: String) -> Result<String, AppError> {
    use ssr::*;
    let user = signed_in().await?;
    let (store_id, _) = settings_store(&user, store).await?;
    let scope = hookline_core::Scope::Store(store_id);
    let services = services()?;
    let created = services.create_api_key(&scope, &name).await?;
    // Without the WebAssembly the browser is sent back to the page: the key waits there.
    if is_html_form_post()
        && let Some(token) = session_token()
    {
        services.set_session_flash(&token, &format!("{FLASH_API_KEY}{}", created.key)).await?;
    }
    Ok(created.key)
}

#[server(prefix = "/ui", endpoint = "revoke_api_key")]
pub async fn revoke_store_api_key(store: Option<String>, id: String) -> Result<(), AppError> {
    use ssr::*;
    let user = signed_in().await?;
    let (store_id, _) = settings_store(&user, store).await?;
    services()?.revoke_api_key(&hookline_core::Scope::Store(store_id), &id).await?;
    Ok(())
}

/// Rotates the signing secret; the old one keeps signing for the grace period. Returns how
/// long that is, for the page to say.
#[server(prefix = "/ui", endpoint = "rotate_secret")]
pub async fn rotate_webhook_secret(id: String) -> Result<String, AppError> {
    let user = ssr::signed_in().await?;
    let services = ssr::services()?;
    services.rotate_secret(&user.scope(), &id).await?;
    let hours = services.settings.secret_grace.as_secs() / 3600;
    Ok(format!("New secret created. The previous one keeps signing deliveries for {hours} hours."))
}

#[server(prefix = "/ui", endpoint = "delete_webhook")]
pub async fn delete_webhook(id: String) -> Result<(), AppError> {
    let user = ssr::signed_in().await?;
    let found = ssr::services()?.webhook(&user.scope(), &id).await?;
    ssr::services()?.delete_webhook(&user.scope(), &id).await?;
    let back = if user.scope().is_admin() {
        format!("/settings/api?store={}", found.tenant_id)
    } else {
        "/settings/api".into()
    };
    leptos_axum::redirect(&back);
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DisabledWebhook {
    pub row: WebhookRow,
    pub store: String,
    pub reason: String,
}

/// The webhooks Hookline turned off by itself, across every store (admins only).
#[server(prefix = "/ui", endpoint = "admin_disabled")]
pub async fn admin_disabled_webhooks() -> Result<Vec<DisabledWebhook>, AppError> {
    use ssr::*;
    let user = signed_in().await?;
    let found = services()?.auto_disabled_webhooks(&user.scope()).await?;
    Ok(found
        .into_iter()
        .map(|w| DisabledWebhook {
            store: format!("{} {}", w.tenant_type, w.tenant_id),
            reason: match w.disabled_reason.as_deref() {
                Some("gone") => "The endpoint answered 410 Gone.".to_string(),
                _ => format!("{} consecutive failed deliveries.", w.consecutive_failures),
            },
            row: row(w),
        })
        .collect())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreInfo {
    pub id: String,
    pub name: String,
    pub created: String,
    pub users: Vec<String>,
    /// The store's own retention (`7d`), if an admin shortened it.
    pub retention: Option<String>,
}

/// The stores, with the global retention they are kept for unless shortened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreList {
    pub stores: Vec<StoreInfo>,
    pub retention: String,
}

#[server(prefix = "/ui", endpoint = "admin_stores")]
pub async fn admin_stores() -> Result<StoreList, AppError> {
    use ssr::*;
    require_admin().await?;
    let services = services()?;
    let users = services.list_users().await?;
    let stores = services
        .list_stores()
        .await?
        .into_iter()
        .map(|s| StoreInfo {
            retention: s.retention_ms.map(|ms| {
                hookline_core::format_retention(std::time::Duration::from_millis(ms.max(0) as u64))
            }),
            users: users
                .iter()
                .filter(|u| u.store_id.as_deref() == Some(&s.id))
                .map(|u| u.email.clone())
                .collect(),
            created: human_time(s.created_at),
            id: s.id,
            name: s.name,
        })
        .collect();
    Ok(StoreList { stores, retention: hookline_core::format_retention(services.settings.retention) })
}

/// Sets how long a store's events, deliveries and attempts are kept (`7d`; empty for the
/// global retention).
#[server(prefix = "/ui", endpoint = "admin_store_retention")]
pub async fn admin_set_store_retention(store: String, retention: String) -> Result<String, AppError> {
    use ssr::*;
    let me = require_admin().await?;
    let done = services()?.set_store_retention(&me.scope(), &store, Some(&retention)).await?;
    Ok(done.id)
}

/// Deletes a store and all of its data; `confirm` must be "yes" (the form's confirmation box).
#[server(prefix = "/ui", endpoint = "admin_delete_store")]
pub async fn admin_delete_store(store: String, confirm: Option<String>) -> Result<String, AppError> {
    use ssr::*;
    let me = require_admin().await?;
    if confirm.as_deref() != Some("yes") {
        return Err(refused(AppError::Invalid {
            field: Some("confirm".into()),
            message: "Tick the box to confirm the deletion.".into(),
        }));
    }
    services()?.delete_store(&me.scope(), &store).await?;
    Ok(store)
}

#[server(prefix = "/ui", endpoint = "admin_create_store")]
pub async fn admin_create_store(id: String, name: String) -> Result<String, AppError> {
    use ssr::*;
    require_admin().await?;
    let made = services()?.create_store(id.trim(), &name).await?;
    Ok(made.id)
}

#[server(prefix = "/ui", endpoint = "admin_create_user")]
pub async fn admin_create_merchant(
    store: String,
    email: String,
    password: String,
) -> Result<String, AppError> {
    use ssr::*;
    require_admin().await?;
    let made = services()?.create_merchant(&email, &password, &store).await?;
    Ok(made.email)
}

/// Changes a webhook's URL, description and event types (`events` as in `create_webhook`).
#[server(prefix = "/ui", endpoint = "update_webhook")]
pub async fn update_webhook(
    id: String,
    url: String,
    description: Option<String>,
    events: Option<String>,
    event_types: Option<Vec<String>>,
) -> Result<WebhookRow, AppError> {
    let user = ssr::signed_in().await?;
    let event_types = match events.as_deref() {
        Some("selected") => Some(event_types.unwrap_or_default()),
        _ => None,
    };
    let patch = hookline_core::WebhookPatch {
        url: Some(url),
        description: Some(description.unwrap_or_default()),
        event_types: Some(event_types),
    };
    Ok(ssr::row(ssr::services()?.update_webhook(&user.scope(), &id, patch).await?))
}

#[server(prefix = "/ui", endpoint = "skipped")]
pub async fn skipped_count(id: String) -> Result<u64, AppError> {
    let user = ssr::signed_in().await?;
    Ok(ssr::services()?.skipped_count(&user.scope(), &id).await?)
}

#[server(prefix = "/ui", endpoint = "replay")]
pub async fn replay_skipped(id: String) -> Result<u64, AppError> {
    let user = ssr::signed_in().await?;
    Ok(ssr::services()?.replay_skipped(&user.scope(), &id).await?)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdminDeliveryRow {
    pub row: DeliveryRow,
    pub store: String,
    pub webhook_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryHistory {
    pub items: Vec<AdminDeliveryRow>,
    pub next_cursor: Option<String>,
    /// (status, count) among the latest matching deliveries.
    pub totals: Vec<(String, u64)>,
    /// When set, more deliveries match than were counted: the totals are of the latest this many.
    pub counted_latest: Option<u64>,
    pub stores: Vec<String>,
    pub event_types: Vec<String>,
}

/// Delivery history across every store (admins only). `from` and `to` are dates
/// (YYYY-MM-DD, UTC), `to` inclusive.
#[server(prefix = "/ui", endpoint = "admin_deliveries")]
pub async fn admin_deliveries(
    store: Option<String>,
    webhook: Option<String>,
    event_type: Option<String>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
) -> Result<DeliveryHistory, AppError> {
    use ssr::*;
    let user = require_admin().await?;
    let filter = hookline_core::DeliveryFilter {
        store,
        webhook,
        event_type,
        status,
        from: date_bound("from", from, false)?,
        to: date_bound("to", to, true)?,
    };
    let services = services()?;
    let page = hookline_core::PageRequest { limit: Some(50), cursor: cursor.filter(|c| !c.is_empty()) };
    let (found, totals) = services.search_deliveries(&user.scope(), &filter, &page).await?;
    Ok(DeliveryHistory {
        items: found
            .items
            .into_iter()
            .map(|d| AdminDeliveryRow {
                store: d.tenant_id.clone(),
                webhook_id: d.webhook_id.clone(),
                row: delivery_row(d.into()),
            })
            .collect(),
        next_cursor: found.next_cursor,
        counted_latest: totals.capped.then_some(hookline_core::TOTALS_WINDOW),
        totals: totals.by_status,
        stores: services.list_stores().await?.into_iter().map(|s| s.id).collect(),
        event_types: services.event_types().await?.into_iter().map(|t| t.name).collect(),
    })
}

/// One hour of the health chart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HourBar {
    /// "14:00" (UTC).
    pub hour: String,
    pub succeeded: u64,
    pub failed: u64,
}

#[server(prefix = "/ui", endpoint = "health")]
pub async fn webhook_health(id: String) -> Result<Vec<HourBar>, AppError> {
    let user = ssr::signed_in().await?;
    let hours = ssr::services()?.hourly_health(&user.scope(), &id).await?;
    Ok(hours
        .into_iter()
        .map(|(start, succeeded, failed)| HourBar {
            hour: hookline_core::iso8601(start)[11..16].to_string(),
            succeeded,
            failed,
        })
        .collect())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplicationInfo {
    pub id: String,
    pub name: String,
    /// (store id, product lines)
    pub installations: Vec<(String, String)>,
}

#[server(prefix = "/ui", endpoint = "admin_applications")]
pub async fn admin_applications() -> Result<Vec<ApplicationInfo>, AppError> {
    ssr::require_admin().await?;
    let found = ssr::services()?.applications_with_installations().await?;
    Ok(found
        .into_iter()
        .map(|(a, installs)| ApplicationInfo {
            id: a.id,
            name: a.name,
            installations: installs
                .into_iter()
                .map(|i| {
                    let lines: Vec<String> = serde_json::from_str(&i.product_lines).unwrap_or_default();
                    (i.store_id, lines.join(", "))
                })
                .collect(),
        })
        .collect())
}

#[server(prefix = "/ui", endpoint = "admin_create_application")]
pub async fn admin_create_application(id: String, name: String) -> Result<String, AppError> {
    ssr::require_admin().await?;
    Ok(ssr::services()?.create_application(id.trim(), &name).await?.id)
}

#[server(prefix = "/ui", endpoint = "admin_install")]
pub async fn admin_install(application: String, store: String) -> Result<(), AppError> {
    ssr::require_admin().await?;
    ssr::services()?.install_application(&application, &store, None).await?;
    Ok(())
}

/// Disconnects the application from the store: its store-level webhooks there are turned off
/// and it receives `integrations.applications.disconnected.v3`.
#[server(prefix = "/ui", endpoint = "admin_disconnect")]
pub async fn admin_disconnect(application: String, store: String) -> Result<(), AppError> {
    ssr::require_admin().await?;
    ssr::services()?.disconnect_application(&application, &store).await?;
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRow {
    pub email: String,
    pub role: String,
    pub store: Option<String>,
    pub created: String,
    /// When an admin disabled the user, if one did.
    pub disabled: Option<String>,
    /// Whether this is the admin looking at the page.
    pub is_me: bool,
}

/// Every user, by email (admins only).
#[server(prefix = "/ui", endpoint = "admin_users")]
pub async fn admin_users() -> Result<Vec<UserRow>, AppError> {
    use ssr::*;
    let me = require_admin().await?;
    Ok(services()?
        .list_users()
        .await?
        .into_iter()
        .map(|u| UserRow {
            is_me: u.id == me.id,
            email: u.email,
            role: u.role,
            store: u.store_id,
            created: human_time(u.created_at),
            disabled: u.disabled_at.map(human_time),
        })
        .collect())
}

/// Disables a user (their sessions end at once) or enables them again.
#[server(prefix = "/ui", endpoint = "admin_set_user_disabled")]
pub async fn admin_set_user_disabled(email: String, disabled: bool) -> Result<(), AppError> {
    use ssr::*;
    let me = require_admin().await?;
    if disabled && me.email == email.trim().to_lowercase() {
        return Err(refused(AppError::Invalid {
            field: None,
            message: "You cannot disable yourself.".into(),
        }));
    }
    services()?.set_user_disabled(&me.scope(), &email, disabled).await?;
    Ok(())
}

/// Ends every session of a user.
#[server(prefix = "/ui", endpoint = "admin_end_sessions")]
pub async fn admin_end_sessions(email: String) -> Result<u64, AppError> {
    use ssr::*;
    let me = require_admin().await?;
    Ok(services()?.end_user_sessions(&me.scope(), &email).await?)
}

/// Deletes a user; `confirm` must be "yes" (the form's confirmation box).
#[server(prefix = "/ui", endpoint = "admin_delete_user")]
pub async fn admin_delete_user(email: String, confirm: Option<String>) -> Result<(), AppError> {
    use ssr::*;
    let me = require_admin().await?;
    if confirm.as_deref() != Some("yes") {
        return Err(refused(AppError::Invalid {
            field: Some("confirm".into()),
            message: "Tick the box to confirm the deletion.".into(),
        }));
    }
    if me.email == email.trim().to_lowercase() {
        return Err(refused(AppError::Invalid {
            field: None,
            message: "You cannot delete yourself.".into(),
        }));
    }
    services()?.delete_user(&me.scope(), &email).await?;
    Ok(())
}

/// Changes the signed-in user's password; their other sessions end.
#[server(prefix = "/ui", endpoint = "change_password")]
pub async fn change_password(current_password: String, new_password: String) -> Result<String, AppError> {
    use ssr::*;
    let me = signed_in().await?;
    services()?.change_password(&me.id, session_token().as_deref(), &current_password, &new_password).await?;
    Ok("Your password is changed. Your other sessions have ended.".into())
}
