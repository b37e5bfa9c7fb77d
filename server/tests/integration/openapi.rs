//! The OpenAPI document: every route of the router is documented and every documented route
//! exists, and real answers match the documented schemas.

use std::collections::BTreeSet;

use hookline::api::openapi::{OPERATIONS, response_schema};
use serde_json::{Value, json};
use test_receiver::Receiver;

use crate::common::*;

/// (method, path) of every `.route(...)` in the API's source files.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in source.lines().filter(|l| l.trim_start().starts_with(".route(\"")) {
            let rest = &line[line.find(".route(\"").unwrap() + 8..];
            let path = &rest[..rest.find('"').unwrap()];
            let handlers = &rest[path.len()..];
            for method in ["get", "post", "put", "patch", "delete"] {
                let mut at = 0;
                while let Some(i) = handlers[at..].find(&format!("{method}(")) {
                    let start = at + i;
                    let before = handlers[..start].chars().last();
                    if before.is_none_or(|c| !c.is_alphanumeric() && c != '_') {
                        found.insert((method.to_string(), path.to_string()));
                    }
                    at = start + method.len();
                }
            }
        }
    }
    found
}

/// Checks `value` against the subset of JSON Schema the document uses; returns what is wrong.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap();
        let target = &doc["components"]["schemas"][name];
        assert!(!target.is_null(), "{reference} is not in the document");
        return check(doc, target, value, at, problems);
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        if !types.iter().any(|t| *t == actual || (*t == "number" && actual == "integer")) {
            problems.push(format!("{at}: {actual} where the schema says {types:?}"));
            return;
        }
    }
    if let (Some(allowed), false) = (schema.get("enum").and_then(Value::as_array), value.is_null())
        && !allowed.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let (Some(required), Some(object)) =
        (schema.get("required").and_then(Value::as_array), value.as_object())
    {
        for name in required.iter().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                problems.push(format!("{at}: missing {name}"));
            }
        }
    }
    if let (Some(properties), Some(object)) =
        (schema.get("properties").and_then(Value::as_object), value.as_object())
    {
        for (name, value) in object {
            match properties.get(name) {
                Some(s) => check(doc, s, value, &format!("{at}.{name}"), problems),
                None => problems.push(format!("{at}: {name} is not documented")),
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            check(doc, items, item, &format!("{at}[{i}]"), problems);
        }
    }
}

fn documented(doc: &Value, method: &str, path: &str, status: u16, body: &Value) -> Vec<String> {
    let op =
        OPERATIONS.iter().find(|o| o.method == method && o.path == path).expect("a documented operation");
    assert_eq!(op.status, status, "{method} {path} answered {status}: {body}");
    let mut problems = Vec::new();
    if let Some(schema) = op.response {
        check(doc, &response_schema(schema), body, &format!("{method} {path}"), &mut problems);
    }
    problems
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let in_source = routes_in_source();
    let documented: BTreeSet<(String, String)> =
        OPERATIONS.iter().map(|o| (o.method.to_string(), o.path.to_string())).collect();
    assert!(in_source.len() > 30, "the source scan found too few routes: {in_source:?}");
    let undocumented: Vec<_> = in_source.difference(&documented).collect();
    let phantom: Vec<_> = documented.difference(&in_source).collect();
    assert!(undocumented.is_empty(), "routes without documentation: {undocumented:?}");
    assert!(phantom.is_empty(), "documented routes that do not exist: {phantom:?}");
}

on_both_databases! {
    async fn real_answers_match_the_documented_schemas(backend: Backend) {
        let app = spawn(backend).await;
        let (status, doc) = app.api("GET", "/openapi.json", None, None).await;
        assert_eq!(status, 200);
        assert_eq!(doc["openapi"], "3.1.0");
        let receiver = Receiver::start().await.unwrap();
        let admin = Some(app.admin_key.as_str());
        let key = Some(app.store_a_key.as_str());
        let mut problems = Vec::new();
        let mut call = async |method: &str, path: &str, template: &str, k: Option<&str>, body: Option<Value>| {
            let (status, answer) = app.api(&method.to_uppercase(), path, k, body).await;
            problems.extend(documented(&doc, method, template, status, &answer));
            answer
        };

        let hook = call("post", "/webhooks", "/webhooks", key, Some(json!({"url": receiver.url("/h"), "description": "d"}))).await;
        receiver.set_secret(hook["secret"].as_str().unwrap());
        let id = hook["id"].as_str().unwrap().to_string();
        call("get", "/webhooks", "/webhooks", key, None).await;
        call("get", &format!("/webhooks/{id}"), "/webhooks/{id}", key, None).await;
        call("patch", &format!("/webhooks/{id}"), "/webhooks/{id}", key, Some(json!({"description": "e"}))).await;
        call("post", &format!("/webhooks/{id}/toggle"), "/webhooks/{id}/toggle", key, Some(json!({"enabled": true}))).await;
        call("post", &format!("/webhooks/{id}/rotate-secret"), "/webhooks/{id}/rotate-secret", key, None).await;
        let ev = call("post", "/events", "/events", key, Some(json!({"event_type": "review-created", "payload": {"a": 1}}))).await;
        receiver.wait_for(1, std::time::Duration::from_secs(10)).await;
        call("get", &format!("/events/{}", ev["id"].as_str().unwrap()), "/events/{id}", key, None).await;
        call("post", &format!("/webhooks/{id}/test"), "/webhooks/{id}/test", key, None).await;
        let log = call("get", &format!("/webhooks/{id}/deliveries"), "/webhooks/{id}/deliveries", key, None).await;
        let delivery = log["items"][0]["id"].as_str().unwrap().to_string();
        call("get", &format!("/deliveries/{delivery}"), "/deliveries/{id}", key, None).await;
        call("post", &format!("/deliveries/{delivery}/resend"), "/deliveries/{id}/resend", key, None).await;

        let target = call("post", "/targets", "/targets", key, Some(json!({"url": "https://t.example.com/"}))).await;
        let filter = call("post", "/filters", "/filters", key, Some(json!({"events": ["review-created"]}))).await;
        let sub = call("post", "/subscriptions", "/subscriptions", key, Some(json!({"target_id": target["id"], "filter_id": filter["id"]}))).await;
        for (list, one, id) in [("/targets", "/targets/{id}", &target["id"]), ("/filters", "/filters/{id}", &filter["id"]), ("/subscriptions", "/subscriptions/{id}", &sub["id"])] {
            call("get", list, list, key, None).await;
            call("get", &one.replace("{id}", id.as_str().unwrap()), one, key, None).await;
        }
        call("get", "/event-types", "/event-types", key, None).await;
        call("post", "/event-types", "/event-types", admin, Some(json!({"name": "x.made.v1", "product_group": "X", "tenant_type": "store"}))).await;
        call("get", "/stores", "/stores", admin, None).await;
        call("post", "/stores", "/stores", admin, Some(json!({"id": "s-3", "name": "S3"}))).await;
        call("post", "/applications", "/applications", admin, Some(json!({"id": "app-9", "name": "App"}))).await;
        call("post", "/applications/app-9/installations", "/applications/{id}/installations", admin, Some(json!({"store_id": "s-3"}))).await;
        call("get", "/applications/app-9/installations", "/applications/{id}/installations", admin, None).await;
        call("delete", "/applications/app-9/installations/s-3", "/applications/{id}/installations/{store_id}", admin, None).await;
        let made = call("post", "/api-keys", "/api-keys", key, Some(json!({"name": "k"}))).await;
        call("get", "/api-keys", "/api-keys", key, None).await;
        call("get", &format!("/api-keys/{}", made["id"].as_str().unwrap()), "/api-keys/{id}", key, None).await;
        call("delete", &format!("/api-keys/{}", made["id"].as_str().unwrap()), "/api-keys/{id}", key, None).await;
        assert!(problems.is_empty(), "{problems:#?}");

        // Errors have the documented shape too.
        let (status, error) = app.api("GET", "/webhooks/nope", key, None).await;
        assert_eq!(status, 404);
        let mut problems = Vec::new();
        check(&doc, &json!({"$ref": "#/components/schemas/Error"}), &error, "error", &mut problems);
        assert!(problems.is_empty(), "{problems:#?}");
    }
}

on_both_databases! {
    async fn the_reference_page_lists_every_operation(backend: Backend) {
        let app = spawn(backend).await;
        let res = app.http.get(app.url("/docs/api")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        for o in OPERATIONS {
            let path = o.path.replace('<', "&lt;");
            assert!(html.contains(&format!("<code>{}</code></td><td><code>{path}</code>", o.method.to_uppercase())), "{} {}", o.method, o.path);
        }
    }
}
