//! One event, published over REST, delivered to a real receiver on loopback that verifies the
//! signature with the `standardwebhooks` crate.

use std::time::Duration;

use hookline_core::entities::{attempt, delivery};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use test_receiver::{Behaviour, Receiver};

use crate::common::*;

async fn deliveries_of(app: &TestApp, event_id: &str) -> Vec<delivery::Model> {
    delivery::Entity::find()
        .filter(delivery::Column::EventId.eq(event_id))
        .all(&app.services.db)
        .await
        .unwrap()
}

on_both_databases! {
    async fn a_published_event_arrives_signed_with_every_header(backend: Backend) {
        let app = spawn(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (webhook_id, secret) = app.create_webhook("store-a", &receiver.url("/hooks"), None).await;
        receiver.set_secret(&secret);

        let payload = json!({"type": "review-created", "data": {"id": "rev_1", "rating": 5, "body": "Grand <3"}});
        let event_id = app.publish("store-a", "review-created", payload.clone()).await;
        let got = receiver.wait_for(1, Duration::from_secs(10)).await;
        assert_eq!(got.len(), 1, "one delivery");
        let d = &got[0];
        assert!(d.verified, "standardwebhooks rejected the signature: {:?}", d.verify_error);
        assert_eq!(d.path, "/hooks");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&d.body).unwrap(), payload);
        assert_eq!(d.header("content-type"), Some("application/json"));
        assert_eq!(d.header("webhook-id"), Some(event_id.as_str()));
        assert_eq!(d.header("webhookmessageid"), Some(event_id.as_str()));
        assert_eq!(d.header("x-webhooks-event-type"), Some("review-created"));
        assert_eq!(d.header("x-webhooks-tenant-type"), Some("store"));
        assert_eq!(d.header("x-webhooks-tenant-id"), Some("store-a"));
        assert_eq!(d.header("x-webhooks-sequence"), Some("1"));
        let ts: i64 = d.header("webhook-timestamp").unwrap().parse().unwrap();
        assert!((hookline_core::now_ms() / 1000 - ts).abs() < 60);

        let stored = deliveries_of(&app, &event_id).await;
        assert_eq!(stored.len(), 1);
        assert_eq!(d.header("webhookmessageidpertarget"), Some(stored[0].id.as_str()));
        assert!(app.wait_until(Duration::from_secs(5), async || {
            deliveries_of(&app, &event_id).await[0].status == "succeeded"
        }).await);
        let attempts = attempt::Entity::find().all(&app.services.db).await.unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].response_status, Some(200));
        assert_eq!(attempts[0].trigger, "scheduled");
        assert_eq!(attempts[0].webhook_id, webhook_id);

        // The delivery log shows it too.
        let (_, log) = app.api("GET", &format!("/webhooks/{webhook_id}/deliveries"), Some(&app.store_a_key), None).await;
        assert_eq!(log["items"][0]["status"], "succeeded");
        assert_eq!(log["items"][0]["last_status_code"], 200);
    }

    async fn a_switched_off_webhook_gets_no_delivery(backend: Backend) {
        let app = spawn(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (id, secret) = app.create_webhook("store-a", &receiver.url("/off"), None).await;
        receiver.set_secret(&secret);
        let (status, _) = app.api("POST", &format!("/webhooks/{id}/toggle"), Some(&app.store_a_key), Some(json!({"enabled": false}))).await;
        assert_eq!(status, 200);
        let event_id = app.publish("store-a", "message-created", json!({"id": 1})).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(receiver.received().is_empty(), "a switched-off webhook got a delivery");
        assert_eq!(deliveries_of(&app, &event_id).await[0].status, "skipped");

        app.api("POST", &format!("/webhooks/{id}/toggle"), Some(&app.store_a_key), Some(json!({"enabled": true}))).await;
        app.publish("store-a", "message-created", json!({"id": 2})).await;
        let got = receiver.wait_for(1, Duration::from_secs(10)).await;
        assert_eq!(got.len(), 1);
        assert!(got[0].body.contains("\"id\":2"));
    }

    async fn a_failing_endpoint_is_retried_with_the_same_webhook_id(backend: Backend) {
        let app = spawn(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (_, secret) = app.create_webhook("store-a", &receiver.url("/flaky"), None).await;
        receiver.configure(Behaviour { secret: Some(secret.clone()), status: Some(500), delay_ms: None });
        let event_id = app.publish("store-a", "review-updated", json!({"id": 3})).await;
        receiver.wait_for(2, Duration::from_secs(10)).await;
        receiver.configure(Behaviour { secret: Some(secret), status: Some(204), delay_ms: None });
        assert!(app.wait_until(Duration::from_secs(10), async || {
            deliveries_of(&app, &event_id).await[0].status == "succeeded"
        }).await);
        let got = receiver.received();
        assert!(got.len() >= 3, "{} requests", got.len());
        assert!(got.iter().all(|r| r.header("webhook-id") == Some(event_id.as_str()) && r.verified));
        let d = &deliveries_of(&app, &event_id).await[0];
        assert_eq!(d.attempts as usize, got.len());
        assert_eq!(d.last_status_code, Some(204));
        let (_, hook) = app.api("GET", &format!("/webhooks/{}", d.webhook_id), Some(&app.admin_key), None).await;
        assert_eq!(hook["health"]["consecutive_failures"], 0, "a 2xx resets the failure streak");
    }

    async fn redirects_are_failures_and_never_followed(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_RETRY_SCHEDULE", "10ms")]).await;
        let receiver = Receiver::start().await.unwrap();
        let (_, secret) = app.create_webhook("store-a", &receiver.url("/moved"), None).await;
        receiver.configure(Behaviour { secret: Some(secret), status: Some(302), delay_ms: None });
        let event_id = app.publish("store-a", "review-deleted", json!({})).await;
        assert!(app.wait_until(Duration::from_secs(10), async || {
            deliveries_of(&app, &event_id).await[0].status == "failed"
        }).await);
        assert_eq!(receiver.received().len(), 2, "one attempt and one retry, nothing followed");
    }

    async fn only_subscribed_event_types_are_delivered(backend: Backend) {
        let app = spawn(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (_, secret) = app.create_webhook("store-a", &receiver.url("/reviews"), Some(vec!["review-created"])).await;
        receiver.set_secret(&secret);
        app.publish("store-a", "message-created", json!({"n": 1})).await;
        app.publish("store-b", "review-created", json!({"n": 2})).await;
        app.publish("store-a", "review-created", json!({"n": 3})).await;
        let got = receiver.wait_for(1, Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got_now = receiver.received();
        assert_eq!(got_now.len(), 1, "{got_now:?}");
        assert!(got[0].body.contains("\"n\":3"));
    }

    async fn sequence_numbers_increase_per_tenant_and_resource(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_HEADER_PREFIX", "X-Yotpo-Webhooks-")]).await;
        let receiver = Receiver::start().await.unwrap();
        let (_, secret) = app.create_webhook("store-a", &receiver.url("/seq"), None).await;
        receiver.set_secret(&secret);
        for t in ["review-created", "review-updated", "message-created", "review-deleted", "message-updated"] {
            app.publish("store-a", t, json!({"t": t})).await;
        }
        let got = receiver.wait_for(5, Duration::from_secs(10)).await;
        assert_eq!(got.len(), 5);
        let mut seq: Vec<(String, i64)> = got
            .iter()
            .map(|r| {
                let t = r.header("x-yotpo-webhooks-event-type").unwrap().to_string();
                (t.split('-').next().unwrap().to_string(), r.header("x-yotpo-webhooks-sequence").unwrap().parse().unwrap())
            })
            .collect();
        seq.sort();
        assert_eq!(seq, vec![
            ("message".into(), 1), ("message".into(), 2),
            ("review".into(), 1), ("review".into(), 2), ("review".into(), 3),
        ]);
    }
}
