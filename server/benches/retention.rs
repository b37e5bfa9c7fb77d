//! Retention benchmark (issue 13): does pruning hold up publishing and delivery?
//!
//! Seeds `HOOKLINE_BENCH_PRUNE_ROWS` (default 10,000,000) deliveries of one webhook, each with
//! its event and one attempt, spread evenly over the eleven days to yesterday, with ids made at
//! their times as Hookline makes them. Then, against the release `hookline` binary, runs
//! scenario (a) of the delivery bench (1 webhook × 20,000 events from 32 producers) in pairs:
//! once with `HOOKLINE_RETENTION=30d` (nothing to prune) and once with `HOOKLINE_RETENTION=10d`,
//! where the janitor prunes the oldest day (a tenth of the rows) in its small batches while
//! the scenario runs. Prints deliveries/s, latency percentiles and how many old deliveries the
//! prune removed meanwhile. SQLite, and PostgreSQL in a cluster of the bench's own (durable,
//! TLS) or at `HOOKLINE_BENCH_POSTGRES_URL`; `HOOKLINE_BENCH_DATABASES=sqlite` runs one;
//! `HOOKLINE_BENCH_PAIRS` (default 2) pairs per database.
//! `cargo bench -p hookline --bench retention`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hookline_core::{NewWebhook, Scope, Services, Settings, Tenant};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};

#[path = "../tests/support/own_postgres.rs"]
mod own_postgres;
use own_postgres::{Durability, OwnPostgres};

const DAY: i64 = 86_400_000;
const EVENTS: usize = 20_000;

#[path = "../tests/support/hookline_process.rs"]
mod hookline_process;

#[path = "support/fresh_database.rs"]
mod fresh_database;
use fresh_database::fresh_database;

#[path = "support/sink.rs"]
mod sink;
use sink::{Sink, publish, start_sink};

/// The store `seed` with one webhook and `rows` old deliveries, events and attempts; the store
/// `bench` with the webhook scenario (a) delivers to. Answers an admin API key.
async fn prepare(db: &DatabaseConnection, target: &str, rows: i64) -> String {
    hookline_core::migrate(db).await.unwrap();
    let mut settings = Settings::default();
    settings.url_policy.allow_http = true;
    settings.url_policy.addresses.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
    let services = Services::new(db.clone(), settings);
    for store in ["bench", "seed"] {
        services.create_store(store, store).await.unwrap();
    }
    let hook = |store: &str| NewWebhook {
        tenant: Tenant::store(store),
        url: target.to_string(),
        description: String::new(),
        event_types: None,
    };
    services.create_webhook(&Scope::Admin, hook("bench")).await.unwrap();
    let seed_hook = services.create_webhook(&Scope::Admin, hook("seed")).await.unwrap().webhook.id;
    let started = Instant::now();
    seed(db, &seed_hook, rows).await;
    eprintln!("  seeded {rows} deliveries, events and attempts in {:.0} s", started.elapsed().as_secs_f64());
    services.create_api_key(&Scope::Admin, "bench").await.unwrap().key
}

/// Writes the old rows in the database itself, a million of each at a time, in id order.
async fn seed(db: &DatabaseConnection, webhook: &str, rows: i64) {
    let backend = db.get_database_backend();
    let start = hookline_core::now_ms() - 11 * DAY;
    let span = 10 * DAY;
    // Row i was made at t = start + i * span / rows; its ids are UUIDv7s of t (and t + 5 for
    // its attempt), told apart by their third group.
    let id = |t: &str, group: &str| match backend {
        DatabaseBackend::Sqlite => {
            format!("printf('%08x-%04x-{group}-8000-%012x', ({t}) >> 16, ({t}) & 65535, i)")
        }
        _ => format!(
            "lpad(to_hex(({t}) >> 16), 8, '0') || '-' || lpad(to_hex(({t}) & 65535), 4, '0') || '-{group}-8000-' || lpad(to_hex(i), 12, '0')"
        ),
    };
    let (event_id, delivery_id, attempt_id) = (id("t", "7000"), id("t", "7001"), id("t + 5", "7002"));
    let payload =
        r#"{"review":{"id":1,"rating":5,"title":"Great fit","body":"Arrived fast and fits well."}}"#;
    const CHUNK: i64 = 1_000_000;
    let mut lo = 0;
    while lo < rows {
        let hi = (lo + CHUNK).min(rows) - 1;
        let numbers = match backend {
            DatabaseBackend::Sqlite => format!(
                "(WITH RECURSIVE n(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM n WHERE i < {hi}) \
                 SELECT i, {start} + i * {span} / {rows} AS t FROM n) AS s"
            ),
            _ => format!(
                "(SELECT i, {start} + i * {span} / {rows} AS t FROM generate_series({lo}::bigint, {hi}) AS i) AS s"
            ),
        };
        let statements = [
            format!(
                "INSERT INTO events (id, tenant_type, tenant_id, event_type, payload, idempotency_key, sequence, received_at) \
                 SELECT {event_id}, 'store', 'seed', 'review-created', '{payload}', NULL, i, t FROM {numbers}"
            ),
            format!(
                "INSERT INTO deliveries (id, event_id, webhook_id, tenant_type, tenant_id, event_type, status, attempts, \
                 manual_attempts, next_attempt_at, leased_by, last_status_code, last_duration_ms, created_at, updated_at) \
                 SELECT {delivery_id}, {event_id}, '{webhook}', 'store', 'seed', 'review-created', 'succeeded', 1, 0, NULL, NULL, \
                 200, 12, t, t FROM {numbers}"
            ),
            format!(
                "INSERT INTO attempts (id, delivery_id, webhook_id, trigger, started_at, duration_ms, url, request_headers, \
                 response_status, response_headers, response_body, error_class, error_message) \
                 SELECT {attempt_id}, {delivery_id}, '{webhook}', 'scheduled', t + 5, 12, 'https://receiver.example/hook', \
                 '[[\"content-type\",\"application/json\"]]', 200, '[[\"content-type\",\"text/plain\"]]', 'ok', NULL, NULL FROM {numbers}"
            ),
        ];
        for sql in statements {
            db.execute_raw(Statement::from_string(backend, sql)).await.unwrap();
        }
        lo = hi + 1;
    }
    // On PostgreSQL, VACUUM too (else autovacuum goes through the new rows during the runs,
    // and the figures measure it), and a checkpoint, so the seed's gigabytes are written
    // before the first run rather than during it.
    if backend == DatabaseBackend::Postgres {
        db.execute_unprepared("VACUUM ANALYZE").await.unwrap();
        db.execute_unprepared("CHECKPOINT").await.unwrap();
    } else {
        db.execute_unprepared("ANALYZE").await.unwrap();
    }
}

/// Deliveries made before `cutoff` (unix ms) still in the database.
async fn old_deliveries(db: &DatabaseConnection, cutoff: i64) -> i64 {
    let cutoff = format!("{:08x}-{:04x}-0000-0000-000000000000", cutoff >> 16, cutoff & 0xffff);
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM deliveries WHERE id < $1",
            [cutoff.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

struct Run {
    per_second: f64,
    p50: f64,
    p99: f64,
    max: f64,
    /// Old deliveries removed while the scenario ran.
    pruned: i64,
}

/// Scenario (a) against a server with `retention`; the sink is fresh for each run.
async fn scenario(
    db: &DatabaseConnection,
    database_url: &str,
    sink: &Sink,
    key: &str,
    retention: &str,
) -> Run {
    sink.latencies.lock().unwrap().clear();
    sink.count.store(0, Ordering::Relaxed);
    let server = hookline_process::serve(database_url).env("HOOKLINE_RETENTION", retention).start();
    // The janitor starts a round when the process starts: let it get into the deliveries.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Counted against one cutoff, so rows turning ten days old meanwhile do not count.
    let cutoff = hookline_core::now_ms() - 10 * DAY;
    let old_before = old_deliveries(db, cutoff).await;
    let start = Instant::now();
    publish(&server.base, key, EVENTS, 32, None).await;
    let deadline = Instant::now() + Duration::from_secs(600);
    while sink.count.load(Ordering::Relaxed) < EVENTS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let got = sink.count.load(Ordering::Relaxed);
    assert_eq!(got, EVENTS, "{got} of {EVENTS} deliveries arrived");
    let old_after = old_deliveries(db, cutoff).await;
    server.stop();
    let mut lat = sink.latencies.lock().unwrap().clone();
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0;
    Run {
        per_second: got as f64 / elapsed,
        p50: pct(0.5),
        p99: pct(0.99),
        max: pct(1.0),
        pruned: old_before - old_after,
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("retention bench: run it with `cargo bench -p hookline --bench retention`");
        return;
    }
    hookline::install_tls_provider();
    let rows: i64 =
        std::env::var("HOOKLINE_BENCH_PRUNE_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000_000);
    let pairs: usize = std::env::var("HOOKLINE_BENCH_PAIRS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
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
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!(
        "| database | run | deliveries/s | p50 ms | p99 ms | max ms | old deliveries pruned during the run |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for kind in backends {
        runtime.block_on(async {
            let (sink, target) = start_sink().await;
            let url = fresh_database("hookline-prune-bench", kind, pg.as_deref()).await;
            let db = hookline_core::connect(&url).await.unwrap();
            let key = prepare(&db, &target, rows).await;
            let r = scenario(&db, &url, &sink, &key, "30d").await;
            println!(
                "| {kind} | warm-up, not compared | {:.0} | {:.1} | {:.1} | {:.1} | |",
                r.per_second, r.p50, r.p99, r.max
            );
            for pair in 1..=pairs {
                for (name, retention) in [("nothing to prune", "30d"), ("pruning the oldest day", "10d")] {
                    let r = scenario(&db, &url, &sink, &key, retention).await;
                    println!(
                        "| {kind} | {pair}: (a) {name} | {:.0} | {:.1} | {:.1} | {:.1} | {} |",
                        r.per_second, r.p50, r.p99, r.max, r.pruned
                    );
                }
            }
        });
    }
}
