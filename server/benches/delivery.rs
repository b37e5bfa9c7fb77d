//! Delivery benchmark: Hookline as a separate process (the release `hookline` binary) on
//! SQLite and on PostgreSQL, a receiver on loopback, and these scenarios:
//!
//! - (a) 1 webhook × 20,000 events, published as fast as 32 producers can;
//! - (b) 10 webhooks × 5,000 events;
//! - (c) 1 webhook, 200 events/s for 30 s;
//! - (d) 1 webhook, payloads of 20 KiB (5,000 events) and of 250 KiB (1,000 events), with
//!   MB/s of payload received (250 KiB is within the default `HOOKLINE_MAX_PAYLOAD`, 256 KiB);
//! - (e) noisy neighbours: 10 webhooks of which 2 hang past the delivery timeout on every
//!   request (the server runs with `HOOKLINE_DELIVERY_TIMEOUT=1s`), as fast as (b) and paced
//!   as (c); the figures are the 8 healthy webhooks' own. Each runs after its baseline: the
//!   same 8 webhooks, the same load and settings, and no neighbour, so the two lines compare
//!   like with like. The full-speed line gives each healthy webhook's rate as a share of a
//!   webhook's in (b) (issue 16's measure: the same ten webhooks and fan-out, none hanging)
//!   and of its rate in the baseline (eight webhooks, so a fifth fewer deliveries per event:
//!   the stricter one);
//! - (g) fan-out: 2,000 events to 50 webhooks of one store (100,000 deliveries);
//! - (f), only when `HOOKLINE_BENCH_ONLY` names it: a backlog of 1,000,000 deliveries of one
//!   webhook (queued by an API-only process, so nothing delivers them), then drained by a
//!   process of the default role while the webhook page and the admin delivery history are
//!   rendered, signed in, over and over; it prints the drain rate and the pages' times.
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
//! runs only those scenarios (default `abcdeg`), `HOOKLINE_BENCH_DATABASES=postgres` only that
//! database.
//!
//! `HOOKLINE_BENCH_WORKERS=1,2,3` adds the multi-process mode on PostgreSQL: scenario (a)
//! published through one API process (`HOOKLINE_ROLE=api`) and delivered by 1, 2 and 3 worker
//! processes (`HOOKLINE_ROLE=worker`), as `deploy/docker-compose.yml` runs it.
//!
//! `HOOKLINE_BENCH_CONDITIONS=1` gives every webhook payload conditions that every event
//! meets (two tests), to measure what checking conditions at publish costs.

use std::iter::repeat_n;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hookline_core::{DeliveryControl, NewWebhook, Scope, Services, Settings, Tenant};

#[path = "../tests/support/own_postgres.rs"]
mod own_postgres;
use own_postgres::{Durability, OwnPostgres};

#[path = "../tests/support/hookline_process.rs"]
mod hookline_process;
use hookline_process::{HooklineProcess, clock_ticks, postgres_cpu_seconds, process_cpu_seconds};

#[path = "support/fresh_database.rs"]
mod fresh_database;
use fresh_database::fresh_database;

#[path = "support/sink.rs"]
mod sink;
use sink::{Sink, now_us, publish, publish_sized, start_sink};

/// The scenarios a plain run takes: (f) fills a million deliveries first, so it is asked for.
const DEFAULT_SCENARIOS: &str = "abcdeg";

/// How long the server waits for the hanging receivers of (e): short, so that they hold
/// their delivery slots many times over within one run.
const HANG_TIMEOUT: &[(&str, &str)] = &[("HOOKLINE_DELIVERY_TIMEOUT", "1s")];

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

/// The store `bench` with one webhook per target, and what the scenario needs of it.
struct Prepared {
    services: Services,
    key: String,
    webhooks: Vec<String>,
}

async fn prepare(database_url: &str, targets: &[String]) -> Prepared {
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
    let mut webhooks = Vec::with_capacity(targets.len());
    for target in targets {
        let new = NewWebhook {
            tenant: Tenant::store("bench"),
            url: target.clone(),
            description: String::new(),
            event_types: None,
        };
        let control = DeliveryControl { conditions: conditions.clone(), ..DeliveryControl::default() };
        webhooks.push(services.create_webhook_with(&Scope::Admin, new, control).await.unwrap().webhook.id);
    }
    let key = services.create_api_key(&Scope::Admin, "bench").await.unwrap().key;
    Prepared { services, key, webhooks }
}

/// One line of the table: who receives, what is published and how fast, and the settings the
/// server needs for it.
struct Load {
    name: String,
    /// Webhooks whose receiver answers: the figures are theirs.
    webhooks: usize,
    /// More webhooks of the same store whose receiver answers only after the timeout (e).
    hanging: usize,
    events: usize,
    /// Events a second; `None`: as fast as the producers go.
    rate: Option<f64>,
    /// Each payload's size in bytes; 0 for the small review event.
    payload_bytes: usize,
    env: &'static [(&'static str, &'static str)],
}

impl Load {
    fn new(name: String, webhooks: usize, events: usize) -> Self {
        Load { name, webhooks, hanging: 0, events, rate: None, payload_bytes: 0, env: &[] }
    }

    fn letter(&self) -> char {
        self.name.chars().nth(1).unwrap_or(' ')
    }
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
    /// Payload megabytes (10^6 bytes) received per second.
    megabytes_per_second: f64,
    /// Requests the hanging receivers got (none answered in time).
    hung: usize,
}

/// Publish-to-receive latency in ms at each of `points` (0.5 for the median), over every
/// delivery the sink received.
fn latency_ms<const N: usize>(sink: &Sink, points: [f64; N]) -> [f64; N] {
    let mut lat = sink.latencies.lock().unwrap().clone();
    lat.sort_unstable();
    points.map(|p| lat[((lat.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0)
}

/// Waits until the sink has `expected` deliveries (at most 10 minutes, or 2 ms a delivery for
/// (f)'s million); what it has then.
async fn received(sink: &Sink, expected: usize) -> usize {
    let patience = Duration::from_secs(600).max(Duration::from_millis(2 * expected as u64));
    let deadline = Instant::now() + patience;
    while sink.count.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sink.count.load(Ordering::Relaxed)
}

async fn scenario(kind: &str, pg: Option<&str>, postmaster: Option<&str>, load: &Load) -> Figures {
    let (sink, target) = start_sink().await;
    let database_url = fresh_database("hookline-bench", kind, pg).await;
    let hang = target.replace("/hook", "/hang");
    let targets: Vec<String> = repeat_n(target, load.webhooks).chain(repeat_n(hang, load.hanging)).collect();
    let key = prepare(&database_url, &targets).await.key;
    let server = hookline_process::serve(&database_url).envs(load.env).start();
    let (events, rate) = (load.events, load.rate);
    let expected = load.webhooks * events;
    let busy_before = machine_busy_seconds();
    let server_before = server.cpu_seconds();
    let bench_before = process_cpu_seconds("self");
    let pg_before = postgres_cpu_seconds(postmaster);
    let start = Instant::now();
    let producers = if rate.is_some() { 8 } else { 32 };
    publish_sized(&server.base, &key, events, producers, rate, load.payload_bytes).await;
    let publish_secs = start.elapsed().as_secs_f64();
    let backlog = expected.saturating_sub(sink.count.load(Ordering::Relaxed));
    let got = received(&sink, expected).await;
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(got, expected, "{kind}: {got} of {expected} deliveries arrived");
    let rss = server.peak_rss_mib();
    let server_cpu = server.cpu_seconds() - server_before;
    let machine_cpu = machine_busy_seconds() - busy_before;
    let bench_cpu = process_cpu_seconds("self") - bench_before;
    let pg_cpu = postgres_cpu_seconds(postmaster) - pg_before;
    drop(server);
    let [p50, p90, p99, max] = latency_ms(&sink, [0.5, 0.9, 0.99, 1.0]);
    Figures {
        published_per_second: events as f64 / publish_secs,
        per_second: got as f64 / elapsed,
        p50,
        p90,
        p99,
        max,
        rss,
        server_cpu_us: server_cpu * 1e6 / got as f64,
        bench_cpu_us: bench_cpu * 1e6 / got as f64,
        machine_cpu_us: machine_cpu * 1e6 / got as f64,
        postgres_cpu_us: if kind == "sqlite" { 0.0 } else { pg_cpu * 1e6 / got as f64 },
        busy_percent: 100.0 * machine_cpu / (elapsed * cores()),
        backlog,
        megabytes_per_second: sink.bytes.load(Ordering::Relaxed) as f64 / 1e6 / elapsed,
        hung: sink.hung.load(Ordering::Relaxed),
    }
}

/// Scenario (a) with one API process and `workers` worker processes: deliveries per second,
/// p99 latency, and CPU µs per delivery of all the Hookline processes together.
async fn multi_process(pg: &str, workers: usize, events: usize) -> (f64, f64, f64) {
    let (sink, target) = start_sink().await;
    let database_url = fresh_database("hookline-bench", "postgres", Some(pg)).await;
    let key = prepare(&database_url, &[target]).await.key;
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
    let got = received(&sink, events).await;
    let elapsed = start.elapsed().as_secs_f64();
    assert!(got >= events, "{got} of {events} deliveries arrived");
    let cpu_us = (cpu(&api, &delivering) - cpu_before) * 1e6 / got as f64;
    let [p99] = latency_ms(&sink, [0.99]);
    (got as f64 / elapsed, p99, cpu_us)
}

/// How often scenario (f) renders its two pages while the backlog drains.
const READ_EVERY: Duration = Duration::from_millis(100);

/// Scenario (f)'s figures.
struct Drain {
    published_per_second: f64,
    per_second: f64,
    /// p50, p90 and max render times (ms) of the webhook page and of the admin delivery
    /// history while draining.
    webhook_page: [f64; 3],
    admin_page: [f64; 3],
    renders: usize,
    rss: f64,
}

/// Scenario (f): `events` deliveries of one webhook wait in the queue, then drain while people
/// read the delivery log. They are queued through an API-only process (`HOOKLINE_ROLE=api`):
/// the receiver "down" without failed attempts, whose retry delays would decide the drain
/// instead of the engine. A process of the default role then delivers them, and renders the
/// pages: the harder case than a separate worker process.
async fn backlog(kind: &str, pg: Option<&str>, events: usize) -> Drain {
    let (sink, target) = start_sink().await;
    let database_url = fresh_database("hookline-bench", kind, pg).await;
    let Prepared { services, key, webhooks } = prepare(&database_url, &[target]).await;
    // Sessions straight from the services: signing in hashes a password, nothing to measure.
    const PASSWORD: &str = "correct horse battery";
    let admin = services.create_admin("admin@bench.test", PASSWORD).await.unwrap();
    let merchant = services.create_merchant("merchant@bench.test", PASSWORD, "bench").await.unwrap();
    let mut cookies = Vec::new();
    for user in [&merchant, &admin] {
        cookies.push(format!("hookline_session={}", services.create_session(&user.id).await.unwrap()));
    }
    drop(services);
    let api = hookline_process::serve(&database_url).env("HOOKLINE_ROLE", "api").start();
    let start = Instant::now();
    publish(&api.base, &key, events, 32, None).await;
    let published_per_second = events as f64 / start.elapsed().as_secs_f64();
    api.stop();
    assert_eq!(sink.count.load(Ordering::Relaxed), 0, "an API-only process delivered");

    let server = hookline_process::serve(&database_url).start();
    let start = Instant::now();
    let pages = [
        (server.url(&format!("/settings/api/webhooks/{}", webhooks[0])), "Delivery log"),
        (server.url("/admin/deliveries"), "Deliveries"),
    ];
    let drained = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn({
        let drained = drained.clone();
        async move {
            let http = reqwest::Client::new();
            let mut samples = [Vec::new(), Vec::new()];
            // At least one round, however fast the drain. A round every READ_EVERY: people
            // reading the log while it drains, not a load test of the dashboard (rendered back
            // to back, the pages took half the machine's CPU from the drain).
            loop {
                let round = tokio::time::sleep(READ_EVERY);
                for (((url, shows), cookie), samples) in pages.iter().zip(&cookies).zip(&mut samples) {
                    samples.push(render_ms(&http, url, cookie, shows).await);
                }
                if drained.load(Ordering::Relaxed) {
                    return samples;
                }
                round.await;
            }
        }
    });
    let got = received(&sink, events).await;
    let elapsed = start.elapsed().as_secs_f64();
    drained.store(true, Ordering::Relaxed);
    assert_eq!(got, events, "{kind}: {got} of {events} queued deliveries arrived");
    let rss = server.peak_rss_mib();
    let samples = reader.await.unwrap();
    let renders = samples.iter().map(Vec::len).sum();
    let [webhook_page, admin_page] = samples.map(|mut ms| {
        ms.sort_by(f64::total_cmp);
        [0.5, 0.9, 1.0].map(|p| ms[((ms.len() - 1) as f64 * p) as usize])
    });
    Drain { published_per_second, per_second: got as f64 / elapsed, webhook_page, admin_page, renders, rss }
}

/// One full server-side render of a dashboard page, signed in: ms until its last byte. Fails
/// when the page is not the one asked for (a sign-in page answers 200 too, at another path).
async fn render_ms(http: &reqwest::Client, url: &str, cookie: &str, shows: &str) -> f64 {
    let start = Instant::now();
    let res = http.get(url).header("cookie", cookie).send().await.unwrap();
    assert_eq!((res.status().as_u16(), res.url().as_str()), (200, url), "{url}");
    let body = res.text().await.unwrap();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    assert!(body.contains(shows), "{url} did not show {shows:?}");
    ms
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
    let only = std::env::var("HOOKLINE_BENCH_ONLY").ok().filter(|o| !o.is_empty());
    let only = only.as_deref().unwrap_or(DEFAULT_SCENARIOS);
    const KIB: usize = 1024;
    let paced = format!("200 events/s for {:.0} s", 30.0 * scale);
    let hanging = "2 more hang past the 1 s timeout";
    let alone = "no neighbour (the baseline of the next line)";
    for &kind in &backends {
        let runs = [
            Load::new(format!("(a) 1 webhook x {} events", n(20_000)), 1, n(20_000)),
            Load::new(format!("(b) 10 webhooks x {} events", n(5_000)), 10, n(5_000)),
            Load { rate: Some(200.0), ..Load::new(format!("(c) 1 webhook, {paced}"), 1, n(6_000)) },
            Load {
                payload_bytes: 20 * KIB,
                ..Load::new(format!("(d) 1 webhook x {} events of 20 KiB", n(5_000)), 1, n(5_000))
            },
            Load {
                payload_bytes: 250 * KIB,
                ..Load::new(format!("(d) 1 webhook x {} events of 250 KiB", n(1_000)), 1, n(1_000))
            },
            Load {
                env: HANG_TIMEOUT,
                ..Load::new(format!("(e) 8 webhooks x {} events, {alone}", n(5_000)), 8, n(5_000))
            },
            Load {
                hanging: 2,
                env: HANG_TIMEOUT,
                ..Load::new(format!("(e) 8 webhooks x {} events, {hanging}", n(5_000)), 8, n(5_000))
            },
            Load {
                env: HANG_TIMEOUT,
                rate: Some(200.0),
                ..Load::new(format!("(e) 8 webhooks, {paced}, {alone}"), 8, n(6_000))
            },
            Load {
                hanging: 2,
                env: HANG_TIMEOUT,
                rate: Some(200.0),
                ..Load::new(format!("(e) 8 webhooks, {paced}, {hanging}"), 8, n(6_000))
            },
            Load::new(format!("(g) 50 webhooks of one store x {} events", n(2_000)), 50, n(2_000)),
        ];
        // Deliveries a second to each answering webhook, in (b) and in the full-speed (e)
        // line with no neighbour: what the full-speed (e) line with neighbours compares with.
        let mut per_webhook_in_b = None;
        let mut per_webhook_alone = None;
        for load in runs.iter().filter(|load| only.contains(load.letter())) {
            let f = runtime.block_on(scenario(kind, pg.as_deref(), postmaster.as_deref(), load));
            let per_webhook = f.per_second / load.webhooks as f64;
            match (load.letter(), load.hanging, load.rate) {
                ('b', _, _) => per_webhook_in_b = Some(per_webhook),
                ('e', 0, None) => per_webhook_alone = Some(per_webhook),
                _ => {}
            }
            // What only some scenarios have to say goes with their name.
            let name = match load.letter() {
                'd' => format!("{}: {:.0} MB/s", load.name, f.megabytes_per_second),
                'e' if load.hanging > 0 && load.rate.is_none() => {
                    let share = |of: Option<f64>| {
                        of.map_or("not run".to_string(), |of| format!("{:.0}%", 100.0 * per_webhook / of))
                    };
                    format!(
                        "{} ({} requests timed out; each healthy webhook at {} of its rate in (b), {} of its rate with no neighbour)",
                        load.name,
                        f.hung,
                        share(per_webhook_in_b),
                        share(per_webhook_alone)
                    )
                }
                'e' if load.hanging > 0 => format!("{} ({} requests timed out)", load.name, f.hung),
                _ => load.name.clone(),
            };
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
    if only.contains('f') {
        let events = n(1_000_000);
        println!();
        println!(
            "| database | (f) backlog of {events} deliveries, 1 webhook | queued (published)/s | drained deliveries/s | peak RSS MiB | webhook page p50 / p90 / max ms | admin deliveries page p50 / p90 / max ms | renders |"
        );
        println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for &kind in &backends {
            let d = runtime.block_on(backlog(kind, pg.as_deref(), events));
            let ms = |[p50, p90, max]: [f64; 3]| format!("{p50:.1} / {p90:.1} / {max:.1}");
            println!(
                "| {kind} | drained by a process of the default role | {:.0} | {:.0} | {:.0} | {} | {} | {} |",
                d.published_per_second,
                d.per_second,
                d.rss,
                ms(d.webhook_page),
                ms(d.admin_page),
                d.renders
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
