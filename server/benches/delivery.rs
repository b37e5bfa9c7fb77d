//! Delivery benchmark: Hookline as a separate process (the release `hookline` binary) on
//! SQLite and on PostgreSQL, a receiver on loopback, and three scenarios:
//!
//! - (a) 1 webhook × 20,000 events, published as fast as 32 producers can;
//! - (b) 10 webhooks × 5,000 events;
//! - (c) 1 webhook, 200 events/s for 30 s.
//!
//! It prints deliveries per second, publish-to-receive latency percentiles and the server's
//! peak RSS. `cargo bench -p hookline --bench delivery`. PostgreSQL runs as production runs
//! it: the bench starts a cluster of its own with fsync, synchronous commit and full-page
//! writes on, reached over TLS (a self-signed certificate, `sslmode=require`);
//! `HOOKLINE_BENCH_POSTGRES_URL` names another server instead (say which in BENCHMARKS.md).
//! Each run first measures a "receiver only" baseline: the same producers posting straight
//! to the receiver, the machine's ceiling. Each line says how busy the machine was, and how
//! many deliveries were still to arrive when the last publish was answered (the backlog).
//! `HOOKLINE_BENCH_SCALE=0.1` shrinks every scenario for a quick look; `HOOKLINE_BENCH_ONLY=ab`
//! runs only those scenarios, `HOOKLINE_BENCH_DATABASES=postgres` only that database.
//!
//! `HOOKLINE_BENCH_WORKERS=1,2,3` adds the multi-process mode on PostgreSQL: scenario (a)
//! published through one API process (`HOOKLINE_ROLE=api`) and delivered by 1, 2 and 3 worker
//! processes (`HOOKLINE_ROLE=worker`), as `deploy/docker-compose.yml` runs it.
//!
//! `HOOKLINE_BENCH_CONDITIONS=1` gives every webhook payload conditions that every event
//! meets (two tests), to measure what checking conditions at publish costs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hookline_core::{DeliveryControl, NewWebhook, Scope, Services, Settings, Tenant};

#[path = "../tests/support/own_postgres.rs"]
mod own_postgres;
use own_postgres::{Durability, OwnPostgres};

#[path = "../tests/support/hookline_process.rs"]
mod hookline_process;
use hookline_process::{HooklineProcess, clock_ticks, process_cpu_seconds};

#[path = "support/fresh_database.rs"]
mod fresh_database;
use fresh_database::fresh_database;

#[path = "support/sink.rs"]
mod sink;
use sink::{now_us, publish, start_sink};

/// CPU seconds the whole machine has spent busy (every process, user and system), from
/// /proc/stat.
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<f64> = stat
        .lines()
        .next()
        .map(|l| l.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_default();
    // user nice system idle iowait irq softirq steal
    let busy: f64 = cpu.iter().enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).take(6).sum();
    busy / clock_ticks()
}

fn cores() -> f64 {
    std::thread::available_parallelism().map(|n| n.get() as f64).unwrap_or(1.0)
}

/// CPU seconds a PostgreSQL cluster has used: the postmaster with its reaped children, and
/// its live children (the backends), from /proc.
fn postgres_cpu_seconds(postmaster: Option<&str>) -> f64 {
    let Some(pid) = postmaster else { return f64::NAN };
    let fields = |pid: &str| -> Vec<String> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let ticks = |f: &[String], range: std::ops::Range<usize>| -> f64 {
        f.get(range).map(|v| v.iter().filter_map(|x| x.parse::<f64>().ok()).sum()).unwrap_or(0.0)
    };
    // After the name: state ppid ... utime(11) stime(12) cutime(13) cstime(14).
    let mut total = ticks(&fields(pid), 11..15);
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.chars().all(|c| c.is_ascii_digit()) {
                let f = fields(&name);
                if f.get(1).map(String::as_str) == Some(pid) {
                    total += ticks(&f, 11..13);
                }
            }
        }
    }
    total / clock_ticks()
}

/// The machine's ceiling: the same producers posting straight to a receiver; requests/s.
async fn receiver_only(events: usize) -> f64 {
    let (sink, target) = start_sink().await;
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (client, next, url) = (client.clone(), next.clone(), target.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < events {
                    let body = format!(r#"{{"t":{},"data":{{"rating":5,"title":"Great fit"}}}}"#, now_us());
                    client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    sink.count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

async fn prepare(database_url: &str, target: &str, webhooks: usize) -> String {
    let db = hookline_core::connect(database_url).await.unwrap();
    hookline_core::migrate(&db).await.unwrap();
    let mut settings = Settings::default();
    settings.url_policy.allow_http = true;
    settings.url_policy.addresses.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
    let services = Services::new(db, settings);
    services.create_store("bench", "Bench").await.unwrap();
    let conditions = std::env::var("HOOKLINE_BENCH_CONDITIONS").is_ok_and(|v| v == "1").then(
        || serde_json::json!({"all": [{"path": "data.rating", "gte": 1}, {"path": "t", "exists": true}]}),
    );
    for _ in 0..webhooks {
        let new = NewWebhook {
            tenant: Tenant::store("bench"),
            url: target.to_string(),
            description: String::new(),
            event_types: None,
        };
        let control = DeliveryControl { conditions: conditions.clone(), ..DeliveryControl::default() };
        services.create_webhook_with(&Scope::Admin, new, control).await.unwrap();
    }
    services.create_api_key(&Scope::Admin, "bench").await.unwrap().key
}

struct Figures {
    published_per_second: f64,
    per_second: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    rss: f64,
    /// CPU microseconds per delivery: the server's, the load generator's (producers and
    /// receiver, this process), and the whole machine's.
    server_cpu_us: f64,
    bench_cpu_us: f64,
    machine_cpu_us: f64,
    postgres_cpu_us: f64,
    /// Share of the machine's CPU time that was busy during the run.
    busy_percent: f64,
    /// Deliveries accepted but not yet received when the last publish was answered: how far
    /// publishing ran ahead of delivery.
    backlog: usize,
}

async fn scenario(
    kind: &str,
    pg: Option<&str>,
    postmaster: Option<&str>,
    webhooks: usize,
    events: usize,
    rate: Option<f64>,
) -> Figures {
    let (sink, target) = start_sink().await;
    let database_url = fresh_database("hookline-bench", kind, pg).await;
    let key = prepare(&database_url, &target, webhooks).await;
    let server = hookline_process::serve(&database_url).start();
    let expected = webhooks * events;
    let busy_before = machine_busy_seconds();
    let server_before = server.cpu_seconds();
    let bench_before = process_cpu_seconds("self");
    let pg_before = postgres_cpu_seconds(postmaster);
    let start = Instant::now();
    let producers = if rate.is_some() { 8 } else { 32 };
    publish(&server.base, &key, events, producers, rate).await;
    let publish_secs = start.elapsed().as_secs_f64();
    let backlog = expected.saturating_sub(sink.count.load(Ordering::Relaxed));
    let deadline = Instant::now() + Duration::from_secs(600);
    while sink.count.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let got = sink.count.load(Ordering::Relaxed);
    assert_eq!(got, expected, "{kind}: {got} of {expected} deliveries arrived");
    let rss = server.peak_rss_mib();
    let server_cpu = server.cpu_seconds() - server_before;
    let machine_cpu = machine_busy_seconds() - busy_before;
    let bench_cpu = process_cpu_seconds("self") - bench_before;
    let pg_cpu = postgres_cpu_seconds(postmaster) - pg_before;
    drop(server);
    let mut lat = sink.latencies.lock().unwrap().clone();
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0;
    Figures {
        published_per_second: events as f64 / publish_secs,
        per_second: got as f64 / elapsed,
        p50: pct(0.5),
        p90: pct(0.9),
        p99: pct(0.99),
        max: pct(1.0),
        rss,
        server_cpu_us: server_cpu * 1e6 / got as f64,
        bench_cpu_us: bench_cpu * 1e6 / got as f64,
        machine_cpu_us: machine_cpu * 1e6 / got as f64,
        postgres_cpu_us: if kind == "sqlite" { 0.0 } else { pg_cpu * 1e6 / got as f64 },
        busy_percent: 100.0 * machine_cpu / (elapsed * cores()),
        backlog,
    }
}

/// Scenario (a) with one API process and `workers` worker processes: deliveries per second,
/// p99 latency, and CPU µs per delivery of all the Hookline processes together.
async fn multi_process(pg: &str, workers: usize, events: usize) -> (f64, f64, f64) {
    let (sink, target) = start_sink().await;
    let database_url = fresh_database("hookline-bench", "postgres", Some(pg)).await;
    let key = prepare(&database_url, &target, 1).await;
    let api = hookline_process::serve(&database_url).env("HOOKLINE_ROLE", "api").start();
    let delivering: Vec<HooklineProcess> = (0..workers)
        .map(|_| hookline_process::serve(&database_url).env("HOOKLINE_ROLE", "worker").start())
        .collect();
    let cpu = |api: &HooklineProcess, delivering: &[HooklineProcess]| {
        api.cpu_seconds() + delivering.iter().map(HooklineProcess::cpu_seconds).sum::<f64>()
    };
    let cpu_before = cpu(&api, &delivering);
    let start = Instant::now();
    publish(&api.base, &key, events, 32, None).await;
    let deadline = Instant::now() + Duration::from_secs(600);
    while sink.count.load(Ordering::Relaxed) < events && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let got = sink.count.load(Ordering::Relaxed);
    assert!(got >= events, "{got} of {events} deliveries arrived");
    let cpu_us = (cpu(&api, &delivering) - cpu_before) * 1e6 / got as f64;
    let mut lat = sink.latencies.lock().unwrap().clone();
    lat.sort_unstable();
    let p99 = lat[((lat.len() as f64 - 1.0) * 0.99) as usize] as f64 / 1000.0;
    (got as f64 / elapsed, p99, cpu_us)
}

fn main() {
    // `cargo test --all-targets` runs bench targets too; only `cargo bench` passes --bench.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("delivery bench: run it with `cargo bench -p hookline --bench delivery`");
        return;
    }
    hookline::install_tls_provider();
    let scale: f64 = std::env::var("HOOKLINE_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let n = |x: usize| ((x as f64 * scale) as usize).max(10);
    // PostgreSQL as shipped (durable, TLS) in a cluster of the bench's own, unless a server is
    // named.
    let given = std::env::var("HOOKLINE_BENCH_POSTGRES_URL").ok();
    let own =
        if given.is_none() { OwnPostgres::start_new(Durability { durable: true, tls: true }) } else { None };
    let pg = given.clone().or_else(|| own.as_ref().map(OwnPostgres::url));
    let postmaster = own.as_ref().and_then(OwnPostgres::pid);
    match (&given, &own) {
        (Some(url), _) => eprintln!("(PostgreSQL: the server at {url}, with its own settings)"),
        (None, Some(_)) => {
            eprintln!("(PostgreSQL: a cluster of the bench's own, fsync and synchronous_commit on, over TLS)")
        }
        (None, None) => {
            eprintln!("(PostgreSQL skipped: not installed, and HOOKLINE_BENCH_POSTGRES_URL unset)")
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut backends = vec!["sqlite"];
    if pg.is_some() {
        backends.push("postgres");
    }
    if let Ok(only) = std::env::var("HOOKLINE_BENCH_DATABASES") {
        backends.retain(|b| only.split(',').any(|o| o.trim() == *b));
    }
    let baseline = runtime.block_on(receiver_only(n(20_000)));
    println!("Receiver only (the producers straight to the receiver): {baseline:.0} requests/s\n");
    println!(
        "| database | scenario | events published/s | deliveries/s | of receiver only | p50 ms | p90 ms | p99 ms | max ms | peak RSS MiB | CPU µs/delivery: server | PostgreSQL | load generator | machine | machine busy | backlog when publishing ended |"
    );
    println!(
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for kind in backends {
        let runs = [
            (format!("(a) 1 webhook x {} events", n(20_000)), 1, n(20_000), None),
            (format!("(b) 10 webhooks x {} events", n(5_000)), 10, n(5_000), None),
            (format!("(c) 1 webhook, 200 events/s for {:.0} s", 30.0 * scale), 1, n(6_000), Some(200.0)),
        ];
        let only = std::env::var("HOOKLINE_BENCH_ONLY").unwrap_or_default();
        for (name, webhooks, events, rate) in runs {
            if !only.is_empty() && !only.chars().any(|c| name.starts_with(&format!("({c})"))) {
                continue;
            }
            let f = runtime.block_on(scenario(
                kind,
                pg.as_deref(),
                postmaster.as_deref(),
                webhooks,
                events,
                rate,
            ));
            println!(
                "| {kind} | {name} | {:.0} | {:.0} | {:.0}% | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0}% | {} |",
                f.published_per_second,
                f.per_second,
                100.0 * f.per_second / baseline,
                f.p50,
                f.p90,
                f.p99,
                f.max,
                f.rss,
                f.server_cpu_us,
                f.postgres_cpu_us,
                f.bench_cpu_us,
                f.machine_cpu_us,
                f.busy_percent,
                f.backlog
            );
        }
    }
    if let (Ok(counts), Some(pg)) = (std::env::var("HOOKLINE_BENCH_WORKERS"), pg.as_deref()) {
        println!();
        println!(
            "| PostgreSQL, scenario (a), 1 API process + | deliveries/s | p99 ms | CPU µs/delivery, all Hookline processes |"
        );
        println!("| --- | ---: | ---: | ---: |");
        for workers in counts.split(',').filter_map(|w| w.trim().parse::<usize>().ok()) {
            let (rate, p99, cpu) = runtime.block_on(multi_process(pg, workers, n(20_000)));
            println!("| {workers} worker processes | {rate:.0} | {p99:.1} | {cpu:.0} |");
        }
    }
}
