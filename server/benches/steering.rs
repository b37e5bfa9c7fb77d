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
//!
//! `cargo bench -p hookline --bench steering`. `HOOKLINE_BENCH_DATABASES=sqlite` runs one
//! database; PostgreSQL is a cluster of the bench's own (as the delivery bench runs it) unless
//! `HOOKLINE_BENCH_POSTGRES_URL` names a server. `HOOKLINE_BENCH_ONLY=limited` or `dead` runs
//! one scenario. The engine's settings are the production defaults.

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
    }
}
