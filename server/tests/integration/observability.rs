//! What operators see: `/metrics` after real publishes and deliveries, and JSON logs whose
//! lines about an attempt carry its ids. The metrics recorder is the process's, shared by
//! every test app running at once, so the tests look for growth, never for exact totals.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_receiver::{Behaviour, Receiver};

use crate::common::*;
use crate::hookline_process::{self, HooklineProcess};

/// The value of one series (`name{labels}` exactly as rendered), if it is there.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    let res = app.http.get(app.url("/metrics")).bearer_auth("scrape-me").send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// Scrapes until `series` reaches `at_least`; the last scrape.
async fn scrape_until(app: &TestApp, series: &str, at_least: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(app).await;
        if value(&text, series).is_some_and(|v| v >= at_least) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn at_least(text: &str, series: &str, min: f64) -> f64 {
    let v = value(text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
    assert!(v >= min, "{series} is {v}, expected at least {min}");
    v
}

on_both_databases! {
    async fn metrics_show_a_publish_and_its_delivery(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_METRICS_TOKEN", "scrape-me")]).await;
        let receiver = Receiver::start().await.unwrap();
        let (_, secret) = app.create_webhook("store-a", &receiver.url("/hooks"), None).await;
        receiver.set_secret(&secret);
        let published = r#"hookline_events_published_total{source="api"}"#;
        let succeeded = r#"hookline_delivery_attempts_total{outcome="succeeded",error_class="none"}"#;
        let before = scrape(&app).await;
        let published_before = value(&before, published).unwrap_or(0.0);
        let succeeded_before = value(&before, succeeded).unwrap_or(0.0);

        app.publish("store-a", "review-created", json!({"id": "rev_1"})).await;
        assert_eq!(receiver.wait_for(1, Duration::from_secs(10)).await.len(), 1);
        let text = scrape_until(&app, succeeded, succeeded_before + 1.0).await;

        at_least(&text, published, published_before + 1.0);
        at_least(&text, succeeded, succeeded_before + 1.0);
        assert!(text.contains("# TYPE hookline_delivery_attempt_duration_seconds histogram"), "{text}");
        let attempts = at_least(&text, "hookline_delivery_attempt_duration_seconds_count", 1.0);
        assert_eq!(value(&text, r#"hookline_delivery_attempt_duration_seconds_bucket{le="+Inf"}"#), Some(attempts));
        // A loopback answer takes well under 30 s.
        at_least(&text, r#"hookline_delivery_attempt_duration_seconds_bucket{le="30"}"#, 1.0);
        let delivered = at_least(&text, "hookline_delivery_latency_seconds_count", 1.0);
        assert_eq!(value(&text, r#"hookline_delivery_latency_seconds_bucket{le="86400"}"#), Some(delivered));
        at_least(&text, "hookline_delivery_latency_seconds_sum", 0.0);

        // The queue's figures, from the janitor; the pool's and the process's, read at scrape.
        assert!(at_least(&text, "hookline_delivery_concurrency", 1.0) >= 1.0);
        at_least(&text, "hookline_deliveries_in_flight", 0.0);
        at_least(&text, "hookline_deliveries_due", 0.0);
        at_least(&text, "hookline_oldest_due_delivery_age_seconds", 0.0);
        let max = at_least(&text, "hookline_db_pool_max_connections", 1.0);
        let in_use = at_least(&text, r#"hookline_db_pool_connections{state="in_use"}"#, 0.0);
        let idle = at_least(&text, r#"hookline_db_pool_connections{state="idle"}"#, 0.0);
        assert!(in_use + idle <= max, "{in_use} in use and {idle} idle of {max}");
        at_least(&text, "process_resident_memory_bytes", 1_000_000.0);
        at_least(&text, "process_open_fds", 3.0);
        at_least(&text, "process_cpu_seconds_total", 0.0);
        let started = at_least(&text, "process_start_time_seconds", 1_700_000_000.0);
        assert!(started <= (hookline_core::now_ms() / 1000 + 1) as f64);
    }

    async fn a_parked_delivery_nothing_holds_is_sent_by_the_sweep_and_counted(backend: Backend) {
        use hookline_core::entities::webhook;
        use sea_orm::sea_query::Expr;
        use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
        let app = spawn_with(backend, &[("HOOKLINE_METRICS_TOKEN", "scrape-me")]).await;
        let receiver = Receiver::start().await.unwrap();
        let (webhook_id, _) = app.create_webhook("store-a", &receiver.url("/hooks"), None).await;
        let db = app.services.database();
        webhook::Entity::update_many()
            .col_expr(webhook::Column::Ordering, Expr::value(true))
            .filter(webhook::Column::Id.eq(&webhook_id))
            .exec(db)
            .await
            .unwrap();
        let series = "hookline_ordered_deliveries_woken_by_sweep_total";
        let before = value(&scrape(&app).await, series).expect("the counter is there from the start");
        // A key's second event, parked, with its first one gone (as when retention deleted it):
        // no wake-up is coming, only the sweep finds it.
        let (event, now) = (uuid::Uuid::now_v7().to_string(), hookline_core::now_ms());
        for (sql, values) in [
            (
                "INSERT INTO events (id, tenant_type, tenant_id, event_type, payload, sequence, received_at, ordering_key) \
                 VALUES ($1, 'store', 'store-a', 'review-created', '{\"rating\": 5}', 0, $2, 'k')",
                vec![event.clone().into(), now.into()],
            ),
            (
                "INSERT INTO deliveries (id, event_id, webhook_id, tenant_type, tenant_id, event_type, status, attempts, \
                 manual_attempts, next_attempt_at, created_at, updated_at, ordering_key, ordering_seq) \
                 VALUES ($1, $2, $3, 'store', 'store-a', 'review-created', 'pending', 0, 0, NULL, $4, $4, 'k', 2)",
                vec![uuid::Uuid::now_v7().to_string().into(), event.clone().into(), webhook_id.clone().into(), now.into()],
            ),
        ] {
            db.execute_raw(sea_orm::Statement::from_sql_and_values(db.get_database_backend(), sql, values)).await.unwrap();
        }
        // A round of the sweep every 30 s, the janitor every 5 s.
        let got = receiver.wait_for(1, Duration::from_secs(45)).await;
        assert_eq!(got.len(), 1, "the parked delivery was sent");
        assert_eq!(got[0].header("webhook-id"), Some(event.as_str()));
        let text = scrape_until(&app, series, before + 1.0).await;
        at_least(&text, series, before + 1.0);
    }

    async fn failed_attempts_are_counted_by_error_class_and_turned_off_webhooks_by_reason(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_METRICS_TOKEN", "scrape-me")]).await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        app.create_webhook("store-a", &format!("http://{closed}/hooks"), None).await;
        let gone = Receiver::start().await.unwrap();
        gone.configure(Behaviour { status: Some(410), ..Default::default() });
        app.create_webhook("store-a", &gone.url("/hooks"), None).await;
        let connect = r#"hookline_delivery_attempts_total{outcome="failed",error_class="connect"}"#;
        let status = r#"hookline_delivery_attempts_total{outcome="failed",error_class="http_status"}"#;
        let turned_off = r#"hookline_webhooks_disabled_total{reason="gone"}"#;
        let internal = r#"hookline_events_published_total{source="internal"}"#;
        let before = scrape(&app).await;
        let of = |series: &str| value(&before, series).unwrap_or(0.0);
        let (connect_before, status_before, off_before, internal_before) =
            (of(connect), of(status), of(turned_off), of(internal));

        app.publish("store-a", "review-created", json!({"id": "rev_1"})).await;
        // webhook.disabled is an event Hookline publishes itself, after turning the webhook off.
        for (series, before) in
            [(turned_off, off_before), (status, status_before), (internal, internal_before), (connect, connect_before)]
        {
            let text = scrape_until(&app, series, before + 1.0).await;
            at_least(&text, series, before + 1.0);
        }
    }
}

/// The real binary, its log in `log`, with an admin and `extra` settings.
fn start_hookline(database_url: &str, log: &std::path::Path, extra: &[(&str, &str)]) -> HooklineProcess {
    hookline_process::serve(database_url)
        .env("HOOKLINE_LOG", "info")
        .env("HOOKLINE_ADMIN_EMAIL", "ops@hookline.test")
        .env("HOOKLINE_ADMIN_PASSWORD", "a long password")
        .stderr(std::fs::File::create(log).unwrap())
        .envs(extra)
        .start()
}

/// Publishes an event for store-a through the process; its id.
async fn publish(hookline: &HooklineProcess, key: &str) -> String {
    let res = reqwest::Client::new()
        .post(hookline.url("/api/v1/events"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created", "payload": {}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let body: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    body["id"].as_str().unwrap().to_string()
}

/// The real binary with `HOOKLINE_LOG_FORMAT=json`: the line about an attempt names its event,
/// delivery and webhook through the attempt's span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_attempt_ids() {
    let dir = TempDir::new();
    let database_url = fresh_database(Backend::Sqlite, &dir).await;
    let receiver = Receiver::start().await.unwrap();
    let (_, key, webhook_id) = prepared_for_a_process(&database_url, &receiver).await;
    let log = dir.0.join("hookline.log");
    let hookline = start_hookline(
        &database_url,
        &log,
        &[("HOOKLINE_LOG_FORMAT", "json"), ("HOOKLINE_LOG", "info,hookline::delivery=debug")],
    );

    let event_id = publish(&hookline, &key).await;
    assert_eq!(receiver.wait_for(1, Duration::from_secs(10)).await.len(), 1);

    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let found = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["fields"]["message"] == "attempt answered");
        if let Some(line) = found {
            break line;
        }
        assert!(Instant::now() < deadline, "no JSON line about the attempt in\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let span = &line["span"];
    assert_eq!(span["name"], "attempt", "{line}");
    assert_eq!(span["event_id"], event_id.as_str(), "{line}");
    assert_eq!(span["webhook_id"], webhook_id.as_str(), "{line}");
    assert_eq!(span["trigger"], "scheduled", "{line}");
    assert!(span["delivery_id"].as_str().is_some_and(|id| !id.is_empty()), "{line}");
    assert_eq!(line["fields"]["status"], 200, "{line}");
}

/// With the `otlp` feature: the attempt's span reaches an OTLP/HTTP collector, at the latest
/// when the process stops.
#[cfg(feature = "otlp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempt_spans_are_exported_over_otlp() {
    use std::sync::{Arc, Mutex};
    type Received = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;
    let received: Received = Arc::default();
    let collector = axum::Router::new()
        .fallback(
            |axum::extract::State(received): axum::extract::State<Received>,
             uri: axum::http::Uri,
             headers: axum::http::HeaderMap,
             body: axum::body::Bytes| async move {
                let kind =
                    headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                received.lock().unwrap().push((uri.path().to_string(), kind, body.to_vec()));
                ""
            },
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let dir = TempDir::new();
    let database_url = fresh_database(Backend::Sqlite, &dir).await;
    let receiver = Receiver::start().await.unwrap();
    let (_, key, webhook_id) = prepared_for_a_process(&database_url, &receiver).await;
    let endpoint = format!("http://{collector_addr}");
    let mut hookline =
        start_hookline(&database_url, &dir.0.join("hookline.log"), &[("HOOKLINE_OTLP_ENDPOINT", &endpoint)]);
    let event_id = publish(&hookline, &key).await;
    assert_eq!(receiver.wait_for(1, Duration::from_secs(10)).await.len(), 1);

    hookline.signal("-TERM");
    hookline.exited_within(Duration::from_secs(20)).await;
    let received = received.lock().unwrap().clone();
    let contains = |body: &[u8], text: &str| body.windows(text.len()).any(|w| w == text.as_bytes());
    assert!(
        received.iter().any(|(path, kind, body)| path == "/v1/traces"
            && kind == "application/x-protobuf"
            && contains(body, "attempt")
            && contains(body, &event_id)
            && contains(body, &webhook_id)),
        "no trace with the attempt's span among {} requests",
        received.len()
    );
}
