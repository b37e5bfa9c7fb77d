//! Issue 11's holes, each reproduced and closed: sign-in guessing, users that must be stopped,
//! what partner apps may hear, amplification, retries, idempotency, bad input.

use std::time::{Duration, Instant};

use hookline_core::Scope;
use hookline_core::entities::{delivery, session, webhook};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use test_receiver::{Behaviour, Receiver};

use crate::common::*;

/// Posts the login form as the hydrated page does (errors come back as statuses).
async fn try_sign_in(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.http
        .post(app.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("email={}&password={}", enc(email), enc(password)))
        .send()
        .await
        .unwrap()
}

async fn deliveries_of(app: &TestApp, event_id: &str) -> Vec<delivery::Model> {
    delivery::Entity::find()
        .filter(delivery::Column::EventId.eq(event_id))
        .all(app.services.database())
        .await
        .unwrap()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

on_both_databases! {
    async fn repeated_wrong_passwords_are_throttled_with_retry_after(backend: Backend) {
        let app = spawn(backend).await;
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(try_sign_in(&app, "merchant@a.test", "wrong password!").await.status().as_u16());
        }
        assert_eq!(&statuses[..5], &[400; 5], "{statuses:?}");
        let res = try_sign_in(&app, "merchant@a.test", "wrong password!").await;
        assert_eq!(res.status().as_u16(), 429);
        let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=900).contains(&wait), "{wait}");
        assert!(res.text().await.unwrap().contains("Try again in"));
        // Even the right password waits now: the guesser cannot tell.
        assert_eq!(try_sign_in(&app, "merchant@a.test", PASSWORD).await.status().as_u16(), 429);
        // Another account is not locked by it.
        assert!(app.sign_in("merchant@b.test", PASSWORD).await.is_some());

        // Without JavaScript the browser is sent to the login page, which says when to retry.
        let res = app
            .http
            .post(app.url("/ui/login"))
            .header("accept", "text/html")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("email={}&password=nope-nope-nope", enc("merchant@a.test")))
            .send()
            .await
            .unwrap();
        let location = res.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or_default().to_string();
        assert!(location.starts_with("/login?error=throttled&retry="), "{location}");
        let page = app.http.get(app.url(&location)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Too many sign-in attempts. Try again in"), "the page says when");
    }

    async fn a_disabled_user_is_signed_out_at_once_and_cannot_sign_in(backend: Backend) {
        let app = spawn(backend).await;
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.unwrap();
        assert_eq!(app.server_fn(&cookie, "viewer", &[]).await.0, 200);
        app.services.create_admin("root@hookline.test", PASSWORD).await.unwrap();
        let admin = app.sign_in("root@hookline.test", PASSWORD).await.unwrap();

        let (status, body) =
            app.server_fn(&admin, "admin_set_user_disabled", &[("email", "merchant@a.test"), ("disabled", "true")]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(app.server_fn(&cookie, "viewer", &[]).await.0, 401, "the session ended");
        assert!(app.sign_in("merchant@a.test", PASSWORD).await.is_none());

        // Enabled again, the user signs in; an admin can end their sessions.
        app.server_fn(&admin, "admin_set_user_disabled", &[("email", "merchant@a.test"), ("disabled", "false")]).await;
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.unwrap();
        let (status, ended) = app.server_fn(&admin, "admin_end_sessions", &[("email", "merchant@a.test")]).await;
        assert_eq!((status, ended.as_str()), (200, "1"));
        assert_eq!(app.server_fn(&cookie, "viewer", &[]).await.0, 401);

        // A merchant cannot use the admin functions.
        let other = app.sign_in("merchant@b.test", PASSWORD).await.unwrap();
        assert_eq!(app.server_fn(&other, "admin_delete_user", &[("email", "merchant@a.test"), ("confirm", "yes")]).await.0, 404);
        // Deleting asks for the confirmation, then removes the user and their sessions.
        assert_eq!(app.server_fn(&admin, "admin_delete_user", &[("email", "merchant@a.test")]).await.0, 400);
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.unwrap();
        assert_eq!(app.server_fn(&admin, "admin_delete_user", &[("email", "merchant@a.test"), ("confirm", "yes")]).await.0, 200);
        assert_eq!(app.server_fn(&cookie, "viewer", &[]).await.0, 401);
        assert!(app.services.user_by_email("merchant@a.test").await.is_err());
        // The last admin who can sign in stays.
        assert!(app.services.set_user_disabled(&Scope::Admin, "root@hookline.test", true).await.is_err());
    }

    async fn a_user_changes_their_password_and_other_sessions_end(backend: Backend) {
        let app = spawn(backend).await;
        let here = app.sign_in("merchant@a.test", PASSWORD).await.unwrap();
        let elsewhere = app.sign_in("merchant@a.test", PASSWORD).await.unwrap();
        let (status, _) = app
            .server_fn(&here, "change_password", &[("current_password", "not it at all"), ("new_password", "a new long password")])
            .await;
        assert_eq!(status, 400);
        let (status, body) = app
            .server_fn(&here, "change_password", &[("current_password", PASSWORD), ("new_password", "a new long password")])
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(app.server_fn(&here, "viewer", &[]).await.0, 200, "this session stays");
        assert_eq!(app.server_fn(&elsewhere, "viewer", &[]).await.0, 401, "the others end");
        assert!(app.sign_in("merchant@a.test", PASSWORD).await.is_none());
        assert!(app.sign_in("merchant@a.test", "a new long password").await.is_some());
    }

    async fn expired_sessions_are_purged(backend: Backend) {
        let app = spawn(backend).await;
        app.sign_in("merchant@a.test", PASSWORD).await.unwrap();
        let user = app.services.user_by_email("merchant@a.test").await.unwrap();
        session::Entity::insert(session::ActiveModel {
            id: Set("expired".into()),
            user_id: Set(user.id),
            created_at: Set(0),
            expires_at: Set(1),
            flash: Set(None),
        })
        .exec_without_returning(app.services.database())
        .await
        .unwrap();
        assert_eq!(app.services.purge_expired_sessions().await.unwrap(), 1);
        assert_eq!(session::Entity::find().count(app.services.database()).await.unwrap(), 1, "the live one stays");
    }

    async fn operational_events_reach_only_webhooks_that_may_see_the_webhook(backend: Backend) {
        let app = spawn(backend).await;
        for (id, name) in [("app-1", "One"), ("app-2", "Two")] {
            app.services.create_application(id, name).await.unwrap();
            app.services.install_application(&id.into(), &"store-a".into(), None).await.unwrap();
        }
        let key = |scope: Scope| {
            let services = app.services.clone();
            async move { services.create_api_key(&scope, "k").await.unwrap().key }
        };
        let (app1, app2) = (key(Scope::Application("app-1".into())).await, key(Scope::Application("app-2".into())).await);
        let gone = Receiver::start().await.unwrap();
        gone.configure(Behaviour { status: Some(410), ..Default::default() });
        let watchers: Vec<Receiver> = futures_join(3).await;
        let create = |key: String, url: String, types: Value| {
            let app = &app;
            async move {
                let (status, body) = app
                    .api("POST", "/webhooks", Some(&key), Some(json!({"tenant_type": "store", "tenant_id": "store-a", "url": url, "event_types": types})))
                    .await;
                assert_eq!(status, 201, "{body}");
                body["id"].as_str().unwrap().to_string()
            }
        };
        let gone_id = create(app1.clone(), gone.url("/gone"), json!(["review-created"])).await;
        create(app1.clone(), watchers[0].url("/app1"), json!(["webhook.disabled"])).await;
        create(app2.clone(), watchers[1].url("/app2"), json!(["webhook.disabled"])).await;
        create(app.store_a_key.clone(), watchers[2].url("/store"), json!(["webhook.disabled"])).await;

        app.publish("store-a", "review-created", json!({"id": 1})).await;
        let got = watchers[0].wait_for(1, Duration::from_secs(10)).await;
        assert_eq!(got.len(), 1, "app 1 hears of its own webhook");
        let body: Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(body["webhook_id"], gone_id.as_str());
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(watchers[1].received().is_empty(), "app 2 never sees app 1's endpoint");
        assert!(watchers[2].received().is_empty(), "the store's own webhooks hear of the store's webhooks only");
    }

    async fn no_key_may_publish_what_hookline_emits(backend: Backend) {
        let app = spawn(backend).await;
        for key in [&app.admin_key, &app.store_a_key] {
            let (status, body) = app
                .api("POST", "/events", Some(key), Some(json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "webhook.disabled", "payload": {"webhook_id": "x", "url": "https://evil.example"}})))
                .await;
            assert_eq!(status, 403, "{body}");
        }
        let (status, _) = app
            .api("POST", "/event-types", Some(&app.admin_key), Some(json!({"name": "webhook.hijacked", "product_group": "Webhooks", "tenant_type": "any"})))
            .await;
        assert_eq!(status, 400);
    }

    async fn an_application_receives_only_its_product_lines(backend: Backend) {
        let app = spawn(backend).await;
        app.services.create_application("app-1", "One").await.unwrap();
        app.services.install_application(&"app-1".into(), &"store-a".into(), Some(vec!["Reviews".into()])).await.unwrap();
        let key = app.services.create_api_key(&Scope::Application("app-1".into()), "k").await.unwrap().key;
        let receiver = Receiver::start().await.unwrap();
        let (status, body) = app
            .api("POST", "/webhooks", Some(&key), Some(json!({"tenant_type": "store", "tenant_id": "store-a", "url": receiver.url("/all"), "event_types": null})))
            .await;
        assert_eq!(status, 201, "{body}");
        app.publish("store-a", "communication.sms.sent.v1", json!({"n": 1})).await;
        let review = app.publish("store-a", "review-created", json!({"n": 2})).await;
        let got = receiver.wait_for(1, Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got_all = receiver.received();
        assert_eq!(got_all.len(), 1, "only the Reviews event: {:?}", got_all.iter().map(|r| r.header("x-webhooks-event-type")).collect::<Vec<_>>());
        assert_eq!(got[0].header("webhook-id"), Some(review.as_str()));
    }

    async fn a_tenant_has_at_most_the_configured_number_of_webhooks(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_MAX_WEBHOOKS_PER_TENANT", "3")]).await;
        for i in 0..3 {
            app.create_webhook("store-a", &format!("https://hooks.example.com/{i}"), None).await;
        }
        let (status, body) = app
            .api("POST", "/webhooks", Some(&app.store_a_key), Some(json!({"url": "https://hooks.example.com/4"})))
            .await;
        assert_eq!(status, 422, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("HOOKLINE_MAX_WEBHOOKS_PER_TENANT = 3"), "{body}");
        // The three-step flow counts too.
        let (_, target) = app.api("POST", "/targets", Some(&app.store_a_key), Some(json!({"url": "https://hooks.example.com/t"}))).await;
        let (_, filter) = app.api("POST", "/filters", Some(&app.store_a_key), Some(json!({"events": ["review-created"]}))).await;
        let (status, _) = app
            .api("POST", "/subscriptions", Some(&app.store_a_key), Some(json!({"target_id": target["id"], "filter_id": filter["id"]})))
            .await;
        assert_eq!(status, 422);
        // Another tenant has its own count.
        app.create_webhook("store-b", "https://hooks.example.com/b", None).await;
    }

    async fn resends_are_rate_limited_per_tenant(backend: Backend) {
        let app = spawn(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (webhook_id, _) = app.create_webhook("store-a", &receiver.url("/r"), None).await;
        let event_id = app.publish("store-a", "review-created", json!({})).await;
        receiver.wait_for(1, Duration::from_secs(10)).await;
        let delivery_id = deliveries_of(&app, &event_id).await[0].id.clone();
        // The burst goes out at once: one at a time, a slow resend (a loaded machine) would give
        // the bucket back its tokens as fast as they are spent, and the limit would never show.
        // Each answer is still checked against the OpenAPI document, as `app.api` does.
        let post = |path: String| {
            let (http, url, key) = (app.http.clone(), app.url(&format!("/api/v1{path}")), app.store_a_key.clone());
            async move {
                let res = http.post(url).bearer_auth(key).send().await.unwrap();
                let status = res.status().as_u16();
                let text = res.text().await.unwrap_or_default();
                let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
                crate::openapi::assert_documented("POST", &path, status, &answer);
                status
            }
        };
        let mut resends = tokio::task::JoinSet::new();
        for _ in 0..40 {
            resends.spawn(post(format!("/deliveries/{delivery_id}/resend")));
        }
        // A refused resend is answered at once (no request behind it): the first 429 back says the
        // tenant's bucket is empty now, and test sends made right then must share its refusal.
        let mut statuses = Vec::new();
        while let Some(status) = resends.join_next().await {
            statuses.push(status.unwrap());
            if statuses.last() == Some(&429) {
                break;
            }
        }
        assert_eq!(statuses.last(), Some(&429), "resends are limited: {statuses:?}");
        let mut tests = tokio::task::JoinSet::new();
        for _ in 0..5 {
            tests.spawn(post(format!("/webhooks/{webhook_id}/test")));
        }
        let test_statuses: Vec<u16> = tests.join_all().await;
        statuses.extend(resends.join_all().await);
        assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
        let accepted = statuses.iter().filter(|s| **s == 200).count();
        assert!(accepted >= 10, "a burst is allowed: {accepted} of {statuses:?}");
        // Test sends share the limit (their own bucket would take all five); another tenant does not.
        assert!(test_statuses.contains(&429), "test sends share the resends' limit: {test_statuses:?}");
        let (other, _) = app.create_webhook("store-b", &receiver.url("/b"), None).await;
        let (status, _) = app.api("POST", &format!("/webhooks/{other}/test"), Some(&app.store_b_key), None).await;
        assert_eq!(status, 200);
    }

    async fn resends_keep_to_the_per_webhook_concurrency(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_PER_WEBHOOK_CONCURRENCY", "2")]).await;
        let receiver = Receiver::start().await.unwrap();
        app.create_webhook("store-a", &receiver.url("/slow"), None).await;
        let event_id = app.publish("store-a", "review-created", json!({})).await;
        receiver.wait_for(1, Duration::from_secs(10)).await;
        let delivery_id = deliveries_of(&app, &event_id).await[0].id.clone();
        receiver.configure(Behaviour { delay_ms: Some(400), ..Default::default() });
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let (http, url, key) = (app.http.clone(), app.url(&format!("/api/v1/deliveries/{delivery_id}/resend")), app.store_a_key.clone());
                tokio::spawn(async move { http.post(url).bearer_auth(key).send().await.unwrap().status().as_u16() })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap(), 200);
        }
        let arrivals: Vec<u128> = receiver.received().iter().skip(1).map(|r| r.received_at_ms).collect();
        assert_eq!(arrivals.len(), 8);
        // Each request is held 400 ms: no more than two may arrive within 300 ms of each other.
        for t in &arrivals {
            let overlapping = arrivals.iter().filter(|u| **u >= *t && **u < *t + 300).count();
            assert!(overlapping <= 2, "{overlapping} resends out at once: {arrivals:?}");
        }
    }

    async fn a_manual_resend_never_uses_up_the_retry_schedule(backend: Backend) {
        // 1 first attempt, 3 scheduled retries, 2 manual resends while it retries: 6 requests.
        let app = spawn_with(backend, &[("HOOKLINE_RETRY_SCHEDULE", "400ms,400ms,400ms")]).await;
        let receiver = Receiver::start().await.unwrap();
        receiver.configure(Behaviour { status: Some(500), ..Default::default() });
        app.create_webhook("store-a", &receiver.url("/fails"), None).await;
        let event_id = app.publish("store-a", "review-created", json!({})).await;
        receiver.wait_for(1, Duration::from_secs(10)).await;
        let delivery_id = deliveries_of(&app, &event_id).await[0].id.clone();
        for _ in 0..2 {
            let (status, body) = app.api("POST", &format!("/deliveries/{delivery_id}/resend"), Some(&app.store_a_key), None).await;
            assert_eq!(status, 200, "{body}");
        }
        assert!(app.wait_until(Duration::from_secs(20), async || deliveries_of(&app, &event_id).await[0].status == "failed").await);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(receiver.received().len(), 1 + 3 + 2);
        let d = &deliveries_of(&app, &event_id).await[0];
        assert_eq!((d.attempts, d.manual_attempts), (6, 2));
    }

    async fn an_idempotency_key_reused_for_another_request_is_refused(backend: Backend) {
        let app = spawn(backend).await;
        let publish = |tenant: &'static str, event_type: &'static str, payload: Value| {
            let app = &app;
            async move {
                let res = app
                    .http
                    .post(app.url("/api/v1/events"))
                    .bearer_auth(&app.admin_key)
                    .header("idempotency-key", "order-1001")
                    .header("content-type", "application/json")
                    .body(json!({"tenant_type": "store", "tenant_id": tenant, "event_type": event_type, "payload": payload}).to_string())
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let replayed = res.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap().to_string());
                (status, replayed, serde_json::from_str::<Value>(&res.text().await.unwrap()).unwrap())
            }
        };
        let (status, replayed, first) = publish("store-a", "review-created", json!({"id": 1})).await;
        assert_eq!((status, replayed), (202, None));
        let (status, replayed, again) = publish("store-a", "review-created", json!({"id": 1})).await;
        assert_eq!((status, replayed.as_deref()), (202, Some("true")));
        assert_eq!(again["id"], first["id"]);
        for (tenant, kind, payload) in [
            ("store-a", "review-created", json!({"id": 2})),
            ("store-a", "review-updated", json!({"id": 1})),
            ("store-b", "review-created", json!({"id": 1})),
        ] {
            let (status, _, body) = publish(tenant, kind, payload).await;
            assert_eq!(status, 422, "{tenant} {kind}: {body}");
            assert_eq!(body["error"]["field"], "Idempotency-Key");
        }
        let (events, ..) = app.counts().await;
        assert_eq!(events, 1, "nothing else was written");
    }

    async fn too_many_event_types_is_a_clear_error(backend: Backend) {
        let app = spawn(backend).await;
        let many: Vec<String> = (0..40_000).map(|i| format!("type-{i}")).collect();
        let (status, body) = app
            .api("POST", "/webhooks", Some(&app.store_a_key), Some(json!({"url": "https://hooks.example.com/x", "event_types": many})))
            .await;
        assert_eq!(status, 422, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("at most 500"), "{body}");
        let (status, _) = app.api("POST", "/filters", Some(&app.store_a_key), Some(json!({"events": many}))).await;
        assert_eq!(status, 422);
    }

    async fn names_and_descriptions_with_reordering_characters_are_refused(backend: Backend) {
        let app = spawn(backend).await;
        let (status, body) = app
            .api("POST", "/webhooks", Some(&app.store_a_key), Some(json!({"url": "https://hooks.example.com/x", "description": "pay\u{202E}lanigiro"})))
            .await;
        assert_eq!(status, 400, "{body}");
        let (status, _) = app.api("POST", "/stores", Some(&app.admin_key), Some(json!({"id": "s-9", "name": "Shop\u{2066}x"}))).await;
        assert_eq!(status, 400);
        let (status, _) = app.api("POST", "/api-keys", Some(&app.store_a_key), Some(json!({"name": "key\u{200F}"}))).await;
        assert_eq!(status, 400);
        let (status, _) = app
            .api("POST", "/webhooks", Some(&app.store_a_key), Some(json!({"url": "https://hooks.example.com/x", "description": "line one\nline two"})))
            .await;
        assert_eq!(status, 201, "line breaks are fine");
    }

    async fn a_delivery_shows_each_key_once(backend: Backend) {
        let app = spawn(backend).await;
        let receiver = Receiver::start().await.unwrap();
        app.create_webhook("store-a", &receiver.url("/r"), None).await;
        let event_id = app.publish("store-a", "review-created", json!({})).await;
        receiver.wait_for(1, Duration::from_secs(10)).await;
        let id = deliveries_of(&app, &event_id).await[0].id.clone();
        let raw = app
            .http
            .get(app.url(&format!("/api/v1/deliveries/{id}")))
            .bearer_auth(&app.store_a_key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(raw.matches("\"attempts\":").count(), 1, "{raw}");
        let body: Value = serde_json::from_str(&raw).unwrap();
        assert!(body["attempts"].is_array());
        assert!(body["attempt_count"].is_number());
    }

    async fn deleting_a_webhook_with_a_long_log_does_not_hold_up_publishing(backend: Backend) {
        let app = spawn(backend).await;
        let (webhook_id, _) = app.create_webhook("store-a", "https://hooks.example.com/long", None).await;
        let rows: Vec<delivery::ActiveModel> = (0..20_000)
            .map(|i| delivery::ActiveModel {
                id: Set(format!("old-{i:06}")),
                event_id: Set(format!("e-{i:06}")),
                webhook_id: Set(webhook_id.clone()),
                tenant_type: Set(hookline_core::TenantType::Store),
                tenant_id: Set("store-a".into()),
                event_type: Set("review-created".into()),
                status: Set(hookline_core::DeliveryStatus::Succeeded),
                attempts: Set(1),
                manual_attempts: Set(0),
                next_attempt_at: Set(None),
                leased_by: Set(None),
                last_status_code: Set(Some(200)),
                last_duration_ms: Set(Some(3)),
                created_at: Set(i),
                updated_at: Set(i),
                ..Default::default()
            })
            .collect();
        for chunk in rows.chunks(1000) {
            delivery::Entity::insert_many(chunk.to_vec()).exec_without_returning(app.services.database()).await.unwrap();
        }
        let started = Instant::now();
        let (status, _) = app.api("DELETE", &format!("/webhooks/{webhook_id}"), Some(&app.store_a_key), None).await;
        assert_eq!(status, 204);
        assert!(started.elapsed() < Duration::from_secs(2), "deleting answers at once: {:?}", started.elapsed());
        // Publishing goes on while the log is removed in the background.
        let started = Instant::now();
        for i in 0..20 {
            app.publish("store-a", "review-created", json!({"i": i})).await;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert!(
            app.wait_until(Duration::from_secs(60), async || {
                delivery::Entity::find().filter(delivery::Column::WebhookId.eq(&webhook_id)).count(app.services.database()).await.unwrap() == 0
            })
            .await,
            "the background purge removes the whole log"
        );
        assert!(webhook::Entity::find_by_id(&webhook_id).one(app.services.database()).await.unwrap().is_none());
    }

    async fn password_hashing_is_bounded_under_a_burst_of_sign_ins(backend: Backend) {
        let app = spawn(backend).await;
        let before = rss_kib();
        let burst: Vec<_> = (0..64)
            .map(|i| {
                let services = app.services.clone();
                tokio::spawn(async move { services.authenticate_user(&format!("nobody{i}@x.test"), "wrong password").await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let asked = Instant::now();
        let res = app.http.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(asked.elapsed() < Duration::from_secs(1), "healthz took {:?}", asked.elapsed());
        let mut peak = 0;
        for task in burst {
            peak = peak.max(rss_kib());
            assert!(task.await.unwrap().unwrap().is_none());
        }
        let grown_mib = peak.saturating_sub(before) / 1024;
        assert!(grown_mib <= 150, "64 sign-ins grew memory by {grown_mib} MiB");
    }
}

async fn futures_join(n: usize) -> Vec<Receiver> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(Receiver::start().await.unwrap());
    }
    out
}

#[test]
fn the_listed_ranges_are_refused() {
    for ip in ["64:ff9b:1::a00:1", "::ffff:0:a00:1", "64:ff9b::7f00:1", "::ffff:127.0.0.1"] {
        assert!(!hookline_core::is_public_ip(ip.parse().unwrap()), "{ip}");
    }
}

/// A receiver that answers with 40 headers of 9,000 bytes each (about 360 KB).
async fn header_flood_receiver() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = socket.read(&mut buf).await;
                let mut response =
                    String::from("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n");
                for i in 0..40 {
                    response.push_str(&format!("x-flood-{i:05}: {}\r\n", "v".repeat(9000)));
                }
                response.push_str("\r\nok");
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receivers_response_headers_are_capped_like_its_body() {
    let app = spawn(Backend::Sqlite).await;
    let addr = header_flood_receiver().await;
    app.create_webhook("store-a", &format!("http://{addr}/flood"), None).await;
    let event_id = app.publish("store-a", "review-created", json!({})).await;
    assert!(
        app.wait_until(Duration::from_secs(10), async || deliveries_of(&app, &event_id).await[0].attempts
            > 0)
            .await
    );
    let stored = hookline_core::entities::attempt::Entity::find().all(app.services.database()).await.unwrap();
    assert_eq!(stored[0].response_status, Some(200), "{:?}", stored[0].error_message);
    let headers = stored[0].response_headers.clone().unwrap_or_default();
    assert!(headers.len() < 24 * 1024, "{} bytes of headers stored", headers.len());
    assert!(headers.contains("hookline-truncated"), "the cut is said");
}
