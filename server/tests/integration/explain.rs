//! "Why didn't it arrive?": `GET /events/{id}/explain` with every outcome built for real (real
//! receivers, the real engine driven by the test, publish's own rules), each outcome's detail
//! and moment checked against the stored rows; who sees what; and an ordering key's timeline.

use std::time::Duration;

use hookline_core::entities::{delivery, webhook};
use hookline_core::{PauseReason, Scope, iso8601, now_ms};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use test_receiver::{Behaviour, Receiver};

use crate::common::*;

async fn delivery_of(app: &TestApp, event_id: &str, webhook_id: &str) -> delivery::Model {
    delivery::Entity::find()
        .filter(delivery::Column::EventId.eq(event_id))
        .filter(delivery::Column::WebhookId.eq(webhook_id))
        .one(app.services.database())
        .await
        .unwrap()
        .expect("a delivery")
}

async fn set_webhook(app: &TestApp, id: &str, column: webhook::Column, value: Expr) {
    webhook::Entity::update_many()
        .col_expr(column, value)
        .filter(webhook::Column::Id.eq(id))
        .exec(app.services.database())
        .await
        .unwrap();
}

/// The explanation's item for a webhook.
fn item<'a>(answer: &'a Value, webhook_id: &str) -> &'a Value {
    answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["webhook_id"] == webhook_id)
        .unwrap_or_else(|| panic!("no item for {webhook_id} in {answer}"))
}

fn check(answer: &Value, webhook_id: &str, outcome: &str, detail_has: &[&str], at: Option<i64>) {
    let it = item(answer, webhook_id);
    assert_eq!(it["outcome"], outcome, "{it}");
    let detail = it["detail"].as_str().expect("a detail");
    for part in detail_has {
        assert!(detail.contains(part), "{outcome}: {detail:?} does not say {part:?}");
    }
    match at {
        Some(ms) => assert_eq!(it["at"], iso8601(ms), "{it}"),
        None => assert_eq!(it["at"], Value::Null, "{it}"),
    }
}

async fn publish_with(app: &TestApp, body: Value) -> String {
    let (status, answer) = app.api("POST", "/events", Some(&app.admin_key), Some(body)).await;
    assert_eq!(status, 202, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

on_both_databases! {
    async fn every_webhook_of_the_tenant_gets_its_outcome_with_detail_and_moment(backend: Backend) {
        // One retry, 300 ms after the first attempt: a failing receiver uses the schedule up fast.
        let app = spawn_with(backend, &[("HOOKLINE_WORKERS", "false"), ("HOOKLINE_RETRY_SCHEDULE", "300ms")]).await;
        let ok = Receiver::start().await.unwrap();
        let bad = Receiver::start().await.unwrap();
        bad.configure(Behaviour { status: Some(500), ..Default::default() });

        let (not_subscribed, _) = app.create_webhook("store-a", &ok.url("/types"), Some(vec!["review-updated"])).await;
        let (filtered, _) = app.create_webhook("store-a", &ok.url("/filtered"), None).await;
        set_webhook(&app, &filtered, webhook::Column::Conditions, Expr::value(r#"{"path": "rating", "gte": 4}"#)).await;
        let (off, _) = app.create_webhook("store-a", &ok.url("/off"), None).await;
        let (status, _) = app.api("POST", &format!("/webhooks/{off}/toggle"), Some(&app.store_a_key), Some(json!({"enabled": false}))).await;
        assert_eq!(status, 200);
        let (paused, _) = app.create_webhook("store-a", &ok.url("/paused"), None).await;
        let until = now_ms() + 3_600_000;
        set_webhook(&app, &paused, webhook::Column::PausedUntil, Expr::value(until)).await;
        set_webhook(&app, &paused, webhook::Column::PauseReason, Expr::value(PauseReason::RetryAfter.as_str())).await;
        let (broken, _) = app.create_webhook("store-a", &ok.url("/broken"), None).await;
        let probe = now_ms() + 60_000;
        set_webhook(&app, &broken, webhook::Column::PausedUntil, Expr::value(probe)).await;
        set_webhook(&app, &broken, webhook::Column::PauseReason, Expr::value(PauseReason::CircuitOpen.as_str())).await;
        set_webhook(&app, &broken, webhook::Column::ProbeIntervalMs, Expr::value(60_000i64)).await;
        let (ordered, _) = app.create_webhook("store-a", &bad.url("/ordered"), None).await;
        set_webhook(&app, &ordered, webhook::Column::Ordering, Expr::value(true)).await;
        let (queued, _) = app.create_webhook("store-a", &bad.url("/queued"), None).await;
        let (failed, _) = app.create_webhook("store-a", &bad.url("/failed"), None).await;
        let (delivered, _) = app.create_webhook("store-a", &ok.url("/delivered"), None).await;

        // The key's head first; then the event explained, which the filter's condition keeps out.
        let head = publish_with(&app, json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created",
            "payload": {"rating": 5}, "ordering_key": "order-7"})).await;
        let event = publish_with(&app, json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created",
            "payload": {"rating": 2}, "ordering_key": "order-7"})).await;
        app.deliver_due().await;
        // The queued one's receiver is down for a while: once its first attempt is on record,
        // its retry is an hour away.
        assert!(app.wait_until(Duration::from_secs(10), async || {
            let d = delivery_of(&app, &event, &queued).await;
            d.attempts == 1 && d.status == "pending"
        }).await);
        delivery::Entity::update_many()
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(now_ms() + 3_600_000))
            .filter(delivery::Column::WebhookId.eq(&queued))
            .exec(app.services.database())
            .await
            .unwrap();
        assert!(app.wait_until(Duration::from_secs(10), async || {
            app.deliver_due().await;
            delivery_of(&app, &event, &failed).await.status == "failed"
                && delivery_of(&app, &head, &ordered).await.status == "failed"
        }).await, "the failing receiver used up the retry schedule");
        // Made after the event: it never could have received it.
        let (later, _) = app.create_webhook("store-a", &ok.url("/later"), None).await;

        let (status, answer) = app.api("GET", &format!("/events/{event}/explain"), Some(&app.store_a_key), None).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["event_id"], event);
        assert_eq!(answer["ordering_key"], "order-7");
        assert_eq!(answer["items"].as_array().unwrap().len(), 10, "one item per webhook of the store: {answer}");
        assert_eq!(answer["next_cursor"], Value::Null);

        check(&answer, &not_subscribed, "not_subscribed", &["review-created", "review-updated"], None);
        check(&answer, &filtered, "filtered_out", &["rating"], None);
        let off_row = webhook::Entity::find_by_id(&off).one(app.services.database()).await.unwrap().unwrap();
        check(&answer, &off, "webhook_off", &["off", "Turned off at"], off_row.disabled_at);
        assert_eq!(item(&answer, &off)["delivery_id"], delivery_of(&app, &event, &off).await.id);
        check(&answer, &paused, "paused", &["Retry-After", &hookline_core::human_time(until)], Some(until));
        // An open breaker's delivery is queued past its probe, which does not make it due: it
        // waits for the breaker to close, and says so.
        let held = delivery_of(&app, &event, &broken).await;
        assert_eq!(held.next_attempt_at, Some(hookline_core::store::queue::parked_until(Some(PauseReason::CircuitOpen), probe)));
        check(&answer, &broken, "paused", &["circuit breaker", &hookline_core::human_time(probe)], Some(probe));
        // Its log and its page say the probe's time too, the earliest it can go, not the hold.
        let (status, detail) = app.api("GET", &format!("/deliveries/{}", held.id), Some(&app.store_a_key), None).await;
        assert_eq!(status, 200, "{detail}");
        assert_eq!(detail["next_attempt_at"], iso8601(probe), "{detail}");
        let (status, log) = app.api("GET", &format!("/webhooks/{broken}/deliveries"), Some(&app.store_a_key), None).await;
        assert_eq!(status, 200, "{log}");
        assert_eq!(log["items"][0]["next_attempt_at"], iso8601(probe), "{log}");
        check(&answer, &ordered, "blocked_key", &["order-7", &head, "failed after 2 attempts"], None);
        assert_eq!(item(&answer, &ordered)["blocking_event_id"], head);
        let q = delivery_of(&app, &event, &queued).await;
        assert_eq!(q.status, "pending");
        // A retry without a breaker shows its own time; the admin's history reads the open
        // breakers of a page's webhooks at once, only theirs.
        let (_, detail) = app.api("GET", &format!("/deliveries/{}", q.id), Some(&app.store_a_key), None).await;
        assert_eq!(detail["next_attempt_at"], iso8601(q.next_attempt_at.expect("a retry")), "{detail}");
        let breakers = app.services.open_breakers_of(&[held.clone(), q.clone()]).await.unwrap();
        assert_eq!(breakers.keys().collect::<Vec<_>>(), [&broken]);
        check(&answer, &queued, "queued", &["attempt 2", "HTTP 500"], q.next_attempt_at);
        let f = delivery_of(&app, &event, &failed).await;
        check(&answer, &failed, "failed", &["Failed after 2 attempts", "HTTP 500"], Some(f.updated_at));
        let d = delivery_of(&app, &event, &delivered).await;
        assert_eq!(d.status, "succeeded");
        check(&answer, &delivered, "delivered", &["HTTP 200", "attempt 1"], Some(d.updated_at));
        assert_eq!(item(&answer, &delivered)["delivery_id"], d.id);
        let later_row = webhook::Entity::find_by_id(&later).one(app.services.database()).await.unwrap().unwrap();
        check(&answer, &later, "not_subscribed", &["created", "after the event"], Some(later_row.created_at));
        assert_eq!(item(&answer, &filtered)["delivery_id"], Value::Null);

        // The head itself failed, and holds its key.
        let (_, of_head) = app.api("GET", &format!("/events/{head}/explain"), Some(&app.admin_key), None).await;
        let h = delivery_of(&app, &head, &ordered).await;
        check(&of_head, &ordered, "failed", &["Failed after 2 attempts", "order-7", "retried or skipped"], Some(h.updated_at));
        check(&of_head, &filtered, "delivered", &["HTTP 200"], Some(delivery_of(&app, &head, &filtered).await.updated_at));

        // Pages of webhooks, by id, with the API's cursor.
        let (_, first) = app.api("GET", &format!("/events/{event}/explain?limit=5"), Some(&app.store_a_key), None).await;
        assert_eq!(first["items"].as_array().unwrap().len(), 5);
        let cursor = first["next_cursor"].as_str().expect("a next page").to_string();
        let (_, second) = app.api("GET", &format!("/events/{event}/explain?limit=5&cursor={}", enc(&cursor)), Some(&app.store_a_key), None).await;
        assert_eq!(second["items"].as_array().unwrap().len(), 5);
        assert_eq!(second["next_cursor"], Value::Null);
        let mut seen: Vec<String> = first["items"].as_array().unwrap().iter().chain(second["items"].as_array().unwrap())
            .map(|i| i["webhook_id"].as_str().unwrap().to_string()).collect();
        let all = seen.clone();
        seen.sort();
        assert_eq!(seen, all, "pages go by webhook id");
        seen.dedup();
        assert_eq!(seen.len(), 10);
    }

    async fn only_who_sees_the_event_gets_an_explanation_and_only_of_their_webhooks(backend: Backend) {
        let app = spawn_driven(backend).await;
        let ok = Receiver::start().await.unwrap();
        let (own, _) = app.create_webhook("store-a", &ok.url("/a"), None).await;
        let (status, _) = app.api("POST", "/applications", Some(&app.admin_key), Some(json!({"id": "app-x", "name": "App X"}))).await;
        assert_eq!(status, 201);
        let (status, _) = app.api("POST", "/applications", Some(&app.admin_key), Some(json!({"id": "app-y", "name": "App Y"}))).await;
        assert_eq!(status, 201);
        app.api("POST", "/applications/app-x/installations", Some(&app.admin_key), Some(json!({"store_id": "store-a"}))).await;
        app.api("POST", "/applications/app-y/installations", Some(&app.admin_key),
            Some(json!({"store_id": "store-a", "product_lines": ["Messages"]}))).await;
        let app_x = app.services.create_api_key(&Scope::Application("app-x".into()), "x").await.unwrap().key;
        let app_y = app.services.create_api_key(&Scope::Application("app-y".into()), "y").await.unwrap().key;
        let mut made = Vec::new();
        for key in [&app_x, &app_y] {
            let (status, hook) = app.api("POST", "/webhooks", Some(key),
                Some(json!({"tenant_type": "store", "tenant_id": "store-a", "url": ok.url("/app"), "event_types": null}))).await;
            assert_eq!(status, 201, "{hook}");
            made.push(hook["id"].as_str().unwrap().to_string());
        }
        let event = app.publish("store-a", "review-created", json!({"id": 1})).await;

        // The store sees every webhook of its own, the applications' too.
        let (status, answer) = app.api("GET", &format!("/events/{event}/explain"), Some(&app.store_a_key), None).await;
        assert_eq!(status, 200);
        assert_eq!(answer["items"].as_array().unwrap().len(), 3);
        check(&answer, &own, "queued", &["first attempt"], Some(delivery_of(&app, &event, &own).await.next_attempt_at.unwrap()));
        check(&answer, &made[1], "not_subscribed", &["app-y", "Messages", "Reviews"], None);

        // An application sees the event through its own delivery, and only its own webhooks.
        let (status, answer) = app.api("GET", &format!("/events/{event}/explain"), Some(&app_x), None).await;
        assert_eq!(status, 200, "{answer}");
        let ids: Vec<&str> = answer["items"].as_array().unwrap().iter().map(|i| i["webhook_id"].as_str().unwrap()).collect();
        assert_eq!(ids, [made[0].as_str()]);
        // One that got nothing of it does not see it, as GET /events/{id} has it.
        let (status, _) = app.api("GET", &format!("/events/{event}/explain"), Some(&app_y), None).await;
        assert_eq!(status, 404);
        let (status, _) = app.api("GET", &format!("/events/{event}"), Some(&app_y), None).await;
        assert_eq!(status, 404);

        // Another store's key: not found, as for an event that does not exist.
        let (status, body) = app.api("GET", &format!("/events/{event}/explain"), Some(&app.store_b_key), None).await;
        assert_eq!(status, 404, "{body}");
        let (status, _) = app.api("GET", "/events/no-such-event/explain", Some(&app.admin_key), None).await;
        assert_eq!(status, 404);
        let (status, _) = app.api("GET", &format!("/events/{event}/explain"), None, None).await;
        assert_eq!(status, 401);
    }

    async fn an_ordering_key_shows_its_events_in_publish_order_with_their_deliveries(backend: Backend) {
        let app = spawn_driven(backend).await;
        let ok = Receiver::start().await.unwrap();
        let (ordered, _) = app.create_webhook("store-a", &ok.url("/ordered"), None).await;
        set_webhook(&app, &ordered, webhook::Column::Ordering, Expr::value(true)).await;
        let (plain, _) = app.create_webhook("store-a", &ok.url("/plain"), None).await;
        let mut events = Vec::new();
        for (i, kind) in ["review-created", "review-updated", "review-deleted"].into_iter().enumerate() {
            events.push(publish_with(&app, json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": kind,
                "payload": {"n": i}, "ordering_key": "order/7 ü"})).await);
        }
        // Another key and another store's same key stay out.
        publish_with(&app, json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created",
            "payload": {}, "ordering_key": "order-8"})).await;
        publish_with(&app, json!({"tenant_type": "store", "tenant_id": "store-b", "event_type": "review-created",
            "payload": {}, "ordering_key": "order/7 ü"})).await;
        // The first goes out; the others of the key wait behind it or just after it.
        app.deliver_due().await;

        let path = format!("/ordering-keys/{}/events", enc("order/7 ü").replace('+', "%20"));
        let (status, answer) = app.api("GET", &path, Some(&app.store_a_key), None).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["ordering_key"], "order/7 ü");
        let items = answer["items"].as_array().unwrap();
        let ids: Vec<&str> = items.iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(ids, events.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(items[1]["event_type"], "review-updated");
        let sequences: Vec<i64> = items.iter().map(|e| e["sequence"].as_i64().unwrap()).collect();
        assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
        for (e, id) in items.iter().zip(&events) {
            let deliveries = e["deliveries"].as_array().unwrap();
            assert_eq!(deliveries.len(), 2, "{e}");
            for d in deliveries {
                let stored = delivery_of(&app, id, d["webhook_id"].as_str().unwrap()).await;
                assert_eq!(d["id"], stored.id);
                assert_eq!(d["status"], stored.status.as_str());
                let seq = d["ordering_seq"].as_i64();
                assert_eq!(seq.is_some(), d["webhook_id"] == ordered.as_str(), "{d}");
                assert_eq!(seq, stored.ordering_seq);
            }
        }
        assert_eq!(items[0]["deliveries"].as_array().unwrap().iter().find(|d| d["webhook_id"] == ordered.as_str()).unwrap()["status"], "succeeded");
        assert!(items[2]["deliveries"].as_array().unwrap().iter().any(|d| d["webhook_id"] == plain.as_str()));

        // Pages, oldest first.
        let (_, first) = app.api("GET", &format!("{path}?limit=2"), Some(&app.store_a_key), None).await;
        assert_eq!(first["items"].as_array().unwrap().len(), 2);
        let cursor = first["next_cursor"].as_str().unwrap().to_string();
        let (_, rest) = app.api("GET", &format!("{path}?limit=2&cursor={}", enc(&cursor)), Some(&app.store_a_key), None).await;
        assert_eq!(rest["items"][0]["id"], events[2]);
        assert_eq!(rest["next_cursor"], Value::Null);

        // The admin names the tenant; another store cannot; bad input is a 400 naming its field.
        let (status, answer) = app.api("GET", &format!("{path}?tenant_type=store&tenant_id=store-b"), Some(&app.admin_key), None).await;
        assert_eq!(status, 200);
        assert_eq!(answer["items"].as_array().unwrap().len(), 1);
        let (status, _) = app.api("GET", &format!("{path}?tenant_type=store&tenant_id=store-a"), Some(&app.store_b_key), None).await;
        assert_eq!(status, 403);
        let (status, body) = app.api("GET", &format!("{path}?cursor=nonsense"), Some(&app.store_a_key), None).await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = app.api("GET", &format!("/ordering-keys/{}/events", "k".repeat(256)), Some(&app.store_a_key), None).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.to_string().contains("ordering_key"), "{body}");
    }

    async fn the_event_page_shows_the_event_and_why_for_each_webhook_to_its_store_only(backend: Backend) {
        let app = spawn_driven(backend).await;
        let ok = Receiver::start().await.unwrap();
        let (sent, _) = app.create_webhook("store-a", &ok.url("/sent"), None).await;
        let (other_type, _) = app.create_webhook("store-a", &ok.url("/types"), Some(vec!["message-created"])).await;
        let (ordered, _) = app.create_webhook("store-a", &ok.url("/ordered"), None).await;
        set_webhook(&app, &ordered, webhook::Column::Ordering, Expr::value(true)).await;
        let first = publish_with(&app, json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created",
            "payload": {"review": "<b>grand</b>"}, "ordering_key": "order-9"})).await;
        let event = publish_with(&app, json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-updated",
            "payload": {"review": "<b>grand</b>"}, "ordering_key": "order-9"})).await;
        app.deliver_due().await;
        app.services.create_admin("ops@example.com", PASSWORD).await.unwrap();

        let merchant = app.sign_in("merchant@a.test", PASSWORD).await.unwrap();
        let res = app.http.get(app.url(&format!("/events/{event}"))).header("cookie", &merchant).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        assert!(html.contains("review-updated") && html.contains(&event), "the event's type and id");
        assert!(html.contains("order-9"), "its ordering key");
        assert!(html.contains("&lt;b&gt;grand&lt;/b&gt;") && !html.contains("<b>grand</b>"), "the payload, escaped");
        assert!(html.contains("id=\"explain-table\""));
        for (webhook, outcome) in [(&sent, "delivered"), (&other_type, "not_subscribed")] {
            assert!(html.contains(&format!("data-webhook-id=\"{webhook}\" data-outcome=\"{outcome}\"")), "{webhook} {outcome}");
        }
        // The ordered webhook got the key's first event, then this one, in order.
        let outcome = |html: &str, w: &str| html.split(&format!("data-webhook-id=\"{w}\" data-outcome=\"")).nth(1)
            .and_then(|rest| rest.split('"').next()).unwrap_or_default().to_string();
        assert!(["delivered", "queued"].contains(&outcome(&html, &ordered).as_str()), "{}", outcome(&html, &ordered));
        // The key's timeline lists both of its events, oldest first.
        let timeline = html.split("id=\"key-timeline\"").nth(1).expect("the key's timeline");
        let (a, b) = (timeline.find(&first).expect("the first event"), timeline.find(&event).expect("this event"));
        assert!(a < b);
        // A delivery's detail in the webhook's log links to its event's page.
        let (_, deliveries) = app.api("GET", &format!("/webhooks/{sent}/deliveries"), Some(&app.store_a_key), None).await;
        let delivery = deliveries["items"].as_array().unwrap().iter()
            .find(|d| d["event_id"] == event.as_str()).expect("this event's delivery")["id"].as_str().unwrap().to_string();
        let log = app.http.get(app.url(&format!("/settings/api/webhooks/{sent}?delivery={delivery}"))).header("cookie", &merchant).send().await.unwrap();
        assert!(log.text().await.unwrap().contains(&format!("href=\"/events/{event}\"")));

        // An admin sees any store's event, and the admin delivery history links it too.
        let admin = app.sign_in("ops@example.com", PASSWORD).await.unwrap();
        let res = app.http.get(app.url(&format!("/events/{event}"))).header("cookie", &admin).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let history = app.http.get(app.url("/admin/deliveries")).header("cookie", &admin).send().await.unwrap();
        assert!(history.text().await.unwrap().contains(&format!("href=\"/events/{event}\"")));

        // Another store's merchant gets the not-found page, with nothing of the event.
        let other = app.sign_in("merchant@b.test", PASSWORD).await.unwrap();
        let res = app.http.get(app.url(&format!("/events/{event}"))).header("cookie", &other).send().await.unwrap();
        assert_eq!(res.status(), 404);
        let html = res.text().await.unwrap();
        assert!(html.contains("Event not found"));
        assert!(!html.contains("grand") && !html.contains("order-9"));
        // Nobody signed in: not the event either.
        let res = app.http.get(app.url(&format!("/events/{event}"))).send().await.unwrap();
        assert!(!res.text().await.unwrap().contains("grand"));
    }
}
