//! The tower-http layers around every request: its id (`x-request-id`, kept when the client
//! sends one, else a new UUID, answered back and carried by the request's span, so every log
//! line of the request names it), its span, the credentials kept out of logs (`Authorization`,
//! `Cookie`, `Set-Cookie`), its time limit, and an answer when a handler panics. The REST API
//! answers its timeouts and panics in its JSON error shape; everything else in plain text.
//! Compression is the dashboard's own (web.rs): the API's answers are small, and publishing
//! is the hot path.

use std::any::Any;
use std::time::Duration;

use axum::BoxError;
use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, StatusCode};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::{SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::api::ApiError;

/// The request id's header.
pub const REQUEST_ID: &str = "x-request-id";

/// How long a handler may take once the request's body is in: the longest thing a handler
/// waits for is a manual or test attempt (at most `HOOKLINE_DELIVERY_TIMEOUT`, itself at most
/// 30 s) plus its database writes, and a SQLite writer may wait up to 30 s for the lock.
pub const HANDLER_TIME: Duration = Duration::from_secs(60);

/// The time limit of a request, from its headers to its answer's headers: the body's own
/// deadline (`HOOKLINE_BODY_TIMEOUT`) plus [`HANDLER_TIME`], so that it never cuts a body
/// that is still within its deadline, and the body's deadline answers first. Only the wait
/// for the answer's headers counts: a streamed page or a large file is not cut off.
pub fn request_timeout(body_timeout: Duration) -> Duration {
    body_timeout + HANDLER_TIME
}

/// The layers around the whole router, outermost first: credentials marked sensitive, the
/// request id set, the request's span, the id answered back, and a panic answered with a
/// plain 500 (the API answers its own in JSON first, [`api`]).
pub fn around_everything(router: Router) -> Router {
    // The last layer added runs first.
    router
        .layer(CatchPanicLayer::custom(page_panicked))
        .layer(PropagateRequestIdLayer::x_request_id())
        // Inside the trace layer, so that its answer is marked before anything logs it.
        .layer(SetSensitiveResponseHeadersLayer::new([SET_COOKIE]))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([AUTHORIZATION, COOKIE]))
}

/// The REST API's time limit and panics, answered in its JSON error shape. tower's timeout
/// fails the request with `Elapsed`, which the error handler turns into the API's 503, so
/// nothing has to guess a timeout from the look of an answer.
pub fn api<S: Clone + Send + Sync + 'static>(router: Router<S>, timeout: Duration) -> Router<S> {
    router
        .layer(
            tower::ServiceBuilder::new()
                .layer(HandleErrorLayer::new(move |e: BoxError| async move { api_failed(e, timeout) }))
                .layer(tower::timeout::TimeoutLayer::new(timeout)),
        )
        .layer(CatchPanicLayer::custom(api_panicked))
}

/// The time limit of the dashboard, the API reference and the operations endpoints: a
/// plain 503.
pub fn with_timeout<S: Clone + Send + Sync + 'static>(router: Router<S>, timeout: Duration) -> Router<S> {
    router.layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
}

/// One span per request, at `info` so that the default filter keeps it: every line logged
/// while the request is handled carries its id. The path without the query string, which
/// may carry what a log should not.
fn request_span(req: &Request<Body>) -> tracing::Span {
    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
    // A portal's address carries its link's or session's token: the log keeps only the portal.
    let path = if req.uri().path().starts_with("/portal/") { "/portal/…" } else { req.uri().path() };
    tracing::info_span!("request", method = %req.method(), path, request_id = id)
}

/// What the API answers when a request fails in its layers rather than in a handler: the
/// time limit, or (not expected) another layer's error.
fn api_failed(error: BoxError, timeout: Duration) -> Response {
    if error.is::<tower::timeout::error::Elapsed>() {
        tracing::warn!(timeout_secs = timeout.as_secs(), "a request took too long and was answered 503");
        return ApiError::unavailable(format!(
            "The request took longer than {} s and was stopped; it may have taken effect. \
             Retry it (a publish with the same Idempotency-Key).",
            timeout.as_secs()
        ))
        .into_response();
    }
    tracing::error!(error = %error, "a request failed in the API's layers");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Something went wrong on our side.")
        .into_response()
}

fn api_panicked(panic: Box<dyn Any + Send + 'static>) -> Response {
    log_panic(panic.as_ref());
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Something went wrong on our side.")
        .into_response()
}

fn page_panicked(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    log_panic(panic.as_ref());
    let mut res = Response::new(Body::from("Something went wrong on our side."));
    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    res.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}

/// Inside the request's span, so the line names the request id.
fn log_panic(panic: &(dyn Any + Send)) {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    tracing::error!(panic = message, "a request's handler panicked");
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;

    /// A router like the real one (the API under `/api/v1`, pages beside it), with handlers
    /// that panic or hang: no such route exists in the product.
    fn router(timeout: Duration) -> Router {
        let api_routes = Router::new()
            .route("/panics", get(api_handler_panics))
            .route("/hangs", get(std::future::pending::<&'static str>));
        let pages = Router::new()
            .route("/page-panics", get(page_panics))
            .route("/page-hangs", get(std::future::pending::<&'static str>))
            .route("/fine", get(|| async { "fine" }));
        let router =
            Router::new().nest("/api/v1", api(api_routes, timeout)).merge(with_timeout(pages, timeout));
        around_everything(router)
    }

    async fn api_handler_panics() -> &'static str {
        panic!("the handler broke")
    }

    async fn page_panics() -> &'static str {
        panic!("the page broke")
    }

    async fn call(router: Router, req: Request<Body>) -> (Response<()>, String) {
        let res = router.oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let body = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
        (Response::from_parts(parts, ()), body)
    }

    fn get_req(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn a_panic_in_the_api_answers_its_json_error() {
        let (res, body) = call(router(Duration::from_secs(5)), get_req("/api/v1/panics")).await;
        assert_eq!(res.status(), 500);
        assert_eq!(res.headers()["content-type"], "application/json");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal", "{body}");
        assert_eq!(body["error"]["message"], "Something went wrong on our side.");
        assert!(!body.to_string().contains("the handler broke"), "the panic's message stays in the log");
        assert!(res.headers().contains_key(REQUEST_ID));
    }

    #[tokio::test]
    async fn a_panic_elsewhere_answers_plain_text() {
        let (res, body) = call(router(Duration::from_secs(5)), get_req("/page-panics")).await;
        assert_eq!(res.status(), 500);
        assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(body, "Something went wrong on our side.");
    }

    #[tokio::test]
    async fn a_request_past_its_time_answers_503_in_json_on_the_api() {
        let (res, body) = call(router(Duration::from_millis(50)), get_req("/api/v1/hangs")).await;
        assert_eq!(res.status(), 503);
        assert!(res.headers().contains_key("retry-after"));
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "unavailable", "{body}");

        let (res, _) = call(router(Duration::from_millis(50)), get_req("/page-hangs")).await;
        assert_eq!(res.status(), 503);
    }

    #[tokio::test]
    async fn the_request_id_is_kept_when_given_and_made_when_not() {
        let req = Request::get("/fine").header(REQUEST_ID, "trace-me-42").body(Body::empty()).unwrap();
        let (res, body) = call(router(Duration::from_secs(5)), req).await;
        assert_eq!(body, "fine");
        assert_eq!(res.headers()[REQUEST_ID], "trace-me-42");

        let (res, _) = call(router(Duration::from_secs(5)), get_req("/fine")).await;
        let made = res.headers()[REQUEST_ID].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(made).is_ok(), "{made}");
    }

    #[test]
    fn the_request_timeout_outlasts_the_body_deadline() {
        let body = Duration::from_secs(30);
        assert!(request_timeout(body) > body + Duration::from_secs(30));
    }
}
