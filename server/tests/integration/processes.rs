//! Hookline as operators run it: the real binary, several processes on one database, roles,
//! a graceful stop on SIGTERM, kill -9, and an online backup.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hookline_core::{Scope, Services};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use test_receiver::{Behaviour, Receiver};

use crate::common::{Backend, TempDir, fresh_database};

struct Process {
    child: Child,
    addr: String,
}

impl Process {
    async fn start(database_url: &str, role: &str, extra: &[(&str, &str)]) -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookline"));
        cmd.arg("serve")
            .env_remove("HOOKLINE_CONFIG")
            .env("HOOKLINE_DATABASE_URL", database_url)
            .env("HOOKLINE_LISTEN", &addr)
            .env("HOOKLINE_ROLE", role)
            .env("HOOKLINE_ALLOW_NETWORKS", "127.0.0.0/8")
            .env("HOOKLINE_ALLOW_HTTP", "true")
            .env("HOOKLINE_DELIVERY_TIMEOUT", "2s")
            .env("HOOKLINE_RETRY_SCHEDULE", "100ms,200ms,400ms")
            .env("HOOKLINE_ADMIN_EMAIL", "ops@hookline.test")
            .env("HOOKLINE_ADMIN_PASSWORD", "a long password")
            .env("HOOKLINE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("hookline starts");
        let process = Process { child, addr };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while http.get(process.url("/healthz")).send().await.is_err() {
            assert!(Instant::now() < deadline, "hookline never answered /healthz");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        process
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn signal(&self, signal: &str) {
        let ok =
            Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill {signal}");
    }

    /// Waits for the process to exit; its exit code.
    async fn wait(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "hookline did not exit within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A database with a store, an admin key and a webhook to the receiver; the services on it.
async fn prepared(database_url: &str, receiver: &Receiver) -> (Services, String) {
    hookline::install_tls_provider();
    let db = hookline_core::connect(database_url).await.unwrap();
    hookline_core::migrate(&db).await.unwrap();
    let services = Services::new(
        db,
        hookline_core::Settings {
            url_policy: hookline_core::UrlPolicy {
                addresses: hookline_core::AddressPolicy {
                    allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
                },
                allow_http: true,
            },
            ..Default::default()
        },
    );
    services.create_store("store-a", "Store A").await.unwrap();
    let key = services.create_api_key(&Scope::Admin, "producer").await.unwrap().key;
    let created = services
        .create_webhook(
            &Scope::Admin,
            hookline_core::NewWebhook {
                tenant: hookline_core::Tenant::store("store-a"),
                url: receiver.url("/hooks"),
                description: String::new(),
                event_types: None,
            },
        )
        .await
        .unwrap();
    receiver.set_secret(&created.secret);
    (services, key)
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
    let (services, key) = prepared(&url, &receiver).await;
    let extra = [("HOOKLINE_PER_WEBHOOK_CONCURRENCY", "4")];
    let mut first = Process::start(&url, "all", &extra).await;
    let ids = publish_many(&first.url(""), &key, 200, "sigterm").await;

    first.signal("-TERM");
    let stopping = Instant::now();
    assert_eq!(first.wait(Duration::from_secs(15)).await, Some(0), "a graceful stop exits 0");
    assert!(stopping.elapsed() < Duration::from_secs(8), "{:?}", stopping.elapsed());
    let delivered_before = arrivals(&receiver).len();
    assert!(delivered_before < ids.len(), "the test stops the process while it still has work");
    // Nothing is left leased: what was not sent is due again at once.
    assert_eq!(count(&services, "SELECT COUNT(*) FROM deliveries WHERE leased_by IS NOT NULL").await, 0);
    // Every attempt that went out was recorded.
    let recorded = count(&services, "SELECT COUNT(*) FROM attempts").await as usize;
    assert_eq!(recorded, receiver.received().len());

    let restarted = Instant::now();
    let _second = Process::start(&url, "all", &extra).await;
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
async fn one_api_and_two_workers_share_the_queue_and_survive_a_kill() {
    let dir = TempDir::new();
    let url = fresh_database(Backend::Postgres, &dir).await;
    let receiver = Receiver::start().await.unwrap();
    receiver.configure(Behaviour { delay_ms: Some(5), ..Default::default() });
    let (_services, key) = prepared(&url, &receiver).await;
    let api = Process::start(&url, "api", &[]).await;
    let mut worker_1 = Process::start(&url, "worker", &[]).await;
    let _worker_2 = Process::start(&url, "worker", &[]).await;

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
    worker_1.wait(Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _worker_1_again = Process::start(&url, "worker", &[]).await;
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
    let (_services, key) = prepared(&url, &receiver).await;
    let process = Process::start(&url, "all", &[]).await;
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
