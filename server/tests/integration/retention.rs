//! Retention: what is past `HOOKLINE_RETENTION` (or a store's own, shorter one) is deleted,
//! payloads past `HOOKLINE_PAYLOAD_RETENTION` are cleared while the log keeps the rest, a
//! delivery still retrying is never touched, `hookline prune --dry-run` only counts, deleting
//! a store erases all of its data, and publishing goes on while a large prune runs.
//!
//! Old rows are written straight into the database with ids made at their time (UUIDv7, as
//! Hookline makes them), since waiting days is not an option.

use std::process::Command;
use std::time::{Duration, Instant};

use hookline_core::entities::{attempt, delivery, event};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, Statement,
};
use serde_json::json;
use test_receiver::Receiver;

use crate::common::{TempDir, TestApp, fresh_database, on_both_databases, spawn_with};

const DAY: i64 = 86_400_000;

/// A UUIDv7 made at `ms`, as Hookline's ids are.
fn id_at(ms: i64) -> String {
    let ts =
        uuid::Timestamp::from_unix(uuid::NoContext, (ms / 1000) as u64, ((ms % 1000) * 1_000_000) as u32);
    uuid::Uuid::new_v7(ts).to_string()
}

fn event_row(store: &str, at: i64, key: Option<&str>) -> event::ActiveModel {
    event::ActiveModel {
        id: Set(id_at(at)),
        tenant_type: Set(hookline_core::TenantType::Store),
        tenant_id: Set(store.into()),
        event_type: Set("review-created".into()),
        payload: Set(r#"{"review":{"id":1,"text":"Lovely"}}"#.into()),
        idempotency_key: Set(key.map(str::to_string)),
        sequence: Set(1),
        received_at: Set(at),
        payload_pruned_at: Set(None),
        ordering_key: Set(None),
    }
}

fn delivery_row(
    event_id: &str,
    store: &str,
    webhook_id: &str,
    at: i64,
    status: &str,
) -> delivery::ActiveModel {
    let retrying = status == "pending";
    delivery::ActiveModel {
        id: Set(id_at(at)),
        event_id: Set(event_id.into()),
        webhook_id: Set(webhook_id.into()),
        tenant_type: Set(hookline_core::TenantType::Store),
        tenant_id: Set(store.into()),
        event_type: Set("review-created".into()),
        status: Set(status.parse().expect("a delivery status")),
        attempts: Set(1),
        manual_attempts: Set(0),
        // A retrying delivery is due again only in an hour, so no worker takes it meanwhile.
        next_attempt_at: Set(retrying.then(|| hookline_core::now_ms() + 3_600_000)),
        leased_by: Set(None),
        last_status_code: Set(Some(if retrying { 503 } else { 200 })),
        last_duration_ms: Set(Some(12)),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    }
}

fn attempt_row(delivery_id: &str, webhook_id: &str, at: i64) -> attempt::ActiveModel {
    attempt::ActiveModel {
        id: Set(id_at(at)),
        delivery_id: Set(delivery_id.into()),
        webhook_id: Set(webhook_id.into()),
        trigger: Set(hookline_core::AttemptTrigger::Scheduled),
        started_at: Set(at),
        duration_ms: Set(12),
        url: Set("https://receiver.example/hook".into()),
        request_headers: Set(r#"[["content-type","application/json"]]"#.into()),
        response_status: Set(Some(200)),
        response_headers: Set(Some(r#"[["set-cookie","session=secret"]]"#.into())),
        response_body: Set(Some("thanks, customer jane@example.com".into())),
        error_class: Set(None),
        error_message: Set(None),
    }
}

/// One old event delivered to `webhook` with `status`, with one attempt; answers the event's
/// and the delivery's ids.
async fn old_delivery(
    db: &DatabaseConnection,
    store: &str,
    webhook: &str,
    at: i64,
    status: &str,
) -> (String, String) {
    let ev = event_row(store, at, None);
    let event_id = ev.id.clone().unwrap();
    event::Entity::insert(ev).exec_without_returning(db).await.unwrap();
    let d = delivery_row(&event_id, store, webhook, at, status);
    let delivery_id = d.id.clone().unwrap();
    delivery::Entity::insert(d).exec_without_returning(db).await.unwrap();
    attempt::Entity::insert(attempt_row(&delivery_id, webhook, at + 5))
        .exec_without_returning(db)
        .await
        .unwrap();
    (event_id, delivery_id)
}

async fn old_event(db: &DatabaseConnection, store: &str, at: i64) -> String {
    let ev = event_row(store, at, None);
    let id = ev.id.clone().unwrap();
    event::Entity::insert(ev).exec_without_returning(db).await.unwrap();
    id
}

async fn hour_row(db: &DatabaseConnection, webhook: &str, at: i64) {
    let hour = at / hookline_core::HOUR_MS * hookline_core::HOUR_MS;
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "INSERT INTO webhook_hours (webhook_id, hour, succeeded, failed) VALUES ($1, $2, 3, 1)",
        [webhook.into(), hour.into()],
    ))
    .await
    .unwrap();
}

/// Rows of `table` matching `condition` (which may use `$1`).
async fn rows(db: &DatabaseConnection, table: &str, condition: &str, value: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table} WHERE {condition}"),
            [value.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

async fn exists<E: EntityTrait>(db: &DatabaseConnection, id: &str) -> bool
where
    <E::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType: From<String>,
{
    E::find_by_id(id.to_string()).one(db).await.unwrap().is_some()
}

/// A webhook of the store that nothing is ever delivered to (no event is published to it).
async fn quiet_webhook(app: &TestApp, store: &str) -> String {
    app.create_webhook(store, "http://127.0.0.1:9/never", None).await.0
}

on_both_databases! {
    async fn rows_past_the_retention_are_pruned_but_a_retrying_delivery_and_its_event_stay(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_RETENTION", "2d")]).await;
        let db = app.services.database();
        let hook = quiet_webhook(&app, "store-a").await;
        let now = hookline_core::now_ms();
        let (settled_event, settled) = old_delivery(db, "store-a", &hook, now - 3 * DAY, "succeeded").await;
        let (failed_event, failed) = old_delivery(db, "store-a", &hook, now - 3 * DAY + 10, "failed").await;
        let (retrying_event, retrying) = old_delivery(db, "store-a", &hook, now - 3 * DAY + 20, "pending").await;
        let lonely_event = old_event(db, "store-a", now - 3 * DAY + 30).await;
        let (recent_event, recent) = old_delivery(db, "store-a", &hook, now - DAY, "succeeded").await;
        hour_row(db, &hook, now - 3 * DAY).await;
        hour_row(db, &hook, now - DAY).await;

        let done = app.services.prune(false).await.unwrap();
        assert_eq!(
            (done.events, done.deliveries, done.attempts, done.webhook_hours),
            (3, 2, 2, 1),
            "{done:?}"
        );
        for gone in [&settled_event, &failed_event, &lonely_event] {
            assert!(!exists::<event::Entity>(db, gone).await, "event {gone} stayed");
        }
        for gone in [&settled, &failed] {
            assert!(!exists::<delivery::Entity>(db, gone).await, "delivery {gone} stayed");
            assert_eq!(rows(db, "attempts", "delivery_id = $1", gone).await, 0);
        }
        // Still retrying: the delivery, its attempt and its event stay, payload and all.
        assert!(exists::<delivery::Entity>(db, &retrying).await);
        assert_eq!(rows(db, "attempts", "delivery_id = $1", &retrying).await, 1);
        let kept = event::Entity::find_by_id(retrying_event.clone()).one(db).await.unwrap().unwrap();
        assert!(kept.payload.contains("Lovely") && kept.payload_pruned_at.is_none());
        // Within the retention: untouched.
        assert!(exists::<event::Entity>(db, &recent_event).await && exists::<delivery::Entity>(db, &recent).await);
        assert_eq!(rows(db, "webhook_hours", "webhook_id = $1", &hook).await, 1);
        // The API still shows the retrying delivery.
        let (status, body) = app.api("GET", &format!("/deliveries/{retrying}"), Some(&app.admin_key), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "pending");

        // Nothing is left to do.
        assert_eq!(app.services.prune(false).await.unwrap().total(), 0);
    }

    async fn a_process_that_delivers_prunes_on_its_own(backend: Backend) {
        let dir = TempDir::new();
        let url = fresh_database(backend, &dir).await;
        hookline::install_tls_provider();
        let db = hookline_core::connect(&url).await.unwrap();
        hookline_core::migrate(&db).await.unwrap();
        let now = hookline_core::now_ms();
        let (old, _) = old_delivery(&db, "shop", "wh-1", now - 5 * DAY, "succeeded").await;
        let (kept, _) = old_delivery(&db, "shop", "wh-1", now - DAY, "succeeded").await;
        let cfg = crate::common::test_config(&url, &[("HOOKLINE_RETENTION", "2d")]);
        let app = hookline::Application::build(cfg).await.unwrap();
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        let gone = async || !exists::<event::Entity>(&db, &old).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        while !gone().await && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(gone().await, "the janitor left an event past the retention");
        assert_eq!(rows(&db, "deliveries", "$1 = $1", "x").await, 1);
        assert!(exists::<event::Entity>(&db, &kept).await);
    }

    async fn payloads_past_the_payload_retention_are_cleared_and_the_log_says_so(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_RETENTION", "30d"), ("HOOKLINE_PAYLOAD_RETENTION", "1d")]).await;
        let db = app.services.database();
        let hook = quiet_webhook(&app, "store-a").await;
        let now = hookline_core::now_ms();
        let (old_event_id, old) = old_delivery(db, "store-a", &hook, now - 2 * DAY, "succeeded").await;
        let (retrying_event, _) = old_delivery(db, "store-a", &hook, now - 2 * DAY + 10, "pending").await;
        let (fresh_event, _) = old_delivery(db, "store-a", &hook, now - 3_600_000, "succeeded").await;

        let done = app.services.prune(false).await.unwrap();
        assert_eq!((done.payloads, done.response_bodies, done.events, done.deliveries), (1, 2, 0, 0), "{done:?}");

        // The event and its delivery say what happened, without the payload.
        let (status, ev) = app.api("GET", &format!("/events/{old_event_id}"), Some(&app.admin_key), None).await;
        assert_eq!(status, 200, "{ev}");
        assert_eq!(ev["payload"], serde_json::Value::Null);
        assert!(ev["payload_pruned_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{ev}");
        assert_eq!(ev["deliveries"][0]["status"], "succeeded");
        assert_eq!(ev["deliveries"][0]["last_status_code"], 200);
        let (status, d) = app.api("GET", &format!("/deliveries/{old}"), Some(&app.admin_key), None).await;
        assert_eq!(status, 200, "{d}");
        assert_eq!(d["payload"], serde_json::Value::Null);
        assert_eq!(d["payload_pruned_at"], ev["payload_pruned_at"]);
        assert_eq!(d["attempts"][0]["response_status"], 200);
        assert_eq!(d["attempts"][0]["response_body"], serde_json::Value::Null);
        assert_eq!(d["attempts"][0]["response_headers"], serde_json::Value::Null);
        assert!(d["attempts"][0]["started_at"].is_string());
        // There is nothing left to send again.
        let (status, body) = app.api("POST", &format!("/deliveries/{old}/resend"), Some(&app.admin_key), None).await;
        assert_eq!(status, 409, "{body}");
        // The dashboard says why the payload is missing.
        let cookie = app.sign_in("merchant@a.test", crate::common::PASSWORD).await.unwrap();
        let (status, page) = app.server_fn(&cookie, "delivery", &[("delivery_id", &old)]).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("payload was removed on") && page.contains("1 day"), "{page}");

        // A delivery still retrying keeps its event's payload; a recent one is untouched.
        for kept in [&retrying_event, &fresh_event] {
            let (_, ev) = app.api("GET", &format!("/events/{kept}"), Some(&app.admin_key), None).await;
            assert_eq!(ev["payload"]["review"]["text"], "Lovely", "{ev}");
            assert_eq!(ev["payload_pruned_at"], serde_json::Value::Null);
        }
        // A second round finds the work done.
        assert_eq!(app.services.prune(false).await.unwrap().total(), 0);
    }

    async fn a_store_with_a_shorter_retention_loses_its_old_rows_and_others_keep_theirs(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_RETENTION", "30d")]).await;
        let db = app.services.database();
        let path = "/stores/store-a";
        // Only an admin sets it, within the global retention.
        let (status, _) = app.api("PATCH", path, Some(&app.store_a_key), Some(json!({"retention": "2d"}))).await;
        assert_eq!(status, 403);
        let (status, body) = app.api("PATCH", path, Some(&app.admin_key), Some(json!({"retention": "40d"}))).await;
        assert_eq!(status, 422, "{body}");
        assert!(body.to_string().contains("30d"), "{body}");
        let (status, _) = app.api("PATCH", path, Some(&app.admin_key), Some(json!({"retention": "soon"}))).await;
        assert_eq!(status, 400);
        let (status, _) = app.api("PATCH", "/stores/nope", Some(&app.admin_key), Some(json!({"retention": "2d"}))).await;
        assert_eq!(status, 404);
        let (status, body) = app.api("PATCH", path, Some(&app.admin_key), Some(json!({"retention": "2d"}))).await;
        assert_eq!((status, &body["retention"]), (200, &json!("2d")), "{body}");
        let (_, list) = app.api("GET", "/stores", Some(&app.admin_key), None).await;
        assert_eq!(list["items"][0]["retention"], "2d", "{list}");
        assert_eq!(list["items"][1]["retention"], serde_json::Value::Null, "{list}");

        let (hook_a, hook_b) = (quiet_webhook(&app, "store-a").await, quiet_webhook(&app, "store-b").await);
        let now = hookline_core::now_ms();
        let (a_event, a_delivery) = old_delivery(db, "store-a", &hook_a, now - 3 * DAY, "succeeded").await;
        let a_lonely = old_event(db, "store-a", now - 3 * DAY).await;
        let (a_retrying_event, a_retrying) = old_delivery(db, "store-a", &hook_a, now - 3 * DAY, "pending").await;
        let (a_recent, _) = old_delivery(db, "store-a", &hook_a, now - DAY, "succeeded").await;
        let (b_event, b_delivery) = old_delivery(db, "store-b", &hook_b, now - 3 * DAY, "succeeded").await;
        let b_lonely = old_event(db, "store-b", now - 3 * DAY).await;
        hour_row(db, &hook_a, now - 3 * DAY).await;
        hour_row(db, &hook_b, now - 3 * DAY).await;

        let done = app.services.prune(false).await.unwrap();
        assert_eq!((done.events, done.deliveries, done.attempts, done.webhook_hours), (2, 1, 1, 1), "{done:?}");
        assert!(!exists::<event::Entity>(db, &a_event).await && !exists::<event::Entity>(db, &a_lonely).await);
        assert!(!exists::<delivery::Entity>(db, &a_delivery).await);
        assert_eq!(rows(db, "webhook_hours", "webhook_id = $1", &hook_a).await, 0);
        for kept in [&a_retrying_event, &a_recent, &b_event, &b_lonely] {
            assert!(exists::<event::Entity>(db, kept).await, "event {kept} went");
        }
        assert!(exists::<delivery::Entity>(db, &a_retrying).await && exists::<delivery::Entity>(db, &b_delivery).await);
        assert_eq!(rows(db, "webhook_hours", "webhook_id = $1", &hook_b).await, 1);

        // Cleared, the store is kept as long as the others again.
        let (status, body) = app.api("PATCH", path, Some(&app.admin_key), Some(json!({"retention": null}))).await;
        assert_eq!((status, &body["retention"]), (200, &serde_json::Value::Null), "{body}");
    }

    async fn prune_dry_run_changes_nothing_and_says_what_would_go(backend: Backend) {
        let dir = TempDir::new();
        let url = fresh_database(backend, &dir).await;
        hookline::install_tls_provider();
        let db = hookline_core::connect(&url).await.unwrap();
        hookline_core::migrate(&db).await.unwrap();
        let services = hookline_core::Services::new(db.clone(), hookline_core::Settings::default());
        services.create_store("shop", "Shop").await.unwrap();
        let hook = services
            .create_webhook(
                &hookline_core::Scope::Admin,
                hookline_core::NewWebhook {
                    tenant: hookline_core::Tenant::store("shop"),
                    url: "https://receiver.example/hook".into(),
                    description: String::new(),
                    event_types: None,
                },
            )
            .await
            .unwrap()
            .webhook
            .id;
        let now = hookline_core::now_ms();
        old_delivery(&db, "shop", &hook, now - 10 * DAY, "succeeded").await;
        old_delivery(&db, "shop", &hook, now - 10 * DAY, "pending").await;
        old_event(&db, "shop", now - 10 * DAY).await;
        old_delivery(&db, "shop", &hook, now - 3 * DAY, "failed").await;
        hour_row(&db, &hook, now - 10 * DAY).await;
        let counts = async || {
            let mut all = Vec::new();
            for table in ["events", "deliveries", "attempts", "webhook_hours"] {
                all.push(rows(&db, table, "$1 = $1", "x").await);
            }
            all.push(rows(&db, "events", "payload_pruned_at IS NOT NULL", "x").await
                + rows(&db, "attempts", "response_body IS NULL AND $1 = $1", "x").await);
            all
        };
        let before = counts().await;
        let prune = |args: &[&str]| {
            let out = Command::new(env!("CARGO_BIN_EXE_hookline"))
                .args(args)
                .env("HOOKLINE_DATABASE_URL", &url)
                .env("HOOKLINE_RETENTION", "7d")
                .env("HOOKLINE_PAYLOAD_RETENTION", "2d")
                .env_remove("HOOKLINE_CONFIG")
                .output()
                .expect("the hookline binary runs");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        let said = prune(&["prune", "--dry-run"]);
        assert!(said.contains("Dry run, nothing was changed"), "{said}");
        for line in [
            "events         would delete 2, would clear 1 payloads",
            "deliveries     would delete 1",
            "attempts       would delete 1, would clear 1 response bodies",
            "webhook_hours  would delete 1",
        ] {
            assert!(said.lines().any(|l| l == line), "no {line:?} in:\n{said}");
        }
        assert_eq!(counts().await, before, "a dry run changed something");

        let said = prune(&["prune"]);
        assert!(said.lines().any(|l| l == "events         deleted 2, cleared 1 payloads"), "{said}");
        assert!(said.lines().any(|l| l == "deliveries     deleted 1"), "{said}");
        assert_eq!(rows(&db, "events", "$1 = $1", "x").await, 2);
        assert_eq!(rows(&db, "deliveries", "$1 = $1", "x").await, 2);
        let said = prune(&["prune", "--dry-run"]);
        assert!(said.lines().any(|l| l == "events         would delete 0, would clear 0 payloads"), "{said}");
    }

    async fn deleting_a_store_erases_all_of_its_data_and_leaves_other_stores_alone(backend: Backend) {
        let app = spawn_with(backend, &[]).await;
        let db = app.services.database();
        let receiver = Receiver::start().await.unwrap();
        let (status, _) = app.api("POST", "/applications", Some(&app.admin_key), Some(json!({"id": "app-1", "name": "App"}))).await;
        assert_eq!(status, 201);
        for store in ["store-a", "store-b"] {
            let (status, _) = app
                .api("POST", "/applications/app-1/installations", Some(&app.admin_key), Some(json!({"store_id": store})))
                .await;
            assert_eq!(status, 201);
            app.create_webhook(store, &receiver.url(&format!("/{store}")), Some(vec!["review-created"])).await;
            let key = if store == "store-a" { &app.store_a_key } else { &app.store_b_key };
            let (status, _) = app.api("POST", "/targets", Some(key), Some(json!({"url": receiver.url("/t")}))).await;
            assert_eq!(status, 201);
            let (status, _) = app.api("POST", "/filters", Some(key), Some(json!({"events": ["review-created"]}))).await;
            assert_eq!(status, 201);
            for i in 0..3 {
                app.publish(store, "review-created", json!({"n": i})).await;
            }
        }
        // Two events no webhook receives, so only the tenant leads to them.
        app.publish("store-a", "message-created", json!({})).await;
        app.publish("store-a", "review-updated", json!({})).await;
        receiver.wait_for(6, Duration::from_secs(10)).await;
        let session = app.sign_in("merchant@a.test", crate::common::PASSWORD).await.unwrap();
        let a_hooks: Vec<String> = hookline_core::entities::webhook::Entity::find()
            .all(db)
            .await
            .unwrap()
            .into_iter()
            .filter(|w| w.tenant_id == "store-a")
            .map(|w| w.id)
            .collect();
        assert!(app.wait_until(Duration::from_secs(10), async || rows(db, "attempts", "webhook_id = $1", &a_hooks[0]).await >= 3).await);

        let (status, _) = app.api("DELETE", "/stores/store-a", Some(&app.store_a_key), None).await;
        assert_eq!(status, 403);
        let started = Instant::now();
        let (status, _) = app.api("DELETE", "/stores/store-a", Some(&app.admin_key), None).await;
        assert_eq!(status, 204);
        assert!(started.elapsed() < Duration::from_secs(2));

        // At once: gone from lists, its key and its users refused, nothing more published.
        let (_, list) = app.api("GET", "/stores", Some(&app.admin_key), None).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
        assert_eq!(list["items"][0]["id"], "store-b");
        let (status, _) = app.api("GET", "/stores/store-a", Some(&app.admin_key), None).await;
        assert_eq!(status, 404);
        let (status, _) = app.api("GET", "/webhooks", Some(&app.store_a_key), None).await;
        assert_eq!(status, 401);
        let (status, _) = app
            .api("POST", "/events", Some(&app.admin_key), Some(json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created", "payload": {}})))
            .await;
        assert_eq!(status, 422);
        assert!(app.services.session_user(&session.replace("hookline_session=", "")).await.unwrap().is_none());
        assert!(app.sign_in("merchant@a.test", crate::common::PASSWORD).await.is_none());
        let (status, _) = app.api("DELETE", "/stores/store-a", Some(&app.admin_key), None).await;
        assert_eq!(status, 404);

        // The background removes the rest, a small step at a time; the row goes last.
        while app.services.purge_deleted_webhooks_step().await.unwrap() > 0 {}
        while app.services.purge_deleted_stores_step().await.unwrap() > 0 {}
        assert_eq!(rows(db, "stores", "id = $1", "store-a").await, 1, "the row waits for other processes");
        db.execute_unprepared("UPDATE stores SET deleted_at = 1 WHERE id = 'store-a'").await.unwrap();
        while app.services.purge_deleted_stores_step().await.unwrap() > 0 {}

        let tenant = "tenant_type = 'store' AND tenant_id = $1";
        let user_ids = "SELECT id FROM users WHERE store_id = $1";
        let per_store = [
            ("stores", "id = $1".to_string()),
            ("webhooks", tenant.to_string()),
            ("targets", tenant.to_string()),
            ("filters", tenant.to_string()),
            ("events", tenant.to_string()),
            ("deliveries", tenant.to_string()),
            ("sequences", tenant.to_string()),
            ("installations", "store_id = $1".to_string()),
            ("users", "store_id = $1".to_string()),
            ("api_keys", "scope = 'store:' || $1".to_string()),
        ];
        for (table, condition) in &per_store {
            assert_eq!(rows(db, table, condition, "store-a").await, 0, "{table} of store-a");
            assert!(rows(db, table, condition, "store-b").await > 0, "{table} of store-b went too");
        }
        assert_eq!(rows(db, "sessions", &format!("user_id IN ({user_ids})"), "store-a").await, 0);
        assert_eq!(rows(db, "sessions", "$1 = $1", "x").await, 0, "the merchant's session ended");
        for hook in &a_hooks {
            for table in ["webhook_secrets", "attempts", "webhook_hours", "webhook_purges"] {
                assert_eq!(rows(db, table, "webhook_id = $1", hook).await, 0, "{table} of {hook}");
            }
        }
        let b_hook = "SELECT id FROM webhooks WHERE tenant_id = $1";
        for table in ["webhook_secrets", "attempts", "webhook_hours"] {
            assert!(rows(db, table, &format!("webhook_id IN ({b_hook})"), "store-b").await > 0, "{table} of store-b");
        }
        assert_eq!(app.counts().await.0, 3, "store-b's events stay");

        // The id is free again.
        let (status, _) = app.api("POST", "/stores", Some(&app.admin_key), Some(json!({"id": "store-a", "name": "Again"}))).await;
        assert_eq!(status, 201);
    }

    async fn an_admin_shortens_a_retention_and_deletes_a_store_from_the_dashboard(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_RETENTION", "30d")]).await;
        app.services.create_admin("ops@example.com", crate::common::PASSWORD).await.unwrap();
        let admin = app.sign_in("ops@example.com", crate::common::PASSWORD).await.unwrap();
        let merchant = app.sign_in("merchant@b.test", crate::common::PASSWORD).await.unwrap();

        // The page offers both, as plain forms.
        let page = app.http.get(app.url("/admin/stores")).header("cookie", &admin).send().await.unwrap();
        let html = page.text().await.unwrap();
        assert!(html.contains("Retention") && html.contains("kept 30d"), "{html}");
        assert!(html.contains(r#"name="retention""#) && html.contains(r#"name="confirm""#) && html.contains("required"));

        let (status, _) = app.server_fn(&merchant, "admin_store_retention", &[("store", "store-a"), ("retention", "7d")]).await;
        assert_eq!(status, 404, "a merchant cannot");
        let (status, body) = app.server_fn(&admin, "admin_store_retention", &[("store", "store-a"), ("retention", "90d")]).await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = app.server_fn(&admin, "admin_store_retention", &[("store", "store-a"), ("retention", "7d")]).await;
        assert_eq!(status, 200, "{body}");
        let (_, store) = app.api("GET", "/stores/store-a", Some(&app.admin_key), None).await;
        assert_eq!(store["retention"], "7d");
        let (status, _) = app.server_fn(&admin, "admin_store_retention", &[("store", "store-a"), ("retention", "")]).await;
        assert_eq!(status, 200);
        let (_, store) = app.api("GET", "/stores/store-a", Some(&app.admin_key), None).await;
        assert_eq!(store["retention"], serde_json::Value::Null);

        // Deleting needs the box ticked.
        let (status, body) = app.server_fn(&admin, "admin_delete_store", &[("store", "store-a")]).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("Tick the box"), "{body}");
        let (status, _) = app.server_fn(&merchant, "admin_delete_store", &[("store", "store-a"), ("confirm", "yes")]).await;
        assert_eq!(status, 404);
        let (_, list) = app.api("GET", "/stores", Some(&app.admin_key), None).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 2);
        let (status, body) = app.server_fn(&admin, "admin_delete_store", &[("store", "store-a"), ("confirm", "yes")]).await;
        assert_eq!(status, 200, "{body}");
        let (_, list) = app.api("GET", "/stores", Some(&app.admin_key), None).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        let html = app.http.get(app.url("/admin/stores")).header("cookie", &admin).send().await.unwrap().text().await.unwrap();
        assert!(!html.contains(r#"data-store-id="store-a""#), "the deleted store is still listed");
    }

    async fn publishing_answers_within_a_second_while_a_large_prune_runs(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_RETENTION", "2d")]).await;
        let db = app.services.database();
        let hook = quiet_webhook(&app, "store-a").await;
        let start = hookline_core::now_ms() - 10 * DAY;
        let (mut events, mut deliveries, mut attempts) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..50_000i64 {
            let ev = event_row("store-a", start + i, None);
            let d = delivery_row(ev.id.as_ref(), "store-a", &hook, start + i, "succeeded");
            attempts.push(attempt_row(d.id.as_ref(), &hook, start + i));
            deliveries.push(d);
            events.push(ev);
        }
        for chunk in events.chunks(500) {
            event::Entity::insert_many(chunk.to_vec()).exec_without_returning(db).await.unwrap();
        }
        for chunk in deliveries.chunks(500) {
            delivery::Entity::insert_many(chunk.to_vec()).exec_without_returning(db).await.unwrap();
        }
        for chunk in attempts.chunks(500) {
            attempt::Entity::insert_many(chunk.to_vec()).exec_without_returning(db).await.unwrap();
        }

        let services = app.services.clone();
        let prune = tokio::spawn(async move { services.prune(false).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (mut slowest, mut during) = (Duration::ZERO, 0);
        for i in 0..20 {
            let running = !prune.is_finished();
            let started = Instant::now();
            app.publish("store-b", "review-created", json!({"n": i})).await;
            slowest = slowest.max(started.elapsed());
            during += usize::from(running && !prune.is_finished());
        }
        assert!(during >= 10, "only {during} publishes overlapped the prune: make it larger");
        assert!(slowest < Duration::from_secs(1), "a publish took {slowest:?} while pruning");
        let done = prune.await.unwrap().unwrap();
        assert_eq!((done.events, done.deliveries, done.attempts), (50_000, 50_000, 50_000));
        assert_eq!(delivery::Entity::find().count(db).await.unwrap(), 0);
    }
}
