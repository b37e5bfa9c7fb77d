//! `GET /api/v1/events/{id}` sees what the services let the key see: the tenant's own keys see
//! the event with every delivery; an application installed on the store sees it through the
//! webhooks it made there, and only their deliveries; anyone else gets 404.

use serde_json::json;
use test_receiver::Receiver;

use crate::common::*;

on_both_databases! {
    async fn an_event_is_seen_through_the_webhooks_a_key_may_see(backend: Backend) {
        let app = spawn(backend).await;
        let admin = Some(app.admin_key.as_str());
        let receiver = Receiver::start().await.unwrap();
        app.api("POST", "/applications", admin, Some(json!({"id": "app-1", "name": "App One"}))).await;
        app.api("POST", "/applications", admin, Some(json!({"id": "app-2", "name": "App Two"}))).await;
        app.api("POST", "/applications/app-1/installations", admin, Some(json!({"store_id": "store-a"}))).await;
        app.api("POST", "/applications/app-2/installations", admin, Some(json!({"store_id": "store-a"}))).await;
        let key_of = async |scope: &str| {
            let (_, made) = app.api("POST", "/api-keys", admin, Some(json!({"name": "k", "scope": scope}))).await;
            made["key"].as_str().expect("a key").to_string()
        };
        let app_1 = key_of("application:app-1").await;
        let app_2 = key_of("application:app-2").await;
        let app_3 = {
            app.api("POST", "/applications", admin, Some(json!({"id": "app-3", "name": "App Three"}))).await;
            key_of("application:app-3").await
        };

        // The merchant's webhook and one that app-1 made on the store.
        let (merchant_hook, _) = app.create_webhook("store-a", &receiver.url("/merchant"), None).await;
        let (status, app_hook) = app
            .api("POST", "/webhooks", Some(&app_1), Some(json!({"tenant_type": "store", "tenant_id": "store-a", "url": receiver.url("/app")})))
            .await;
        assert_eq!(status, 201, "{app_hook}");
        // Publishing writes a delivery per matching webhook at once.
        let event = app.publish("store-a", "review-created", json!({"review": 1})).await;

        let seen_by = async |key: &str| app.api("GET", &format!("/events/{event}"), Some(key), None).await;
        let (status, own) = seen_by(&app.store_a_key).await;
        assert_eq!(status, 200, "{own}");
        let mut hooks: Vec<&str> = own["deliveries"].as_array().unwrap().iter().map(|d| d["webhook_id"].as_str().unwrap()).collect();
        hooks.sort();
        let mut expected = vec![merchant_hook.as_str(), app_hook["id"].as_str().unwrap()];
        expected.sort();
        assert_eq!(hooks, expected, "the store's key sees every delivery");
        let (status, _) = seen_by(&app.admin_key).await;
        assert_eq!(status, 200);

        let (status, through_app) = seen_by(&app_1).await;
        assert_eq!(status, 200, "{through_app}");
        assert_eq!(through_app["payload"], json!({"review": 1}));
        let hooks: Vec<&str> = through_app["deliveries"].as_array().unwrap().iter().map(|d| d["webhook_id"].as_str().unwrap()).collect();
        assert_eq!(hooks, vec![app_hook["id"].as_str().unwrap()], "only the application's own webhook");

        // Installed but without a webhook that got it, not installed, another store: not found.
        for key in [&app_2, &app_3, &app.store_b_key] {
            let (status, answer) = seen_by(key).await;
            assert_eq!(status, 404, "{answer}");
        }
    }
}
