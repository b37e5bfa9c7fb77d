//! `hookline listen` and `hookline trigger`: the real binary as the CLI, against a server and
//! a real receiver, which verifies each event with the Standard Webhooks reference library.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookline_core::Tenant;
use serde_json::{Value, json};
use test_receiver::{Behaviour, Receiver};
use tokio::sync::mpsc;

use crate::common::{Backend, TempDir, fresh_database, on_both_databases, prepared_for_a_process, spawn};
use crate::hookline_process;

const WITHIN: Duration = Duration::from_secs(15);

/// A running `hookline listen`; killed when dropped.
struct Listen {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line it printed so far, for failure messages.
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    /// Reads stderr to its end: once finished, `stderr` is all of it.
    stderr_reader: std::thread::JoinHandle<()>,
}

fn listen(base: &str, key: &str, forward_to: &str, extra: &[&str]) -> Listen {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(["listen", "--url", base, "--key", key, "--forward-to", forward_to])
        .args(extra)
        .env_remove("HOOKLINE_CONFIG")
        .env("HOOKLINE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hookline listen starts");
    let (tx, lines) = mpsc::unbounded_channel();
    let stdout = child.stdout.take().expect("stdout is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err = child.stderr.take().expect("stderr is piped");
    let collected = stderr.clone();
    let stderr_reader = std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            collected.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    Listen { child, lines, seen: Vec::new(), stderr, stderr_reader }
}

impl Listen {
    /// The next line holding `needle` (earlier lines are kept in `seen`).
    async fn line_with(&mut self, needle: &str) -> String {
        let found = tokio::time::timeout(WITHIN, async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!(
                "hookline listen printed no line with {needle:?}; stdout: {:?}, stderr: {}",
                self.seen,
                self.stderr.lock().unwrap()
            ),
        }
    }

    /// The listener's signing secret, printed once it is connected.
    async fn secret(&mut self) -> String {
        let line = self.line_with("Signing secret: ").await;
        let secret = line.rsplit(' ').next().unwrap().to_string();
        assert!(secret.starts_with("whsec_"), "{line}");
        secret
    }

    /// Waits for the process to end; its exit code and stderr.
    async fn exit(&mut self) -> (Option<i32>, String) {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            // Exited, and its stderr read to the end.
            if let Some(status) = self.child.try_wait().unwrap()
                && self.stderr_reader.is_finished()
            {
                return (status.code(), self.stderr.lock().unwrap().clone());
            }
            assert!(tokio::time::Instant::now() < deadline, "hookline listen is still running");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `hookline trigger`, run to its end: exit code, stdout, stderr.
async fn trigger(base: &str, key: &str, event_type: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookline"));
    cmd.args(["trigger", event_type, "--url", base, "--key", key])
        .args(extra)
        .env_remove("HOOKLINE_CONFIG")
        .env("HOOKLINE_LOG", "warn");
    let out =
        tokio::task::spawn_blocking(move || cmd.output().expect("hookline trigger runs")).await.unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Whether the Standard Webhooks reference library verifies what the receiver got.
fn verifies(got: &test_receiver::Received, secret: &str) -> bool {
    let mut headers = http::HeaderMap::new();
    for (name, value) in &got.headers {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_str(value))
        {
            headers.append(name, value);
        }
    }
    standardwebhooks::Webhook::new(secret).and_then(|w| w.verify(got.body.as_bytes(), &headers)).is_ok()
}

/// Publishes an event and answers its id.
async fn publish(app: &crate::common::TestApp, key: &str, body: Value) -> String {
    let (status, answer) = app.api("POST", "/events", Some(key), Some(body)).await;
    assert_eq!(status, 202, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

/// The catalog's example payload of a type.
async fn example_of(app: &crate::common::TestApp, name: &str) -> Value {
    let types = app.services.event_types().await.unwrap();
    serde_json::from_str(&types.iter().find(|t| t.name == name).unwrap().example_payload).unwrap()
}

on_both_databases! {
    async fn listen_forwards_what_a_webhook_would_receive_signed_as_a_delivery(backend: Backend) {
        let app = spawn(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let base = app.url("");
        let mut cli = listen(&base, &app.store_a_key, &receiver.url("/local/hooks"), &["--events", "review-created,review-updated"]);
        receiver.set_secret(&cli.secret().await);
        assert_eq!(app.services.tenant_listeners(&Tenant::store("store-a")).await.unwrap().len(), 1);

        // trigger publishes the catalog's example and prints the event's id alone.
        let (code, id, stderr) = trigger(&base, &app.store_a_key, "review-created", &[]).await;
        assert_eq!(code, Some(0), "{stderr}");
        let got = receiver.wait_for(1, WITHIN).await;
        assert_eq!(got.len(), 1);
        let r = &got[0];
        assert!(r.verified, "{:?}", r.verify_error);
        assert_eq!(r.path, "/local/hooks");
        assert_eq!(r.header("webhook-id"), Some(id.as_str()));
        assert_eq!(r.header("webhookmessageid"), Some(id.as_str()));
        assert!(r.header("webhookmessageidpertarget").is_some_and(|v| v.ends_with(&id)));
        assert_eq!(r.header("x-webhooks-event-type"), Some("review-created"));
        assert_eq!(r.header("x-webhooks-tenant-type"), Some("store"));
        assert_eq!(r.header("x-webhooks-tenant-id"), Some("store-a"));
        assert!(r.header("x-webhooks-sequence").is_some_and(|s| s.parse::<i64>().is_ok()));
        assert_eq!(serde_json::from_str::<Value>(&r.body).unwrap(), example_of(&app, "review-created").await);
        let line = cli.line_with(&id).await;
        assert!(line.contains("review-created") && line.contains("-> 200 OK") && line.contains(" ms]"), "{line}");

        // What such a webhook would not receive does not come: another type, another store.
        publish(&app, &app.store_a_key, json!({"event_type": "communication.sms.sent.v1", "payload": {"n": 1}})).await;
        publish(&app, &app.store_b_key, json!({"event_type": "review-created", "payload": {"n": 2}})).await;
        // The body goes byte for byte, whitespace and all.
        let raw = r#"{"type":"review-updated",  "n": 3 }"#;
        let (status, answer) = app
            .publish_raw(Some(&app.store_a_key), &format!(r#"{{"event_type": "review-updated", "payload": {raw}}}"#))
            .await;
        assert_eq!(status, 202, "{answer}");
        let third = answer["id"].as_str().unwrap();
        cli.line_with(third).await;
        let got = receiver.received();
        assert_eq!(got.len(), 2, "only the two events of its types and store");
        assert_eq!(got[1].body, raw);
        assert!(got[1].verified);

        // The listener goes with the CLI.
        cli.kill();
        let gone = app
            .wait_until(WITHIN, async || {
                app.services.tenant_listeners(&Tenant::store("store-a")).await.unwrap().is_empty()
            })
            .await;
        assert!(gone, "the listener is removed once the CLI disconnects");
    }

    async fn listen_replays_a_past_event_of_its_tenant_only(backend: Backend) {
        let app = spawn(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let base = app.url("");
        let past = publish(&app, &app.store_a_key, json!({"event_type": "review-deleted", "payload": {"id": "rev_1"}})).await;
        let theirs = publish(&app, &app.store_b_key, json!({"event_type": "review-deleted", "payload": {"id": "rev_2"}})).await;

        // Another store's event, or no event: a clear error, and no listener is left behind.
        for id in [theirs.as_str(), "0190c7e2-0000-7000-8000-000000000000"] {
            let mut cli = listen(&base, &app.store_a_key, &receiver.url("/"), &["--replay", id]);
            let (code, stderr) = cli.exit().await;
            assert_eq!(code, Some(1), "{stderr}");
            assert!(stderr.contains("404") && stderr.contains("No such event"), "{stderr}");
        }
        assert!(app.services.tenant_listeners(&Tenant::store("store-a")).await.unwrap().is_empty());

        // Its own: sent again at once (even outside --events), then it keeps listening.
        let mut cli = listen(&base, &app.store_a_key, &receiver.url("/"), &["--replay", &past, "--events", "review-created"]);
        // The replay may arrive before the receiver is told the secret: checked here instead.
        let secret = cli.secret().await;
        receiver.set_secret(&secret);
        let line = cli.line_with(&past).await;
        assert!(line.contains("(replay)") && line.contains("-> 200"), "{line}");
        let got = receiver.wait_for(1, WITHIN).await;
        assert_eq!(got[0].header("webhook-id"), Some(past.as_str()));
        assert!(verifies(&got[0], &secret));
        assert!(!verifies(&got[0], &hookline_core::generate_secret()));
        let next = publish(&app, &app.store_a_key, json!({"event_type": "review-created", "payload": {}})).await;
        cli.line_with(&next).await;
        assert_eq!(receiver.wait_for(2, WITHIN).await.len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_refuses_bad_keys_and_tenants_the_key_cannot_reach() {
    let app = spawn(Backend::Sqlite).await;
    let receiver = Receiver::start().await.unwrap();
    let base = app.url("");
    let admin = Some(app.admin_key.as_str());

    // No key: the API's 401, documented.
    let (status, body) = app.api("GET", "/listen", None, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));

    let cases: Vec<(String, Vec<&str>, &str)> = vec![
        ("hkl_not_a_key".into(), vec![], "401"),
        (app.store_b_key.clone(), vec!["--tenant-type", "store", "--tenant-id", "store-a"], "403"),
        (app.admin_key.clone(), vec![], "tenant_type and tenant_id are required"),
        (app.store_a_key.clone(), vec!["--events", "no.such.type"], "Unknown event type: no.such.type"),
    ];
    for (key, extra, says) in cases {
        let mut cli = listen(&base, &key, &receiver.url("/"), &extra);
        let (code, stderr) = cli.exit().await;
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains(says), "{says:?} in {stderr}");
    }

    // An application reaches only the stores that installed it.
    app.api("POST", "/applications", admin, Some(json!({"id": "app-x", "name": "X"}))).await;
    app.api("POST", "/applications/app-x/installations", admin, Some(json!({"store_id": "store-b"}))).await;
    let (_, made) =
        app.api("POST", "/api-keys", admin, Some(json!({"name": "x", "scope": "application:app-x"}))).await;
    let app_key = made["key"].as_str().unwrap().to_string();
    let mut cli =
        listen(&base, &app_key, &receiver.url("/"), &["--tenant-type", "store", "--tenant-id", "store-a"]);
    let (code, stderr) = cli.exit().await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("403") && stderr.contains("not installed"), "{stderr}");

    // trigger: an unknown type, a tenant the key cannot publish for.
    let (code, _, stderr) = trigger(&base, &app.store_a_key, "no.such.type", &[]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no \"no.such.type\""), "{stderr}");
    let (code, _, stderr) = trigger(
        &base,
        &app.store_a_key,
        "review-created",
        &["--tenant-type", "store", "--tenant-id", "store-b"],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("403"), "{stderr}");
    assert!(app.services.tenant_listeners(&Tenant::store("store-a")).await.unwrap().is_empty());
    assert!(receiver.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_has_at_most_five_listeners_at_once() {
    let app = spawn(Backend::Sqlite).await;
    let open = || async {
        app.http.get(app.url("/api/v1/listen")).bearer_auth(&app.store_a_key).send().await.unwrap()
    };
    let mut streams = Vec::new();
    for _ in 0..5 {
        let stream = open().await;
        assert_eq!(stream.status(), 200);
        assert_eq!(stream.headers()["content-type"], "text/event-stream");
        streams.push(stream);
    }
    let (status, body) = app.api("GET", "/listen", Some(&app.store_a_key), None).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("at once"), "{body}");
    // Another store is not held back by this one.
    let other = app.http.get(app.url("/api/v1/listen")).bearer_auth(&app.store_b_key).send().await.unwrap();
    assert_eq!(other.status(), 200);

    // One closes: its place is free again.
    drop(streams.pop());
    let freed = app
        .wait_until(WITHIN, async || {
            app.services.tenant_listeners(&Tenant::store("store-a")).await.unwrap().len() == 4
        })
        .await;
    assert!(freed);
    assert_eq!(open().await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_receiver_that_is_down_is_reported_and_listening_goes_on() {
    let app = spawn(Backend::Sqlite).await;
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut cli = listen(&app.url(""), &app.store_a_key, &format!("http://{closed}/hooks"), &[]);
    cli.secret().await;
    for n in 0..2 {
        let id =
            publish(&app, &app.store_a_key, json!({"event_type": "review-created", "payload": {"n": n}}))
                .await;
        let line = cli.line_with(&id).await;
        assert!(line.contains("-> error:") && line.to_lowercase().contains("connect"), "{line}");
    }
    assert!(cli.child.try_wait().unwrap().is_none(), "still listening");
}

/// An API process holds the stream while another publishes, on one PostgreSQL; when the
/// stream's process stops, the CLI says so and exits with 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_gets_events_published_by_another_process_and_exits_when_its_server_goes() {
    let dir = TempDir::new();
    let url = fresh_database(Backend::Postgres, &dir).await;
    let hooks = Receiver::start().await.unwrap();
    let (services, key, _) = prepared_for_a_process(&url, &hooks).await;
    let start = || hookline_process::serve(&url).env("HOOKLINE_ROLE", "api").start();
    let (holding, publishing) = (start(), start());
    let local = Receiver::start().await.unwrap();
    local.configure(Behaviour { status: Some(204), ..Default::default() });
    let mut cli = listen(
        &holding.url(""),
        &key,
        &local.url("/"),
        &["--tenant-type", "store", "--tenant-id", "store-a"],
    );
    local.set_secret(&cli.secret().await);
    let (code, id, stderr) = trigger(
        &publishing.url(""),
        &key,
        "review-created",
        &["--tenant-type", "store", "--tenant-id", "store-a"],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let line = cli.line_with(&id).await;
    assert!(line.contains("-> 204"), "{line}");
    assert!(local.wait_for(1, WITHIN).await[0].verified);
    assert_eq!(services.tenant_listeners(&Tenant::store("store-a")).await.unwrap().len(), 1);

    // Stopped (SIGTERM): the server says why.
    holding.stop();
    let (code, stderr) = cli.exit().await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("Hookline ended the stream: Hookline is shutting down."), "{stderr}");

    // Killed (SIGKILL): the connection just ends.
    let mut cli = listen(
        &publishing.url(""),
        &key,
        &local.url("/"),
        &["--tenant-type", "store", "--tenant-id", "store-a"],
    );
    cli.secret().await;
    publishing.kill();
    let (code, stderr) = cli.exit().await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("the server went away") || stderr.contains("lost the connection"), "{stderr}");
}

/// An application's listener on a store gets what a webhook it made there would: the event
/// types of the product lines it is installed for, and none of Hookline's own events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applications_listener_gets_only_its_installed_product_lines() {
    let app = spawn(Backend::Sqlite).await;
    let receiver = Receiver::start().await.unwrap();
    let admin = Some(app.admin_key.as_str());
    app.api("POST", "/applications", admin, Some(json!({"id": "app-x", "name": "X"}))).await;
    let (status, _) = app
        .api(
            "POST",
            "/applications/app-x/installations",
            admin,
            Some(json!({"store_id": "store-a", "product_lines": ["Reviews"]})),
        )
        .await;
    assert_eq!(status, 201);
    let (_, made) =
        app.api("POST", "/api-keys", admin, Some(json!({"name": "x", "scope": "application:app-x"}))).await;
    let app_key = made["key"].as_str().unwrap().to_string();
    let mut cli = listen(
        &app.url(""),
        &app_key,
        &receiver.url("/"),
        &["--tenant-type", "store", "--tenant-id", "store-a"],
    );
    receiver.set_secret(&cli.secret().await);
    let sms =
        publish(&app, &app.store_a_key, json!({"event_type": "communication.sms.sent.v1", "payload": {}}))
            .await;
    let review =
        publish(&app, &app.store_a_key, json!({"event_type": "review-created", "payload": {}})).await;
    cli.line_with(&review).await;
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("webhook-id"), Some(review.as_str()));
    assert!(!cli.seen.iter().any(|l| l.contains(&sms)));
    // Nor may it replay the store's other events.
    let mut again = listen(
        &app.url(""),
        &app_key,
        &receiver.url("/"),
        &["--tenant-type", "store", "--tenant-id", "store-a", "--replay", &sms],
    );
    let (code, stderr) = again.exit().await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("404"), "{stderr}");
}
