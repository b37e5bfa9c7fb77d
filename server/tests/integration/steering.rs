//! The receiver steers (issue 14): a receiver that accepts 50 requests a second and answers 429
//! beyond, a dead endpoint behind the circuit breaker, a `Retry-After` that pauses one webhook
//! while others flow, and a rate limit set on the webhook's row. Real receivers on loopback,
//! the real engine running, on SQLite and PostgreSQL; the breaker's timings come from the
//! configuration, shortened to milliseconds.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hookline_core::entities::{delivery, webhook};
use hookline_core::{PauseReason, now_ms};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;
use test_receiver::{Behaviour, Receiver};

use crate::common::*;

/// What the rate-limited receiver saw: each request's time (ms), status and event id.
#[derive(Clone, Default)]
struct Limited {
    seen: Arc<Mutex<Vec<(i64, u16, String)>>>,
    per_second: u32,
}

async fn limited(State(r): State<Limited>, headers: HeaderMap) -> (StatusCode, HeaderMap) {
    let now = now_ms();
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let mut seen = r.seen.lock().unwrap();
    // A fixed window per wall-clock second, as many receivers count.
    let second = now / 1000;
    let accepted = seen.iter().filter(|(at, status, _)| at / 1000 == second && *status == 200).count();
    let mut answer = HeaderMap::new();
    let status = if accepted < r.per_second as usize {
        200
    } else {
        answer.insert("retry-after", 1.into());
        429
    };
    seen.push((now, status, id));
    (StatusCode::from_u16(status).unwrap(), answer)
}

/// A receiver that accepts `per_second` requests a second and answers 429 with
/// `Retry-After: 1` beyond.
async fn start_limited(per_second: u32) -> (Limited, String) {
    let state = Limited { per_second, ..Limited::default() };
    let app = Router::new().fallback(limited).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (state, url)
}

/// Publishes `n` events to store-a with eight producers; their ids.
async fn publish_many(app: &TestApp, n: usize) -> Vec<String> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let producers: Vec<_> = (0..8)
        .map(|_| {
            let (http, url, key, next) =
                (app.http.clone(), app.url("/api/v1/events"), app.admin_key.clone(), next.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                    let body = json!({"tenant_type": "store", "tenant_id": "store-a",
                        "event_type": "review-created", "payload": {"rating": 5}});
                    let res = http
                        .post(&url)
                        .bearer_auth(&key)
                        .header("content-type", "application/json")
                        .body(body.to_string())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 202);
                    let answer: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
                    ids.push(answer["id"].as_str().unwrap().to_string());
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::new();
    for p in producers {
        ids.extend(p.await.unwrap());
    }
    ids
}

async fn deliveries_of(app: &TestApp, webhook_id: &str) -> Vec<delivery::Model> {
    delivery::Entity::find()
        .filter(delivery::Column::WebhookId.eq(webhook_id))
        .all(app.services.database())
        .await
        .unwrap()
}

async fn webhook_row(app: &TestApp, webhook_id: &str) -> webhook::Model {
    webhook::Entity::find_by_id(webhook_id).one(app.services.database()).await.unwrap().unwrap()
}

/// A fresh event's delivery to `webhook_id`, written as a publish that read the webhook's
/// breaker as open would: pending, parked a hold from now. Answers the event's id.
async fn add_parked_straggler(app: &TestApp, webhook_id: &str) -> String {
    let db = app.services.database();
    let backend = db.get_database_backend();
    let (id, delivery) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
    let now = now_ms();
    let parked = hookline_core::store::queue::parked_until(Some(PauseReason::CircuitOpen), now);
    for (sql, values) in [
        (
            "INSERT INTO events (id, tenant_type, tenant_id, event_type, payload, sequence, received_at) \
             VALUES ($1, 'store', 'store-a', 'review-created', '{\"rating\": 5}', 0, $2)",
            vec![id.clone().into(), now.into()],
        ),
        (
            "INSERT INTO deliveries (id, event_id, webhook_id, tenant_type, tenant_id, event_type, status, attempts, \
             manual_attempts, next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, 'store', 'store-a', 'review-created', 'pending', 0, 0, $4, $5, $5)",
            vec![delivery.into(), id.clone().into(), webhook_id.into(), parked.into(), now.into()],
        ),
    ] {
        db.execute_raw(sea_orm::Statement::from_sql_and_values(backend, sql, values)).await.unwrap();
    }
    id
}

async fn all_succeeded(app: &TestApp, webhook_id: &str, n: usize) -> bool {
    let found = deliveries_of(app, webhook_id).await;
    found.len() == n && found.iter().all(|d| d.status.as_str() == "succeeded")
}

on_both_databases! {
    async fn a_receiver_limited_to_50_a_second_is_sent_at_most_50_a_second_and_loses_nothing(backend: Backend) {
        let app = spawn(backend).await;
        let (receiver, url) = start_limited(50).await;
        let (webhook_id, _) = app.create_webhook("store-a", &url, None).await;
        let started = now_ms();
        let events: HashSet<String> = publish_many(&app, 800).await.into_iter().collect();
        assert!(
            app.wait_until(Duration::from_secs(60), async || all_succeeded(&app, &webhook_id, 800).await).await,
            "every delivery succeeds"
        );
        let seen = receiver.seen.lock().unwrap().clone();
        let accepted: Vec<&String> = seen.iter().filter(|s| s.1 == 200).map(|s| &s.2).collect();
        assert_eq!(accepted.len(), 800, "each event accepted once: nothing lost, nothing twice");
        assert_eq!(accepted.iter().map(|id| (*id).clone()).collect::<HashSet<_>>(), events);

        // Requests (accepted or not) per second, from 10 s after the start until the backlog
        // ran out (the last second is partial).
        let mut per_second: HashMap<i64, (u32, u32)> = HashMap::new();
        for (at, status, _) in &seen {
            let entry = per_second.entry((at - started) / 1000).or_default();
            if *status == 200 { entry.0 += 1 } else { entry.1 += 1 }
        }
        let last = seen.iter().map(|s| (s.0 - started) / 1000).max().unwrap();
        let mut seconds: Vec<_> = per_second.iter().filter(|(s, _)| **s >= 10 && **s < last).collect();
        seconds.sort();
        let early: u32 = per_second.iter().filter(|(s, _)| **s < 10).map(|(_, c)| c.1).sum();
        let settled: u32 = seconds.iter().map(|(_, c)| c.1).sum();
        eprintln!("{backend:?}: 429s in the first 10 s: {early}; after: {settled}; per second after 10 s: {seconds:?}");
        assert!(!seconds.is_empty(), "the backlog lasted past 10 s");
        for (second, (ok, busy)) in &seconds {
            assert!(ok + busy <= 53, "second {second}: {ok} accepted and {busy} answered 429");
        }
        assert!(settled <= seconds.len() as u32, "about one 429 a second at most once settled: {settled}");
    }

    async fn a_dead_endpoint_costs_one_request_per_probe_interval_and_its_queue_waits(backend: Backend) {
        let app = spawn_with(backend, &[
            ("HOOKLINE_BREAKER_AFTER", "3"),
            ("HOOKLINE_BREAKER_PROBE", "250ms"),
            ("HOOKLINE_BREAKER_PROBE_MAX", "500ms"),
            ("HOOKLINE_RETRY_SCHEDULE", "100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms"),
        ]).await;
        // A port nobody listens on: connections are refused.
        let dead: SocketAddr = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let (webhook_id, _) = app.create_webhook("store-a", &format!("http://{dead}/hooks"), None).await;
        let events = publish_many(&app, 300).await;
        assert!(
            app.wait_until(Duration::from_secs(10), async || {
                webhook_row(&app, &webhook_id).await.pause_reason == Some(PauseReason::CircuitOpen)
            }).await,
            "the breaker opens"
        );
        let attempts = async || -> i64 { deliveries_of(&app, &webhook_id).await.iter().map(|d| i64::from(d.attempts)).sum() };
        let before = attempts().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let during = attempts().await - before;
        // 250 ms, then 500 ms between probes: about 6 in 3 s.
        assert!((3..=10).contains(&during), "{during} requests in 3 s with the breaker open");
        let row = webhook_row(&app, &webhook_id).await;
        assert_eq!(row.probe_interval_ms, Some(500), "the interval doubled up to its cap");
        let queued = deliveries_of(&app, &webhook_id).await;
        let waiting = queued.iter().filter(|d| d.attempts == 0).count();
        // Each request went to one delivery: the others were never attempted (a little slack for
        // the probe that may have gone since the count).
        assert!(waiting as i64 >= 300 - before - during - 2, "{waiting} of 300 never attempted");
        assert!(queued.iter().all(|d| d.status.as_str() != "failed"), "no retry schedule ran out");

        // The endpoint comes back: the first 2xx closes the breaker and the queue flows.
        let receiver = Receiver::start_on(dead).await.unwrap();
        assert!(
            app.wait_until(Duration::from_secs(20), async || webhook_row(&app, &webhook_id).await.pause_reason.is_none()).await,
            "a probe closes the breaker"
        );
        // A straggler: what a publish that read the breaker as open just before it closed
        // writes just after, parked a hold past the old probe, where the closing did not see it.
        // The engine that closed the breaker brings it back a few seconds later.
        let straggler = add_parked_straggler(&app, &webhook_id).await;
        assert!(
            app.wait_until(Duration::from_secs(20), async || all_succeeded(&app, &webhook_id, 301).await).await,
            "every queued delivery goes once the endpoint is back, and the straggler within seconds"
        );
        let row = webhook_row(&app, &webhook_id).await;
        assert_eq!((row.paused_until, row.pause_reason, row.probe_interval_ms), (None, None, None));
        let got: HashSet<String> =
            receiver.received().iter().filter_map(|r| r.header("webhook-id").map(str::to_string)).collect();
        assert_eq!(got, events.into_iter().chain([straggler]).collect::<HashSet<_>>());
    }

    async fn retry_after_pauses_the_whole_webhook_while_other_webhooks_flow(backend: Backend) {
        let app = spawn(backend).await;
        let busy = Receiver::start().await.unwrap();
        busy.configure(Behaviour { status: Some(429), retry_after: Some(2), ..Behaviour::default() });
        let other = Receiver::start().await.unwrap();
        let (busy_id, _) = app.create_webhook("store-a", &busy.url("/hooks"), Some(vec!["review-created"])).await;
        app.create_webhook("store-a", &other.url("/hooks"), Some(vec!["review-updated"])).await;

        app.publish("store-a", "review-created", json!({"n": 0})).await;
        assert_eq!(busy.wait_for(1, Duration::from_secs(5)).await.len(), 1);
        busy.configure(Behaviour::default());
        assert!(
            app.wait_until(Duration::from_secs(5), async || webhook_row(&app, &busy_id).await.paused_until.is_some())
                .await,
            "the pause is written"
        );
        for n in 1..5 {
            app.publish("store-a", "review-created", json!({"n": n})).await;
        }
        // Published during the pause, they are queued for its end, out of the claims' way.
        let until = webhook_row(&app, &busy_id).await.paused_until;
        let fresh: Vec<_> = deliveries_of(&app, &busy_id).await.into_iter().filter(|d| d.attempts == 0).collect();
        assert_eq!(fresh.len(), 4);
        assert!(fresh.iter().all(|d| d.status.as_str() == "pending" && d.next_attempt_at == until), "{fresh:?}");
        // The other webhook's events arrive at once, during the pause.
        for n in 0..5 {
            app.publish("store-a", "review-updated", json!({"n": n})).await;
        }
        assert_eq!(other.wait_for(5, Duration::from_secs(1)).await.len(), 5, "the other webhook flows");
        assert_eq!(busy.received().len(), 1, "nothing more to the paused webhook meanwhile");
        assert!(
            app.wait_until(Duration::from_secs(10), async || all_succeeded(&app, &busy_id, 5).await).await,
            "the paused webhook's deliveries go once the pause ends"
        );
        let got = busy.received();
        assert_eq!(got.len(), 6, "the first once more, and the four others");
        let asked = got[0].received_at_ms as i64;
        let resumed = got[1].received_at_ms as i64;
        assert!(resumed >= asked + 1_900, "resumed {} ms after the 429", resumed - asked);
        // Written on the webhook's row, for every process (a pause past is no pause).
        let row = webhook_row(&app, &busy_id).await;
        assert_eq!(row.pause_reason, Some(PauseReason::RetryAfter));
        assert!(row.paused_until.is_some_and(|t| (asked + 1_900..=asked + 3_000).contains(&t)), "{:?}", row.paused_until);
        // The 429 did not use up the retry schedule: it was the receiver asking to wait.
        let first = deliveries_of(&app, &busy_id).await.into_iter().find(|d| d.attempts == 2).expect("the first");
        assert_eq!(first.attempts - first.manual_attempts, 1, "only its 2xx counts on the schedule");
    }

    async fn a_rate_limit_on_the_webhooks_row_is_enforced(backend: Backend) {
        let app = spawn(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (webhook_id, _) = app.create_webhook("store-a", &receiver.url("/hooks"), None).await;
        app.services
            .database()
            .execute_unprepared(&format!("UPDATE webhooks SET rate_limit = 10 WHERE id = '{webhook_id}'"))
            .await
            .unwrap();
        publish_many(&app, 30).await;
        let got = receiver.wait_for(30, Duration::from_secs(15)).await;
        assert_eq!(got.len(), 30);
        let mut at: Vec<u128> = got.iter().map(|r| r.received_at_ms).collect();
        at.sort_unstable();
        for pair in at.windows(11) {
            assert!(pair[10] - pair[0] >= 900, "11 requests within {} ms at 10 a second", pair[10] - pair[0]);
        }
        assert!(at[29] - at[0] >= 2_600, "30 requests at 10 a second take about 3 s: {}", at[29] - at[0]);
    }
}
