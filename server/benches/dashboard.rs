//! Dashboard benchmark: how fast the pages that read the delivery log render with a million
//! deliveries and a million attempts in the database. Target: the webhook page (whose
//! delivery log shows the newest 25 deliveries) renders in under 100 ms.
//!
//! Fills a fresh SQLite file (and a PostgreSQL database when `HOOKLINE_BENCH_POSTGRES_URL`
//! names a server) with `HOOKLINE_BENCH_ROWS` (default 1,000,000) deliveries of one webhook,
//! one attempt each, starts Hookline in this process, signs in and times full server-side
//! renders: the webhook page, the webhook page with one delivery opened, and the admin's
//! delivery history (which also counts every delivery by status); then the admin overview
//! (`/admin`, a day and a week) with a week of hourly counters of 1,000 more webhooks: the
//! week first from the hourly counters alone, then with a covering index, then after the
//! daily rollups (the bench runs the rollup step itself until no day is left: its server has
//! no workers, so no housekeeping of its own).
//! `cargo bench -p hookline --bench dashboard`; `HOOKLINE_BENCH_ROWS=10000000` for the
//! overview's target (under 100 ms with ten million deliveries). Last, "why didn't it
//! arrive?" (`GET /api/v1/events/{id}/explain` and the event page) for events spread over the
//! whole table, with the store at its 50 webhooks and one event behind a failed ordering key:
//! target under 200 ms with ten million deliveries.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hookline::Application;
use hookline::config::Config;
use hookline_core::{NewWebhook, Scope, Tenant};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

#[path = "support/fresh_database.rs"]
mod fresh_database;
use fresh_database::fresh_database;

const PASSWORD: &str = "correct horse battery";

/// Writes `rows` deliveries and attempts in the database itself (a recursive CTE), newest
/// last, with ids that sort like Hookline's own.
/// Writes the rows and answers the id of the newest delivery.
async fn fill(db: &sea_orm::DatabaseConnection, webhook: &str, rows: u64) -> String {
    let backend = db.get_database_backend();
    let pad = match backend {
        DatabaseBackend::Sqlite => "printf('%012d', i)",
        _ => "lpad(i::text, 12, '0')",
    };
    let start = hookline_core::now_ms() - 20 * 3_600_000;
    // UUIDv7s of `start`: pruning takes ids for times, and these are within the retention.
    let ids = format!("{:08x}-{:04x}-7000-8000-", start >> 16, start & 0xffff);
    let series = format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})");
    let statuses = "CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'succeeded' END";
    let sql = format!(
        "{series} INSERT INTO deliveries (id, event_id, webhook_id, tenant_type, tenant_id, event_type, status, attempts, \
         next_attempt_at, leased_by, last_status_code, last_duration_ms, created_at, updated_at) \
         SELECT '{ids}' || {pad}, 'ev-' || {pad}, $1, 'store', 'bench', \
         CASE WHEN i % 5 = 0 THEN 'review-updated' ELSE 'review-created' END, {statuses}, 1, NULL, NULL, \
         CASE WHEN i % 50 = 0 THEN 500 ELSE 200 END, 12, $2 + i, $2 + i FROM n"
    );
    db.execute_raw(Statement::from_sql_and_values(backend, sql, [webhook.into(), start.into()]))
        .await
        .unwrap();
    let sql = format!(
        "{series} INSERT INTO attempts (id, delivery_id, webhook_id, trigger, started_at, duration_ms, url, \
         request_headers, response_status, response_headers, response_body, error_class, error_message) \
         SELECT 'at-' || {pad}, '{ids}' || {pad}, $1, 'scheduled', $2 + i, 12, 'https://bench.example.com/h', \
         '[[\"content-type\",\"application/json\"]]', CASE WHEN i % 50 = 0 THEN 500 ELSE 200 END, '[]', 'ok', NULL, NULL FROM n"
    );
    db.execute_raw(Statement::from_sql_and_values(backend, sql, [webhook.into(), start.into()]))
        .await
        .unwrap();
    let sql = format!(
        "{series} INSERT INTO events (id, tenant_type, tenant_id, event_type, payload, idempotency_key, sequence, received_at) \
         SELECT 'ev-' || {pad}, 'store', 'bench', 'review-created', '{{\"review\":1}}', NULL, i, $1 + i FROM n"
    );
    db.execute_raw(Statement::from_sql_and_values(backend, sql, [start.into()])).await.unwrap();
    // The hourly counters the workers would have kept.
    let hour = hookline_core::HOUR_MS;
    for h in 0..21 {
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            "INSERT INTO webhook_hours (webhook_id, hour, succeeded, failed) VALUES ($1, $2, $3, $4)",
            [
                webhook.into(),
                ((start / hour + h) * hour).into(),
                (rows as i64 / 21).into(),
                (rows as i64 / 1050).into(),
            ],
        ))
        .await
        .unwrap();
    }
    db.execute_unprepared("ANALYZE").await.unwrap();
    format!("{ids}{rows:012}")
}

/// How many other webhooks have hourly counters for the overview to add up.
const OVERVIEW_WEBHOOKS: u64 = 1_000;

/// A week of hourly counters for [`OVERVIEW_WEBHOOKS`] more webhooks, as busy endpoints would
/// leave them (one row per webhook and hour: the most the overview can meet for them).
async fn overview_counters(db: &sea_orm::DatabaseConnection) {
    let backend = db.get_database_backend();
    let hour = hookline_core::HOUR_MS;
    let first = (hookline_core::now_ms() / hour - 24 * 7 + 1) * hour;
    let sql = format!(
        "WITH RECURSIVE w(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM w WHERE i < {OVERVIEW_WEBHOOKS}), \
         h(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM h WHERE j < 167) \
         INSERT INTO webhook_hours (webhook_id, hour, succeeded, failed, duration_ms) \
         SELECT 'overview-' || i, $1 + j * {hour}, 100 + i % 7, i % 5, (100 + i % 7 + i % 5) * (10 + i % 90) FROM w, h"
    );
    db.execute_raw(Statement::from_sql_and_values(backend, sql, [first.into()])).await.unwrap();
    db.execute_unprepared("ANALYZE").await.unwrap();
}

fn percentiles(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() - 1) as f64 * p) as usize];
    format!("{:.1} | {:.1} | {:.1}", at(0.5), at(0.9), at(1.0))
}

async fn time_get(
    http: &reqwest::Client,
    url: &str,
    cookie: &str,
    runs: usize,
    must_contain: &str,
) -> String {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let res = http.get(url).header("cookie", cookie).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        let body = res.text().await.unwrap();
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(body.contains(must_contain), "{url} did not render {must_contain:?}");
    }
    percentiles(samples)
}

async fn sign_in(http: &reqwest::Client, base: &str, email: &str) -> String {
    let res = http
        .post(format!("{base}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("email={}&password={}", email.replace('@', "%40"), PASSWORD.replace(' ', "+")))
        .send()
        .await
        .unwrap();
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("hookline_session=") && !c.starts_with("hookline_session=;"))
        .map(|c| c.split(';').next().unwrap().to_string())
        .expect("signed in")
}

async fn run(kind: &str, pg: Option<&str>, rows: u64) {
    let url = fresh_database("hookline-dash", kind, pg).await;
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("HOOKLINE_DATABASE_URL".into(), url.to_string());
    vars.insert("HOOKLINE_LISTEN".into(), "127.0.0.1:0".into());
    vars.insert("HOOKLINE_WORKERS".into(), "false".into());
    vars.insert("HOOKLINE_LOG".into(), "warn".into());
    let app = Application::build(Config::from_map(&vars).unwrap()).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let services = app.services().clone();
    services.create_store("bench", "Bench").await.unwrap();
    services.create_merchant("merchant@bench.test", PASSWORD, "bench").await.unwrap();
    services.create_admin("admin@bench.test", PASSWORD).await.unwrap();
    let hook = services
        .create_webhook(
            &Scope::Admin,
            NewWebhook {
                tenant: Tenant::store("bench"),
                url: "https://bench.example.com/h".into(),
                description: String::new(),
                event_types: None,
            },
        )
        .await
        .unwrap()
        .webhook
        .id;
    let filling = Instant::now();
    let newest = fill(services.database(), &hook, rows).await;
    eprintln!("({kind}: {rows} deliveries and attempts written in {:.1} s)", filling.elapsed().as_secs_f64());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    let merchant = sign_in(&http, &base, "merchant@bench.test").await;
    let admin = sign_in(&http, &base, "admin@bench.test").await;

    let page = format!("{base}/settings/api/webhooks/{hook}");
    println!(
        "| {kind} | webhook page (newest 25 of {rows}) | {} |",
        time_get(&http, &page, &merchant, 50, &newest).await
    );
    let filtered = format!("{page}?status=failed");
    println!(
        "| {kind} | webhook page, failed only | {} |",
        time_get(&http, &filtered, &merchant, 20, "failed").await
    );
    let opened = format!("{page}?delivery={newest}");
    println!(
        "| {kind} | webhook page with a delivery opened | {} |",
        time_get(&http, &opened, &merchant, 50, "Attempt").await
    );
    let history = format!("{base}/admin/deliveries");
    println!(
        "| {kind} | admin delivery history with totals | {} |",
        time_get(&http, &history, &admin, 10, &newest).await
    );
    // The admin overview reads counters only: its time must not grow with the deliveries.
    overview_counters(services.database()).await;
    let db = services.database();
    // PostgreSQL reads an index alone only for pages its visibility map marks, as autovacuum
    // would have by the time counters are days old: vacuumed before each comparison.
    let verb =
        if db.get_database_backend() == DatabaseBackend::Postgres { "VACUUM ANALYZE" } else { "ANALYZE" };
    let analyze = |table: &str| {
        let sql = format!("{verb} {table}");
        async move { db.execute_unprepared(&sql).await }
    };
    analyze("webhook_hours").await.unwrap();
    let week = format!("{base}/admin?period=7d");
    // No rollup has run (the bench's server has no workers, so no housekeeping): the week
    // is summed from the hourly counters alone, as before the rollups.
    println!(
        "| {kind} | admin overview, last 7 days, hourly counters only ({OVERVIEW_WEBHOOKS} webhooks' counters) | {} |",
        time_get(&http, &week, &admin, 20, "Attempts per hour").await
    );
    // The alternative measured against the rollups: a covering index, so both sums read the
    // index alone (dropped again before the rollups are timed).
    db.execute_unprepared(
        "CREATE INDEX bench_webhook_hours_covering ON webhook_hours (hour, webhook_id, succeeded, failed, duration_ms)",
    )
    .await
    .unwrap();
    analyze("webhook_hours").await.unwrap();
    println!(
        "| {kind} | admin overview, last 7 days, hourly counters with a covering index | {} |",
        time_get(&http, &week, &admin, 20, "Attempts per hour").await
    );
    db.execute_unprepared("DROP INDEX bench_webhook_hours_covering").await.unwrap();
    // The rollups, as housekeeping makes them: every step until none is left, each timed.
    let mut steps = Vec::new();
    loop {
        let start = Instant::now();
        let more = services.overview_rollup_step().await.unwrap();
        steps.push(start.elapsed().as_secs_f64() * 1000.0);
        if !more {
            break;
        }
    }
    for table in ["webhook_days", "hour_totals", "rollup_days"] {
        analyze(table).await.unwrap();
    }
    let (from, to) = {
        let to = (hookline_core::now_ms() / hookline_core::HOUR_MS + 1) * hookline_core::HOUR_MS;
        (to - 7 * 24 * hookline_core::HOUR_MS, to)
    };
    let rolled = services.store().rolled_days(from, to).await.unwrap().len();
    eprintln!(
        "({kind}: {} rollup steps, {rolled} whole days of the week rolled up; step ms: {})",
        steps.len(),
        steps.iter().map(|ms| format!("{ms:.1}")).collect::<Vec<_>>().join(", ")
    );
    for (path, what) in [("/admin", "last 24 hours"), ("/admin?period=7d", "last 7 days")] {
        println!(
            "| {kind} | admin overview, {what} ({OVERVIEW_WEBHOOKS} webhooks' counters, {rolled} days rolled up) | {} |",
            time_get(&http, &format!("{base}{path}"), &admin, 20, "Attempts per hour").await
        );
    }
    time_explain(&http, &base, &services, kind, rows, &merchant).await;
}

/// "Why didn't it arrive?" over the filled table: the store gets 49 more webhooks (the
/// default most per tenant is 50), and the newest event waits behind a failed delivery of its
/// ordering key, so that its explanation probes the ordered-deliveries index too.
async fn time_explain(
    http: &reqwest::Client,
    base: &str,
    services: &hookline_core::Services,
    kind: &str,
    rows: u64,
    cookie: &str,
) {
    let db = services.database();
    for i in 0..49 {
        services
            .create_webhook(
                &Scope::Admin,
                NewWebhook {
                    tenant: Tenant::store("bench"),
                    url: format!("https://bench.example.com/more/{i}"),
                    description: String::new(),
                    event_types: (i % 2 == 0).then(|| vec!["review-updated".to_string()]),
                },
            )
            .await
            .unwrap();
    }
    let event = |i: u64| format!("ev-{i:012}");
    for (i, status) in [(rows - 1, "failed"), (rows, "pending")] {
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "UPDATE deliveries SET status = $1, ordering_key = 'bench-key', ordering_seq = $2, \
             next_attempt_at = $3 WHERE event_id = $4",
            [status.into(), (i as i64).into(), hookline_core::now_ms().into(), event(i).into()],
        ))
        .await
        .unwrap();
    }
    let key = services.create_api_key(&Scope::Admin, "bench").await.unwrap().key;
    // Events spread over the whole table, none read twice in a row.
    let spread: Vec<String> = (1..=100u64).map(|n| event(1 + (n * 7_919_993) % rows)).collect();
    let mut samples = Vec::with_capacity(spread.len());
    for id in &spread {
        let start = Instant::now();
        let res =
            http.get(format!("{base}/api/v1/events/{id}/explain")).bearer_auth(&key).send().await.unwrap();
        assert_eq!(res.status(), 200, "explain {id}");
        let body = res.text().await.unwrap();
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(body.contains("\"outcome\""), "explain {id}: {body}");
    }
    println!(
        "| {kind} | explain API, 50 webhooks, events across {rows} deliveries | {} |",
        percentiles(samples)
    );
    let mut samples = Vec::with_capacity(50);
    for _ in 0..50 {
        let start = Instant::now();
        let res = http
            .get(format!("{base}/api/v1/events/{}/explain", event(rows)))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        let body = res.text().await.unwrap();
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(body.contains("blocked_key"), "{body}");
    }
    println!("| {kind} | explain API, an event behind a failed ordering key | {} |", percentiles(samples));
    let page = format!("{base}/events/{}", event(rows / 2));
    println!(
        "| {kind} | event page with its explanation | {} |",
        time_get(http, &page, cookie, 50, "explain-table").await
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("dashboard bench: run it with `cargo bench -p hookline --bench dashboard`");
        return;
    }
    hookline::install_tls_provider();
    let rows: u64 =
        std::env::var("HOOKLINE_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let pg = std::env::var("HOOKLINE_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("HOOKLINE_TEST_POSTGRES_URL"))
        .ok();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!("| database | page | p50 ms | p90 ms | max ms |");
    println!("| --- | --- | ---: | ---: | ---: |");
    runtime.block_on(run("sqlite", None, rows));
    if let Some(pg) = pg {
        runtime.block_on(run("postgres", Some(&pg), rows));
    }
}
