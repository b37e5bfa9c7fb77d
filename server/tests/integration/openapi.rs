//! The OpenAPI document is generated from the code; these tests keep it honest. Every
//! operation it lists is called, and every real answer is validated against it with a JSON
//! Schema validator; the document and the error bodies are snapshots, so a change to the API
//! shows up as a reviewed diff (`cargo insta review`, or `INSTA_UPDATE=always` then read the
//! diff). A missing or different snapshot fails the test.

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

use hookline::api::openapi::{document, documented_operations};
use serde_json::{Value, json};
use test_receiver::Receiver;

use crate::common::*;

/// The document, read once.
fn doc() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(document)
}

/// The documented path an actual request path falls under, e.g. `/webhooks/{id}` for
/// `/webhooks/0191…`; a literal segment beats a parameter.
pub fn template_of(method: &str, path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let actual: Vec<&str> = path.split('/').collect();
    let mut best: Option<(usize, String)> = None;
    for o in documented_operations(doc()) {
        if o.method != method.to_lowercase() {
            continue;
        }
        let documented: Vec<&str> = o.path.split('/').collect();
        if documented.len() != actual.len() {
            continue;
        }
        let mut literal = 0;
        let fits = documented.iter().zip(&actual).all(|(d, a)| {
            if d.starts_with('{') {
                !a.is_empty()
            } else {
                literal += 1;
                d == a
            }
        });
        if fits && best.as_ref().is_none_or(|(n, _)| literal > *n) {
            best = Some((literal, o.path.clone()));
        }
    }
    best.map(|(_, path)| path)
}

/// Marks every object schema of the document closed, so an answer with a field the document
/// does not name fails too.
fn closed(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(closed);
        }
        Value::Array(items) => items.iter_mut().for_each(closed),
        _ => {}
    }
}

/// What is wrong with an answer of `method path` with `status` and `body`, per the document:
/// an undocumented status, or a body its schema refuses.
pub fn problems(method: &str, path: &str, status: u16, body: &Value) -> Vec<String> {
    let at = format!("{method} {path} → {status}");
    let Some(template) = template_of(method, path) else {
        // No such route: the API's fallback answers in the error shape.
        return validate(&json!({"$ref": "#/components/schemas/Error"}), body, &at);
    };
    let response = &doc()["paths"][&template][method.to_lowercase()]["responses"][status.to_string()];
    if response.is_null() {
        return vec![format!("{at}: status {status} is not documented for {method} {template}: {body}")];
    }
    match response["content"]["application/json"]["schema"].as_object() {
        Some(schema) => validate(&Value::Object(schema.clone()), body, &at),
        None if body == &Value::String(String::new()) => vec![],
        None => vec![format!("{at}: documented without a body, answered {body}")],
    }
}

fn validate(schema: &Value, body: &Value, at: &str) -> Vec<String> {
    let mut root = schema.clone();
    let mut components = doc()["components"].clone();
    closed(&mut components);
    root["components"] = components;
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("{at}: the document's schema does not compile: {e}"));
    validator.iter_errors(body).map(|e| format!("{at}: {} at {}: {body}", e, e.instance_path())).collect()
}

/// Panics unless the answer is as documented.
pub fn assert_documented(method: &str, path: &str, status: u16, body: &Value) {
    let found = problems(method, path, status, body);
    assert!(found.is_empty(), "answers that differ from the OpenAPI document:\n{}", found.join("\n"));
}

/// Calls the API and checks the answer against the document, noting which operation it was.
struct Caller<'a> {
    app: &'a TestApp,
    called: Mutex<BTreeSet<(String, String)>>,
}

impl Caller<'_> {
    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        expect: u16,
    ) -> Value {
        let (status, answer) = self.app.api(method, path, key, body).await;
        assert_eq!(status, expect, "{method} {path} answered {status}: {answer}");
        assert_documented(method, path, status, &answer);
        let template = template_of(method, path).expect("a documented operation");
        self.called.lock().unwrap().insert((method.to_lowercase(), template));
        answer
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("an id in {v}")).to_string()
}

on_both_databases! {
    async fn every_operation_answers_as_documented(backend: Backend) {
        let app = spawn(backend).await;
        let c = Caller { app: &app, called: Mutex::new(BTreeSet::new()) };
        let receiver = Receiver::start().await.unwrap();
        let admin = Some(app.admin_key.as_str());
        let key = Some(app.store_a_key.as_str());

        let served = c.call("GET", "/openapi.json", None, None, 200).await;
        assert_eq!(&served, doc(), "the served document is the generated one");

        let hook = c.call("POST", "/webhooks", key, Some(json!({"url": receiver.url("/h"), "description": "d"})), 201).await;
        receiver.set_secret(hook["secret"].as_str().unwrap());
        let hook = id(&hook);
        c.call("GET", "/webhooks", key, None, 200).await;
        c.call("GET", &format!("/webhooks/{hook}"), key, None, 200).await;
        c.call("PATCH", &format!("/webhooks/{hook}"), key, Some(json!({"description": "e", "event_types": null})), 200).await;
        c.call("POST", &format!("/webhooks/{hook}/toggle"), key, Some(json!({"enabled": true})), 200).await;
        c.call("POST", &format!("/webhooks/{hook}/rotate-secret"), key, None, 200).await;
        c.call("POST", &format!("/webhooks/{hook}/replay"), key, None, 200).await;
        let event = c.call("POST", "/events", key, Some(json!({"event_type": "review-created", "payload": {"a": 1}})), 202).await;
        receiver.wait_for(1, std::time::Duration::from_secs(10)).await;
        let event = c.call("GET", &format!("/events/{}", id(&event)), key, None, 200).await;
        assert_eq!(event["deliveries"].as_array().map(Vec::len), Some(1));
        c.call("GET", &format!("/events/{}/explain", id(&event)), key, None, 200).await;
        c.call("GET", "/ordering-keys/k/events", key, None, 200).await;
        c.call("POST", &format!("/webhooks/{hook}/test"), key, None, 200).await;
        let log = c.call("GET", &format!("/webhooks/{hook}/deliveries"), key, None, 200).await;
        let delivery = id(&log["items"][0]);
        let detail = c.call("GET", &format!("/deliveries/{delivery}"), key, None, 200).await;
        assert!(detail["attempts"].as_array().is_some_and(|a| !a.is_empty()), "{detail}");
        c.call("POST", &format!("/deliveries/{delivery}/resend"), key, None, 200).await;
        c.call("GET", &format!("/webhooks/{hook}/blocked-keys"), key, None, 200).await;
        let choice = json!({"status": "succeeded", "dry_run": true});
        c.call("POST", &format!("/webhooks/{hook}/replays"), key, Some(choice), 200).await;
        let replay = c.call("POST", &format!("/webhooks/{hook}/replays"), key, Some(json!({})), 202).await;
        c.call("GET", &format!("/replays/{}", id(&replay)), key, None, 200).await;
        c.call("GET", &format!("/webhooks/{hook}/replays"), key, None, 200).await;
        // Whether it is still running is a race; a replay nobody has is not.
        c.call("POST", "/replays/01900000-0000-7000-8000-000000000000/cancel", key, None, 404).await;
        for action in ["retry", "skip"] {
            c.call("POST", &format!("/webhooks/{hook}/blocked-keys/k/{action}"), key, None, 404).await;
        }

        let target = id(&c.call("POST", "/targets", key, Some(json!({"url": "https://t.example.com/"})), 201).await);
        let filter = id(&c.call("POST", "/filters", key, Some(json!({"events": ["review-created"]})), 201).await);
        let sub = c.call("POST", "/subscriptions", key, Some(json!({"target_id": target, "filter_id": filter})), 201).await;
        let sub = id(&sub);
        for (list, one) in [("/targets", &target), ("/filters", &filter), ("/subscriptions", &sub)] {
            c.call("GET", list, key, None, 200).await;
            c.call("GET", &format!("{list}/{one}"), key, None, 200).await;
        }
        for (list, one) in [("/subscriptions", &sub), ("/targets", &target), ("/filters", &filter)] {
            c.call("DELETE", &format!("{list}/{one}"), key, None, 204).await;
        }
        c.call("DELETE", &format!("/webhooks/{hook}"), key, None, 204).await;

        c.call("GET", "/event-types?limit=2", key, None, 200).await;
        c.call("POST", "/event-types", admin, Some(json!({"name": "x.made.v1", "product_group": "X", "tenant_type": "store"})), 201).await;
        c.call("GET", "/event-types/x.made.v1", key, None, 200).await;
        c.call("PATCH", "/event-types/x.made.v1", admin, Some(json!({"schema": {"type": "object"}, "validate_payloads": true})), 200).await;
        c.call("GET", "/stores", admin, None, 200).await;
        c.call("POST", "/stores", admin, Some(json!({"id": "s-3", "name": "S3"})), 201).await;
        c.call("GET", "/stores/s-3", admin, None, 200).await;
        c.call("PATCH", "/stores/s-3", admin, Some(json!({"retention": "7d"})), 200).await;
        c.call("POST", "/applications", admin, Some(json!({"id": "app-9", "name": "App"})), 201).await;
        c.call("POST", "/applications/app-9/installations", admin, Some(json!({"store_id": "s-3"})), 201).await;
        c.call("GET", "/applications/app-9/installations", admin, None, 200).await;
        c.call("DELETE", "/applications/app-9/installations/s-3", admin, None, 200).await;
        c.call("DELETE", "/stores/s-3", admin, None, 204).await;

        let made = id(&c.call("POST", "/api-keys", key, Some(json!({"name": "k"})), 201).await);
        c.call("GET", "/api-keys", key, None, 200).await;
        c.call("GET", &format!("/api-keys/{made}"), key, None, 200).await;
        c.call("DELETE", &format!("/api-keys/{made}"), key, None, 200).await;
        let other = id(&c.call("POST", "/api-keys", key, Some(json!({"name": "k2"})), 201).await);
        c.call("POST", &format!("/api-keys/{other}/revoke"), key, None, 200).await;

        let origins = json!({"origins": ["https://partner.example"]});
        c.call("PUT", "/stores/store-a/portal-origins", key, Some(origins.clone()), 200).await;
        c.call("GET", "/stores/store-a/portal-origins", key, None, 200).await;
        c.call("POST", "/applications", admin, Some(json!({"id": "app-p", "name": "P"})), 201).await;
        c.call("PUT", "/applications/app-p/portal-origins", admin, Some(origins), 200).await;
        c.call("GET", "/applications/app-p/portal-origins", admin, None, 200).await;
        c.call("PUT", "/stores/store-a/portal-origins", key, Some(json!({"origins": ["x"]})), 422).await;
        let portal = c.call("POST", "/portal-sessions", key, Some(json!({})), 201).await;
        c.call("DELETE", &format!("/portal-sessions/{}", id(&portal)), key, None, 204).await;

        // Errors answer in the documented shape and with documented statuses.
        c.call("GET", "/webhooks/nope", key, None, 404).await;
        c.call("GET", "/webhooks", None, None, 401).await;
        c.call("POST", "/stores", key, Some(json!({"id": "s-4", "name": "S4"})), 403).await;
        c.call("POST", "/events", key, Some(json!({"event_type": "no.such.type", "payload": {}})), 422).await;
        // The listen stream's 200 never ends; its refusal is as documented (tests/listen.rs streams).
        c.call("GET", "/listen?events=no.such.type", key, None, 422).await;

        let documented: BTreeSet<(String, String)> =
            documented_operations(doc()).into_iter().map(|o| (o.method, o.path)).collect();
        let called = c.called.into_inner().unwrap();
        let missed: Vec<_> = documented.difference(&called).collect();
        assert!(missed.is_empty(), "documented operations this test does not call: {missed:?}");
    }
}

#[test]
fn the_document_is_as_reviewed() {
    insta::assert_json_snapshot!("openapi_document", doc());
}

#[test]
fn the_document_describes_every_operation_fully() {
    let mut ids = BTreeSet::new();
    for o in documented_operations(doc()) {
        let operation = &doc()["paths"][&o.path][&o.method];
        let at = format!("{} {}", o.method, o.path);
        let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{at}: no operationId"));
        assert!(ids.insert(id.to_string()), "{at}: operationId {id} is used twice");
        assert!(operation["summary"].as_str().is_some_and(|s| !s.is_empty()), "{at}: no summary");
        assert!(operation["tags"][0].is_string(), "{at}: no tag");
        let responses = operation["responses"].as_object().unwrap_or_else(|| panic!("{at}: no responses"));
        assert!(responses.keys().any(|s| s.starts_with('2')), "{at}: no success answer");
        assert!(responses.contains_key("500"), "{at}: the server's own errors are not documented");
        for (status, response) in responses.iter().filter(|(s, _)| !s.starts_with('2')) {
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error",
                "{at}: the {status} answer is not in the error shape"
            );
        }
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] == "path" {
                let name = parameter["name"].as_str().unwrap_or_default();
                assert!(o.path.contains(&format!("{{{name}}}")), "{at}: parameter {name} is not in the path");
                assert_eq!(parameter["required"], true, "{at}: path parameter {name} is optional");
            }
        }
        let in_path = o.path.matches('{').count();
        let documented_in_path =
            operation["parameters"].as_array().map_or(0, |p| p.iter().filter(|p| p["in"] == "path").count());
        assert_eq!(in_path, documented_in_path, "{at}: a path parameter is not documented");
    }
    let schemas = doc()["components"]["schemas"].as_object().expect("schemas");
    let refs = doc().to_string();
    for reference in refs.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        assert!(schemas.contains_key(name), "{name} is referenced but not defined");
    }
}

#[test]
fn every_moment_in_the_api_is_an_rfc3339_date_time() {
    let schemas = doc()["components"]["schemas"].as_object().expect("schemas");
    let mut wrong = Vec::new();
    for (name, schema) in schemas {
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            let is_moment = field.ends_with("_at") || field == "failing_since";
            if is_moment && property["format"] != "date-time" {
                wrong.push(format!("{name}.{field}: {property}"));
            }
        }
    }
    assert!(wrong.is_empty(), "moments that are not RFC 3339 date-times: {wrong:#?}");
}

type ErrorCase<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<Value>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_are_as_reviewed() {
    let app = spawn(Backend::Sqlite).await;
    let key = Some(app.store_a_key.as_str());
    let admin = Some(app.admin_key.as_str());
    let mut answers = Vec::new();
    // (case, method, path, key, body)
    let cases: Vec<ErrorCase> = vec![
        ("no key", "GET", "/webhooks", None, None),
        ("unknown key", "GET", "/webhooks", Some("hl_nope"), None),
        ("no such route", "GET", "/nothing-here", key, None),
        ("no such webhook", "GET", "/webhooks/nope", key, None),
        ("admin only", "POST", "/stores", key, Some(json!({"id": "s-9", "name": "S9"}))),
        ("missing field", "POST", "/webhooks", key, Some(json!({"description": "no url"}))),
        ("admin without tenant", "GET", "/webhooks", admin, None),
        ("bad tenant type", "GET", "/webhooks?tenant_type=planet&tenant_id=x", admin, None),
        ("bad limit", "GET", "/webhooks?limit=many", key, None),
        ("nul in path", "GET", "/webhooks/a%00b", key, None),
        (
            "unknown tenant",
            "POST",
            "/events",
            admin,
            Some(
                json!({"tenant_type": "store", "tenant_id": "nope", "event_type": "review-created", "payload": {}}),
            ),
        ),
        (
            "unknown event type",
            "POST",
            "/events",
            key,
            Some(json!({"event_type": "no.such.type", "payload": {}})),
        ),
        ("store exists", "POST", "/stores", admin, Some(json!({"id": "store-a", "name": "Again"}))),
    ];
    for (case, method, path, k, body) in cases {
        let (status, answer) = app.api(method, path, k, body).await;
        assert_documented(method, path, status, &answer);
        answers.push(
            json!({"case": case, "request": format!("{method} {path}"), "status": status, "body": answer}),
        );
    }
    let (status, answer) = app.publish_raw(key, "{not json").await;
    assert_documented("POST", "/events", status, &answer);
    answers.push(json!({"case": "not JSON", "request": "POST /events", "status": status, "body": answer}));
    insta::assert_json_snapshot!("error_bodies", answers);
}

on_both_databases! {
    async fn the_reference_page_lists_every_operation(backend: Backend) {
        let app = spawn(backend).await;
        let res = app.http.get(app.url("/docs/api")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        for o in documented_operations(doc()) {
            let row = format!("<code>{}</code></td><td><code>{}</code>", o.method.to_uppercase(), o.path);
            assert!(html.contains(&row), "{} {} is not on the reference page", o.method, o.path);
        }
        assert!(html.contains("<h3 id=\"Webhook\">Webhook</h3>"), "the schemas are on the page");
    }
}
