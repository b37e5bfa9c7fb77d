//! What every request passes through (server/src/plumbing.rs): its id, answered back and in
//! every log line of the request, credentials kept out of the logs, and the dashboard's files
//! sent compressed. Panics and timeouts are tested on a router of the test's own, in the
//! module's unit tests: the product has no route that panics or hangs.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

const REQUEST_ID: &str = "x-request-id";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_names_its_request_and_a_clients_id_is_kept() {
    let app = spawn(Backend::Sqlite).await;
    let mut seen = Vec::new();
    for path in ["/healthz", "/api/v1/webhooks", "/api/v1/no-such-route", "/login", "/no-such-page"] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        let id = res.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_string);
        let id = id.unwrap_or_else(|| panic!("{path} answered {} without a request id", res.status()));
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{path}: {id}");
        seen.push(id);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "each request has an id of its own");

    for path in ["/healthz", "/api/v1/webhooks"] {
        let res = app.http.get(app.url(path)).header(REQUEST_ID, "from-the-client-7").send().await.unwrap();
        assert_eq!(res.headers()[REQUEST_ID], "from-the-client-7", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webassembly_css_and_script_are_sent_compressed() {
    // The built dashboard (scripts/hookline builds it before the tests).
    let site = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/site");
    let app = spawn_with(Backend::Sqlite, &[("HOOKLINE_SITE_ROOT", site)]).await;
    for file in ["hookline_bg.wasm", "hookline.css", "hookline.js"] {
        let size = std::fs::metadata(format!("{site}/pkg/{file}")).expect("the built dashboard").len();
        for encoding in ["br", "gzip"] {
            let res = app
                .http
                .get(app.url(&format!("/pkg/{file}")))
                .header("accept-encoding", encoding)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{file}");
            assert_eq!(
                res.headers().get("content-encoding").and_then(|v| v.to_str().ok()),
                Some(encoding),
                "{file} with {encoding}"
            );
            assert!(res.headers().contains_key(REQUEST_ID));
            // The WebAssembly of a test build is some 18 MB: compressing all of it in an
            // unoptimised build takes seconds, so its answer is dropped once its headers say
            // how it is encoded.
            if file.ends_with(".wasm") {
                continue;
            }
            // The test client does not decode: these are the bytes on the wire.
            let sent = res.bytes().await.unwrap().len() as u64;
            assert!(sent < size / 2, "{file} in {encoding}: {sent} bytes of {size}");
        }
    }
}

/// The real binary with JSON logs: the lines of a request carry its id in the request's span,
/// and neither its API key nor its session cookie appears anywhere in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requests_log_lines_carry_its_id_and_no_credentials() {
    hookline::install_tls_provider();
    let dir = TempDir::new();
    let database_url = fresh_database(Backend::Sqlite, &dir).await;
    let log = dir.0.join("hookline.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookline"))
        .arg("serve")
        .env_remove("HOOKLINE_CONFIG")
        .env("HOOKLINE_DATABASE_URL", &database_url)
        .env("HOOKLINE_LISTEN", format!("127.0.0.1:{port}"))
        .env("HOOKLINE_ADMIN_EMAIL", "ops@hookline.test")
        .env("HOOKLINE_ADMIN_PASSWORD", "a long password")
        .env("HOOKLINE_LOG_FORMAT", "json")
        // tower-http's own lines about each request, at debug: they are inside its span.
        .env("HOOKLINE_LOG", "info,tower_http=trace")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("hookline starts");
    let _stop = KillOnDrop(&mut child);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "hookline never answered /healthz");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let res = http
        .get(format!("{base}/api/v1/webhooks"))
        .header(REQUEST_ID, "find-me-in-the-log")
        .bearer_auth("hkl_not-a-real-key-but-secret")
        .header("cookie", "hookline_session=a-secret-session")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()[REQUEST_ID], "find-me-in-the-log");

    let line = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let found = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["span"]["request_id"] == "find-me-in-the-log");
        if let Some(line) = found {
            assert!(!text.contains("not-a-real-key-but-secret"), "the API key is in the log:\n{text}");
            assert!(!text.contains("a-secret-session"), "the session cookie is in the log:\n{text}");
            break line;
        }
        assert!(Instant::now() < deadline, "no line carries the request id in\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(line["span"]["name"], "request", "{line}");
    assert_eq!(line["span"]["method"], "GET", "{line}");
    assert_eq!(line["span"]["path"], "/api/v1/webhooks", "{line}");
}

struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
