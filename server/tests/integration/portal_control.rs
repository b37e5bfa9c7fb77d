//! The embeddable portal's delivery control (issue 14): its webhook forms set ordering, the
//! rate limit, payload conditions and the fields sent as the dashboard's do, its webhook page
//! shows them and runs the conditions bench, and all of it reaches only the webhooks the
//! portal session reaches (its store's, or on a store only its application's own).

use serde_json::{Value, json};

use crate::common::*;

/// A portal session's token for `tenant`, asked with `key` and opened as a browser would.
async fn portal_session(app: &TestApp, key: &str, tenant: Value) -> String {
    let (status, body) = app.api("POST", "/portal-sessions", Some(key), Some(tenant)).await;
    assert_eq!(status, 201, "{body}");
    let res = app.http.get(body["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 303, "the link opens");
    let to = res.headers()["location"].to_str().unwrap().to_string();
    to.strip_prefix("/portal/")
        .and_then(|r| r.strip_suffix("/webhooks"))
        .expect("a session address")
        .to_string()
}

async fn portal_fn(app: &TestApp, name: &str, form: &[(&str, &str)]) -> (u16, String) {
    app.server_fn("", name, form).await
}

async fn read(app: &TestApp, id: &str) -> Value {
    let (status, hook) = app.api("GET", &format!("/webhooks/{id}"), Some(&app.admin_key), None).await;
    assert_eq!(status, 200, "{hook}");
    hook
}

fn control(read: &Value) -> Value {
    json!([read["ordering"], read["rate_limit"], read["conditions"], read["include_fields"]])
}

/// The edit form's fields for webhook `id` of the portal session `token`.
fn edit_form<'a>(token: &'a str, id: &'a str, rate: &'a str, conditions: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("session", token),
        ("id", id),
        ("url", "https://a.example.com/portal"),
        ("events", "all"),
        ("control[ordering]", "on"),
        ("control[rate_limit]", rate),
        ("control[conditions]", conditions),
        ("control[include_fields]", "order.id, order.total"),
    ]
}

on_both_databases! {
    async fn the_portal_sets_delivery_control_and_runs_the_conditions_bench(backend: Backend) {
        let app = spawn(backend).await;
        let token = portal_session(&app, &app.store_a_key, json!({})).await;

        // Created in the portal with the four fields.
        let (status, made) = portal_fn(&app, "portal_create_webhook", &[
            ("session", &token), ("url", "https://a.example.com/portal"), ("events", "all"),
            ("control[rate_limit]", "7"), ("control[conditions]", r#"{"path": "vip", "exists": true}"#),
            ("control[include_fields]", "order.id"),
        ]).await;
        assert_eq!(status, 200, "{made}");
        let id: String = serde_json::from_str(&made).unwrap();
        assert_eq!(control(&read(&app, &id).await), json!([false, 7, {"path": "vip", "exists": true}, ["order.id"]]));
        // A bad field on creation is named, and nothing is made.
        let (status, body) = portal_fn(&app, "portal_create_webhook", &[
            ("session", &token), ("url", "https://a.example.com/refused"), ("control[rate_limit]", "fast"),
        ]).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("rate_limit"), "{body}");
        let (_, list) = app.api("GET", "/webhooks", Some(&app.store_a_key), None).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");

        // Edited in the portal.
        let conditions = r#"{"path": "order.total", "gt": 100}"#;
        let (status, body) = portal_fn(&app, "portal_update_webhook", &edit_form(&token, &id, "25", conditions)).await;
        assert_eq!(status, 200, "{body}");
        let expected = json!([true, 25, {"path": "order.total", "gt": 100}, ["order.id", "order.total"]]);
        assert_eq!(control(&read(&app, &id).await), expected);
        for (rate, conditions, field) in [("0", "", "rate_limit"), ("", "{not json", "conditions"), ("", r#"{"path": "a", "gtt": 1}"#, "conditions")] {
            let (status, body) = portal_fn(&app, "portal_update_webhook", &edit_form(&token, &id, rate, conditions)).await;
            assert_eq!(status, 400, "{rate} {conditions}: {body}");
            assert!(body.contains(field), "{field}: {body}");
        }
        assert_eq!(control(&read(&app, &id).await), expected, "a refused form changes nothing");

        // The webhook's page lists them, and its edit form starts from them.
        let page = app.http.get(app.url(&format!("/portal/{token}/webhooks/{id}?edit=1"))).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let page = page.text().await.unwrap();
        assert!(page.contains("25 per second"), "the facts show the rate limit");
        assert!(page.contains("One at a time per ordering key"), "the facts show the order");
        assert!(page.contains(r#"name="control[rate_limit]""#) && page.contains(r#"value="25""#), "the edit form has it");
        assert!(page.contains("Test conditions"), "the page has the bench");

        // The bench, with the portal's session and no cookie.
        for total in [10, 200, 300] {
            app.publish("store-a", "review-created", json!({"order": {"total": total}})).await;
        }
        app.publish("store-b", "review-created", json!({"order": {"total": 500}})).await;
        let bench = [("session", token.as_str()), ("id", id.as_str()), ("conditions", conditions), ("event_types[0]", "review-created")];
        let (status, body) = portal_fn(&app, "test_conditions", &bench).await;
        assert_eq!(status, 200, "{body}");
        let rows: Vec<Value> = serde_json::from_str(&body).unwrap();
        let outcomes: Vec<Value> = rows.iter().map(|r| r["filtered_out_by"].clone()).collect();
        assert_eq!(outcomes, vec![Value::Null, Value::Null, json!("order.total > 100")], "{body}");
        let (status, body) = portal_fn(&app, "portal_bench_types", &[("session", &token), ("id", &id)]).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("review-created"), "{body}");
        // A plain form post goes back to the portal's page, which runs the bench.
        let res = app.http.post(app.url("/ui/test_conditions"))
            .header("accept", "text/html")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("session={token}&id={}&conditions={}&event_types%5B0%5D=review-created", enc(&id), enc(conditions)))
            .send().await.unwrap();
        assert!(res.status().is_redirection(), "{}", res.status());
        let location = res.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with(&format!("/portal/{token}/webhooks/{id}?bench=1")), "{location}");
        let page = app.http.get(app.url(&location)).header("accept", "text/html").send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("2 of 3 events match."), "the portal's page shows the bench's result");
    }

    async fn the_portals_delivery_control_reaches_only_the_sessions_webhooks(backend: Backend) {
        let app = spawn(backend).await;
        let admin = Some(app.admin_key.as_str());
        app.api("POST", "/applications", admin, Some(json!({"id": "app-1", "name": "Reviews"}))).await;
        let (status, body) = app.api("POST", "/applications/app-1/installations", admin, Some(json!({"store_id": "store-a"}))).await;
        assert_eq!(status, 201, "{body}");
        let partner = app.services.create_api_key(&hookline_core::Scope::Application("app-1".into()), "partner").await.unwrap().key;
        let (merchants, _) = app.create_webhook("store-a", "https://a.example.com/merchant", None).await;
        let (theirs, _) = app.create_webhook("store-b", "https://b.example.com/theirs", None).await;
        let (status, own) = app.api("POST", "/webhooks", Some(&partner), Some(json!({"url": "https://a.example.com/own", "tenant_type": "store", "tenant_id": "store-a"}))).await;
        assert_eq!(status, 201, "{own}");
        let own = own["id"].as_str().unwrap().to_string();
        app.publish("store-a", "review-created", json!({"order": {"total": 1}})).await;

        // The application's portal on store-a: its own webhook, not the merchant's nor store-b's.
        let token = portal_session(&app, &partner, json!({"tenant_type": "store", "tenant_id": "store-a"})).await;
        let before = [control(&read(&app, &merchants).await), control(&read(&app, &theirs).await)];
        for other in [&merchants, &theirs] {
            let (status, _) = portal_fn(&app, "portal_update_webhook", &edit_form(&token, other, "5", "")).await;
            assert_eq!(status, 404, "update of {other}");
            let (status, _) = portal_fn(&app, "test_conditions", &[("session", &token), ("id", other), ("conditions", "")]).await;
            assert_eq!(status, 404, "bench of {other}");
            let (status, _) = portal_fn(&app, "portal_bench_types", &[("session", &token), ("id", other)]).await;
            assert_eq!(status, 404, "bench types of {other}");
        }
        assert_eq!([control(&read(&app, &merchants).await), control(&read(&app, &theirs).await)], before);
        let (status, body) = portal_fn(&app, "portal_update_webhook", &edit_form(&token, &own, "5", "")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(read(&app, &own).await["rate_limit"], 5);
        let (status, body) = portal_fn(&app, "test_conditions", &[("session", &token), ("id", &own), ("conditions", "")]).await;
        assert_eq!(status, 200, "{body}");
        let rows: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(rows.len(), 1, "{body}");

        // Installed for Reviews only, the application's bench reads none of the store's SMS
        // events, though its webhook takes every type.
        let sms = app.publish("store-a", "communication.sms.subscribed.v1", json!({"phone": "+14155552671"})).await;
        let (_, body) = portal_fn(&app, "test_conditions", &[("session", &token), ("id", &own), ("conditions", "")]).await;
        assert!(!body.contains(&sms) && body.contains("review-created"), "{body}");
        let probe = [
            ("session", token.as_str()),
            ("id", own.as_str()),
            ("conditions", r#"{"path": "phone", "exists": true}"#),
            ("event_types[0]", "communication.sms.subscribed.v1"),
        ];
        let (status, body) = portal_fn(&app, "test_conditions", &probe).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("event_types") && !body.contains(&sms), "{body}");
        let (_, types) = portal_fn(&app, "portal_bench_types", &[("session", &token), ("id", &own)]).await;
        assert!(types.contains("review-created") && !types.contains("communication.sms"), "{types}");
        // The store's own portal reads them.
        let store_token = portal_session(&app, &app.store_a_key, json!({})).await;
        let (_, body) = portal_fn(&app, "test_conditions", &[("session", &store_token), ("id", &merchants), ("conditions", "")]).await;
        assert!(body.contains(&sms), "{body}");

        // A forged session reaches nothing, whatever dashboard cookie comes with it; an ended
        // one neither.
        let cookie = app.sign_in("merchant@b.test", PASSWORD).await.unwrap();
        let (status, _) = app.server_fn(&cookie, "test_conditions", &[("session", "forged"), ("id", &theirs), ("conditions", "")]).await;
        assert_eq!(status, 410);
        let (status, _) = app.server_fn(&cookie, "portal_bench_types", &[("session", "forged"), ("id", &theirs)]).await;
        assert_eq!(status, 410);
        // Without a session, the bench is the signed-in merchant's, as before: theirs, not store-a's.
        let (status, _) = app.server_fn(&cookie, "test_conditions", &[("id", &own), ("conditions", "")]).await;
        assert_eq!(status, 404);
    }
}
