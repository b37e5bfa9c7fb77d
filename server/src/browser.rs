//! What the server asks of browsers and refuses from them: the security headers on every
//! response (with a fresh script nonce for each page's Content-Security-Policy), no
//! state-changing dashboard request from another site, no oversized dashboard request, and no
//! form error in a page's address that this server did not put there. The REST API under
//! `/api/` takes bearer keys, not cookies, so only the headers apply to it.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use sha2::Sha256;
use url::Url;

use crate::config::Config;

/// The largest dashboard request body: the biggest form holds a webhook's URL, description
/// and its event types.
pub const DASHBOARD_BODY_LIMIT: usize = 256 * 1024;

/// The nonce this response's Content-Security-Policy lets scripts run with; the dashboard
/// puts it on the scripts it renders.
#[derive(Clone, Debug)]
pub struct ScriptNonce(pub String);

/// Where Leptos carries a plain form post's error back to the page, and our tag on it.
const ERROR_PATH: &str = "__path";
const ERROR_VALUE: &str = "__err";
const ERROR_TAG: &str = "__sig";

#[derive(Clone)]
struct Guard {
    /// The dashboard's origin when `HOOKLINE_PUBLIC_URL` names it; else each request's own.
    public_origin: Option<url::Origin>,
    /// Tags the form errors this process sends browsers back with. Per process: behind
    /// several instances, an error may land on another one and is then not shown.
    error_key: Arc<[u8; 32]>,
}

/// `HOOKLINE_PUBLIC_URL`, for addresses the server hands out (portal links); unset, each
/// request's own origin stands in.
#[derive(Clone, Debug)]
pub struct PublicUrl(pub Option<Url>);

/// The origins a portal page lets frame it, set on the response by the portal's routes;
/// honoured only under `/portal/` (every other page answers `frame-ancestors 'none'`).
#[derive(Clone, Debug)]
pub struct FrameAncestors(pub Vec<String>);

/// Wraps the whole router (dashboard, API, docs) in the browser rules.
pub fn protect(router: Router, cfg: &Config) -> Router {
    let guard = Guard {
        public_origin: cfg.public_url.as_ref().map(Url::origin),
        error_key: Arc::new(rand::random()),
    };
    let trusted = Arc::new(cfg.trusted_proxies.clone());
    // The last layer runs first: headers go on every answer, refusals included.
    router
        .layer(from_fn(limit_dashboard_body))
        .layer(from_fn_with_state(trusted, note_client_address))
        .layer(from_fn_with_state(guard.clone(), tag_form_errors))
        .layer(from_fn_with_state(guard, refuse_cross_site))
        .layer(from_fn(security_headers))
        .layer(axum::Extension(PublicUrl(cfg.public_url.clone())))
}

/// Notes who the client is (the sign-in throttle counts per client): the connection's peer,
/// or behind a proxy in `HOOKLINE_TRUSTED_PROXIES`, the address it forwards.
async fn note_client_address(
    State(trusted): State<Arc<Vec<ipnet::IpNet>>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    if let Some(peer) = peer {
        let forwarded: Vec<&str> =
            req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        let client = hookline_core::client_behind(peer, &forwarded, &trusted);
        req.extensions_mut().insert(hookline_core::ClientAddress(client));
    }
    next.run(req).await
}

/// A request the dashboard answers by changing something: not a read, and not the API.
fn changes_dashboard_state(req: &Request) -> bool {
    !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) && !is_api(req)
}

fn is_api(req: &Request) -> bool {
    req.uri().path().starts_with("/api/")
}

fn header(req: &Request, name: impl header::AsHeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn security_headers(mut req: Request, next: Next) -> Response {
    let nonce = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
    req.extensions_mut().insert(ScriptNonce(nonce.clone()));
    let is_portal = req.uri().path().starts_with("/portal/");
    let mut res = next.run(req).await;
    // The one exception to "nothing frames a page": the portal, by its tenant's allow-list.
    let ancestors = res
        .extensions_mut()
        .remove::<FrameAncestors>()
        .filter(|a| is_portal && !a.0.is_empty())
        .map(|a| a.0.join(" "));
    let headers = res.headers_mut();
    if ancestors.is_none() {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let frame_ancestors = ancestors.as_deref().unwrap_or("'none'");
    if is_html && let Ok(csp) = HeaderValue::from_str(&content_security_policy(&nonce, frame_ancestors)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    res
}

/// Scripts run from this site or with the page's nonce, never inline handlers; WebAssembly
/// compiles; nothing frames the page but the origins `frame_ancestors` names (`'none'`
/// except on the portal's pages).
fn content_security_policy(nonce: &str, frame_ancestors: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; frame-ancestors {frame_ancestors}; base-uri 'none'; \
         form-action 'self'; object-src 'none'"
    )
}

/// Refuses a state-changing dashboard request the browser marks as coming from another
/// site, so a page elsewhere cannot sign a visitor in or out or act as them. Requests that
/// say nothing (no `Origin`, no `Sec-Fetch-Site`) are not from a browser's page and pass.
async fn refuse_cross_site(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    if !changes_dashboard_state(&req) {
        return next.run(req).await;
    }
    let fetch_site = header(&req, "sec-fetch-site");
    let cross_fetch = fetch_site.is_some_and(|s| !matches!(s, "same-origin" | "none"));
    let origin = header(&req, header::ORIGIN);
    let own = guard.public_origin.clone().or_else(|| request_origin(&req));
    // `Origin: null` (a sandboxed or redirected page) does not parse, so it is foreign too.
    let foreign_origin =
        origin.is_some_and(|o| own.is_none() || Url::parse(o).ok().map(|u| u.origin()) != own);
    if cross_fetch || foreign_origin {
        tracing::warn!(
            path = req.uri().path(),
            origin,
            sec_fetch_site = fetch_site,
            expected = own.map(|o| o.ascii_serialization()),
            "refused a dashboard request from another site (behind a proxy, set HOOKLINE_PUBLIC_URL)"
        );
        return (StatusCode::FORBIDDEN, "This request came from another site, so it was refused.\n")
            .into_response();
    }
    next.run(req).await
}

/// The origin the browser reached: the `Host` it asked for, over https when the proxy in
/// front says so.
pub(crate) fn request_origin(req: &Request) -> Option<url::Origin> {
    let host = header(req, header::HOST).or_else(|| req.uri().authority().map(|a| a.as_str()))?;
    let forwarded_https = header(req, "x-forwarded-proto")
        .and_then(|p| p.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    let scheme = if forwarded_https || req.uri().scheme_str() == Some("https") { "https" } else { "http" };
    let url = Url::parse(&format!("{scheme}://{host}/")).ok()?;
    // A Host with a path or credentials in it is not a host.
    (url.path() == "/" && url.username().is_empty()).then(|| url.origin())
}

/// Reads a state-changing dashboard request's body up to [`DASHBOARD_BODY_LIMIT`] before
/// the dashboard sees it, which would otherwise read any size.
async fn limit_dashboard_body(req: Request, next: Next) -> Response {
    if !changes_dashboard_state(&req) {
        return next.run(req).await;
    }
    let declared = header(&req, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DASHBOARD_BODY_LIMIT as u64) {
        return too_large();
    }
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, DASHBOARD_BODY_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Err(_) => return (StatusCode::BAD_REQUEST, "The request body could not be read.\n").into_response(),
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

fn too_large() -> Response {
    (StatusCode::PAYLOAD_TOO_LARGE, "The request is too large.\n").into_response()
}

/// Leptos sends a plain form post's error back to the page in the address (`__path`,
/// `__err`), and the page shows it: anyone could link to a page with text of their choice
/// in its error box. So the redirect that carries an error gets a tag bound to the
/// browser's cookies, and a page address with an error but without a valid tag is sent on
/// to the same address without the error, before the page (or its WebAssembly) reads it.
async fn tag_form_errors(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    if is_api(&req) {
        return next.run(req).await;
    }
    let cookies = header(&req, header::COOKIE).unwrap_or_default().to_string();
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        let Some(query) = req.uri().query() else {
            return next.run(req).await;
        };
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let mentions_error = [ERROR_PATH, ERROR_VALUE, ERROR_TAG].iter().any(|name| get(name).is_some());
        let genuine = match (get(ERROR_PATH), get(ERROR_VALUE), get(ERROR_TAG)) {
            (Some(path), Some(error), Some(tag)) => guard.verify(path, error, &cookies, tag),
            _ => false,
        };
        if mentions_error && !genuine {
            let rest = without_error(&pairs);
            let path = req.uri().path();
            let to = if rest.is_empty() { path.to_string() } else { format!("{path}?{rest}") };
            return Redirect::to(&to).into_response();
        }
        return next.run(req).await;
    }
    if !changes_dashboard_state(&req) {
        return next.run(req).await;
    }
    let mut res = next.run(req).await;
    if res.status().is_redirection()
        && let Some(location) = res.headers().get(header::LOCATION).and_then(|v| v.to_str().ok())
        && let Some(tagged) = guard.tag_location(location, &cookies)
        && let Ok(value) = HeaderValue::from_str(&tagged)
    {
        res.headers_mut().insert(header::LOCATION, value);
    }
    res
}

impl Guard {
    fn mac(&self, path: &str, error: &str, cookies: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.error_key.as_slice()).expect("HMAC takes any key length");
        for part in [path, error, cookies] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    fn verify(&self, path: &str, error: &str, cookies: &str, tag: &str) -> bool {
        URL_SAFE_NO_PAD.decode(tag).is_ok_and(|tag| self.mac(path, error, cookies).verify_slice(&tag).is_ok())
    }

    /// The redirect's address with a fresh tag when it carries an error, and without a stale
    /// one when it does not; `None` when there is nothing to change.
    fn tag_location(&self, location: &str, cookies: &str) -> Option<String> {
        let (base, query) = location.split_once('?')?;
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let mut rest = without_error(&pairs);
        if let (Some(path), Some(error)) = (get(ERROR_PATH), get(ERROR_VALUE)) {
            let tag = URL_SAFE_NO_PAD.encode(self.mac(path, error, cookies).finalize().into_bytes());
            let mut serializer = url::form_urlencoded::Serializer::new(rest);
            serializer
                .append_pair(ERROR_PATH, path)
                .append_pair(ERROR_VALUE, error)
                .append_pair(ERROR_TAG, &tag);
            rest = serializer.finish();
        } else if get(ERROR_TAG).is_none() {
            return None;
        }
        Some(if rest.is_empty() { base.to_string() } else { format!("{base}?{rest}") })
    }
}

/// The query without Leptos's error pair and our tag.
fn without_error(pairs: &[(String, String)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(k, _)| ![ERROR_PATH, ERROR_VALUE, ERROR_TAG].contains(&k.as_str())) {
        serializer.append_pair(k, v);
    }
    serializer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard { public_origin: None, error_key: Arc::new([7; 32]) }
    }

    #[test]
    fn a_redirect_with_an_error_gets_a_tag_bound_to_the_cookies() {
        let guard = guard();
        let tagged = guard
            .tag_location("http://h/settings/api?store=a&__path=%2Fui%2Fx&__err=e30&__sig=old", "c=1")
            .expect("a tagged address");
        let (_, query) = tagged.split_once('?').unwrap();
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let tag = &pairs.iter().find(|(k, _)| k == ERROR_TAG).unwrap().1;
        assert_eq!(pairs.iter().filter(|(k, _)| k == ERROR_TAG).count(), 1);
        assert!(guard.verify("/ui/x", "e30", "c=1", tag));
        assert!(!guard.verify("/ui/x", "e30", "c=2", tag));
        assert!(!guard.verify("/ui/x", "e31", "c=1", tag));
    }

    #[test]
    fn a_redirect_without_an_error_loses_a_stale_tag() {
        assert_eq!(
            guard().tag_location("/settings/api?__sig=old&store=a", "").as_deref(),
            Some("/settings/api?store=a")
        );
        assert_eq!(guard().tag_location("/settings/api?store=a", ""), None);
        assert_eq!(guard().tag_location("/settings/api", ""), None);
    }
}
