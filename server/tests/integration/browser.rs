//! What the server asks of browsers and refuses from them: no state-changing dashboard request
//! from another site, security headers with a per-response script nonce, no inline handlers,
//! no error text that the page's address chose, and no oversized dashboard request.

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// Posts the sign-in form with extra headers; returns the status and the session cookie set.
async fn sign_in_with(app: &TestApp, headers: &[(&str, &str)]) -> (u16, Option<String>) {
    let mut req = app
        .http
        .post(app.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("email=merchant%40a.test&password={}", enc(PASSWORD)));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.unwrap();
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("hookline_session=") && !c.starts_with("hookline_session=;"))
        .map(str::to_string);
    (res.status().as_u16(), cookie)
}

/// The nonce a response's Content-Security-Policy allows scripts to run with.
fn csp_nonce(res: &reqwest::Response) -> String {
    let csp =
        res.headers().get("content-security-policy").expect("a Content-Security-Policy").to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains(" 'unsafe-eval'"), "{csp}");
    let start = csp.find("'nonce-").expect("a script nonce") + "'nonce-".len();
    let len = csp[start..].find('\'').expect("a closed nonce");
    csp[start..start + len].to_string()
}

fn assert_page_headers(res: &reqwest::Response) {
    let h = res.headers();
    assert_eq!(h.get("x-frame-options").map(|v| v.to_str().unwrap()), Some("DENY"), "{}", res.url());
    assert_eq!(h.get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"));
    assert_eq!(h.get("referrer-policy").map(|v| v.to_str().unwrap()), Some("same-origin"));
}

/// Every `<script …>` opening tag in the page.
fn script_tags(html: &str) -> Vec<&str> {
    html.match_indices("<script")
        .map(|(i, _)| &html[i..i + html[i..].find('>').expect("a closed tag")])
        .collect()
}

/// Opening tags with an inline event handler attribute (`onclick=`, `onchange=`…).
fn inline_handlers(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in html.match_indices('<') {
        let tag = &html[i..i + html[i..].find('>').unwrap_or(html.len() - i)];
        let lower = tag.to_ascii_lowercase();
        let mut rest = lower.as_str();
        while let Some(at) = rest.find(" on") {
            let name: String = rest[at + 3..].chars().take_while(|c| c.is_ascii_alphabetic()).collect();
            if !name.is_empty() && rest[at + 3 + name.len()..].trim_start().starts_with('=') {
                found.push(tag.to_string());
            }
            rest = &rest[at + 3..];
        }
    }
    found
}

/// A page's address with the error Leptos would show after a plain form post, written by
/// someone else.
fn forged_error(path: &str, server_fn: &str, text: &str) -> String {
    let error = serde_json::json!({"Invalid": {"field": null, "message": text}}).to_string();
    let encoded = base64::engine::general_purpose::URL_SAFE.encode(error);
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}__path={}&__err={}", enc(server_fn), enc(&encoded))
}

on_both_databases! {
    async fn a_sign_in_posted_from_another_site_is_refused(backend: Backend) {
        let app = spawn(backend).await;
        let own = format!("http://{}", app.addr);
        for headers in [
            vec![("origin", "https://evil.example")],
            vec![("origin", "null")],
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site")],
            vec![("origin", own.as_str()), ("sec-fetch-site", "cross-site")],
        ] {
            let (status, cookie) = sign_in_with(&app, &headers).await;
            assert_eq!(status, 403, "{headers:?}");
            assert!(cookie.is_none(), "{headers:?} got a session");
        }
        // The dashboard's own pages sign in, and so do clients that say nothing.
        for headers in [
            vec![("origin", own.as_str()), ("sec-fetch-site", "same-origin")],
            vec![("sec-fetch-site", "none")],
            vec![],
        ] {
            let (status, cookie) = sign_in_with(&app, &headers).await;
            assert!(status < 400, "{headers:?}: {status}");
            assert!(cookie.is_some(), "{headers:?} got no session");
        }
    }

    async fn signing_out_or_changing_anything_from_another_site_is_refused(backend: Backend) {
        let app = spawn(backend).await;
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");
        for name in ["logout", "create_webhook", "create_api_key"] {
            let res = app.http.post(app.url(&format!("/ui/{name}")))
                .header("cookie", &cookie)
                .header("origin", "https://evil.example")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("url=https%3A%2F%2Fevil.example%2Fhook&name=evil")
                .send().await.unwrap();
            assert_eq!(res.status(), 403, "{name}");
        }
        let (status, _) = app.server_fn(&cookie, "viewer", &[]).await;
        assert_eq!(status, 200, "the session survived");
        assert_eq!(app.counts().await.3, 0, "no webhook was created");
        // The REST API takes bearer keys, not cookies: a browser's Origin does not matter.
        let res = app.http.post(app.url("/api/v1/webhooks"))
            .bearer_auth(&app.store_a_key)
            .header("origin", "https://evil.example")
            .header("sec-fetch-site", "cross-site")
            .header("content-type", "application/json")
            .body(r#"{"url": "https://a.example.com/hook"}"#)
            .send().await.unwrap();
        assert_eq!(res.status(), 201);
    }

    async fn pages_send_security_headers_and_a_fresh_nonce_on_every_script(backend: Backend) {
        let app = spawn(backend).await;
        let (id, _) = app.create_webhook("store-a", "https://a.example.com/hook", None).await;
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");
        let mut nonces = Vec::new();
        let webhook = format!("/settings/api/webhooks/{id}");
        for path in ["/login", "/login", "/settings/api", webhook.as_str(), "/no-such-page"] {
            let res = app.http.get(app.url(path)).header("cookie", &cookie).send().await.unwrap();
            assert_page_headers(&res);
            let nonce = csp_nonce(&res);
            let html = res.text().await.unwrap();
            let scripts = script_tags(&html);
            assert!(scripts.len() >= 2, "{path}: the hydration scripts and ui.js: {scripts:?}");
            assert!(html.contains(r#"src="/ui.js""#), "{path}");
            for tag in scripts {
                assert!(tag.contains(&format!(r#"nonce="{nonce}""#)), "{path}: {tag} lacks nonce {nonce}");
            }
            nonces.push(nonce);
        }
        nonces.sort();
        nonces.dedup();
        assert_eq!(nonces.len(), 5, "a nonce per response");

        let res = app.http.get(app.url("/docs/api")).send().await.unwrap();
        assert_page_headers(&res);
        csp_nonce(&res);
        let res = app.http.get(app.url("/api/v1/webhooks")).bearer_auth(&app.store_a_key).send().await.unwrap();
        assert_page_headers(&res);
    }

    async fn pages_have_no_inline_event_handlers(backend: Backend) {
        let app = spawn(backend).await;
        let (id, _) = app.create_webhook("store-a", "https://a.example.com/hook", None).await;
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");
        // A key created by a plain form post is shown with its copy button on the next page.
        let res = app.http.post(app.url("/ui/create_api_key"))
            .header("cookie", &cookie)
            .header("accept", "text/html")
            .header("referer", app.url("/settings/api"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("name=Copied")
            .send().await.unwrap();
        assert_eq!(res.status(), 302);
        let page = |path: String| {
            let req = app.http.get(app.url(&path)).header("cookie", &cookie);
            async move { req.send().await.unwrap().text().await.unwrap() }
        };
        let settings = page("/settings/api".into()).await;
        assert!(settings.contains("hkl_") && settings.contains("data-copy="), "the new key and its copy button");
        let adding = page("/settings/api?new=1".into()).await;
        assert!(adding.contains("data-group-all") && adding.contains("data-event-type"), "the event-type picker");
        let webhook = page(format!("/settings/api/webhooks/{id}")).await;
        for html in [settings, adding, webhook, page("/login".into()).await] {
            assert_eq!(inline_handlers(&html), Vec::<String>::new());
        }
    }

    async fn the_login_page_shows_no_error_text_from_its_address(backend: Backend) {
        let app = spawn(backend).await;
        for path in [
            forged_error("/login", "/ui/login", "Injected text"),
            format!("{}&__sig=AAAA", forged_error("/login", "/ui/login", "Injected text")),
            "/login?error=Injected%20text".to_string(),
            "/login?error=throttled&retry=Injected%20text".to_string(),
        ] {
            let res = app.http.get(app.url(&path)).send().await.unwrap();
            let status = res.status().as_u16();
            let location = res.headers().get("location").map(|v| v.to_str().unwrap().to_string());
            let html = res.text().await.unwrap();
            assert!(!html.contains("Injected"), "{path} showed the address's text");
            if status != 200 {
                // Sent on to the page without the error.
                assert_eq!(location.as_deref(), Some("/login"), "{path}");
            }
        }
        // The page's own codes say its own sentences.
        let html = app.http.get(app.url("/login?error=credentials")).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("That email and password do not match."));
        let html = app.http.get(app.url("/login?error=throttled&retry=30")).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("Try again in 30 seconds."), "{html}");
    }

    async fn a_refused_sign_in_without_javascript_comes_back_with_the_pages_own_message(backend: Backend) {
        let app = spawn(backend).await;
        let res = app.http.post(app.url("/ui/login"))
            .header("accept", "text/html")
            .header("referer", app.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=merchant%40a.test&password=wrong")
            .send().await.unwrap();
        assert_eq!(res.status(), 302);
        let location = res.headers().get("location").unwrap().to_str().unwrap().to_string();
        assert_eq!(location, "/login?error=credentials");
        let html = app.http.get(app.url(&location)).send().await.unwrap().text().await.unwrap();
        assert!(html.contains(r#"class="form-error">That email and password do not match."#), "{html}");
    }

    async fn a_form_error_shows_only_in_the_browser_that_made_it(backend: Backend) {
        let app = spawn(backend).await;
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");
        // A plain form post with a bad URL comes back to the form with the server's message.
        let res = app.http.post(app.url("/ui/create_webhook"))
            .header("cookie", &cookie)
            .header("accept", "text/html")
            .header("referer", app.url("/settings/api?new=1"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("url=http%3A%2F%2Fexample.com%2Fhook")
            .send().await.unwrap();
        assert_eq!(res.status(), 302);
        let location = res.headers().get("location").unwrap().to_str().unwrap().to_string();
        assert!(location.contains("__err=") && location.contains("__sig="), "{location}");
        let res = app.http.get(&location).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("must start with https://"));

        // The same address in another browser, or one written by someone else, shows nothing.
        let other = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");
        let forged = forged_error("/settings/api?new=1", "/ui/create_webhook", "Injected text");
        for (address, cookie) in [(location.as_str(), other.as_str()), (forged.as_str(), cookie.as_str())] {
            let url = if address.starts_with("http") { address.to_string() } else { app.url(address) };
            let res = app.http.get(url).header("cookie", cookie).send().await.unwrap();
            assert_eq!(res.status(), 303, "{address}");
            let to = res.headers().get("location").unwrap().to_str().unwrap();
            assert_eq!(to, "/settings/api?new=1");
            let html = app.http.get(app.url(to)).header("cookie", cookie).send().await.unwrap().text().await.unwrap();
            assert!(!html.contains("Injected") && !html.contains("must start with https://"));
        }
    }

    async fn an_oversized_dashboard_request_is_refused(backend: Backend) {
        let app = spawn(backend).await;
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");
        let big = format!("url=https%3A%2F%2Fa.example.com%2Fhook&description={}", "x".repeat(1024 * 1024));
        let res = app.http.post(app.url("/ui/create_webhook"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send().await.unwrap();
        assert_eq!(res.status(), 413);
        // Without a declared length too: the body is read up to the limit, no further.
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let head = format!(
            "POST /ui/create_webhook HTTP/1.1\r\nhost: {}\r\ncookie: {cookie}\r\n\
             content-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\n\r\n",
            app.addr
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let chunk = "x".repeat(64 * 1024);
        let mut answer = Vec::new();
        for _ in 0..16 {
            if stream.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes()).await.is_err() {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
        let _ = stream.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert_eq!(app.counts().await.3, 0);
        // A form of ordinary size still works.
        let (status, body) = app.server_fn(&cookie, "create_webhook", &[("url", "https://a.example.com/hook")]).await;
        assert!(status < 400, "{status} {body}");
    }
}

async fn spawn_behind_proxy() -> TestApp {
    spawn_with(Backend::Sqlite, &[("HOOKLINE_PUBLIC_URL", "https://hooks.example.com")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_url_is_the_dashboards_origin() {
    let app = spawn_behind_proxy().await;
    let own = format!("http://{}", app.addr);
    let (status, cookie) = sign_in_with(&app, &[("origin", own.as_str())]).await;
    assert_eq!((status, cookie.is_none()), (403, true), "the listening address is not the public one");
    let (status, cookie) = sign_in_with(&app, &[("origin", "https://hooks.example.com")]).await;
    assert!(status < 400 && cookie.is_some(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_an_https_proxy_the_forwarded_scheme_counts() {
    let app = spawn(Backend::Sqlite).await;
    let own = format!("https://{}", app.addr);
    let (status, _) = sign_in_with(&app, &[("origin", own.as_str())]).await;
    assert_eq!(status, 403, "https is not the origin plain http reached");
    let (status, cookie) =
        sign_in_with(&app, &[("origin", own.as_str()), ("x-forwarded-proto", "https")]).await;
    assert!(status < 400 && cookie.is_some(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_assets_are_sent_compressed() {
    // The built dashboard (scripts/hookline builds it before the tests).
    let site = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/site");
    let app = spawn_with(Backend::Sqlite, &[("HOOKLINE_SITE_ROOT", site)]).await;
    for (path, encoding) in [("/login", "br"), ("/login", "gzip"), ("/pkg/hookline.css", "gzip")] {
        let res = app.http.get(app.url(path)).header("accept-encoding", encoding).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(
            res.headers().get("content-encoding").and_then(|v| v.to_str().ok()),
            Some(encoding),
            "{path} with {encoding}"
        );
        assert_eq!(res.headers().get("vary").and_then(|v| v.to_str().ok()), Some("accept-encoding"));
        assert_eq!(
            res.headers().get("cache-control").and_then(|v| v.to_str().ok()),
            Some("private, no-cache")
        );
    }
    // The REST API is left as it is.
    let res =
        app.http.get(app.url("/api/v1/openapi.json")).header("accept-encoding", "gzip").send().await.unwrap();
    assert!(res.headers().get("content-encoding").is_none());
}
