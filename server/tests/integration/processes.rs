//! Hookline as operators run it: the real binary, several processes on one database, roles,
//! a graceful stop on SIGTERM, kill -9, and an online backup.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hookline_core::Services;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use test_receiver::{Behaviour, Receiver};

use crate::common::{Backend, TempDir, fresh_database, prepared_for_a_process};
use crate::hookline_process::{self, HooklineProcess};

/// Hookline in `role`, with quick retries, a short delivery timeout and an admin, plus
/// `extra` settings.
fn start(database_url: &str, role: &str, extra: &[(&str, &str)]) -> HooklineProcess {
    hookline_process::serve(database_url)
        .env("HOOKLINE_ROLE", role)
        .env("HOOKLINE_DELIVERY_TIMEOUT", "2s")
        .env("HOOKLINE_RETRY_SCHEDULE", "100ms,200ms,400ms")
        .env("HOOKLINE_ADMIN_EMAIL", "ops@hookline.test")
        .env("HOOKLINE_ADMIN_PASSWORD", "a long password")
        .envs(extra)
        .start()
}

/// Publishes `n` events through the process at `base` (`http://host:port`), 8 at a time;
/// their ids.
async fn publish_many(base: &str, key: &str, n: usize, tag: &str) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        let calls: Vec<_> = chunk
            .iter()
            .map(|i| {
                let (http, url, key) = (http.clone(), format!("{base}/api/v1/events"), key.to_string());
                let body = json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created", "payload": {"tag": tag, "i": i}});
                tokio::spawn(async move {
                    let res = http.post(url).bearer_auth(key).header("content-type", "application/json").body(body.to_string()).send().await.unwrap();
                    assert_eq!(res.status(), 202);
                    let body: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
                    body["id"].as_str().unwrap().to_string()
                })
            })
            .collect();
        for call in calls {
            ids.push(call.await.unwrap());
        }
    }
    ids
}

/// How many times each event arrived.
fn arrivals(receiver: &Receiver) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for r in receiver.received() {
        if let Some(id) = r.header("webhook-id") {
            *seen.entry(id.to_string()).or_insert(0) += 1;
        }
    }
    seen
}

async fn wait_for_all(receiver: &Receiver, ids: &[String], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let seen = arrivals(receiver);
        let missing = ids.iter().filter(|id| !seen.contains_key(*id)).count();
        if missing == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{missing} of {} events never arrived", ids.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(services: &Services, sql: &str) -> i64 {
    let row = services
        .database()
        .query_one_raw(Statement::from_string(services.database().get_database_backend(), sql.to_string()))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_what_is_in_flight_and_releases_the_rest_at_once() {
    let dir = TempDir::new();
    let url = fresh_database(Backend::Sqlite, &dir).await;
    let receiver = Receiver::start().await.unwrap();
    receiver.configure(Behaviour { delay_ms: Some(100), ..Default::default() });
    let (services, key, _) = prepared_for_a_process(&url, &receiver).await;
    let extra = [("HOOKLINE_PER_WEBHOOK_CONCURRENCY", "4")];
    let mut first = start(&url, "all", &extra);
    let ids = publish_many(&first.url(""), &key, 200, "sigterm").await;

    first.signal("-TERM");
    let stopping = Instant::now();
    assert_eq!(first.exited_within(Duration::from_secs(15)).await, Some(0), "a graceful stop exits 0");
    assert!(stopping.elapsed() < Duration::from_secs(8), "{:?}", stopping.elapsed());
    let delivered_before = arrivals(&receiver).len();
    assert!(delivered_before < ids.len(), "the test stops the process while it still has work");
    // Nothing is left leased: what was not sent is due again at once.
    assert_eq!(count(&services, "SELECT COUNT(*) FROM deliveries WHERE leased_by IS NOT NULL").await, 0);
    // Every attempt that went out was recorded.
    let recorded = count(&services, "SELECT COUNT(*) FROM attempts").await as usize;
    assert_eq!(recorded, receiver.received().len());

    let restarted = Instant::now();
    let _second = start(&url, "all", &extra);
    // None waits out a lease (9 s here): the next arrives at once.
    let deadline = Instant::now() + Duration::from_secs(3);
    while arrivals(&receiver).len() == delivered_before {
        assert!(Instant::now() < deadline, "no delivery within 3 s of the restart");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for_all(&receiver, &ids, Duration::from_secs(30)).await;
    assert!(restarted.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_writes_at_once_the_attempts_the_recorder_holds() {
    let dir = TempDir::new();
    let url = fresh_database(Backend::Sqlite, &dir).await;
    let receiver = Receiver::start().await.unwrap();
    let (services, key, _) = prepared_for_a_process(&url, &receiver).await;
    // Nearly idle, the recorder holds attempts up to 5 s to write them together.
    let mut process = start(&url, "all", &[("HOOKLINE_RECORD_LINGER", "5s")]);
    let ids = publish_many(&process.url(""), &key, 3, "held").await;
    wait_for_all(&receiver, &ids, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        count(&services, "SELECT COUNT(*) FROM attempts").await,
        0,
        "the attempts are held, not yet written"
    );

    process.signal("-TERM");
    let stopping = Instant::now();
    assert_eq!(process.exited_within(Duration::from_secs(15)).await, Some(0), "a graceful stop exits 0");
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "the stop waited out the hold: {:?}",
        stopping.elapsed()
    );
    assert_eq!(count(&services, "SELECT COUNT(*) FROM attempts").await, 3, "every attempt made is written");
    assert_eq!(count(&services, "SELECT COUNT(*) FROM deliveries WHERE status = 'succeeded'").await, 3);
    assert_eq!(count(&services, "SELECT COUNT(*) FROM deliveries WHERE leased_by IS NOT NULL").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_api_and_two_workers_share_the_queue_and_survive_a_kill() {
    let dir = TempDir::new();
    let url = fresh_database(Backend::Postgres, &dir).await;
    let receiver = Receiver::start().await.unwrap();
    receiver.configure(Behaviour { delay_ms: Some(5), ..Default::default() });
    let (_, key, _) = prepared_for_a_process(&url, &receiver).await;
    let api = start(&url, "api", &[]);
    let mut worker_1 = start(&url, "worker", &[]);
    let _worker_2 = start(&url, "worker", &[]);

    // A worker serves operations only.
    let http = reqwest::Client::new();
    assert_eq!(http.get(worker_1.url("/readyz")).send().await.unwrap().status(), 200);
    assert_eq!(http.get(worker_1.url("/api/v1/openapi.json")).send().await.unwrap().status(), 404);

    // All three up: everything arrives once.
    let calm = publish_many(&api.url(""), &key, 300, "calm").await;
    wait_for_all(&receiver, &calm, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = arrivals(&receiver);
    let twice: Vec<_> = calm.iter().filter(|id| seen.get(*id).copied().unwrap_or(0) > 1).collect();
    assert!(twice.is_empty(), "{} events arrived twice while every process was up", twice.len());

    // Under load, kill -9 one worker and start it again: nothing accepted is lost.
    receiver.configure(Behaviour { delay_ms: Some(30), ..Default::default() });
    let publishing = {
        let (base, key) = (api.url(""), key.clone());
        tokio::spawn(async move { publish_many(&base, &key, 400, "storm").await })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    worker_1.signal("-KILL");
    worker_1.exited_within(Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _worker_1_again = start(&url, "worker", &[]);
    let storm = publishing.await.unwrap();
    wait_for_all(&receiver, &storm, Duration::from_secs(60)).await;
    let all: HashSet<&String> = calm.iter().chain(storm.iter()).collect();
    assert_eq!(all.len(), 700);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_together_migrate_one_after_the_other() {
    let dir = TempDir::new();
    let url = fresh_database(Backend::Postgres, &dir).await;
    let runs: Vec<Child> = (0..3)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_hookline"))
                .arg("migrate")
                .env_remove("HOOKLINE_CONFIG")
                .env("HOOKLINE_DATABASE_URL", &url)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_backup_holds_every_accepted_event() {
    let dir = TempDir::new();
    let url = fresh_database(Backend::Sqlite, &dir).await;
    let receiver = Receiver::start().await.unwrap();
    let (_, key, _) = prepared_for_a_process(&url, &receiver).await;
    let process = start(&url, "all", &[]);
    let before = publish_many(&process.url(""), &key, 120, "before").await;
    // More events are published while the copy is made.
    let during = {
        let (base, key) = (process.url(""), key.clone());
        tokio::spawn(async move { publish_many(&base, &key, 120, "during").await })
    };
    let copy = dir.0.join("backup.db");
    let out = Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(["backup", copy.to_str().unwrap()])
        .env_remove("HOOKLINE_CONFIG")
        .env("HOOKLINE_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    during.await.unwrap();
    // A second backup to the same file is refused rather than overwriting it.
    let again = Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(["backup", copy.to_str().unwrap()])
        .env("HOOKLINE_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(!again.status.success());

    // Restored: the copy opens as a Hookline database and holds every event accepted before.
    let restored = format!("sqlite://{}?mode=rw", copy.display());
    let db = hookline_core::connect(&restored).await.unwrap();
    hookline_core::migrate(&db).await.unwrap();
    let services = Services::new(db, Default::default());
    for id in &before {
        let found = count(&services, &format!("SELECT COUNT(*) FROM events WHERE id = '{id}'")).await;
        assert_eq!(found, 1, "event {id} is in the backup");
    }
}
