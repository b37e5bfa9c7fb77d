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
        .all(app.services.database())
        .await
        .unwrap()
}

on_both_databases! {
    async fn a_published_event_arrives_signed_with_every_header(backend: Backend) {
        let app = spawn_driven(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (webhook_id, secret) = app.create_webhook("store-a", &receiver.url("/hooks"), None).await;
        receiver.set_secret(&secret);

        let payload = json!({"type": "review-created", "data": {"id": "rev_1", "rating": 5, "body": "Grand <3"}});
        let event_id = app.publish("store-a", "review-created", payload.clone()).await;
        assert_eq!(app.deliver_due().await, 1);
        let got = receiver.received();
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
        assert_eq!(stored[0].status, "succeeded");
        let attempts = attempt::Entity::find().all(app.services.database()).await.unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].response_status, Some(200));
        assert_eq!(attempts[0].trigger, "scheduled");
        assert_eq!(attempts[0].webhook_id, webhook_id);

        // The delivery log shows it too.
        let (_, log) = app.api("GET", &format!("/webhooks/{webhook_id}/deliveries"), Some(&app.store_a_key), None).await;
        assert_eq!(log["items"][0]["status"], "succeeded");
        assert_eq!(log["items"][0]["last_status_code"], 200);
    }

    async fn a_process_without_workers_queues_what_it_publishes(backend: Backend) {
        // HOOKLINE_WORKERS=false: an API-only process. What it publishes is queued for the
        // processes that deliver, not handed to its own engine, which sends nothing.
        let app = spawn_with(backend, &[("HOOKLINE_WORKERS", "false")]).await;
        let receiver = Receiver::start().await.unwrap();
        app.create_webhook("store-a", &receiver.url("/hooks"), None).await;
        let event_id = app.publish("store-a", "review-created", json!({"id": 1})).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(receiver.received().is_empty());
        let stored = deliveries_of(&app, &event_id).await;
        assert_eq!(stored.len(), 1);
        assert_eq!((stored[0].status.as_str(), stored[0].leased_by.as_deref()), ("pending", None));
    }

    async fn a_delivery_handed_to_the_engine_is_leased_before_it_is_sent(backend: Backend) {
        // The receiver holds the request: while it does, the delivery is on record as being
        // delivered by this process, so if the process died now the lease would bring it back.
        let app = spawn(backend).await;
        let receiver = Receiver::start().await.unwrap();
        receiver.configure(Behaviour { delay_ms: Some(800), ..Default::default() });
        app.create_webhook("store-a", &receiver.url("/hooks"), None).await;
        let event_id = app.publish("store-a", "review-created", json!({"id": 1})).await;
        let stored = deliveries_of(&app, &event_id).await;
        assert_eq!(stored[0].status, "delivering");
        assert!(stored[0].leased_by.is_some());
        assert!(stored[0].next_attempt_at.is_some_and(|until| until > hookline_core::now_ms()));
        assert_eq!(receiver.wait_for(1, Duration::from_secs(10)).await.len(), 1);
        assert!(app.wait_until(Duration::from_secs(5), async || {
            deliveries_of(&app, &event_id).await[0].status == "succeeded"
        }).await);
    }

    async fn a_driven_engine_does_not_wait_out_the_recorders_hold(backend: Backend) {
        // The recorder may hold attempts for 5 s while the process is idle; a caller waiting
        // for every attempt to be written (here the test's own run_once, in production a
        // graceful stop) has them written at once.
        let app = spawn_with(backend, &[("HOOKLINE_WORKERS", "false"), ("HOOKLINE_RECORD_LINGER", "5s")]).await;
        let receiver = Receiver::start().await.unwrap();
        app.create_webhook("store-a", &receiver.url("/held"), None).await;
        let event_id = app.publish("store-a", "review-created", json!({"id": 1})).await;
        let started = std::time::Instant::now();
        assert_eq!(app.deliver_due().await, 1);
        assert!(started.elapsed() < Duration::from_secs(3), "run_once waited out the hold: {:?}", started.elapsed());
        let stored = deliveries_of(&app, &event_id).await;
        assert_eq!(stored[0].status, "succeeded");
        let attempts = attempt::Entity::find().filter(attempt::Column::DeliveryId.eq(stored[0].id.clone())).all(app.services.database()).await.unwrap();
        assert_eq!(attempts.len(), 1);
    }

    async fn a_switched_off_webhook_gets_no_delivery(backend: Backend) {
        let app = spawn_driven(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (id, secret) = app.create_webhook("store-a", &receiver.url("/off"), None).await;
        receiver.set_secret(&secret);
        let (status, _) = app.api("POST", &format!("/webhooks/{id}/toggle"), Some(&app.store_a_key), Some(json!({"enabled": false}))).await;
        assert_eq!(status, 200);
        let event_id = app.publish("store-a", "message-created", json!({"id": 1})).await;
        app.deliver_due().await;
        assert!(receiver.received().is_empty(), "a switched-off webhook got a delivery");
        assert_eq!(deliveries_of(&app, &event_id).await[0].status, "skipped");

        app.api("POST", &format!("/webhooks/{id}/toggle"), Some(&app.store_a_key), Some(json!({"enabled": true}))).await;
        app.publish("store-a", "message-created", json!({"id": 2})).await;
        assert_eq!(app.deliver_due().await, 1);
        let got = receiver.received();
        assert_eq!(got.len(), 1);
        assert!(got[0].body.contains("\"id\":2"));
    }

    async fn a_failing_endpoint_is_retried_with_the_same_webhook_id(backend: Backend) {
        let app = spawn(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (_, secret) = app.create_webhook("store-a", &receiver.url("/flaky"), None).await;
        receiver.configure(Behaviour { secret: Some(secret.clone()), status: Some(500), delay_ms: None, retry_after: None });
        let event_id = app.publish("store-a", "review-updated", json!({"id": 3})).await;
        receiver.wait_for(2, Duration::from_secs(10)).await;
        receiver.configure(Behaviour { secret: Some(secret), status: Some(204), delay_ms: None, retry_after: None });
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
        receiver.configure(Behaviour { secret: Some(secret), status: Some(302), delay_ms: None, retry_after: None });
        let event_id = app.publish("store-a", "review-deleted", json!({})).await;
        assert!(app.wait_until(Duration::from_secs(10), async || {
            deliveries_of(&app, &event_id).await[0].status == "failed"
        }).await);
        assert_eq!(receiver.received().len(), 2, "one attempt and one retry, nothing followed");
    }

    async fn only_subscribed_event_types_are_delivered(backend: Backend) {
        let app = spawn_driven(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (_, secret) = app.create_webhook("store-a", &receiver.url("/reviews"), Some(vec!["review-created"])).await;
        receiver.set_secret(&secret);
        app.publish("store-a", "message-created", json!({"n": 1})).await;
        app.publish("store-b", "review-created", json!({"n": 2})).await;
        app.publish("store-a", "review-created", json!({"n": 3})).await;
        app.deliver_due().await;
        let got = receiver.received();
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].body.contains("\"n\":3"));
    }

    async fn sequence_numbers_increase_per_tenant_and_resource(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_HEADER_PREFIX", "X-Yotpo-Webhooks-"), ("HOOKLINE_WORKERS", "false")]).await;
        let receiver = Receiver::start().await.unwrap();
        let (_, secret) = app.create_webhook("store-a", &receiver.url("/seq"), None).await;
        receiver.set_secret(&secret);
        for t in ["review-created", "review-updated", "message-created", "review-deleted", "message-updated"] {
            app.publish("store-a", t, json!({"t": t})).await;
        }
        assert_eq!(app.deliver_due().await, 5);
        let got = receiver.received();
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

async fn attempts_of(app: &TestApp, delivery_id: &str) -> Vec<attempt::Model> {
    attempt::Entity::find()
        .filter(attempt::Column::DeliveryId.eq(delivery_id))
        .all(app.services.database())
        .await
        .unwrap()
}

async fn webhook_json(app: &TestApp, id: &str) -> serde_json::Value {
    app.api("GET", &format!("/webhooks/{id}"), Some(&app.admin_key), None).await.1
}

on_both_databases! {
    async fn a_manual_resend_makes_one_attempt_recorded_as_manual(backend: Backend) {
        let app = spawn_driven(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (_, secret) = app.create_webhook("store-a", &receiver.url("/r"), None).await;
        receiver.set_secret(&secret);
        let event_id = app.publish("store-a", "review-created", json!({"id": 1})).await;
        app.deliver_due().await;
        let delivery_id = deliveries_of(&app, &event_id).await[0].id.clone();
        assert_eq!(attempts_of(&app, &delivery_id).await.len(), 1);

        let (status, result) = app.api("POST", &format!("/deliveries/{delivery_id}/resend"), Some(&app.store_a_key), None).await;
        assert_eq!(status, 200, "{result}");
        assert_eq!(result["succeeded"], true);
        assert_eq!(result["response_status"], 200);
        let got = receiver.received();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].header("webhook-id"), Some(event_id.as_str()), "a resend keeps the webhook-id");
        assert!(got[1].verified);
        let attempts = attempts_of(&app, &delivery_id).await;
        assert_eq!(attempts.iter().map(|a| a.trigger.as_str()).collect::<Vec<_>>(), ["scheduled", "manual"]);
        // Another store cannot resend it.
        let (status, _) = app.api("POST", &format!("/deliveries/{delivery_id}/resend"), Some(&app.store_b_key), None).await;
        assert_eq!(status, 404);
        assert_eq!(receiver.received().len(), 2);
    }

    async fn a_test_event_is_sent_once_and_recorded_as_a_test(backend: Backend) {
        let app = spawn(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (id, secret) = app.create_webhook("store-a", &receiver.url("/t"), Some(vec!["communication.sms.sent.v1"])).await;
        receiver.set_secret(&secret);
        let (status, result) = app.api("POST", &format!("/webhooks/{id}/test"), Some(&app.store_a_key), None).await;
        assert_eq!(status, 200, "{result}");
        assert_eq!(result["succeeded"], true);
        let got = receiver.received();
        assert_eq!(got.len(), 1);
        assert!(got[0].verified);
        assert_eq!(got[0].header("x-webhooks-event-type"), Some("communication.sms.sent.v1"));
        assert!(got[0].body.contains("\"flow_id\""), "{}", got[0].body);
        let attempts = attempts_of(&app, result["delivery_id"].as_str().unwrap()).await;
        assert_eq!(attempts[0].trigger, "test");

        // A failing test event is not retried.
        receiver.configure(Behaviour { secret: Some(secret), status: Some(500), delay_ms: None, retry_after: None });
        let (_, result) = app.api("POST", &format!("/webhooks/{id}/test"), Some(&app.store_a_key), Some(json!({"event_type": "communication.sms.sent.v1"}))).await;
        assert_eq!(result["succeeded"], false);
        assert_eq!(result["response_status"], 500);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(receiver.received().len(), 2);
        let d = delivery::Entity::find_by_id(result["delivery_id"].as_str().unwrap()).one(app.services.database()).await.unwrap().unwrap();
        assert_eq!(d.status, "failed");
    }

    async fn a_rotated_secret_keeps_signing_through_its_grace_period(backend: Backend) {
        let app = spawn(backend).await;
        let old_receiver = Receiver::start().await.unwrap();
        let (id, old_secret) = app.create_webhook("store-a", &old_receiver.url("/rot"), None).await;
        let (status, rotated) = app.api("POST", &format!("/webhooks/{id}/rotate-secret"), Some(&app.store_a_key), None).await;
        assert_eq!(status, 200);
        let new_secret = rotated["secret"].as_str().unwrap().to_string();
        assert_ne!(new_secret, old_secret);
        old_receiver.set_secret(&old_secret);
        app.publish("store-a", "review-created", json!({"id": 1})).await;
        let got = old_receiver.wait_for(1, Duration::from_secs(10)).await;
        assert!(got[0].verified, "the old secret no longer verifies: {:?}", got[0].verify_error);
        assert_eq!(got[0].header("webhook-signature").unwrap().split(' ').count(), 2);
        // The new secret verifies the same request.
        let headers: axum::http::HeaderMap = got[0].headers.iter()
            .map(|(k, v)| (k.parse::<axum::http::HeaderName>().unwrap(), v.parse().unwrap()))
            .collect();
        standardwebhooks::Webhook::new(&new_secret).unwrap().verify(got[0].body.as_bytes(), &headers).unwrap();
    }

    async fn gone_turns_the_webhook_off_at_once_and_tells_the_tenant(backend: Backend) {
        let app = spawn_driven(backend).await;
        let watcher = Receiver::start().await.unwrap();
        let (_, watcher_secret) = app.create_webhook("store-a", &watcher.url("/ops"), Some(vec!["webhook.disabled"])).await;
        watcher.set_secret(&watcher_secret);
        let gone = Receiver::start().await.unwrap();
        let (gone_id, _) = app.create_webhook("store-a", &gone.url("/gone"), Some(vec!["review-created"])).await;
        gone.configure(Behaviour { secret: None, status: Some(410), delay_ms: None, retry_after: None });

        let event_id = app.publish("store-a", "review-created", json!({"id": 1})).await;
        // The 410, then the webhook.disabled it causes, due at once.
        assert_eq!(app.deliver_due().await, 2);
        assert_eq!(deliveries_of(&app, &event_id).await[0].status, "failed");
        assert_eq!(gone.received().len(), 1, "410 is not retried");
        let hook = webhook_json(&app, &gone_id).await;
        assert_eq!(hook["enabled"], false);
        assert_eq!(hook["disabled_reason"], "gone");
        assert!(hook["disabled_at"].is_string());

        let notice = watcher.received();
        assert_eq!(notice.len(), 1);
        assert!(notice[0].verified);
        assert_eq!(notice[0].header("x-webhooks-event-type"), Some("webhook.disabled"));
        let body: serde_json::Value = serde_json::from_str(&notice[0].body).unwrap();
        assert_eq!(body["webhook_id"], gone_id.as_str());
        assert_eq!(body["reason"], "gone");
    }

    async fn repeated_failures_turn_the_webhook_off_automatically(backend: Backend) {
        let app = spawn_with(backend, &[
            ("HOOKLINE_DISABLE_AFTER_FAILURES", "3"),
            ("HOOKLINE_DISABLE_AFTER_SPAN", "0ms"),
            ("HOOKLINE_RETRY_SCHEDULE", "10ms,10ms,10ms,10ms,10ms"),
        ]).await;
        let receiver = Receiver::start().await.unwrap();
        let (id, _) = app.create_webhook("store-a", &receiver.url("/down"), None).await;
        receiver.configure(Behaviour { secret: None, status: Some(503), delay_ms: None, retry_after: None });
        let first = app.publish("store-a", "review-created", json!({"id": 1})).await;
        assert!(app.wait_until(Duration::from_secs(10), async || webhook_json(&app, &id).await["enabled"] == false).await);
        let hook = webhook_json(&app, &id).await;
        assert_eq!(hook["disabled_reason"], "automatic");
        assert_eq!(hook["health"]["consecutive_failures"], 3);
        assert!(hook["health"]["failing_since"].is_string());
        assert_eq!(receiver.received().len(), 3);
        // What is still due for a turned-off webhook is skipped, not sent.
        assert!(app.wait_until(Duration::from_secs(5), async || deliveries_of(&app, &first).await[0].status == "skipped").await);
        let later = app.publish("store-a", "review-created", json!({"id": 2})).await;
        assert_eq!(deliveries_of(&app, &later).await[0].status, "skipped");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(receiver.received().len(), 3);
    }

    async fn the_span_keeps_a_short_burst_of_failures_from_turning_a_webhook_off(backend: Backend) {
        let app = spawn_with(backend, &[
            ("HOOKLINE_DISABLE_AFTER_FAILURES", "2"),
            ("HOOKLINE_DISABLE_AFTER_SPAN", "1h"),
            ("HOOKLINE_RETRY_SCHEDULE", "10ms,10ms,10ms"),
        ]).await;
        let receiver = Receiver::start().await.unwrap();
        let (id, _) = app.create_webhook("store-a", &receiver.url("/burst"), None).await;
        receiver.configure(Behaviour { secret: None, status: Some(500), delay_ms: None, retry_after: None });
        let event_id = app.publish("store-a", "review-created", json!({})).await;
        assert!(app.wait_until(Duration::from_secs(10), async || deliveries_of(&app, &event_id).await[0].status == "failed").await);
        let hook = webhook_json(&app, &id).await;
        assert_eq!(hook["enabled"], true);
        assert_eq!(hook["health"]["consecutive_failures"], 4);
    }

    async fn retry_after_on_429_is_honoured(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_RETRY_SCHEDULE", "10ms,10ms")]).await;
        let receiver = Receiver::start().await.unwrap();
        app.create_webhook("store-a", &receiver.url("/busy"), None).await;
        receiver.configure(Behaviour { secret: None, status: Some(429), delay_ms: None, retry_after: Some(1) });
        app.publish("store-a", "review-created", json!({})).await;
        let got = receiver.wait_for(2, Duration::from_secs(10)).await;
        assert_eq!(got.len(), 2);
        let gap = got[1].received_at_ms - got[0].received_at_ms;
        assert!(gap >= 950, "the retry came {gap} ms later, before Retry-After allowed");
    }

    async fn an_attempt_that_outlasts_the_timeout_fails_as_a_timeout(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_DELIVERY_TIMEOUT", "300ms"), ("HOOKLINE_RETRY_SCHEDULE", "10ms")]).await;
        let receiver = Receiver::start().await.unwrap();
        app.create_webhook("store-a", &receiver.url("/slow"), None).await;
        receiver.configure(Behaviour { secret: None, status: None, delay_ms: Some(3_000), retry_after: None });
        let event_id = app.publish("store-a", "review-created", json!({})).await;
        assert!(app.wait_until(Duration::from_secs(10), async || deliveries_of(&app, &event_id).await[0].status == "failed").await);
        let d = &deliveries_of(&app, &event_id).await[0];
        let attempts = attempts_of(&app, &d.id).await;
        assert_eq!(attempts.len(), 2);
        assert!(attempts.iter().all(|a| a.error_class == Some(hookline_core::AttemptErrorClass::Timeout) && a.duration_ms < 1500));
    }

    async fn a_response_body_with_a_nul_byte_is_recorded_once(backend: Backend) {
        // PostgreSQL text cannot hold U+0000; the attempt must still be recorded (and the
        // delivery settled), not fail to record and be sent again when its lease runs out.
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let receiver = axum::Router::new().fallback(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { "ok\0done" }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/nul", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, receiver).await });

        let app = spawn_driven(backend).await;
        app.create_webhook("store-a", &url, None).await;
        let event_id = app.publish("store-a", "review-created", json!({})).await;
        app.deliver_due().await;
        assert_eq!(deliveries_of(&app, &event_id).await[0].status, "succeeded", "the attempt was never recorded");
        let d = &deliveries_of(&app, &event_id).await[0];
        let attempts = attempts_of(&app, &d.id).await;
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].response_body.as_deref(), Some("ok\u{fffd}done"));
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
