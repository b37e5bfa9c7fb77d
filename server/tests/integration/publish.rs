//! `POST /api/v1/events`: what it accepts, and the clear errors for what it does not, with
//! nothing written on any of them.

use serde_json::json;

use crate::common::*;

on_both_databases! {
    async fn malformed_or_incomplete_bodies_are_400_and_write_nothing(backend: Backend) {
        let app = spawn(backend).await;
        app.create_webhook("store-a", "http://127.0.0.1:9/hook", None).await;
        let key = app.admin_key.clone();
        for body in [
            "{not json",
            "",
            "[]",
            r#"{"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created"}"#,
            r#"{"tenant_type": "store", "tenant_id": "store-a", "payload": {}}"#,
            r#"{"tenant_type": "galaxy", "tenant_id": "store-a", "event_type": "review-created", "payload": {}}"#,
            r#"{"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created", "payload": {"a": }}"#,
            r#"{"event_type": "review-created", "payload": {}}"#,
        ] {
            let (status, err) = app.publish_raw(Some(&key), body).await;
            assert_eq!(status, 400, "{body} -> {err}");
            assert_eq!(err["error"]["code"], "invalid_request", "{err}");
            assert!(err["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        assert_eq!(app.counts().await, (0, 0, 0, 1));
    }

    async fn payload_over_the_limit_is_413_and_writes_nothing(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_MAX_PAYLOAD", "1KiB")]).await;
        app.create_webhook("store-a", "http://127.0.0.1:9/hook", None).await;
        let big = "x".repeat(1100);
        let body = json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created", "payload": {"text": big}});
        let (status, err) = app.publish_raw(Some(&app.admin_key), &body.to_string()).await;
        assert_eq!(status, 413, "{err}");
        assert_eq!(err["error"]["code"], "payload_too_large");
        // Far past the limit, the body is refused before it is read.
        let huge = json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created", "payload": {"text": "y".repeat(200_000)}});
        let (status, err) = app.publish_raw(Some(&app.admin_key), &huge.to_string()).await;
        assert_eq!(status, 413, "{err}");
        assert_eq!(app.counts().await, (0, 0, 0, 1));
        // Just under the limit is fine.
        let ok = json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created", "payload": {"text": "z".repeat(900)}});
        let (status, _) = app.publish_raw(Some(&app.admin_key), &ok.to_string()).await;
        assert_eq!(status, 202);
    }

    async fn unknown_event_type_or_tenant_is_422_and_writes_nothing(backend: Backend) {
        let app = spawn(backend).await;
        app.create_webhook("store-a", "http://127.0.0.1:9/hook", None).await;
        let cases = [
            (json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-exploded", "payload": {}}), "event_type"),
            (json!({"tenant_type": "store", "tenant_id": "no-such-store", "event_type": "review-created", "payload": {}}), "tenant_id"),
            (json!({"tenant_type": "application", "tenant_id": "no-such-app", "event_type": "integrations.applications.disconnected.v3", "payload": {}}), "tenant_id"),
            // An application event cannot be published for a store.
            (json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "integrations.applications.disconnected.v3", "payload": {}}), "event_type"),
        ];
        for (body, field) in cases {
            let (status, err) = app.publish_raw(Some(&app.admin_key), &body.to_string()).await;
            assert_eq!(status, 422, "{body} -> {err}");
            assert_eq!(err["error"]["field"], field, "{err}");
        }
        assert_eq!(app.counts().await, (0, 0, 0, 1));
    }

    async fn missing_or_wrong_key_is_401_and_writes_nothing(backend: Backend) {
        let app = spawn(backend).await;
        let body = json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created", "payload": {}}).to_string();
        for key in [None, Some("hkl_not-a-real-key"), Some("")] {
            let (status, err) = app.publish_raw(key, &body).await;
            assert_eq!(status, 401, "{key:?} -> {err}");
            assert_eq!(err["error"]["code"], "unauthorized");
        }
        let res = app.http.post(app.url("/api/v1/events")).header("authorization", "Basic abc").body(body.clone()).send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(app.counts().await, (0, 0, 0, 0));
    }

    async fn a_store_key_publishes_only_for_its_store(backend: Backend) {
        let app = spawn(backend).await;
        // The tenant may be left out: it is the key's own.
        let (status, body) = app.publish_raw(Some(&app.store_a_key), r#"{"event_type": "review-created", "payload": {"id": 1}}"#).await;
        assert_eq!(status, 202, "{body}");
        let (status, err) = app
            .publish_raw(Some(&app.store_a_key), r#"{"tenant_type": "store", "tenant_id": "store-b", "event_type": "review-created", "payload": {}}"#)
            .await;
        assert_eq!(status, 403, "{err}");
        assert_eq!(app.counts().await.0, 1);
    }

    async fn an_accepted_event_is_stored_byte_for_byte_with_a_sequence(backend: Backend) {
        let app = spawn(backend).await;
        let raw = r#"{"tenant_type":"store","tenant_id":"store-a","event_type":"review-created","payload":{"b": 1,  "a":[1,2, 3],"text":"caf\u00e9 <b>"}}"#;
        let (status, body) = app.publish_raw(Some(&app.admin_key), raw).await;
        assert_eq!(status, 202, "{body}");
        let id = body["id"].as_str().unwrap();
        let stored = <hookline_core::entities::event::Entity as sea_orm::EntityTrait>::find_by_id(id)
            .one(app.services.database()).await.unwrap().unwrap();
        assert_eq!(stored.payload, r#"{"b": 1,  "a":[1,2, 3],"text":"caf\u00e9 <b>"}"#);
        let (status, second) = app.publish_raw(Some(&app.admin_key), raw).await;
        assert_eq!(status, 202);
        let (_, first_view) = app.api("GET", &format!("/events/{id}"), Some(&app.admin_key), None).await;
        let (_, second_view) = app.api("GET", &format!("/events/{}", second["id"].as_str().unwrap()), Some(&app.admin_key), None).await;
        assert_eq!(first_view["sequence"], 1);
        assert_eq!(second_view["sequence"], 2);
        // Another store's key cannot read it.
        let (status, _) = app.api("GET", &format!("/events/{id}"), Some(&app.store_b_key), None).await;
        assert_eq!(status, 404);
    }

    async fn a_repeated_idempotency_key_returns_the_first_event(backend: Backend) {
        let app = spawn(backend).await;
        app.create_webhook("store-a", "http://127.0.0.1:9/hook", None).await;
        let send = || async {
            let res = app.http.post(app.url("/api/v1/events"))
                .bearer_auth(&app.store_a_key)
                .header("idempotency-key", "order-1001-created")
                .body(r#"{"event_type": "review-created", "payload": {"id": 7}}"#)
                .send().await.unwrap();
            assert_eq!(res.status(), 202);
            serde_json::from_str::<serde_json::Value>(&res.text().await.unwrap()).unwrap()["id"].as_str().unwrap().to_string()
        };
        let first = send().await;
        let again = send().await;
        assert_eq!(first, again);
        let (events, deliveries, _, _) = app.counts().await;
        assert_eq!((events, deliveries), (1, 1));
    }

    async fn concurrent_publishes_share_transactions_but_not_keys_or_numbers(backend: Backend) {
        let app = spawn(backend).await;
        app.create_webhook("store-a", "http://127.0.0.1:9/hook", None).await;
        let send = |key: Option<String>, i: usize| {
            let (http, url, api_key) = (app.http.clone(), app.url("/api/v1/events"), app.store_a_key.clone());
            async move {
                let mut req = http.post(url).bearer_auth(api_key);
                // One key, one request: the keyed ones send the same payload (another payload
                // under the same key is refused).
                let payload = if key.is_some() { -1 } else { i as i64 };
                if let Some(key) = key {
                    req = req.header("idempotency-key", key);
                }
                let res = req.body(format!(r#"{{"event_type": "review-created", "payload": {{"i": {payload}}}}}"#)).send().await.unwrap();
                assert_eq!(res.status(), 202);
                serde_json::from_str::<serde_json::Value>(&res.text().await.unwrap()).unwrap()["id"].as_str().unwrap().to_string()
            }
        };
        // 120 at once: 60 with one key, 60 without. They land in shared batches, and on
        // PostgreSQL in two writers' batches that race for the key.
        let calls: Vec<_> = (0..120).map(|i| tokio::spawn(send((i % 2 == 0).then(|| "same-key".to_string()), i))).collect();
        let mut ids = Vec::new();
        for call in calls {
            ids.push(call.await.unwrap());
        }
        let keyed: std::collections::HashSet<&String> = ids.iter().step_by(2).collect();
        let plain: std::collections::HashSet<&String> = ids.iter().skip(1).step_by(2).collect();
        assert_eq!(keyed.len(), 1, "{ids:?}");
        assert_eq!(plain.len(), 60);
        let (events, deliveries, _, _) = app.counts().await;
        assert_eq!((events, deliveries), (61, 61));
        // Every stored event has its own sequence number.
        use sea_orm::EntityTrait;
        let stored = hookline_core::entities::event::Entity::find().all(app.services.database()).await.unwrap();
        let mut numbers: Vec<i64> = stored.iter().map(|e| e.sequence).collect();
        numbers.sort();
        numbers.dedup();
        assert_eq!(numbers.len(), 61, "{numbers:?}");
    }

    async fn an_event_fanned_out_past_one_statement_is_written_whole(backend: Backend) {
        // 5,600 webhooks, all off: one event's deliveries need more parameters (67,208) than one
        // PostgreSQL statement takes, so they are written in several, in one transaction.
        use sea_orm::{ActiveValue::Set, EntityTrait};
        use hookline_core::entities::{delivery, webhook};
        let app = spawn(backend).await;
        let rows: Vec<webhook::ActiveModel> = (0..5_600)
            .map(|i| webhook::ActiveModel {
                id: Set(format!("wh-{i:05}")),
                tenant_type: Set(hookline_core::TenantType::Store),
                tenant_id: Set("store-a".into()),
                url: Set(format!("https://example.com/{i}")),
                description: Set(String::new()),
                event_types: Set(None),
                enabled: Set(false),
                disabled_reason: Set(Some(hookline_core::DisabledReason::Manual)),
                disabled_at: Set(Some(1)),
                consecutive_failures: Set(0),
                failing_since: Set(None),
                last_success_at: Set(None),
                target_id: Set(None),
                filter_id: Set(None),
                application_id: Set(None),
                created_at: Set(1),
                updated_at: Set(1),
                ..Default::default()
            })
            .collect();
        for chunk in rows.chunks(500) {
            webhook::Entity::insert_many(chunk.to_vec()).exec_without_returning(app.services.database()).await.unwrap();
        }
        let event = app.publish("store-a", "review-created", json!({"id": 1})).await;
        let stored = delivery::Entity::find().all(app.services.database()).await.unwrap();
        assert_eq!(stored.len(), 5_600);
        assert!(stored.iter().all(|d| d.event_id == event && d.status == "skipped"));
    }
}
