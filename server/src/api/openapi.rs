//! The OpenAPI 3.1 document of the REST API, generated from the handlers and their types
//! (utoipa) and served at `/api/v1/openapi.json`, and the readable reference at `/docs/api`
//! rendered from the same document. What every operation shares (the bearer key, the error
//! answers any request can get) is added here once; what is particular to one operation sits
//! on its handler.

use std::sync::OnceLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use utoipa::OpenApi as _;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// What the document says before the operations are added.
pub(super) fn base() -> OpenApi {
    let mut doc: OpenApi = serde_json::from_value(json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Hookline API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Publish events and manage webhooks, targets, filters and subscriptions. \
                Every error answers {\"error\": {\"code\", \"message\", \"field\"}}; every list is \
                paginated by cursor; every moment is an RFC 3339 date-time in UTC.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {},
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key: admin, store:ID or application:ID",
                },
            },
        },
        "tags": [
            {"name": "Events", "description": "Publishing events and reading them back"},
            {"name": "Webhooks", "description": "Webhooks, their signing secrets and test sends"},
            {"name": "Deliveries", "description": "The delivery log, attempts and resends"},
            {"name": "Subscriptions", "description": "The three-step flow: targets, filters, subscriptions"},
            {"name": "Event types", "description": "The event type catalog"},
            {"name": "Tenants", "description": "Stores, applications and installations (admin)"},
            {"name": "API keys", "description": "Keys for this API"},
            {"name": "Meta", "description": "This document"},
        ],
    }))
    .expect("the base document is a valid OpenAPI document");
    doc.merge(Registered::openapi());
    doc
}

/// Schemas that answers and parameters name however the operations reach them.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(super::ErrorBody, super::vocabulary::TenantType)))]
struct Registered;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(openapi_json))
}

/// This document
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "Meta",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = serde_json::Value)),
)]
async fn openapi_json() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], document_json())
}

/// The document as served, built once.
fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| openapi().to_json().expect("an OpenAPI document serializes"))
}

/// The whole document: the operations of [`super::router`] with what they share.
pub fn openapi() -> OpenApi {
    let (_, mut doc) = super::routes(0).split_for_parts();
    for operation in operations(&mut doc) {
        add_shared_errors(operation);
    }
    doc
}

/// [`openapi`] as JSON, to read.
pub fn document() -> Value {
    serde_json::to_value(openapi()).expect("an OpenAPI document serializes")
}

fn operations(doc: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete]
            .into_iter()
            .flatten()
    })
}

/// The errors any request can meet whatever its operation: no valid key, a malformed path,
/// query or body, a body past the limit, and the server's own trouble.
fn add_shared_errors(operation: &mut Operation) {
    let open = operation.security.as_ref().is_some_and(|s| s.contains(&SecurityRequirement::default()));
    let takes_input = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let takes_body = operation.request_body.is_some();
    let mut shared = vec![];
    if takes_input || takes_body {
        shared.push(("400", "The path, query string or body is not valid for this request"));
    }
    if !open {
        shared.push(("401", "No valid API key was sent"));
    }
    if takes_body {
        shared.push(("413", "The body is larger than the server takes"));
    }
    shared.push(("500", "Something went wrong on the server's side"));
    if !open {
        shared
            .push(("503", "The database or the publish queue cannot take the request now; see Retry-After"));
    }
    for (status, description) in shared {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(description));
    }
}

fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content("application/json", Content::new(Some(Ref::from_schema_name("Error"))))
            .build(),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The schema name an answer or body refers to, or `object` for one written inline.
fn schema_name(content: &Value) -> Option<String> {
    let schema = &content["content"]["application/json"]["schema"];
    if schema.is_null() {
        return None;
    }
    let name = schema["$ref"].as_str().map(|r| r.rsplit('/').next().unwrap_or(r).to_string());
    Some(name.unwrap_or_else(|| "object".into()))
}

/// One documented operation, as the reference lists it.
pub struct DocumentedOperation {
    pub method: String,
    pub path: String,
    pub tag: String,
    operation: Value,
}

/// Every operation of the document, in the document's order.
pub fn documented_operations(doc: &Value) -> Vec<DocumentedOperation> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let tag = operation["tags"][0].as_str().unwrap_or("Other").to_string();
            found.push(DocumentedOperation {
                method: method.clone(),
                path: path.clone(),
                tag,
                operation: operation.clone(),
            });
        }
    }
    found
}

/// A readable reference of the API, rendered from the document.
pub fn reference_html() -> String {
    let doc = document();
    let mut out = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>API reference · Hookline</title><link rel=\"stylesheet\" href=\"/pkg/hookline.css\"></head><body>\
         <header class=\"topbar\"><a class=\"brand\" href=\"/settings/api\">Hookline</a>\
         <nav aria-label=\"Main\" class=\"docs-nav\"><a href=\"/settings/api\">Settings › API</a>\
         <a href=\"/docs/events\">Event catalog</a></nav></header>\
         <main class=\"page reference\"><h1>API reference</h1>\
         <p class=\"hint\">Every route is under <code>/api/v1</code> and takes <code>Authorization: Bearer &lt;API key&gt;</code>. \
         Errors answer <code>{\"error\": {\"code\", \"message\", \"field\"}}</code>; lists take <code>limit</code> and \
         <code>cursor</code> and answer <code>{\"items\", \"next_cursor\"}</code>; moments are RFC 3339 date-times in UTC. \
         The machine-readable document is <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> (OpenAPI 3.1).</p>",
    );
    let operations = documented_operations(&doc);
    let mut tags: Vec<String> = doc["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect();
    for o in &operations {
        if !tags.contains(&o.tag) {
            tags.push(o.tag.clone());
        }
    }
    for tag in tags {
        let rows: Vec<&DocumentedOperation> = operations.iter().filter(|o| o.tag == tag).collect();
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "<section class=\"card\"><h2>{}</h2><table class=\"admin-table\"><tbody>",
            escape(&tag)
        ));
        for o in rows {
            let summary = o.operation["summary"].as_str().unwrap_or_default();
            let body = schema_name(&o.operation["requestBody"])
                .map(|b| format!(" Body: <code>{}</code>.", escape(&b)))
                .unwrap_or_default();
            let mut answers = Vec::new();
            let mut errors = Vec::new();
            for (status, response) in o.operation["responses"].as_object().into_iter().flatten() {
                if status.starts_with('2') {
                    answers.push(match schema_name(response) {
                        Some(name) => format!(" Answers {status} <code>{}</code>.", escape(&name)),
                        None => format!(" Answers {status}."),
                    });
                } else {
                    errors.push(status.as_str());
                }
            }
            let errors =
                if errors.is_empty() { String::new() } else { format!(" Errors: {}.", errors.join(", ")) };
            out.push_str(&format!(
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}.{}{}{}</td></tr>",
                o.method.to_uppercase(),
                escape(&o.path),
                escape(summary.trim_end_matches('.')),
                body,
                answers.concat(),
                errors
            ));
        }
        out.push_str("</tbody></table></section>");
    }
    out.push_str("<section class=\"card\"><h2>Schemas</h2>");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
            out.push_str(&format!("<h3 id=\"{0}\">{0}</h3><pre>{1}</pre>", escape(name), escape(&pretty)));
        }
    }
    out.push_str("</section></main></body></html>");
    out
}
