//! Steering benchmark (issue 14): Hookline as a separate process (the release `hookline`
//! binary) against receivers that push back, on SQLite and on PostgreSQL.
//!
//! - Limited: a receiver that accepts at most 50 requests a second (a fixed window per
//!   wall-clock second) and answers 429 with `Retry-After: 1` beyond, fed a backlog of
//!   `HOOKLINE_BENCH_LIMITED_EVENTS` events (1,500: 30 s at 50/s). It prints, per second,
//!   the requests accepted and answered 429, when the rate settled (the first second from which
//!   every full second stays at 50 requests or fewer), and how many events were lost (never
//!   accepted once the queue drained).
//! - Dead: an endpoint that refuses connections, with `HOOKLINE_BENCH_DEAD_EVENTS` (10,000)
//!   queued deliveries. It prints the requests made over `HOOKLINE_BENCH_DEAD_SECS` (300) once
//!   the circuit breaker opened, and how many deliveries were never attempted.
//! - Poisoned: ordered delivery with one poisoned key. `HOOKLINE_BENCH_POISON_KEYS` keys (1,000)
//!   × `HOOKLINE_BENCH_POISON_PER_KEY` events (20) are queued to a webhook with ordering on (by
//!   an API-only process, so nothing goes out while they are published), then a full process
//!   delivers them to a receiver that answers at once. Rounds alternate, healthy first: every
//!   key answered 200, or one key answered 500 always (its head retries on a short schedule,
//!   `HOOKLINE_BENCH_POISON_RETRY`, 250 ms × 400, so it keeps failing the whole round and its
//!   19 later events wait behind it). `HOOKLINE_BENCH_POISON_BACKLOG` (0) more events of the
//!   poisoned key are published first in the poisoned rounds, so that many wait at the front of
//!   the queue (a poisoned key that kept receiving events). `HOOKLINE_BENCH_POISON_ROUNDS` pairs (3), each round
//!   on a fresh database. It prints each round's healthy-key deliveries per second (from the
//!   first request to the last healthy acknowledgement) and the CPU the server and PostgreSQL
//!   spent per healthy-key delivery, and the ratios of the medians of both.
//!
//! `cargo bench -p hookline --bench steering`. `HOOKLINE_BENCH_DATABASES=sqlite` runs one
//! database; PostgreSQL is a cluster of the bench's own (as the delivery bench runs it) unless
//! `HOOKLINE_BENCH_POSTGRES_URL` names a server. `HOOKLINE_BENCH_ONLY=limited`, `dead` or
//! `poisoned` runs one scenario (`poisoned` runs only when asked). The engine's settings are the
//! production defaults (but the poisoned scenario's retry schedule).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hookline_core::{Scope, Services, Settings};
use sea_orm::{ConnectionTrait, Statement};

#[path = "../tests/support/own_postgres.rs"]
mod own_postgres;
use own_postgres::{Durability, OwnPostgres};

#[path = "../tests/support/hookline_process.rs"]
mod hookline_process;
use hookline_process::postgres_cpu_seconds;

#[path = "support/fresh_database.rs"]
mod fresh_database;
use fresh_database::fresh_database;

#[path = "support/sink.rs"]
#[allow(dead_code)] // the producers only: this bench has receivers of its own
mod sink;
use sink::publish;

fn env_number(key: &str, default: u64) -> u64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn now_ms() -> i64 {
    hookline_core::now_ms()
}

/// What the limited receiver saw: each request's time (ms), whether it was accepted, and the
/// event's id.
#[derive(Clone, Default)]
struct Limited {
    seen: Arc<Mutex<Vec<(i64, bool, String)>>>,
    /// Accepted in the current wall-clock second: (second, count).
    window: Arc<Mutex<(i64, u32)>>,
    per_second: u32,
}

async fn limited(State(r): State<Limited>, headers: HeaderMap) -> (StatusCode, HeaderMap) {
    let now = now_ms();
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let accepted = {
        let mut window = r.window.lock().unwrap();
        if window.0 != now / 1000 {
            *window = (now / 1000, 0);
        }
        let room = window.1 < r.per_second;
        if room {
            window.1 += 1;
        }
        room
    };
    r.seen.lock().unwrap().push((now, accepted, id));
    let mut answer = HeaderMap::new();
    if accepted {
        (StatusCode::OK, answer)
    } else {
        answer.insert("retry-after", 1.into());
        (StatusCode::TOO_MANY_REQUESTS, answer)
    }
}

async fn start_limited(per_second: u32) -> (Limited, String) {
    let state = Limited { per_second, ..Limited::default() };
    let app = Router::new().fallback(limited).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (state, url)
}

/// A migrated database with the store `bench` and an admin API key; the key and a
/// connection for counting.
async fn prepare(database_url: &str) -> (String, sea_orm::DatabaseConnection) {
    let db = hookline_core::connect(database_url).await.unwrap();
    hookline_core::migrate(&db).await.unwrap();
    let services = Services::new(db.clone(), Settings::default());
    services.create_store("bench", "Bench").await.unwrap();
    let key = services.create_api_key(&Scope::Admin, "bench").await.unwrap().key;
    (key, db)
}

/// Creates a webhook of the store `bench` through the API; its id.
async fn create_webhook(base: &str, key: &str, url: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(serde_json::json!({"tenant_type": "store", "tenant_id": "bench", "url": url}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "the webhook is created");
    let body: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    body["id"].as_str().unwrap().to_string()
}

async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_string()))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn limited_scenario(kind: &str, pg: Option<&str>) {
    let events = env_number("HOOKLINE_BENCH_LIMITED_EVENTS", 1_500) as usize;
    let (receiver, url) = start_limited(50).await;
    let database_url = fresh_database("hookline-bench", kind, pg).await;
    let (key, _db) = prepare(&database_url).await;
    let server = hookline_process::serve(&database_url).start();
    create_webhook(&server.base, &key, &url).await;
    let started = now_ms();
    publish(&server.base, &key, events, 16, None).await;
    let published_in = (now_ms() - started) as f64 / 1000.0;
    let deadline = Instant::now() + Duration::from_secs(events as u64 / 10 + 120);
    let accepted = |r: &Limited| r.seen.lock().unwrap().iter().filter(|s| s.1).count();
    while accepted(&receiver) < events && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
    let seen = receiver.seen.lock().unwrap().clone();
    let ids: HashSet<&String> = seen.iter().filter(|s| s.1).map(|s| &s.2).collect();
    let twice = seen.iter().filter(|s| s.1).count() - ids.len();
    let mut seconds: BTreeMap<i64, (u32, u32)> = BTreeMap::new();
    for (at, ok, _) in &seen {
        let entry = seconds.entry((at - started) / 1000).or_default();
        if *ok { entry.0 += 1 } else { entry.1 += 1 }
    }
    // The last second is partial: the backlog ran out in it.
    let last = seconds.keys().next_back().copied().unwrap_or(0);
    let full: Vec<(i64, (u32, u32))> =
        seconds.iter().filter(|(s, _)| **s < last).map(|(s, c)| (*s, *c)).collect();
    let settled =
        (0..full.len()).find(|&i| full[i..].iter().all(|(_, (ok, busy))| ok + busy <= 50)).map(|i| full[i].0);
    println!(
        "\n{kind}, limited receiver (50/s, 429 beyond): {events} events published in {published_in:.1} s"
    );
    println!("| second | accepted | answered 429 |");
    println!("| ---: | ---: | ---: |");
    for (second, (ok, busy)) in &seconds {
        println!("| {second} | {ok} | {busy} |");
    }
    let total_busy: u32 = seconds.values().map(|c| c.1).sum();
    let steady: Vec<u32> = full.iter().skip(10).map(|(_, (ok, _))| *ok).collect();
    let mean = steady.iter().sum::<u32>() as f64 / steady.len().max(1) as f64;
    println!(
        "settled (every later full second at 50 requests or fewer) from second: {}; accepted after 10 s: {mean:.1}/s on average; 429s in all: {total_busy}; lost: {}; accepted twice: {twice}",
        settled.map_or("never".to_string(), |s| s.to_string()),
        events.saturating_sub(ids.len()),
    );
}

async fn dead_scenario(kind: &str, pg: Option<&str>) {
    let events = env_number("HOOKLINE_BENCH_DEAD_EVENTS", 10_000) as usize;
    let window = Duration::from_secs(env_number("HOOKLINE_BENCH_DEAD_SECS", 300));
    // A port nobody listens on: connections are refused.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let database_url = fresh_database("hookline-bench", kind, pg).await;
    let (key, db) = prepare(&database_url).await;
    let server = hookline_process::serve(&database_url).start();
    let webhook_id = create_webhook(&server.base, &key, &format!("http://{dead}/hook")).await;
    let started = Instant::now();
    publish(&server.base, &key, events, 16, None).await;
    let published_in = started.elapsed().as_secs_f64();
    let attempts = format!("SELECT COUNT(*) FROM attempts WHERE webhook_id = '{webhook_id}'");
    let open =
        format!("SELECT COUNT(*) FROM webhooks WHERE id = '{webhook_id}' AND pause_reason = 'circuit_open'");
    while count(&db, &open).await == 0 && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let opened_after = started.elapsed().as_secs_f64();
    let before = count(&db, &attempts).await;
    tokio::time::sleep(window).await;
    let during = count(&db, &attempts).await - before;
    let untouched = count(
        &db,
        &format!("SELECT COUNT(*) FROM deliveries WHERE webhook_id = '{webhook_id}' AND attempts = 0"),
    )
    .await;
    let failed = count(
        &db,
        &format!("SELECT COUNT(*) FROM deliveries WHERE webhook_id = '{webhook_id}' AND status = 'failed'"),
    )
    .await;
    drop(server);
    println!(
        "\n{kind}, dead endpoint, {events} deliveries queued (published in {published_in:.1} s): the breaker opened after {opened_after:.1} s and {before} requests; {during} requests over the next {} s; {untouched} deliveries never attempted; {failed} failed for good",
        window.as_secs()
    );
}

/// What the ordered receiver saw: per key, the events acknowledged in the order they were;
/// the time of the first request and of the last healthy acknowledgement.
#[derive(Clone, Default)]
struct Ordered {
    poisoned: Arc<Mutex<Option<String>>>,
    acked: Arc<Mutex<std::collections::HashMap<String, Vec<u64>>>>,
    first_request: Arc<Mutex<Option<Instant>>>,
    last_ack: Arc<Mutex<Option<Instant>>>,
    healthy_acked: Arc<std::sync::atomic::AtomicUsize>,
    poisoned_requests: Arc<std::sync::atomic::AtomicUsize>,
}

async fn ordered(State(r): State<Ordered>, body: axum::body::Bytes) -> StatusCode {
    use std::sync::atomic::Ordering::Relaxed;
    let now = Instant::now();
    r.first_request.lock().unwrap().get_or_insert(now);
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let key = event["data"]["key"].as_str().or(event["key"].as_str()).unwrap_or_default().to_string();
    let n = event["data"]["n"].as_u64().or(event["n"].as_u64()).unwrap_or(u64::MAX);
    if r.poisoned.lock().unwrap().as_deref() == Some(key.as_str()) {
        r.poisoned_requests.fetch_add(1, Relaxed);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let mut acked = r.acked.lock().unwrap();
    let seen = acked.entry(key).or_default();
    // At least once: a repeat of the last acknowledged event is not a new one.
    if seen.last() != Some(&n) {
        seen.push(n);
        r.healthy_acked.fetch_add(1, Relaxed);
        *r.last_ack.lock().unwrap() = Some(now);
    }
    StatusCode::OK
}

/// The poisoned scenario's producers: each key's events in order (every one after the
/// previous one was answered), keys spread over 16 producers.
async fn publish_keyed(base: &str, api_key: &str, keys: u64, per_key: u64) {
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for p in 0..16u64 {
        let (client, url, api_key) = (client.clone(), format!("{base}/api/v1/events"), api_key.to_string());
        tasks.push(tokio::spawn(async move {
            for n in 0..per_key {
                for k in (p..keys).step_by(16) {
                    let key = format!("key-{k}");
                    let body = serde_json::json!({"tenant_type": "store", "tenant_id": "bench",
                        "event_type": "review-created", "ordering_key": key, "payload": {"key": key, "n": n}});
                    sink::post_event(&client, &url, &api_key, body.to_string()).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// `count` more events of the key `key-0` (never acknowledged in a poisoned round, so their
/// order does not matter: 16 producers).
async fn publish_backlog(base: &str, api_key: &str, count: u64) {
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for p in 0..16u64 {
        let (client, url, api_key) = (client.clone(), format!("{base}/api/v1/events"), api_key.to_string());
        tasks.push(tokio::spawn(async move {
            for n in (p..count).step_by(16) {
                let body = serde_json::json!({"tenant_type": "store", "tenant_id": "bench",
                    "event_type": "review-created", "ordering_key": "key-0", "payload": {"key": "key-0", "n": 1_000_000 + n}});
                sink::post_event(&client, &url, &api_key, body.to_string()).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// What one poisoned-scenario round measured.
struct Round {
    /// Healthy-key deliveries per second.
    rate: f64,
    /// CPU per healthy-key delivery, µs: the server's and PostgreSQL's (0 on SQLite) together,
    /// from the delivering process's start to the last healthy acknowledgement. Less noisy than
    /// the rate on a shared machine, and it counts the work a poisoned key adds wherever it is.
    cpu_us: f64,
}

/// Where the PostgreSQL rounds run: the server's URL, and the postmaster of the bench's own
/// cluster to count its CPU (none for a server named by `HOOKLINE_BENCH_POSTGRES_URL`).
struct Cluster<'a> {
    url: Option<&'a str>,
    postmaster: Option<&'a str>,
}

/// One round of the poisoned scenario.
async fn poisoned_round(kind: &str, cluster: &Cluster<'_>, poisoned: bool, keys: u64, per_key: u64) -> Round {
    let pg = cluster.url;
    let backlog = if poisoned { env_number("HOOKLINE_BENCH_POISON_BACKLOG", 0) } else { 0 };
    let receiver = Ordered::default();
    if poisoned {
        *receiver.poisoned.lock().unwrap() = Some("key-0".into());
    }
    let app = Router::new().fallback(ordered).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let receiving = tokio::spawn(async move { axum::serve(listener, app).await });

    let database_url = fresh_database("hookline-bench", kind, pg).await;
    let (api_key, db) = prepare(&database_url).await;
    // Queued by a process that does not deliver.
    let api = hookline_process::serve(&database_url).env("HOOKLINE_ROLE", "api").start();
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/webhooks", api.base))
        .bearer_auth(&api_key)
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"tenant_type": "store", "tenant_id": "bench", "url": url, "ordering": true})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "the webhook is created");
    publish_backlog(&api.base, &api_key, backlog).await;
    publish_keyed(&api.base, &api_key, keys, per_key).await;
    api.stop();
    let queued = count(&db, "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'").await;
    assert_eq!(queued as u64, keys * per_key + backlog, "every event queued");

    let retry = std::env::var("HOOKLINE_BENCH_POISON_RETRY").unwrap_or_else(|_| vec!["250ms"; 400].join(","));
    let pg_before = if kind == "postgres" { postgres_cpu_seconds(cluster.postmaster) } else { 0.0 };
    let server = hookline_process::serve(&database_url).env("HOOKLINE_RETRY_SCHEDULE", retry).start();
    let healthy = ((keys - u64::from(poisoned)) * per_key) as usize;
    let deadline = Instant::now() + Duration::from_secs(600);
    while receiver.healthy_acked.load(std::sync::atomic::Ordering::Relaxed) < healthy {
        assert!(Instant::now() < deadline, "the healthy keys were not delivered within 10 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pg_cpu = if kind == "postgres" { postgres_cpu_seconds(cluster.postmaster) - pg_before } else { 0.0 };
    let cpu_us = (server.cpu_seconds() + pg_cpu) * 1e6 / healthy as f64;
    let head_attempts = count(
        &db,
        "SELECT CAST(COALESCE(MAX(attempts), 0) AS BIGINT) FROM deliveries WHERE ordering_key = 'key-0' AND status <> 'succeeded'",
    )
    .await;
    server.stop();
    receiving.abort();
    let first = receiver.first_request.lock().unwrap().expect("a request");
    let last = receiver.last_ack.lock().unwrap().expect("an acknowledgement");
    let secs = last.duration_since(first).as_secs_f64();
    let rate = healthy as f64 / secs;
    let violations = receiver
        .acked
        .lock()
        .unwrap()
        .values()
        .filter(|seen| seen.iter().enumerate().any(|(i, n)| *n != i as u64))
        .count();
    let poisoned_requests = receiver.poisoned_requests.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "| {kind} | {} | {healthy} | {secs:.2} | {rate:.0} | {cpu_us:.0} | {poisoned_requests} ({head_attempts} attempts on the head) | {violations} |",
        if poisoned { "one key poisoned" } else { "healthy" },
    );
    Round { rate, cpu_us }
}

async fn poisoned_scenario(kind: &str, cluster: &Cluster<'_>) {
    let keys = env_number("HOOKLINE_BENCH_POISON_KEYS", 1_000).max(2);
    let per_key = env_number("HOOKLINE_BENCH_POISON_PER_KEY", 20).max(1);
    let pairs = env_number("HOOKLINE_BENCH_POISON_ROUNDS", 3).max(1);
    let backlog = env_number("HOOKLINE_BENCH_POISON_BACKLOG", 0);
    println!(
        "
{kind}, ordered delivery, {keys} keys × {per_key} events, rounds alternating healthy / one key poisoned \
         (with {backlog} more events of the poisoned key queued first)"
    );
    println!(
        "| database | round | healthy-key events | seconds | healthy-key deliveries/s | CPU µs per healthy delivery (server + PostgreSQL) | requests to the poisoned key | keys out of order |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let (mut normal, mut with_poison) = (Vec::new(), Vec::new());
    for _ in 0..pairs {
        normal.push(poisoned_round(kind, cluster, false, keys, per_key).await);
        with_poison.push(poisoned_round(kind, cluster, true, keys, per_key).await);
    }
    let (mut normal_cpu, mut poisoned_cpu): (Vec<f64>, Vec<f64>) =
        (normal.iter().map(|r| r.cpu_us).collect(), with_poison.iter().map(|r| r.cpu_us).collect());
    let (mut normal, mut with_poison): (Vec<f64>, Vec<f64>) =
        (normal.iter().map(|r| r.rate).collect(), with_poison.iter().map(|r| r.rate).collect());
    let median = |rates: &mut Vec<f64>| {
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    };
    let pair_ratios: Vec<String> =
        normal.iter().zip(&with_poison).map(|(n, p)| format!("{:.0}%", 100.0 * p / n)).collect();
    let (n, p) = (median(&mut normal), median(&mut with_poison));
    println!(
        "{kind}: median healthy {n:.0}/s, median with a poisoned key {p:.0}/s: {:.0}% (each pair: {})",
        100.0 * p / n,
        pair_ratios.join(", ")
    );
    let (n, p) = (median(&mut normal_cpu), median(&mut poisoned_cpu));
    println!(
        "{kind}: median CPU per healthy delivery {n:.0} µs healthy, {p:.0} µs with a poisoned key: {:.0}% of the healthy rounds' work per delivery",
        100.0 * p / n
    );
}

fn main() {
    // `cargo test --all-targets` runs bench targets too; only `cargo bench` passes --bench.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("steering bench: run it with `cargo bench -p hookline --bench steering`");
        return;
    }
    hookline::install_tls_provider();
    let given = std::env::var("HOOKLINE_BENCH_POSTGRES_URL").ok();
    let own =
        if given.is_none() { OwnPostgres::start_new(Durability { durable: true, tls: true }) } else { None };
    let pg = given.clone().or_else(|| own.as_ref().map(OwnPostgres::url));
    let postmaster = own.as_ref().and_then(OwnPostgres::pid);
    let mut backends = vec!["sqlite"];
    if pg.is_some() {
        backends.push("postgres");
    }
    if let Ok(only) = std::env::var("HOOKLINE_BENCH_DATABASES") {
        backends.retain(|b| only.split(',').any(|o| o.trim() == *b));
    }
    let only = std::env::var("HOOKLINE_BENCH_ONLY").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    for kind in backends {
        if only.is_empty() || only == "limited" {
            runtime.block_on(limited_scenario(kind, pg.as_deref()));
        }
        if only.is_empty() || only == "dead" {
            runtime.block_on(dead_scenario(kind, pg.as_deref()));
        }
        if only == "poisoned" {
            let cluster = Cluster { url: pg.as_deref(), postmaster: postmaster.as_deref() };
            runtime.block_on(poisoned_scenario(kind, &cluster));
        }
    }
}
