use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hookline::Application;
use hookline::config::Config;
use hookline_core::entities::{attempt, delivery, event, webhook};
use hookline_core::{Scope, Services};
use sea_orm::{ConnectionTrait, Database, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Declares tests that run once on SQLite and once on PostgreSQL.
macro_rules! on_both_databases {
    ($(async fn $name:ident($backend:ident: Backend) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($backend: $crate::common::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::common::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run($crate::common::Backend::Postgres).await
            }
        }
    )*};
}
pub(crate) use on_both_databases;

pub struct TestApp {
    pub addr: SocketAddr,
    pub services: Services,
    pub http: reqwest::Client,
    pub admin_key: String,
    pub store_a_key: String,
    pub store_b_key: String,
    /// The engine a test drives itself ([`spawn_driven`], [`TestApp::deliver_due`]).
    pub engine: Option<hookline::delivery::Engine>,
    _dir: TempDir,
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("hookline-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The warnings and errors Hookline logs, written through the test harness: they are shown
/// beside a failing test's panic (and hidden otherwise), so an unexpected 503 says whether
/// the database, a queue or the request's time limit answered it.
pub fn log_warnings() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ =
            tracing_subscriber::fmt().with_test_writer().with_ansi(false).with_env_filter("warn").try_init();
    });
}

/// A fresh database: a new SQLite file, or a new database on the test PostgreSQL server.
pub async fn fresh_database(backend: Backend, dir: &TempDir) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.0.join("hookline.db").display()),
        Backend::Postgres => {
            let admin_url = std::env::var("HOOKLINE_TEST_POSTGRES_URL").expect(
                "HOOKLINE_TEST_POSTGRES_URL must name a PostgreSQL server for the tests \
                 (scripts/hookline test starts one)",
            );
            let name = format!("hookline_test_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&admin_url).await.expect("the test PostgreSQL server answers");
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("a test database");
            admin.close().await.ok();
            let (base, _) = admin_url.rsplit_once('/').expect("a database URL with a path");
            format!("{base}/{name}")
        }
    }
}

pub fn test_config(database_url: &str, extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = [
        ("HOOKLINE_DATABASE_URL", database_url),
        ("HOOKLINE_LISTEN", "127.0.0.1:0"),
        ("HOOKLINE_ALLOW_NETWORKS", "127.0.0.0/8"),
        ("HOOKLINE_ALLOW_HTTP", "true"),
        ("HOOKLINE_RETRY_SCHEDULE", "20ms,40ms,80ms"),
        ("HOOKLINE_DELIVERY_TIMEOUT", "2s"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Config::from_map(&vars).expect("a valid test configuration")
}

pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, &[]).await
}

/// Starts Hookline with two stores (`store-a`, `store-b`), a merchant of each
/// (`merchant@a.test`, `merchant@b.test`, password `correct horse battery`) and API keys.
pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    hookline::install_tls_provider();
    log_warnings();
    let dir = TempDir::new();
    let database_url = fresh_database(backend, &dir).await;
    let app = Application::build(test_config(&database_url, extra)).await.expect("Hookline starts");
    let addr = app.local_addr();
    let services = app.services().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    // Without workers of its own, the process's deliveries go out when the test says.
    let engine = extra
        .contains(&("HOOKLINE_WORKERS", "false"))
        .then(|| hookline::engine(&test_config(&database_url, extra), services.clone()));

    services.create_store("store-a", "Store A").await.unwrap();
    services.create_store("store-b", "Store B").await.unwrap();
    services.create_merchant("merchant@a.test", PASSWORD, "store-a").await.unwrap();
    services.create_merchant("merchant@b.test", PASSWORD, "store-b").await.unwrap();
    let key = |scope: Scope| {
        let services = services.clone();
        async move { services.create_api_key(&scope, "test").await.unwrap().key }
    };
    TestApp {
        addr,
        admin_key: key(Scope::Admin).await,
        store_a_key: key(Scope::Store("store-a".into())).await,
        store_b_key: key(Scope::Store("store-b".into())).await,
        services,
        engine,
        http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        _dir: dir,
    }
}

/// Starts Hookline without its delivery workers, with an engine the test drives: nothing is
/// sent until [`TestApp::deliver_due`], which returns once it is all sent and recorded.
pub async fn spawn_driven(backend: Backend) -> TestApp {
    spawn_with(backend, &[("HOOKLINE_WORKERS", "false")]).await
}

pub const PASSWORD: &str = "correct horse battery";

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a JSON request to the REST API with the given key; returns status and body.
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method.parse().unwrap(), self.url(&format!("/api/v1{path}")));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body.to_string());
        }
        let res = req.send().await.expect("the API answers");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
        // Every answer a test sees is checked against the OpenAPI document.
        crate::openapi::assert_documented(method, path, status, &answer);
        (status, answer)
    }

    pub async fn publish_raw(&self, key: Option<&str>, body: &str) -> (u16, Value) {
        let mut req = self.http.post(self.url("/api/v1/events")).header("content-type", "application/json");
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let res = req.body(body.to_string()).send().await.expect("the API answers");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
        crate::openapi::assert_documented("POST", "/events", status, &answer);
        (status, answer)
    }

    /// Publishes `event_type` for a store with the admin key and returns the event id.
    pub async fn publish(&self, store: &str, event_type: &str, payload: Value) -> String {
        let (status, body) = self
            .api(
                "POST",
                "/events",
                Some(&self.admin_key),
                Some(json!({"tenant_type": "store", "tenant_id": store, "event_type": event_type, "payload": payload})),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().expect("an event id").to_string()
    }

    /// Creates a webhook for a store with the admin key; returns (id, secret).
    pub async fn create_webhook(
        &self,
        store: &str,
        url: &str,
        event_types: Option<Vec<&str>>,
    ) -> (String, String) {
        let (status, body) = self
            .api(
                "POST",
                "/webhooks",
                Some(&self.admin_key),
                Some(json!({"tenant_type": "store", "tenant_id": store, "url": url, "event_types": event_types})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (body["id"].as_str().unwrap().to_string(), body["secret"].as_str().unwrap().to_string())
    }

    pub async fn counts(&self) -> (u64, u64, u64, u64) {
        let db = self.services.database();
        (
            event::Entity::find().count(db).await.unwrap(),
            delivery::Entity::find().count(db).await.unwrap(),
            attempt::Entity::find().count(db).await.unwrap(),
            webhook::Entity::find().count(db).await.unwrap(),
        )
    }

    /// Signs in through the dashboard's login server function; returns the session cookie.
    pub async fn sign_in(&self, email: &str, password: &str) -> Option<String> {
        let res = self
            .http
            .post(self.url("/ui/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("email={}&password={}", enc(email), enc(password)))
            .send()
            .await
            .unwrap();
        res.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("hookline_session=") && !c.starts_with("hookline_session=;"))
            .map(|c| c.split(';').next().unwrap_or_default().to_string())
    }

    /// Calls a dashboard server function as a signed-in browser would (without JavaScript's
    /// `Accept` header, so errors come back as status codes).
    pub async fn server_fn(&self, cookie: &str, name: &str, form: &[(&str, &str)]) -> (u16, String) {
        let body = form.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&");
        let res = self
            .http
            .post(self.url(&format!("/ui/{name}")))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap_or_default())
    }

    /// Delivers everything due now and returns once every attempt is recorded (an app from
    /// [`spawn_driven`]); answers how many deliveries were claimed.
    pub async fn deliver_due(&self) -> usize {
        let engine = self.engine.as_ref().expect("an app from spawn_driven, whose engine the test drives");
        engine.run_once().await.expect("the engine delivers")
    }

    pub async fn wait_until<F: AsyncFn() -> bool>(&self, within: Duration, check: F) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if check().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        check().await
    }
}

pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A database made ready for Hookline as a separate process: store `store-a`, an admin key and
/// a webhook of every event type to `receiver` (which is given its secret). The services on
/// it, the key and the webhook's id.
pub async fn prepared_for_a_process(
    database_url: &str,
    receiver: &test_receiver::Receiver,
) -> (Services, String, String) {
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
    (services, key, created.webhook.id)
}
