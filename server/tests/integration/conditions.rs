//! Payload filters and thin payloads (issue 14, part 3): the webhook's delivery-control fields
//! in the API and the dashboard's form, conditions checked at publish (no delivery for an
//! event that does not meet them), filters of the three-step flow with conditions,
//! `include_fields` sent as a projection signed over the bytes sent, and the test bench.

use hookline_core::entities::delivery;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use test_receiver::Receiver;

use crate::common::*;

async fn deliveries_of_webhook(app: &TestApp, webhook_id: &str) -> u64 {
    delivery::Entity::find()
        .filter(delivery::Column::WebhookId.eq(webhook_id))
        .count(app.services.database())
        .await
        .unwrap()
}

/// Creates a store-a webhook with extra fields through the API; answers its body.
async fn create_with(app: &TestApp, url: &str, extra: Value) -> Value {
    let mut body = json!({"url": url});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (status, hook) = app.api("POST", "/webhooks", Some(&app.store_a_key), Some(body)).await;
    assert_eq!(status, 201, "{hook}");
    hook
}

fn payload_of(total: i64, country: &str) -> Value {
    json!({"order": {"id": format!("o{total}"), "total": total}, "country": country})
}

on_both_databases! {
    async fn the_four_fields_are_set_shown_kept_and_cleared(backend: Backend) {
        let app = spawn(backend).await;
        let key = app.store_a_key.clone();
        let conditions = json!({"all": [{"path": "order.total", "gt": 100}, {"any": [{"path": "country", "one_of": ["US", "CA"]}, {"path": "vip", "exists": true}]}]});
        let plain = create_with(&app, "https://a.example.com/plain", json!({})).await;
        assert_eq!((plain["ordering"].clone(), plain["rate_limit"].clone()), (json!(false), Value::Null));
        assert_eq!((plain["conditions"].clone(), plain["include_fields"].clone()), (Value::Null, Value::Null));

        let hook = create_with(&app, "https://a.example.com/full", json!({
            "ordering": true, "rate_limit": 50, "conditions": conditions, "include_fields": ["order.id", "order.total"],
        })).await;
        let id = hook["id"].as_str().unwrap();
        assert_eq!(hook["ordering"], true);
        assert_eq!(hook["rate_limit"], 50);
        assert_eq!(hook["conditions"], conditions);
        assert_eq!(hook["include_fields"], json!(["order.id", "order.total"]));
        let (_, read) = app.api("GET", &format!("/webhooks/{id}"), Some(&key), None).await;
        assert_eq!((read["conditions"].clone(), read["rate_limit"].clone()), (conditions.clone(), json!(50)));

        // A field not sent stays; one sent changes; null clears.
        let (status, changed) = app.api("PATCH", &format!("/webhooks/{id}"), Some(&key), Some(json!({"rate_limit": 7}))).await;
        assert_eq!(status, 200, "{changed}");
        assert_eq!(changed["rate_limit"], 7);
        assert_eq!(changed["ordering"], true);
        assert_eq!(changed["conditions"], conditions);
        assert_eq!(changed["include_fields"], json!(["order.id", "order.total"]));
        let (_, changed) = app.api("PATCH", &format!("/webhooks/{id}"), Some(&key), Some(json!({"description": "only this"}))).await;
        assert_eq!((changed["rate_limit"].clone(), changed["conditions"].clone()), (json!(7), conditions.clone()));
        let (status, cleared) = app.api("PATCH", &format!("/webhooks/{id}"), Some(&key), Some(json!({
            "ordering": false, "rate_limit": null, "conditions": null, "include_fields": null,
        }))).await;
        assert_eq!(status, 200, "{cleared}");
        assert_eq!(cleared["ordering"], false);
        for field in ["rate_limit", "conditions", "include_fields"] {
            assert_eq!(cleared[field], Value::Null, "{field}: {cleared}");
        }
        // The list shows them too.
        let (_, list) = app.api("GET", "/webhooks", Some(&key), None).await;
        assert!(list["items"].as_array().unwrap().iter().all(|w| w.get("conditions").is_some() && w.get("include_fields").is_some()), "{list}");
    }

    async fn a_bad_field_is_refused_with_its_name_and_nothing_is_written(backend: Backend) {
        let app = spawn(backend).await;
        let key = app.store_a_key.clone();
        let cases = [
            ("ordering", json!("yes"), "true or false"),
            ("rate_limit", json!(0), "1 to 10000"),
            ("rate_limit", json!(10_001), "1 to 10000"),
            ("rate_limit", json!(2.5), "whole number"),
            ("rate_limit", json!("fast"), "whole number"),
            ("conditions", json!({"path": "order.total", "gtt": 100}), "unknown operator \"gtt\""),
            ("conditions", json!({"all": []}), "at least one"),
            ("conditions", json!({"path": "a..b", "exists": true}), "empty part"),
            ("conditions", json!({"all": [{"any": [{"all": [{"any": [{"path": "a", "exists": true}]}]}]}]}), "3 deep"),
            ("conditions", json!({"all": (0..21).map(|i| json!({"path": format!("k{i}"), "exists": true})).collect::<Vec<_>>()}), "more than 20"),
            ("conditions", json!({"path": "x".repeat(256), "exists": true}), "255"),
            ("conditions", json!([1]), "must be an object"),
            ("include_fields", json!([]), "at least one"),
            ("include_fields", json!(["ok", ""]), "include_fields[1]"),
            ("include_fields", json!((0..51).map(|i| format!("k{i}")).collect::<Vec<_>>()), "at most 50"),
            ("include_fields", json!("order.id"), "list"),
        ];
        for (field, value, says) in &cases {
            let (status, err) = app.api("POST", "/webhooks", Some(&key), Some(json!({"url": "https://a.example.com/h", *field: value}))).await;
            assert_eq!(status, 400, "{field} = {value}: {err}");
            assert_eq!(err["error"]["field"], *field, "{err}");
            assert!(err["error"]["message"].as_str().unwrap().contains(says), "{field}: {err}");
        }
        assert_eq!(app.counts().await.3, 0, "no webhook was made");

        // An update with one bad field changes nothing, not even its good fields.
        let hook = create_with(&app, "https://a.example.com/keep", json!({"rate_limit": 5})).await;
        let id = hook["id"].as_str().unwrap();
        for (field, value, _) in &cases {
            let (status, err) = app.api("PATCH", &format!("/webhooks/{id}"), Some(&key), Some(json!({"url": "https://a.example.com/moved", "rate_limit": 9, *field: value}))).await;
            assert_eq!(status, 400, "{field}: {err}");
            assert_eq!(err["error"]["field"], *field, "{err}");
        }
        let (_, read) = app.api("GET", &format!("/webhooks/{id}"), Some(&key), None).await;
        assert_eq!((read["url"].clone(), read["rate_limit"].clone()), (json!("https://a.example.com/keep"), json!(5)));
    }

    async fn a_webhook_with_conditions_gets_only_the_events_that_meet_them(backend: Backend) {
        let app = spawn_driven(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let picky = create_with(&app, &receiver.url("/picky"), json!({
            "conditions": {"all": [{"path": "order.total", "gt": 100}, {"path": "country", "one_of": ["US", "CA"]}]},
        })).await;
        let (every, _) = app.create_webhook("store-a", &receiver.url("/every"), None).await;
        let picky_id = picky["id"].as_str().unwrap();
        receiver.set_secret(picky["secret"].as_str().unwrap());

        let big_us = app.publish("store-a", "review-created", payload_of(150, "US")).await;
        app.publish("store-a", "review-created", payload_of(50, "US")).await;
        app.publish("store-a", "review-created", payload_of(150, "FR")).await;
        app.publish("store-a", "review-created", json!({"no": "order"})).await;
        let big_ca = app.publish("store-a", "review-created", payload_of(101, "CA")).await;
        // A string is not a number: "150" is not above 100.
        app.publish("store-a", "review-created", json!({"order": {"total": "150"}, "country": "US"})).await;

        // No delivery at all for what the conditions keep out; every event for the other.
        assert_eq!(deliveries_of_webhook(&app, picky_id).await, 2);
        assert_eq!(deliveries_of_webhook(&app, &every).await, 6);
        assert_eq!(app.deliver_due().await, 8);
        let mut picked: Vec<String> = receiver
            .received()
            .iter()
            .filter(|r| r.path == "/picky")
            .map(|r| {
                assert!(r.verified, "{:?}", r.verify_error);
                r.header("webhook-id").unwrap().to_string()
            })
            .collect();
        picked.sort();
        let mut expected = vec![big_us, big_ca];
        expected.sort();
        assert_eq!(picked, expected);

        // Conditions cleared: every event again.
        let (status, _) = app.api("PATCH", &format!("/webhooks/{picky_id}"), Some(&app.store_a_key), Some(json!({"conditions": null}))).await;
        assert_eq!(status, 200);
        app.publish("store-a", "review-created", payload_of(1, "FR")).await;
        assert_eq!(deliveries_of_webhook(&app, picky_id).await, 3);
    }

    async fn include_fields_sends_the_projection_signed_over_the_bytes_sent(backend: Backend) {
        let app = spawn_driven(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let thin = create_with(&app, &receiver.url("/thin"), json!({
            "include_fields": ["order.total", "customer.email", "items.sku", "missing.path"],
        })).await;
        receiver.set_secret(thin["secret"].as_str().unwrap());
        // The producer's bytes: key order and number spelling are kept in the projection.
        let raw = r#"{"zeta": true, "order": {"id": "o1", "total": 150.50, "note": "x"}, "customer": {"name": "Ann", "email": "ann@example.com"}, "items": [{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 1}]}"#;
        let body = format!(r#"{{"tenant_type": "store", "tenant_id": "store-a", "event_type": "review-created", "payload": {raw}}}"#);
        let (status, published) = app.publish_raw(Some(&app.admin_key), &body).await;
        assert_eq!(status, 202, "{published}");
        assert_eq!(app.deliver_due().await, 1);
        let got = receiver.received();
        assert_eq!(got.len(), 1);
        assert!(got[0].verified, "the signature must cover the bytes sent: {:?}", got[0].verify_error);
        assert_eq!(
            got[0].body,
            r#"{"order":{"total":150.50},"customer":{"email":"ann@example.com"},"items":[{"sku":"A1"},{"sku":"B2"}]}"#
        );
        // The webhook page's signature check compares a pasted request with what was sent.
        let id = thin["id"].as_str().unwrap();
        let material = app.services.signature_material(&hookline_core::Scope::Admin, &id.into(), Some(&published["id"].as_str().unwrap().into())).await.unwrap();
        assert_eq!(material.original_body.as_deref(), Some(got[0].body.as_str()));

        // Back to the whole payload: the producer's bytes exactly, still verified.
        let (status, _) = app.api("PATCH", &format!("/webhooks/{id}"), Some(&app.store_a_key), Some(json!({"include_fields": null}))).await;
        assert_eq!(status, 200);
        app.publish_raw(Some(&app.admin_key), &body).await;
        assert_eq!(app.deliver_due().await, 1);
        let got = receiver.received();
        assert!(got[1].verified, "{:?}", got[1].verify_error);
        assert_eq!(got[1].body, raw);
    }

    async fn a_filter_with_conditions_makes_subscriptions_that_use_them(backend: Backend) {
        let app = spawn_driven(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let key = app.store_a_key.clone();
        let conditions = json!({"path": "order.total", "gte": 100});
        let (status, err) = app.api("POST", "/filters", Some(&key), Some(json!({"events": ["review-created"], "conditions": {"path": "order.total"}}))).await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error"]["field"], "conditions");
        let (status, filter) = app.api("POST", "/filters", Some(&key), Some(json!({"events": ["review-created"], "conditions": conditions}))).await;
        assert_eq!(status, 201, "{filter}");
        assert_eq!(filter["conditions"], conditions);
        let (_, read) = app.api("GET", &format!("/filters/{}", filter["id"].as_str().unwrap()), Some(&key), None).await;
        assert_eq!(read["conditions"], conditions);
        let (status, plain) = app.api("POST", "/filters", Some(&key), Some(json!({"events": ["review-created"]}))).await;
        assert_eq!((status, plain["conditions"].clone()), (201, Value::Null));

        let (_, target) = app.api("POST", "/targets", Some(&key), Some(json!({"url": receiver.url("/sub")}))).await;
        let (status, sub) = app.api("POST", "/subscriptions", Some(&key), Some(json!({"target_id": target["id"], "filter_id": filter["id"]}))).await;
        assert_eq!(status, 201, "{sub}");
        receiver.set_secret(sub["secret"].as_str().unwrap());
        let sub_id = sub["id"].as_str().unwrap();
        let (_, hook) = app.api("GET", &format!("/webhooks/{sub_id}"), Some(&key), None).await;
        assert_eq!(hook["conditions"], conditions);

        let kept = app.publish("store-a", "review-created", payload_of(100, "US")).await;
        app.publish("store-a", "review-created", payload_of(99, "US")).await;
        assert_eq!(deliveries_of_webhook(&app, sub_id).await, 1);
        app.deliver_due().await;
        let got = receiver.received();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].header("webhook-id"), Some(kept.as_str()));
        assert!(got[0].verified);
    }

    async fn another_store_cannot_read_change_or_test_a_webhooks_conditions(backend: Backend) {
        let app = spawn(backend).await;
        let hook = create_with(&app, "https://a.example.com/h", json!({"conditions": {"path": "vip", "exists": true}})).await;
        let id = hook["id"].as_str().unwrap();
        let (status, _) = app.api("GET", &format!("/webhooks/{id}"), Some(&app.store_b_key), None).await;
        assert_eq!(status, 404);
        let (status, _) = app.api("PATCH", &format!("/webhooks/{id}"), Some(&app.store_b_key), Some(json!({"conditions": null}))).await;
        assert_eq!(status, 404);
        let (_, read) = app.api("GET", &format!("/webhooks/{id}"), Some(&app.store_a_key), None).await;
        assert_eq!(read["conditions"], json!({"path": "vip", "exists": true}));
        // A filter of store-a is not one store-b may subscribe with.
        let (_, filter) = app.api("POST", "/filters", Some(&app.store_a_key), Some(json!({"events": ["review-created"], "conditions": {"path": "vip", "exists": true}}))).await;
        let (_, target) = app.api("POST", "/targets", Some(&app.store_b_key), Some(json!({"url": "https://b.example.com/t"}))).await;
        let (status, _) = app.api("POST", "/subscriptions", Some(&app.store_b_key), Some(json!({"target_id": target["id"], "filter_id": filter["id"]}))).await;
        assert_eq!(status, 422);
        let (status, _) = app.api("GET", &format!("/filters/{}", filter["id"].as_str().unwrap()), Some(&app.store_b_key), None).await;
        assert_eq!(status, 404);

        // The dashboard: merchant B can neither edit nor test store A's webhook.
        let b = app.sign_in("merchant@b.test", PASSWORD).await.expect("signed in");
        let (status, _) = app.server_fn(&b, "test_conditions", &[("id", id), ("conditions", "")]).await;
        assert_eq!(status, 404);
        let (status, _) = app.server_fn(&b, "update_webhook", &[("id", id), ("url", "https://b.example.com/x"), ("control[conditions]", "")]).await;
        assert_eq!(status, 404);
        let (_, read) = app.api("GET", &format!("/webhooks/{id}"), Some(&app.store_a_key), None).await;
        assert_eq!(read["url"], "https://a.example.com/h");
    }

    async fn the_dashboard_form_sets_the_fields_and_names_a_bad_one(backend: Backend) {
        let app = spawn(backend).await;
        let (id, _) = app.create_webhook("store-a", "https://a.example.com/h", None).await;
        let a = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");
        let form = |rate: &'static str, conditions: &'static str| {
            vec![
                ("id", id.clone()),
                ("url", "https://a.example.com/h".to_string()),
                ("events", "all".to_string()),
                ("control[ordering]", "on".to_string()),
                ("control[rate_limit]", rate.to_string()),
                ("control[conditions]", conditions.to_string()),
                ("control[include_fields]", "order.id, order.total".to_string()),
            ]
        };
        let send = async |pairs: Vec<(&str, String)>| {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.server_fn(&a, "update_webhook", &pairs).await
        };
        let (status, body) = send(form("25", r#"{"path": "order.total", "gt": 100}"#)).await;
        assert_eq!(status, 200, "{body}");
        let (_, read) = app.api("GET", &format!("/webhooks/{id}"), Some(&app.store_a_key), None).await;
        assert_eq!(read["ordering"], true);
        assert_eq!(read["rate_limit"], 25);
        assert_eq!(read["conditions"], json!({"path": "order.total", "gt": 100}));
        assert_eq!(read["include_fields"], json!(["order.id", "order.total"]));

        for (rate, conditions, field) in [("fast", "", "rate_limit"), ("0", "", "rate_limit"), ("", "{not json", "conditions"), ("", r#"{"path": "a", "gtt": 1}"#, "conditions")] {
            let (status, body) = send(form(rate, conditions)).await;
            assert_eq!(status, 400, "{rate} {conditions}: {body}");
            assert!(body.contains(field), "{body}");
        }
        let (_, read) = app.api("GET", &format!("/webhooks/{id}"), Some(&app.store_a_key), None).await;
        assert_eq!(read["rate_limit"], 25, "a refused form changes nothing");

        // Unchecked box and empty inputs: off and none.
        let pairs = [("id", id.as_str()), ("url", "https://a.example.com/h"), ("events", "all"), ("control[rate_limit]", ""), ("control[conditions]", ""), ("control[include_fields]", "")];
        let (status, body) = app.server_fn(&a, "update_webhook", &pairs).await;
        assert_eq!(status, 200, "{body}");
        let (_, read) = app.api("GET", &format!("/webhooks/{id}"), Some(&app.store_a_key), None).await;
        assert_eq!(read["ordering"], false);
        for field in ["rate_limit", "conditions", "include_fields"] {
            assert_eq!(read[field], Value::Null, "{field}");
        }

        // A caller without the control inputs (an older form) changes none of them.
        let (_, _) = send(form("4", r#"{"path": "vip", "exists": true}"#)).await;
        let (status, body) = app.server_fn(&a, "update_webhook", &[("id", id.as_str()), ("url", "https://a.example.com/h"), ("events", "all")]).await;
        assert_eq!(status, 200, "{body}");
        let (_, read) = app.api("GET", &format!("/webhooks/{id}"), Some(&app.store_a_key), None).await;
        assert_eq!((read["rate_limit"].clone(), read["ordering"].clone()), (json!(4), json!(true)));

        // Creating from the settings page takes them too.
        let (status, body) = app.server_fn(&a, "create_webhook", &[("url", "https://a.example.com/new"), ("control[rate_limit]", "3"), ("control[conditions]", r#"{"path": "vip", "exists": true}"#)]).await;
        assert!(status < 400, "{status}: {body}");
        let (_, list) = app.api("GET", "/webhooks", Some(&app.store_a_key), None).await;
        let made = list["items"].as_array().unwrap().iter().find(|w| w["url"] == "https://a.example.com/new").expect("created").clone();
        assert_eq!((made["rate_limit"].clone(), made["conditions"].clone()), (json!(3), json!({"path": "vip", "exists": true})));
    }

    async fn the_test_bench_runs_conditions_against_the_latest_events_of_the_chosen_types(backend: Backend) {
        let app = spawn(backend).await;
        let (id, _) = app.create_webhook("store-a", "https://a.example.com/h", None).await;
        for total in [10, 200, 300] {
            app.publish("store-a", "review-created", payload_of(total, "US")).await;
        }
        app.publish("store-a", "communication.sms.subscribed.v1", json!({"order": {"total": 999}})).await;
        // Another store's events are never part of it.
        app.publish("store-b", "review-created", payload_of(500, "US")).await;
        let a = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");
        let conditions = r#"{"path": "order.total", "gt": 100}"#;
        let (status, body) = app.server_fn(&a, "test_conditions", &[("id", &id), ("conditions", conditions), ("event_types[0]", "review-created")]).await;
        assert_eq!(status, 200, "{body}");
        let rows: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(rows.len(), 3, "{body}");
        let outcomes: Vec<Value> = rows.iter().map(|r| r["filtered_out_by"].clone()).collect();
        // Newest first.
        assert_eq!(outcomes, vec![Value::Null, Value::Null, json!("order.total > 100")]);
        assert!(rows.iter().all(|r| r["event_type"] == "review-created"));

        // Every type when none is chosen; no conditions: everything matches.
        let (_, body) = app.server_fn(&a, "test_conditions", &[("id", &id), ("conditions", "")]).await;
        let rows: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(rows.len(), 4);
        assert!(rows.iter().all(|r| r["filtered_out_by"].is_null()));

        // Bad conditions are named.
        let (status, body) = app.server_fn(&a, "test_conditions", &[("id", &id), ("conditions", r#"{"any": []}"#)]).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("conditions.any must list at least one"), "{body}");

        // A plain form post (before the WebAssembly loads) is sent back to the page with its inputs.
        let res = app.http.post(app.url("/ui/test_conditions"))
            .header("cookie", &a)
            .header("accept", "text/html")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("id={}&conditions={}&event_types%5B0%5D=review-created", enc(&id), enc(conditions)))
            .send().await.unwrap();
        assert!(res.status().is_redirection(), "{}", res.status());
        let location = res.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with(&format!("/settings/api/webhooks/{id}?bench=1")), "{location}");
        // As a browser asks for it (Accept: text/html): the page runs the bench, it does not redirect again.
        let page = app.http.get(app.url(&location)).header("cookie", &a).header("accept", "text/html").send().await.unwrap();
        assert_eq!(page.status(), 200);
        let page = page.text().await.unwrap();
        assert!(page.contains("2 of 3 events match."), "the page shows the bench's result");
        assert!(page.contains("filtered out: order.total &gt; 100"), "the page names the condition");
    }
}
