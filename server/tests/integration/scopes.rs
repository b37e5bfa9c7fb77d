//! Tenant isolation for every route under every scope: what one store (or an application)
//! makes, another store's key, an application's key and an application installed elsewhere
//! can neither read nor change, by id or by naming the tenant; and nothing is written.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

struct Made {
    webhook: String,
    delivery: String,
    event: String,
    target: String,
    filter: String,
    subscription: String,
    key: String,
}

async fn store_a_resources(app: &TestApp) -> Made {
    let key = Some(app.store_a_key.as_str());
    let (webhook, _) = app.create_webhook("store-a", "http://127.0.0.1:9/a", None).await;
    let event = app.publish("store-a", "review-created", json!({"a": 1})).await;
    // The endpoint refuses connections: wait until the retries are spent, so that nothing
    // changes on its own while the test counts rows.
    let settled = app
        .wait_until(Duration::from_secs(10), async || {
            let (_, log) = app.api("GET", &format!("/webhooks/{webhook}/deliveries"), key, None).await;
            log["items"][0]["status"] == "failed"
        })
        .await;
    assert!(settled, "the delivery did not fail in time");
    let (_, log) = app.api("GET", &format!("/webhooks/{webhook}/deliveries"), key, None).await;
    let (_, target) = app.api("POST", "/targets", key, Some(json!({"url": "https://a.example.com/t"}))).await;
    let (_, filter) = app.api("POST", "/filters", key, Some(json!({"events": ["review-created"]}))).await;
    let (_, sub) = app
        .api(
            "POST",
            "/subscriptions",
            key,
            Some(json!({"target_id": target["id"], "filter_id": filter["id"]})),
        )
        .await;
    let (_, api_key) = app.api("POST", "/api-keys", key, Some(json!({"name": "a's"}))).await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    Made {
        webhook,
        delivery: id(&log["items"][0]),
        event,
        target: id(&target),
        filter: id(&filter),
        subscription: id(&sub),
        key: id(&api_key),
    }
}

/// Counts of every table a request could write to.
async fn snapshot(app: &TestApp) -> Vec<i64> {
    use sea_orm::{ConnectionTrait, Statement};
    let mut out = Vec::new();
    for table in
        ["webhooks", "deliveries", "events", "attempts", "targets", "filters", "api_keys", "webhook_secrets"]
    {
        let row = app
            .services
            .database()
            .query_one_raw(Statement::from_string(
                app.services.database().get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .unwrap()
            .unwrap();
        out.push(row.try_get::<i64>("", "n").unwrap());
    }
    // And nothing of store-a's changed state.
    let (_, hooks) = app
        .api("GET", "/webhooks?tenant_type=store&tenant_id=store-a&limit=250", Some(&app.admin_key), None)
        .await;
    for h in hooks["items"].as_array().unwrap() {
        out.push(h["enabled"].as_bool().unwrap() as i64);
        out.push(h["url"].as_str().unwrap().len() as i64);
    }
    out
}

on_both_databases! {
    async fn no_scope_reaches_another_tenants_records_by_any_route(backend: Backend) {
        let app = spawn(backend).await;
        let m = store_a_resources(&app).await;
        // An application installed on store-b only, and its key.
        let admin = Some(app.admin_key.as_str());
        app.api("POST", "/applications", admin, Some(json!({"id": "app-x", "name": "X"}))).await;
        app.api("POST", "/applications/app-x/installations", admin, Some(json!({"store_id": "store-b"}))).await;
        let (_, app_key) = app.api("POST", "/api-keys", admin, Some(json!({"name": "x", "scope": "application:app-x"}))).await;
        let app_key = app_key["key"].as_str().unwrap().to_string();
        let before = snapshot(&app).await;

        let by_id: Vec<(&str, String, Option<Value>)> = vec![
            ("GET", format!("/webhooks/{}", m.webhook), None),
            ("PATCH", format!("/webhooks/{}", m.webhook), Some(json!({"url": "https://evil.example.com/"}))),
            ("DELETE", format!("/webhooks/{}", m.webhook), None),
            ("POST", format!("/webhooks/{}/toggle", m.webhook), Some(json!({"enabled": false}))),
            ("POST", format!("/webhooks/{}/rotate-secret", m.webhook), None),
            ("POST", format!("/webhooks/{}/test", m.webhook), None),
            ("POST", format!("/webhooks/{}/replay", m.webhook), None),
            ("GET", format!("/webhooks/{}/deliveries", m.webhook), None),
            ("GET", format!("/deliveries/{}", m.delivery), None),
            ("POST", format!("/deliveries/{}/resend", m.delivery), None),
            ("GET", format!("/events/{}", m.event), None),
            ("GET", format!("/targets/{}", m.target), None),
            ("DELETE", format!("/targets/{}", m.target), None),
            ("GET", format!("/filters/{}", m.filter), None),
            ("DELETE", format!("/filters/{}", m.filter), None),
            ("GET", format!("/subscriptions/{}", m.subscription), None),
            ("DELETE", format!("/subscriptions/{}", m.subscription), None),
            ("GET", format!("/api-keys/{}", m.key), None),
            ("DELETE", format!("/api-keys/{}", m.key), None),
            ("POST", format!("/api-keys/{}/revoke", m.key), None),
        ];
        let store_a = json!({"tenant_type": "store", "tenant_id": "store-a"});
        let with_a = |extra: Value| {
            let mut body = store_a.clone();
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            body
        };
        let by_tenant: Vec<(&str, String, Option<Value>)> = vec![
            ("GET", "/webhooks?tenant_type=store&tenant_id=store-a".into(), None),
            ("POST", "/webhooks".into(), Some(with_a(json!({"url": "https://evil.example.com/"})))),
            ("GET", "/targets?tenant_type=store&tenant_id=store-a".into(), None),
            ("POST", "/targets".into(), Some(with_a(json!({"url": "https://evil.example.com/"})))),
            ("GET", "/filters?tenant_type=store&tenant_id=store-a".into(), None),
            ("POST", "/filters".into(), Some(with_a(json!({"events": ["review-created"]})))),
            ("GET", "/subscriptions?tenant_type=store&tenant_id=store-a".into(), None),
            ("POST", "/subscriptions".into(), Some(with_a(json!({"target_id": m.target, "filter_id": m.filter})))),
            ("POST", "/events".into(), Some(with_a(json!({"event_type": "review-created", "payload": {}})))),
        ];
        let admin_only: Vec<(&str, String, Option<Value>)> = vec![
            ("GET", "/stores".into(), None),
            ("POST", "/stores".into(), Some(json!({"id": "evil", "name": "Evil"}))),
            ("POST", "/applications".into(), Some(json!({"id": "evil", "name": "Evil"}))),
            ("POST", "/applications/app-x/installations".into(), Some(json!({"store_id": "store-a"}))),
            ("DELETE", "/applications/app-x/installations/store-b".into(), None),
            ("POST", "/event-types".into(), Some(json!({"name": "evil.v1", "product_group": "X", "tenant_type": "store"}))),
            ("POST", "/api-keys".into(), Some(json!({"name": "evil", "scope": "admin"}))),
        ];
        for (who, key) in [("store-b", app.store_b_key.clone()), ("app-x", app_key.clone())] {
            for (method, path, body) in &by_id {
                let (status, answer) = app.api(method, path, Some(&key), body.clone()).await;
                assert_eq!(status, 404, "{who}: {method} {path}: {answer}");
                assert!(answer["error"]["code"].is_string(), "{who}: {method} {path}: {answer}");
            }
            for (method, path, body) in &by_tenant {
                let (status, answer) = app.api(method, path, Some(&key), body.clone()).await;
                assert_eq!(status, 403, "{who}: {method} {path}: {answer}");
            }
            for (method, path, body) in &admin_only {
                let (status, answer) = app.api(method, path, Some(&key), body.clone()).await;
                assert!(status == 403 || status == 404, "{who}: {method} {path}: {status} {answer}");
            }
            // Lists of their own never show store-a's records.
            for path in ["/webhooks", "/targets", "/filters", "/subscriptions", "/api-keys"] {
                let (status, list) = app.api("GET", path, Some(&key), None).await;
                assert_eq!(status, 200, "{who}: {path}");
                let text = list.to_string();
                for id in [&m.webhook, &m.target, &m.filter, &m.subscription, &m.key] {
                    assert!(!text.contains(id.as_str()), "{who}: {path} shows {id}");
                }
            }
        }
        // Without a key, or with a wrong one, every route is 401.
        for (method, path, body) in by_id.iter().chain(&by_tenant).chain(&admin_only) {
            for key in [None, Some("hkl_not-a-key")] {
                let (status, _) = app.api(method, path, key, body.clone()).await;
                assert_eq!(status, 401, "{method} {path} with {key:?}");
            }
        }
        assert_eq!(snapshot(&app).await, before, "a refused request wrote something");

        // The owner and the admin do reach them.
        for key in [app.store_a_key.clone(), app.admin_key.clone()] {
            for (method, path, _) in by_id.iter().filter(|(m, _, _)| *m == "GET") {
                let (status, answer) = app.api(method, path, Some(&key), None).await;
                assert_eq!(status, 200, "{method} {path}: {answer}");
            }
        }
    }
}
