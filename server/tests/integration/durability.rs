//! At-least-once delivery across crashes, and several processes sharing one queue. These run
//! the real `hookline` binary as separate processes.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use hookline_core::{Scope, Services, Settings};
use serde_json::json;
use test_receiver::Receiver;

use crate::common::{Backend, TempDir, fresh_database};
use crate::hookline_process::{self, HooklineProcess};

/// Hookline as a separate process, with quick retries and a short delivery timeout.
fn start_server(database_url: &str) -> HooklineProcess {
    hookline_process::serve(database_url)
        .env("HOOKLINE_RETRY_SCHEDULE", "50ms,100ms,200ms,400ms")
        .env("HOOKLINE_DELIVERY_TIMEOUT", "1s")
        .stderr(Stdio::null())
        .start()
}

async fn prepare(database_url: &str, receiver: &Receiver, webhooks: usize) -> (String, Services) {
    let db = hookline_core::connect(database_url).await.unwrap();
    hookline_core::migrate(&db).await.unwrap();
    let mut settings = Settings::default();
    settings.url_policy.allow_http = true;
    settings.url_policy.addresses.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
    let services = Services::new(db, settings);
    services.create_store("store-a", "Store A").await.unwrap();
    let key = services.create_api_key(&Scope::Admin, "producer").await.unwrap().key;
    for i in 0..webhooks {
        services
            .create_webhook(
                &Scope::Admin,
                hookline_core::NewWebhook {
                    tenant: hookline_core::Tenant::store("store-a"),
                    url: receiver.url(&format!("/hook/{i}")),
                    description: String::new(),
                    event_types: None,
                },
            )
            .await
            .unwrap();
    }
    (key, services)
}

/// Publishes `n` events through `base`, 16 at a time; returns their ids.
async fn publish_many(base: &str, key: &str, n: usize) -> Vec<String> {
    // Whichever test runs first, the client needs the TLS implementation installed.
    hookline::install_tls_provider();
    let client = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, next, base, key) = (client.clone(), next.clone(), base.to_string(), key.to_string());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return ids;
                }
                let body = json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created", "payload": {"n": i}});
                let res = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("publish answers");
                assert_eq!(res.status(), 202);
                let v: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
                ids.push(v["id"].as_str().unwrap().to_string());
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// (event id, webhook path) pairs the receiver got, with how often each arrived.
fn arrivals(receiver: &Receiver) -> HashMap<(String, String), usize> {
    let mut seen = HashMap::new();
    for r in receiver.received() {
        let id = r.header("webhook-id").unwrap_or_default().to_string();
        *seen.entry((id, r.path.clone())).or_insert(0) += 1;
    }
    seen
}

async fn wait_for_pairs(receiver: &Receiver, pairs: usize, within: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = arrivals(receiver).len();
        if got >= pairs || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_delivers_everything_after_a_restart() {
    let dir = TempDir::new();
    let database_url = fresh_database(Backend::Sqlite, &dir).await;
    let receiver = Receiver::start().await.unwrap();
    let (_, services) = prepare(&database_url, &receiver, 2).await;
    // A backlog, accepted before the server starts: it is still delivering when killed.
    let mut events = Vec::new();
    for i in 0..2000 {
        let published = services
            .publish(
                &Scope::Admin,
                hookline_core::PublishRequest {
                    tenant: hookline_core::Tenant::store("store-a"),
                    event_type: "review-created".into(),
                    payload: json!({"n": i}).to_string(),
                    idempotency_key: None,
                    ordering_key: None,
                    audience: Default::default(),
                },
            )
            .await
            .unwrap();
        events.push(published.event_id);
    }
    receiver.configure(test_receiver::Behaviour { delay_ms: Some(2), ..Default::default() });

    let server = start_server(&database_url);
    let _ = wait_for_pairs(&receiver, 300, Duration::from_secs(30)).await;
    let before = arrivals(&receiver).len();
    server.kill();
    assert!(before < events.len() * 2, "everything arrived before the kill; the test proves nothing");

    let restarted = start_server(&database_url);
    let got = wait_for_pairs(&receiver, events.len() * 2, Duration::from_secs(120)).await;
    drop(restarted);
    let seen = arrivals(&receiver);
    assert_eq!(got, events.len() * 2, "pairs lost: {}", events.len() * 2 - got);
    let published: HashSet<&String> = events.iter().collect();
    for (id, path) in seen.keys() {
        assert!(published.contains(id), "an unknown webhook-id arrived at {path}");
    }
    for id in &events {
        for path in ["/hook/0", "/hook/1"] {
            assert!(seen.contains_key(&(id.clone(), path.to_string())), "{id} never reached {path}");
        }
    }
    // Repeats happen (what was in flight at the kill) and carry the same webhook-id, which
    // the pairing above already keys on.
    let repeats: usize = seen.values().map(|n| n - 1).sum();
    println!("{before} pairs before the kill; {repeats} repeated after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_share_one_postgres_queue_without_losing_or_repeating() {
    let dir = TempDir::new();
    let database_url = fresh_database(Backend::Postgres, &dir).await;
    let receiver = Receiver::start().await.unwrap();
    let (key, _services) = prepare(&database_url, &receiver, 1).await;

    let first = start_server(&database_url);
    let second = start_server(&database_url);
    let (a, b) = tokio::join!(publish_many(&first.base, &key, 5000), publish_many(&second.base, &key, 5000));
    let events: Vec<String> = a.into_iter().chain(b).collect();
    assert_eq!(events.len(), 10_000);
    let got = wait_for_pairs(&receiver, events.len(), Duration::from_secs(180)).await;
    drop((first, second));
    assert_eq!(got, events.len(), "pairs lost");
    let seen = arrivals(&receiver);
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "{} pairs delivered twice while both processes stayed up", repeated.len());
    let total = receiver.received().len();
    assert_eq!(total, 10_000);
}
