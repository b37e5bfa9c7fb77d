//! The event catalog: entries by name with their schema and example, schemas set by admins
//! only, payloads checked at publish when a type asks for it (and nothing written when one is
//! refused), the catalog pages, and test events of a chosen type.

use std::time::Duration;

use serde_json::{Value, json};
use test_receiver::Receiver;

use crate::common::*;

const SMS_SENT: &str = "communication.sms.sent.v1";

fn publish_body(event_type: &str, payload: Value) -> String {
    json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": event_type, "payload": payload})
        .to_string()
}

/// The seed's example of `communication.sms.sent.v1`, with `change` applied to it.
fn sms_sent(change: impl FnOnce(&mut Value)) -> Value {
    let mut payload = json!({
        "event_name": SMS_SENT, "timestamp": "2024-01-15T11:57:54", "source_name": "part_of_flow",
        "flow_id": 1019753, "campaign_id": null,
        "customer": {"external_id": 7144482046187_u64, "first_name": "Tom", "last_name": "Smith",
                     "email": "tom.smith@example.com", "phone": "+14155552671"},
    });
    change(&mut payload);
    payload
}

async fn set_schema(app: &TestApp, name: &str, body: Value) -> (u16, Value) {
    app.api("PATCH", &format!("/event-types/{name}"), Some(&app.admin_key), Some(body)).await
}

async fn event_count(app: &TestApp) -> u64 {
    app.counts().await.0
}

on_both_databases! {
    async fn an_event_type_is_read_by_name_with_its_schema_and_example(backend: Backend) {
        let app = spawn(backend).await;
        let (status, entry) = app.api("GET", &format!("/event-types/{SMS_SENT}"), Some(&app.store_a_key), None).await;
        assert_eq!(status, 200, "{entry}");
        assert_eq!(entry["name"], SMS_SENT);
        assert_eq!(entry["product_group"], "SMS");
        assert_eq!(entry["tenant_type"], "store");
        assert_eq!(entry["example_payload"], sms_sent(|_| {}));
        assert_eq!(entry["validate_payloads"], false, "checking payloads is off by default");
        // No admin set one: the schema is inferred from the example.
        assert_eq!(entry["schema_source"], "inferred");
        let schema = &entry["schema"];
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["properties"]["customer"]["properties"]["email"]["type"], "string");
        assert_eq!(schema["properties"]["flow_id"]["type"], "integer");
        assert!(schema["required"].as_array().unwrap().contains(&json!("customer")), "{schema}");
        // The example satisfies its own inferred schema.
        let validator = jsonschema::validator_for(schema).expect("a valid JSON Schema");
        assert!(validator.is_valid(&entry["example_payload"]));

        // The admin's key reads it too; no key is 401; an unknown name is 404 in the API's shape.
        let (status, _) = app.api("GET", &format!("/event-types/{SMS_SENT}"), Some(&app.admin_key), None).await;
        assert_eq!(status, 200);
        let (status, _) = app.api("GET", &format!("/event-types/{SMS_SENT}"), None, None).await;
        assert_eq!(status, 401);
        let (status, body) = app.api("GET", "/event-types/no.such.type.v1", Some(&app.store_a_key), None).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "not_found", "{body}");
        // The list shows the same entry.
        let (_, page) = app.api("GET", "/event-types?limit=250", Some(&app.store_a_key), None).await;
        let listed = page["items"].as_array().unwrap().iter().find(|t| t["name"] == SMS_SENT).cloned();
        assert_eq!(listed.as_ref(), Some(&entry));
    }

    async fn only_an_admin_changes_a_schema_and_a_schema_that_is_not_valid_is_refused(backend: Backend) {
        let app = spawn(backend).await;
        let path = format!("/event-types/{SMS_SENT}");
        let good = json!({"type": "object", "properties": {"customer": {"type": "object",
            "properties": {"email": {"type": "string", "format": "email"}}, "required": ["email"]}},
            "required": ["customer"]});
        // A store's key may not, and nothing changes.
        let (status, body) = app.api("PATCH", &path, Some(&app.store_a_key),
            Some(json!({"schema": good, "validate_payloads": true}))).await;
        assert_eq!(status, 403, "{body}");
        let (_, entry) = app.api("GET", &path, Some(&app.store_a_key), None).await;
        assert_eq!((entry["schema_source"].as_str(), entry["validate_payloads"].as_bool()), (Some("inferred"), Some(false)));

        for (schema, says) in [
            (json!({"type": "nonsense"}), "not a valid JSON Schema"),
            (json!({"properties": {"a": {"minLength": -1}}}), "not a valid JSON Schema"),
            (json!("a string"), "JSON object"),
            (json!({"$ref": "https://schemas.example.com/sms.json"}), "not a valid JSON Schema"),
            (json!({"type": "object", "required": ["order_id"]}), "example payload"),
        ] {
            let (status, body) = set_schema(&app, SMS_SENT, json!({"schema": schema, "validate_payloads": true})).await;
            assert_eq!(status, 422, "{schema}: {body}");
            assert_eq!(body["error"]["field"], "schema", "{schema}: {body}");
            assert!(body["error"]["message"].as_str().unwrap().contains(says), "{schema}: {body}");
        }
        // Nothing of a refused change was kept, the validation switch included.
        let (_, entry) = app.api("GET", &path, Some(&app.store_a_key), None).await;
        assert_eq!((entry["schema_source"].as_str(), entry["validate_payloads"].as_bool()), (Some("inferred"), Some(false)));

        let (status, body) = set_schema(&app, "no.such.type.v1", json!({"schema": good})).await;
        assert_eq!(status, 404, "{body}");
        // Hookline's own events are never checked.
        let (status, body) = set_schema(&app, "webhook.disabled", json!({"validate_payloads": true})).await;
        assert_eq!((status, body["error"]["field"].as_str()), (422, Some("validate_payloads")), "{body}");

        let (status, entry) = set_schema(&app, SMS_SENT, json!({"schema": good})).await;
        assert_eq!(status, 200, "{entry}");
        assert_eq!(entry["schema_source"], "custom");
        assert_eq!(entry["schema"], good);
        assert_eq!(entry["validate_payloads"], false, "a field left out stays as it is");
        // An empty change changes nothing.
        let (status, same) = set_schema(&app, SMS_SENT, json!({})).await;
        assert_eq!((status, &same), (200, &entry));
        // `null` removes it: the catalog infers one again.
        let (status, entry) = set_schema(&app, SMS_SENT, json!({"schema": null})).await;
        assert_eq!(status, 200, "{entry}");
        assert_eq!(entry["schema_source"], "inferred");
    }

    async fn a_payload_is_checked_only_when_its_type_asks_and_a_refusal_names_the_path(backend: Backend) {
        let app = spawn(backend).await;
        let key = Some(app.store_a_key.as_str());
        let bad_email = sms_sent(|p| p["customer"]["email"] = json!(42));
        // Off by default: a payload that does not match is accepted as before.
        let (status, body) = app.publish_raw(key, &publish_body(SMS_SENT, bad_email.clone())).await;
        assert_eq!(status, 202, "{body}");

        let (status, _) = set_schema(&app, SMS_SENT, json!({"validate_payloads": true})).await;
        assert_eq!(status, 200);
        let before = event_count(&app).await;
        let (status, body) = app.publish_raw(key, &publish_body(SMS_SENT, bad_email.clone())).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["field"], "payload");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("payload.customer.email: 42 is not of type \"string\""), "{message}");
        let (status, body) = app.publish_raw(key, &publish_body(SMS_SENT, sms_sent(|p| {
            p["customer"].as_object_mut().unwrap().remove("email");
        }))).await;
        assert_eq!(status, 422, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("payload.customer: \"email\" is a required property"), "{body}");
        assert_eq!(event_count(&app).await, before, "a refused payload writes nothing");
        // A matching payload, with fields the example does not have, is accepted.
        let (status, body) = app.publish_raw(key, &publish_body(SMS_SENT, sms_sent(|p| p["extra"] = json!("ok")))).await;
        assert_eq!(status, 202, "{body}");

        // An admin's schema: positions in arrays read as such.
        let schema = json!({"type": "object", "properties": {"items": {"type": "array",
            "items": {"type": "object", "properties": {"sku": {"type": "string"}}}}}});
        let (status, body) = set_schema(&app, SMS_SENT, json!({"schema": schema})).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = app.publish_raw(key, &publish_body(SMS_SENT,
            json!({"items": [{"sku": "a"}, {"sku": 7}]}))).await;
        assert_eq!(status, 422, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("payload.items[1].sku: 7 is not of type"), "{body}");

        // Off again: the same payload goes through.
        let (status, _) = set_schema(&app, SMS_SENT, json!({"validate_payloads": false})).await;
        assert_eq!(status, 200);
        let (status, body) = app.publish_raw(key, &publish_body(SMS_SENT, json!({"items": [{"sku": 7}]}))).await;
        assert_eq!(status, 202, "{body}");
        // Another type was never checked.
        let (status, body) = app.publish_raw(key, &publish_body("review-created", json!({"anything": true}))).await;
        assert_eq!(status, 202, "{body}");
    }

    async fn publishes_written_together_refuse_only_the_payloads_that_do_not_match(backend: Backend) {
        let app = spawn(backend).await;
        let (hook, _) = app.create_webhook("store-a", "https://a.example.com/hook", Some(vec![SMS_SENT])).await;
        let (status, _) = set_schema(&app, SMS_SENT, json!({"validate_payloads": true})).await;
        assert_eq!(status, 200);
        let before = app.counts().await;
        // Sent at once, so the writer takes them in the same batches.
        let mut sends = tokio::task::JoinSet::new();
        for i in 0..24 {
            let (http, url, key) = (app.http.clone(), app.url("/api/v1/events"), app.store_a_key.clone());
            let payload = if i % 2 == 0 {
                sms_sent(|p| p["flow_id"] = json!(i))
            } else {
                sms_sent(|p| p["flow_id"] = json!(format!("flow {i}")))
            };
            sends.spawn(async move {
                let res = http.post(url).bearer_auth(key).header("content-type", "application/json")
                    .body(publish_body(SMS_SENT, payload)).send().await.unwrap();
                let status = res.status().as_u16();
                (i, status, serde_json::from_str::<Value>(&res.text().await.unwrap()).unwrap())
            });
        }
        while let Some(sent) = sends.join_next().await {
            let (i, status, body) = sent.unwrap();
            crate::openapi::assert_documented("POST", "/events", status, &body);
            if i % 2 == 0 {
                assert_eq!(status, 202, "{i}: {body}");
            } else {
                assert_eq!(status, 422, "{i}: {body}");
                assert!(body["error"]["message"].as_str().unwrap().starts_with("payload.flow_id: "), "{body}");
            }
        }
        let after = app.counts().await;
        assert_eq!((after.0 - before.0, after.1 - before.1), (12, 12), "one event and one delivery per valid payload");
        let (_, log) = app.api("GET", &format!("/webhooks/{hook}/deliveries?limit=250"), Some(&app.store_a_key), None).await;
        assert_eq!(log["items"].as_array().map(Vec::len), Some(12));
    }

    async fn the_public_catalog_needs_no_sign_in_and_a_search_narrows_it(backend: Backend) {
        let app = spawn(backend).await;
        let page = |path: &str, cookie: Option<String>| {
            let mut req = app.http.get(app.url(path));
            if let Some(c) = cookie {
                req = req.header("cookie", c);
            }
            async move {
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                let location = res.headers().get("location").map(|v| v.to_str().unwrap().to_string());
                (status, location, res.text().await.unwrap())
            }
        };
        let entry = |name: &str| format!("id=\"{name}\"");
        let (status, _, html) = page("/docs/events", None).await;
        assert_eq!(status, 200);
        for name in [SMS_SENT, "communication.sms.unsubscribed.v1", "review-created", "webhook.disabled"] {
            assert!(html.contains(&entry(name)), "{name} is not on the public catalog");
        }
        assert!(html.contains("JSON Schema") && html.contains("tom.smith@example.com"), "schemas and examples are shown");
        assert!(html.contains("Schema inferred from the example"));
        assert!(!html.contains("Change schema"), "nobody signed in changes anything");

        let (_, _, html) = page("/docs/events?q=SMS+unsubscribes", None).await;
        assert!(html.contains(&entry("communication.sms.unsubscribed.v1")), "found by description and group");
        assert!(!html.contains(&entry(SMS_SENT)) && !html.contains(&entry("communication.email.unsubscribed.v1")));
        assert!(html.contains("1 event type"), "the count says how many matched");
        let (_, _, html) = page("/docs/events?q=%3Cb%3Enothing", None).await;
        assert!(html.contains("No event type matches “&lt;b&gt;nothing”."), "the search is shown escaped");

        // The signed-in catalog needs a session.
        let (status, location, html) = page("/settings/api/events", None).await;
        assert!(status >= 300 && location.as_deref() == Some("/login"), "{status} {location:?}");
        assert!(!html.contains(&entry(SMS_SENT)));
        let merchant = app.sign_in("merchant@a.test", PASSWORD).await.unwrap();
        let (status, _, html) = page("/settings/api/events?q=review", Some(merchant.clone())).await;
        assert_eq!(status, 200);
        assert!(html.contains(&entry("review-created")) && !html.contains(&entry(SMS_SENT)));
        assert!(!html.contains("Change schema"), "a merchant does not change schemas");
        // Settings › API links to it.
        let (_, _, html) = page("/settings/api", Some(merchant)).await;
        assert!(html.contains("href=\"/settings/api/events\""));

        app.services.create_admin("ops@example.com", PASSWORD).await.unwrap();
        let admin = app.sign_in("ops@example.com", PASSWORD).await.unwrap();
        let (status, _, html) = page("/settings/api/events", Some(admin)).await;
        assert_eq!(status, 200);
        assert!(html.contains("Change schema"));
    }

    async fn the_dashboard_changes_a_schema_for_admins_only(backend: Backend) {
        let app = spawn(backend).await;
        let schema = json!({"type": "object", "required": ["customer"]}).to_string();
        let form = [("name", SMS_SENT), ("schema", schema.as_str()), ("validate_payloads", "on")];
        let merchant = app.sign_in("merchant@a.test", PASSWORD).await.unwrap();
        let (status, _) = app.server_fn(&merchant, "event_schema", &form).await;
        assert_eq!(status, 404);
        app.services.create_admin("ops@example.com", PASSWORD).await.unwrap();
        let admin = app.sign_in("ops@example.com", PASSWORD).await.unwrap();
        let (status, body) = app.server_fn(&admin, "event_schema", &[("name", SMS_SENT), ("schema", "{not json")]).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("not valid JSON") && body.contains("\"schema\""), "{body}");
        let (status, body) = app.server_fn(&admin, "event_schema", &form).await;
        assert_eq!(status, 200, "{body}");
        let (_, entry) = app.api("GET", &format!("/event-types/{SMS_SENT}"), Some(&app.store_a_key), None).await;
        assert_eq!((entry["schema_source"].as_str(), entry["validate_payloads"].as_bool()), (Some("custom"), Some(true)));
        // Publishing in this process uses it at once.
        let (status, body) = app.publish_raw(Some(&app.store_a_key), &publish_body(SMS_SENT, json!({}))).await;
        assert_eq!(status, 422, "{body}");
        // An empty schema and no box: back to the inferred schema, and not checked.
        let (status, _) = app.server_fn(&admin, "event_schema", &[("name", SMS_SENT), ("schema", " ")]).await;
        assert_eq!(status, 200);
        let (_, entry) = app.api("GET", &format!("/event-types/{SMS_SENT}"), Some(&app.store_a_key), None).await;
        assert_eq!((entry["schema_source"].as_str(), entry["validate_payloads"].as_bool()), (Some("inferred"), Some(false)));
    }

    async fn a_test_event_of_the_chosen_type_reaches_the_receiver(backend: Backend) {
        let app = spawn(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (chosen, secret) = app.create_webhook("store-a", &receiver.url("/chosen"),
            Some(vec!["review-created", SMS_SENT])).await;
        receiver.set_secret(&secret);
        let (all, _) = app.create_webhook("store-a", &receiver.url("/all"), None).await;
        let merchant = app.sign_in("merchant@a.test", PASSWORD).await.unwrap();

        // The choice: the webhook's own types, in the catalog's order; every store-level type
        // for a webhook that receives all.
        let (status, body) = app.server_fn(&merchant, "test_event_types", &[("id", chosen.as_str())]).await;
        assert_eq!(status, 200, "{body}");
        let types: Vec<String> = serde_json::from_str(&body).unwrap();
        let mut expected = vec!["review-created".to_string(), SMS_SENT.to_string()];
        expected.sort_by_key(|t| types.iter().position(|x| x == t));
        assert_eq!(types, expected);
        let (_, body) = app.server_fn(&merchant, "test_event_types", &[("id", all.as_str())]).await;
        let types: Vec<String> = serde_json::from_str(&body).unwrap();
        assert!(types.contains(&SMS_SENT.to_string()) && types.contains(&"review-created".to_string()));
        assert!(!types.iter().any(|t| t.starts_with("integrations.applications.")), "no application events: {types:?}");
        // Another store's merchant sees nothing of it.
        let other = app.sign_in("merchant@b.test", PASSWORD).await.unwrap();
        let (status, _) = app.server_fn(&other, "test_event_types", &[("id", chosen.as_str())]).await;
        assert_eq!(status, 404);
        let (status, _) = app.server_fn(&other, "send_test_of_type", &[("id", chosen.as_str()), ("event_type", SMS_SENT)]).await;
        assert_eq!(status, 404);

        let (status, body) = app.server_fn(&merchant, "send_test_of_type", &[("id", chosen.as_str()), ("event_type", SMS_SENT)]).await;
        assert_eq!(status, 200, "{body}");
        let got = receiver.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(got.len(), 1);
        assert!(got[0].verified, "{:?}", got[0].verify_error);
        let body: Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(body, sms_sent(|_| {}), "the catalog's example is what is sent");
        let (_, log) = app.api("GET", &format!("/webhooks/{chosen}/deliveries"), Some(&app.store_a_key), None).await;
        assert_eq!(log["items"][0]["event_type"], SMS_SENT);
    }
}
