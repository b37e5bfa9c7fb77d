//! Applications (app-level and store-level subscriptions, disconnecting), API keys, the event
//! catalog and the JSON error shape of query strings.

use std::time::Duration;

use serde_json::{Value, json};
use test_receiver::Receiver;

use crate::common::*;

/// Creates application `app-1`, installs it on store-a, and returns an application key.
async fn installed_app(app: &TestApp) -> String {
    let admin = Some(app.admin_key.as_str());
    let (status, made) =
        app.api("POST", "/applications", admin, Some(json!({"id": "app-1", "name": "App One"}))).await;
    assert_eq!(status, 201, "{made}");
    let (status, inst) = app
        .api(
            "POST",
            "/applications/app-1/installations",
            admin,
            Some(json!({"store_id": "store-a", "product_lines": ["Reviews", "SMS"]})),
        )
        .await;
    assert_eq!(status, 201, "{inst}");
    assert_eq!(inst["product_lines"], json!(["Reviews", "SMS"]));
    let (status, key) = app
        .api("POST", "/api-keys", admin, Some(json!({"name": "app one", "scope": "application:app-1"})))
        .await;
    assert_eq!(status, 201, "{key}");
    key["key"].as_str().unwrap().to_string()
}

async fn subscribe(app: &TestApp, key: &str, tenant: Value, url: &str, events: &[&str]) -> (u16, Value) {
    let mut body = tenant.clone();
    body["url"] = json!(url);
    let (status, target) = app.api("POST", "/targets", Some(key), Some(body)).await;
    if status != 201 {
        return (status, target);
    }
    let mut body = tenant.clone();
    body["events"] = json!(events);
    let (status, filter) = app.api("POST", "/filters", Some(key), Some(body)).await;
    if status != 201 {
        return (status, filter);
    }
    let mut body = tenant;
    body["target_id"] = target["id"].clone();
    body["filter_id"] = filter["id"].clone();
    app.api("POST", "/subscriptions", Some(key), Some(body)).await
}

on_both_databases! {
    async fn an_application_subscribes_app_level_and_store_level_only_where_installed(backend: Backend) {
        let app = spawn(backend).await;
        let key = installed_app(&app).await;
        let receiver = Receiver::start().await.unwrap();
        let store_a = json!({"tenant_type": "store", "tenant_id": "store-a"});
        let store_b = json!({"tenant_type": "store", "tenant_id": "store-b"});

        // Store-level where installed: 201, delivered like any webhook.
        let (status, sub) = subscribe(&app, &key, store_a.clone(), &receiver.url("/a"), &["review-created"]).await;
        assert_eq!(status, 201, "{sub}");
        assert_eq!(sub["tenant_id"], "store-a");
        // Store-level where not installed: 403 at every step, nothing written.
        let before = app.counts().await;
        let (status, err) = subscribe(&app, &key, store_b.clone(), &receiver.url("/b"), &["review-created"]).await;
        assert_eq!(status, 403, "{err}");
        assert!(err["error"]["message"].as_str().unwrap().contains("not installed"), "{err}");
        let (status, _) = app.api("GET", "/webhooks?tenant_type=store&tenant_id=store-b", Some(&key), None).await;
        assert_eq!(status, 403);
        assert_eq!(app.counts().await, before);

        // App-level: the key's own tenant by default.
        let (status, own) = subscribe(&app, &key, json!({}), &receiver.url("/app"), &["integrations.applications.disconnected.v3"]).await;
        assert_eq!(status, 201, "{own}");
        assert_eq!(own["tenant_type"], "application");
        assert_eq!(own["tenant_id"], "app-1");
        // A store key cannot subscribe to application events.
        let (status, _) = subscribe(&app, &app.store_a_key, json!({}), "https://s.example.com/", &["integrations.applications.disconnected.v3"]).await;
        assert_eq!(status, 422);

        // The merchant's own webhooks stay out of the application's sight, and the other way the
        // merchant sees everything on its store.
        let (merchant_hook, _) = app.create_webhook("store-a", "https://merchant.example.com/h", None).await;
        let (status, _) = app.api("GET", &format!("/webhooks/{merchant_hook}"), Some(&key), None).await;
        assert_eq!(status, 404);
        let (_, listed) = app.api("GET", "/subscriptions?tenant_type=store&tenant_id=store-a", Some(&key), None).await;
        let ids: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec![sub["id"].as_str().unwrap()], "{listed}");
        let (status, seen) = app.api("GET", &format!("/webhooks/{}", sub["id"].as_str().unwrap()), Some(&app.store_a_key), None).await;
        assert_eq!(status, 200);
        assert_eq!(seen["application_id"], "app-1");

        receiver.set_secret(sub["secret"].as_str().unwrap());
        app.publish("store-a", "review-created", json!({"review": 1})).await;
        let got = receiver.wait_for(1, Duration::from_secs(10)).await;
        assert_eq!(got[0].path, "/a");
    }

    async fn disconnecting_tells_the_application_and_ends_its_store_access(backend: Backend) {
        let app = spawn(backend).await;
        let key = installed_app(&app).await;
        let receiver = Receiver::start().await.unwrap();
        let store_a = json!({"tenant_type": "store", "tenant_id": "store-a"});
        let (_, store_sub) = subscribe(&app, &key, store_a.clone(), &receiver.url("/store"), &["review-created"]).await;
        let (_, app_sub) = subscribe(&app, &key, json!({}), &receiver.url("/app"), &["integrations.applications.disconnected.v3"]).await;
        receiver.set_secret(app_sub["secret"].as_str().unwrap());

        // Only an admin disconnects.
        let (status, _) = app.api("DELETE", "/applications/app-1/installations/store-a", Some(&key), None).await;
        assert_eq!(status, 403);
        let (status, done) = app.api("DELETE", "/applications/app-1/installations/store-a", Some(&app.admin_key), None).await;
        assert_eq!(status, 200, "{done}");
        let (status, _) = app.api("DELETE", "/applications/app-1/installations/store-a", Some(&app.admin_key), None).await;
        assert_eq!(status, 404);

        let got = receiver.wait_for(1, Duration::from_secs(10)).await;
        assert_eq!(got[0].path, "/app");
        assert!(got[0].verified);
        let body: Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(
            body,
            json!({"topic": "integrations.applications.disconnected.v3", "name": "Application disconnected", "store": "store-a", "product_lines": "[Reviews, SMS]"})
        );
        assert_eq!(got[0].header("x-webhooks-tenant-type"), Some("application"));
        assert_eq!(got[0].header("x-webhooks-tenant-id"), Some("app-1"));

        // The store-level subscription is off, and the store is out of the application's reach.
        let (_, hook) = app.api("GET", &format!("/webhooks/{}", store_sub["id"].as_str().unwrap()), Some(&app.admin_key), None).await;
        assert_eq!(hook["enabled"], false);
        assert_eq!(hook["disabled_reason"], "disconnected");
        let (status, _) = app.api("GET", &format!("/webhooks/{}", store_sub["id"].as_str().unwrap()), Some(&key), None).await;
        assert_eq!(status, 404);
        let (status, _) = subscribe(&app, &key, store_a, &receiver.url("/again"), &["review-created"]).await;
        assert_eq!(status, 403);
        let (_, installs) = app.api("GET", "/applications/app-1/installations", Some(&key), None).await;
        assert_eq!(installs["items"], json!([]));
    }

    async fn api_keys_are_listed_revoked_and_scoped(backend: Backend) {
        let app = spawn(backend).await;
        let a = app.store_a_key.clone();
        let (status, made) = app.api("POST", "/api-keys", Some(&a), Some(json!({"name": "ci"}))).await;
        assert_eq!(status, 201, "{made}");
        assert_eq!(made["scope"], "store:store-a");
        let new_key = made["key"].as_str().unwrap().to_string();
        assert!(new_key.starts_with(made["prefix"].as_str().unwrap()));
        // A store key makes keys for its own store only.
        let (status, _) = app.api("POST", "/api-keys", Some(&a), Some(json!({"name": "x", "scope": "admin"}))).await;
        assert_eq!(status, 403);
        let (status, _) = app.api("POST", "/api-keys", Some(&a), Some(json!({"name": "x", "scope": "store:store-b"}))).await;
        assert_eq!(status, 403);
        for (body, field) in [(json!({"name": ""}), "name"), (json!({"name": "x", "scope": "root"}), "scope")] {
            let (status, err) = app.api("POST", "/api-keys", Some(&app.admin_key), Some(body)).await;
            assert_eq!(status, 400, "{err}");
            assert_eq!(err["error"]["field"], field);
        }
        let (status, _) = app.api("POST", "/api-keys", Some(&app.admin_key), Some(json!({"name": "x", "scope": "store:nowhere"}))).await;
        assert_eq!(status, 422);

        // Listing: the key itself never again; last use recorded.
        let (status, _) = app.api("GET", "/webhooks", Some(&new_key), None).await;
        assert_eq!(status, 200);
        let (_, list) = app.api("GET", "/api-keys", Some(&a), None).await;
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{list}");
        assert!(items.iter().all(|k| k["scope"] == "store:store-a" && k.get("key").is_none()));
        let listed = items.iter().find(|k| k["id"] == made["id"]).unwrap();
        assert!(listed["last_used_at"].is_string(), "{listed}");
        let (_, everything) = app.api("GET", "/api-keys?limit=2", Some(&app.admin_key), None).await;
        assert_eq!(everything["items"].as_array().unwrap().len(), 2);
        assert!(everything["next_cursor"].is_string());

        // Another store's key is not found; revoking works at once.
        let id = made["id"].as_str().unwrap();
        let (status, _) = app.api("DELETE", &format!("/api-keys/{id}"), Some(&app.store_b_key), None).await;
        assert_eq!(status, 404);
        let (status, revoked) = app.api("DELETE", &format!("/api-keys/{id}"), Some(&a), None).await;
        assert_eq!(status, 200);
        assert!(revoked["revoked_at"].is_string());
        let (status, err) = app.api("GET", "/webhooks", Some(&new_key), None).await;
        assert_eq!(status, 401, "{err}");
    }

    async fn admins_add_event_types_and_the_catalog_pages(backend: Backend) {
        let app = spawn(backend).await;
        let body = json!({"name": "loyalty.points.earned.v1", "description": "Points earned", "product_group": "Loyalty", "tenant_type": "store", "example_payload": {"points": 10}});
        let (status, _) = app.api("POST", "/event-types", Some(&app.store_a_key), Some(body.clone())).await;
        assert_eq!(status, 403);
        let (status, made) = app.api("POST", "/event-types", Some(&app.admin_key), Some(body.clone())).await;
        assert_eq!(status, 201, "{made}");
        assert_eq!(made["example_payload"], json!({"points": 10}));
        let (status, _) = app.api("POST", "/event-types", Some(&app.admin_key), Some(body)).await;
        assert_eq!(status, 409);
        let (status, err) = app
            .api("POST", "/event-types", Some(&app.admin_key), Some(json!({"name": "bad name", "product_group": "X", "tenant_type": "store"})))
            .await;
        assert_eq!((status, err["error"]["field"].as_str()), (400, Some("name")));

        // The new type is usable at once, and the catalog pages by cursor.
        let (status, _) = app
            .api("POST", "/webhooks", Some(&app.store_a_key), Some(json!({"url": "https://l.example.com/", "event_types": ["loyalty.points.earned.v1"]})))
            .await;
        assert_eq!(status, 201);
        app.publish("store-a", "loyalty.points.earned.v1", json!({"points": 3})).await;
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/event-types?limit=7&cursor={}", enc(c)),
                None => "/event-types?limit=7".to_string(),
            };
            let (status, page) = app.api("GET", &path, Some(&app.store_a_key), None).await;
            assert_eq!(status, 200, "{page}");
            names.extend(page["items"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        // The seeds, webhook.failing and webhook.recovered (alerts), and the one added here.
        assert_eq!(names.len(), 23, "{names:?}");
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        let (status, err) = app.api("GET", "/event-types?limit=many", Some(&app.store_a_key), None).await;
        assert_eq!(status, 400, "{err}");
        assert!(err["error"]["message"].is_string());
    }
}

on_both_databases! {
    async fn what_a_webhook_skipped_while_off_is_replayed_on_request(backend: Backend) {
        let app = spawn(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let key = Some(app.store_a_key.as_str());
        let (id, secret) = app.create_webhook("store-a", &receiver.url("/r"), None).await;
        receiver.set_secret(&secret);
        let (status, _) = app.api("POST", &format!("/webhooks/{id}/toggle"), key, Some(json!({"enabled": false}))).await;
        assert_eq!(status, 200);
        app.publish("store-a", "review-created", json!({"n": 1})).await;
        app.publish("store-a", "review-created", json!({"n": 2})).await;
        let (status, err) = app.api("POST", &format!("/webhooks/{id}/replay"), key, None).await;
        assert_eq!(status, 409, "{err}");
        let (status, _) = app.api("POST", &format!("/webhooks/{id}/replay"), Some(&app.store_b_key), None).await;
        assert_eq!(status, 404);
        app.api("POST", &format!("/webhooks/{id}/toggle"), key, Some(json!({"enabled": true}))).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(receiver.received().len(), 0, "nothing is replayed unasked");
        let (status, done) = app.api("POST", &format!("/webhooks/{id}/replay"), key, None).await;
        assert_eq!((status, done["replayed"].as_u64()), (200, Some(2)), "{done}");
        let got = receiver.wait_for(2, Duration::from_secs(10)).await;
        assert!(got.iter().all(|d| d.verified));
        let (_, again) = app.api("POST", &format!("/webhooks/{id}/replay"), key, None).await;
        assert_eq!(again["replayed"], 0);
    }
}
