//! The OpenAPI 3.1 document of the REST API, served at `/api/v1/openapi.json`. Every route of
//! [`super::router`] has an entry in [`OPERATIONS`]; a test checks both ways (each route is
//! documented, each documented route answers) and validates real responses against the
//! schemas below.

use serde_json::{Map, Value, json};

/// One documented operation.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    /// Schema name of the JSON body, if the operation takes one.
    pub body: Option<&'static str>,
    pub status: u16,
    /// Schema name of the success response (`Page<X>` for a page of X); `None` for no body.
    pub response: Option<&'static str>,
    /// Extra query parameters beyond `limit` and `cursor` (which every list takes).
    pub query: &'static [&'static str],
}

#[allow(clippy::too_many_arguments)] // one row of the table below, read positionally
const fn op(
    method: &'static str,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    tag: &'static str,
    body: Option<&'static str>,
    status: u16,
    response: Option<&'static str>,
) -> Operation {
    Operation { method, path, id, summary, tag, body, status, response, query: &[] }
}

const TENANT_QUERY: &[&str] = &["tenant_type", "tenant_id"];

pub const OPERATIONS: &[Operation] = &[
    op(
        "post",
        "/events",
        "publishEvent",
        "Publish an event to every matching webhook of a tenant",
        "Events",
        Some("PublishRequest"),
        202,
        Some("Accepted"),
    ),
    op("get", "/events/{id}", "getEvent", "An event with its deliveries", "Events", None, 200, Some("Event")),
    Operation {
        query: TENANT_QUERY,
        ..op(
            "get",
            "/webhooks",
            "listWebhooks",
            "A tenant's webhooks",
            "Webhooks",
            None,
            200,
            Some("Page<Webhook>"),
        )
    },
    op(
        "post",
        "/webhooks",
        "createWebhook",
        "Create a webhook; the answer carries its signing secret",
        "Webhooks",
        Some("NewWebhook"),
        201,
        Some("Webhook"),
    ),
    op("get", "/webhooks/{id}", "getWebhook", "One webhook", "Webhooks", None, 200, Some("Webhook")),
    op(
        "patch",
        "/webhooks/{id}",
        "updateWebhook",
        "Change a webhook's URL, description, event types or state",
        "Webhooks",
        Some("WebhookPatch"),
        200,
        Some("Webhook"),
    ),
    op(
        "delete",
        "/webhooks/{id}",
        "deleteWebhook",
        "Delete a webhook with its deliveries",
        "Webhooks",
        None,
        204,
        None,
    ),
    op(
        "post",
        "/webhooks/{id}/toggle",
        "toggleWebhook",
        "Turn a webhook on or off",
        "Webhooks",
        Some("Toggle"),
        200,
        Some("Webhook"),
    ),
    op(
        "post",
        "/webhooks/{id}/rotate-secret",
        "rotateSecret",
        "New signing secret; the old one signs too for the grace period",
        "Webhooks",
        None,
        200,
        Some("Secret"),
    ),
    op(
        "post",
        "/webhooks/{id}/replay",
        "replaySkipped",
        "Deliver again what the webhook skipped while it was off (409 while it is off)",
        "Webhooks",
        None,
        200,
        Some("Replayed"),
    ),
    op(
        "post",
        "/webhooks/{id}/test",
        "sendTestEvent",
        "Send an event type's example to the webhook now",
        "Webhooks",
        Some("TestEvent"),
        200,
        Some("AttemptResult"),
    ),
    op(
        "get",
        "/webhooks/{id}/deliveries",
        "listDeliveries",
        "The webhook's delivery log, newest first",
        "Deliveries",
        None,
        200,
        Some("Page<Delivery>"),
    ),
    op(
        "get",
        "/deliveries/{id}",
        "getDelivery",
        "A delivery with its payload and every attempt",
        "Deliveries",
        None,
        200,
        Some("DeliveryDetail"),
    ),
    op(
        "post",
        "/deliveries/{id}/resend",
        "resendDelivery",
        "One more attempt now, recorded as manual",
        "Deliveries",
        None,
        200,
        Some("AttemptResult"),
    ),
    Operation {
        query: TENANT_QUERY,
        ..op(
            "get",
            "/targets",
            "listTargets",
            "A tenant's targets",
            "Subscriptions",
            None,
            200,
            Some("Page<Target>"),
        )
    },
    op(
        "post",
        "/targets",
        "createTarget",
        "Step 1: a callback URL",
        "Subscriptions",
        Some("NewTarget"),
        201,
        Some("Target"),
    ),
    op("get", "/targets/{id}", "getTarget", "One target", "Subscriptions", None, 200, Some("Target")),
    op(
        "delete",
        "/targets/{id}",
        "deleteTarget",
        "Delete a target no subscription uses (409 otherwise)",
        "Subscriptions",
        None,
        204,
        None,
    ),
    Operation {
        query: TENANT_QUERY,
        ..op(
            "get",
            "/filters",
            "listFilters",
            "A tenant's filters",
            "Subscriptions",
            None,
            200,
            Some("Page<Filter>"),
        )
    },
    op(
        "post",
        "/filters",
        "createFilter",
        "Step 2: a list of event types",
        "Subscriptions",
        Some("NewFilter"),
        201,
        Some("Filter"),
    ),
    op("get", "/filters/{id}", "getFilter", "One filter", "Subscriptions", None, 200, Some("Filter")),
    op(
        "delete",
        "/filters/{id}",
        "deleteFilter",
        "Delete a filter no subscription uses (409 otherwise)",
        "Subscriptions",
        None,
        204,
        None,
    ),
    Operation {
        query: TENANT_QUERY,
        ..op(
            "get",
            "/subscriptions",
            "listSubscriptions",
            "A tenant's subscriptions (every webhook, however made)",
            "Subscriptions",
            None,
            200,
            Some("Page<Subscription>"),
        )
    },
    op(
        "post",
        "/subscriptions",
        "createSubscription",
        "Step 3: subscribe a target to a filter; deliveries start",
        "Subscriptions",
        Some("NewSubscription"),
        201,
        Some("Subscription"),
    ),
    op(
        "get",
        "/subscriptions/{id}",
        "getSubscription",
        "One subscription",
        "Subscriptions",
        None,
        200,
        Some("Subscription"),
    ),
    op(
        "delete",
        "/subscriptions/{id}",
        "deleteSubscription",
        "Delete a subscription (its target and filter stay)",
        "Subscriptions",
        None,
        204,
        None,
    ),
    op(
        "get",
        "/event-types",
        "listEventTypes",
        "The event type catalog",
        "Event types",
        None,
        200,
        Some("Page<EventType>"),
    ),
    op(
        "post",
        "/event-types",
        "createEventType",
        "Add an event type (admin)",
        "Event types",
        Some("NewEventType"),
        201,
        Some("EventType"),
    ),
    op("get", "/stores", "listStores", "Every store (admin)", "Tenants", None, 200, Some("Page<Store>")),
    op(
        "post",
        "/stores",
        "createStore",
        "Create a store (admin)",
        "Tenants",
        Some("NewTenant"),
        201,
        Some("Store"),
    ),
    op("get", "/stores/{id}", "getStore", "A store (admin)", "Tenants", None, 200, Some("Store")),
    op(
        "patch",
        "/stores/{id}",
        "updateStore",
        "Shorten (or with null restore) how long a store's events, deliveries and attempts are kept (admin)",
        "Tenants",
        Some("StorePatch"),
        200,
        Some("Store"),
    ),
    op(
        "delete",
        "/stores/{id}",
        "deleteStore",
        "Delete a store and all of its data (admin); the data is removed in the background",
        "Tenants",
        None,
        204,
        None,
    ),
    op(
        "post",
        "/applications",
        "createApplication",
        "Create an application (admin)",
        "Tenants",
        Some("NewTenant"),
        201,
        Some("Tenant"),
    ),
    op(
        "get",
        "/applications/{id}/installations",
        "listInstallations",
        "The stores an application is installed on (admin or the application)",
        "Tenants",
        None,
        200,
        Some("Page<Installation>"),
    ),
    op(
        "post",
        "/applications/{id}/installations",
        "installApplication",
        "Install an application on a store (admin)",
        "Tenants",
        Some("NewInstallation"),
        201,
        Some("Installation"),
    ),
    op(
        "delete",
        "/applications/{id}/installations/{store_id}",
        "disconnectApplication",
        "Disconnect an application from a store (admin); sends integrations.applications.disconnected.v3",
        "Tenants",
        None,
        200,
        Some("Disconnected"),
    ),
    op(
        "get",
        "/api-keys",
        "listApiKeys",
        "API keys (all for an admin, the key's own scope otherwise)",
        "API keys",
        None,
        200,
        Some("Page<ApiKey>"),
    ),
    op(
        "post",
        "/api-keys",
        "createApiKey",
        "Create an API key; the answer carries the key, shown once",
        "API keys",
        Some("NewApiKey"),
        201,
        Some("ApiKey"),
    ),
    op(
        "get",
        "/api-keys/{id}",
        "getApiKey",
        "One API key (without the key itself)",
        "API keys",
        None,
        200,
        Some("ApiKey"),
    ),
    op(
        "delete",
        "/api-keys/{id}",
        "revokeApiKey",
        "Revoke an API key; it stops working at once",
        "API keys",
        None,
        200,
        Some("ApiKey"),
    ),
    op(
        "post",
        "/api-keys/{id}/revoke",
        "revokeApiKeyPost",
        "Revoke an API key (POST form of DELETE)",
        "API keys",
        None,
        200,
        Some("ApiKey"),
    ),
    op("get", "/openapi.json", "openapi", "This document", "Meta", None, 200, None),
];

fn string() -> Value {
    json!({"type": "string"})
}
fn nullable(t: &str) -> Value {
    json!({"type": [t, "null"]})
}
fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}
fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

/// The schemas the operations name.
pub fn schemas() -> Map<String, Value> {
    let tenant_fields = json!({
        "tenant_type": {"type": "string", "enum": ["store", "application"], "description": "Omit with a store or application key: the key's own tenant."},
        "tenant_id": string(),
    });
    let with_tenant = |mut extra: Value| {
        let map = extra.as_object_mut().expect("an object");
        for (k, v) in tenant_fields.as_object().expect("an object") {
            map.insert(k.clone(), v.clone());
        }
        extra
    };
    let webhook = object(
        &[
            "id",
            "tenant_type",
            "tenant_id",
            "url",
            "description",
            "event_types",
            "enabled",
            "health",
            "created_at",
            "updated_at",
        ],
        json!({
            "id": string(), "tenant_type": string(), "tenant_id": string(), "url": string(), "description": string(),
            "event_types": {"type": ["array", "null"], "items": string(), "description": "null: every event type"},
            "enabled": {"type": "boolean"},
            "disabled_reason": {"type": ["string", "null"], "enum": ["manual", "automatic", "gone", "disconnected", null]},
            "disabled_at": {"type": ["string", "null"], "format": "date-time"},
            "health": object(&["consecutive_failures"], json!({
                "consecutive_failures": {"type": "integer"},
                "failing_since": {"type": ["string", "null"], "format": "date-time"},
                "last_success_at": {"type": ["string", "null"], "format": "date-time"},
            })),
            "target_id": nullable("string"), "filter_id": nullable("string"), "application_id": nullable("string"),
            "created_at": time(), "updated_at": time(),
            "secret": {"type": "string", "description": "Only when the webhook is created."},
        }),
    );
    let delivery = json!({
        "id": string(), "event_id": string(), "event_type": string(),
        "status": {"type": "string", "enum": ["pending", "delivering", "succeeded", "failed", "skipped"]},
        "attempts": {"type": "integer"}, "last_status_code": nullable("integer"), "last_duration_ms": nullable("integer"),
        "next_attempt_at": {"type": ["integer", "null"], "description": "Unix milliseconds"},
        "created_at": {"type": "integer", "description": "Unix milliseconds"},
    });
    let mut detail = delivery.clone();
    detail["webhook_id"] = string();
    detail["payload"] = json!({"description": "The event's payload, as published; null once the payload retention removed it"});
    detail["payload_pruned_at"] = json!({"type": ["string", "null"], "format": "date-time",
        "description": "When the payload retention (HOOKLINE_PAYLOAD_RETENTION) removed the payload and the attempts' response bodies and headers"});
    detail["attempt_count"] = json!({"type": "integer"});
    detail["attempts"] = json!({"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}});
    let tenant_record = |extra: Value| {
        let mut props =
            json!({"id": string(), "tenant_type": string(), "tenant_id": string(), "created_at": time()});
        for (k, v) in extra.as_object().expect("an object") {
            props[k] = v.clone();
        }
        props
    };
    let event_type = json!({
        "name": string(), "description": string(), "product_group": string(),
        "tenant_type": {"type": "string", "enum": ["store", "application", "any"]}, "resource": string(), "example_payload": {},
    });
    let list = [
        (
            "Error",
            object(
                &["error"],
                json!({"error": object(&["code", "message"], json!({
                    "code": string(), "message": string(), "field": nullable("string"),
                }))}),
            ),
        ),
        (
            "PublishRequest",
            object(
                &["event_type", "payload"],
                with_tenant(json!({
                    "event_type": string(), "payload": {"description": "Any JSON value; delivered byte for byte"},
                })),
            ),
        ),
        ("Accepted", object(&["id"], json!({"id": string()}))),
        (
            "Event",
            object(
                &[
                    "id",
                    "tenant_type",
                    "tenant_id",
                    "event_type",
                    "payload",
                    "sequence",
                    "received_at",
                    "deliveries",
                ],
                json!({
                    "id": string(), "tenant_type": string(), "tenant_id": string(), "event_type": string(),
                    "payload": {"description": "As published; null once the payload retention removed it"},
                    "payload_pruned_at": {"type": ["string", "null"], "format": "date-time",
                        "description": "When the payload retention (HOOKLINE_PAYLOAD_RETENTION) removed the payload"},
                    "idempotency_key": nullable("string"), "sequence": {"type": "integer"}, "received_at": time(),
                    "deliveries": {"type": "array", "items": object(&["id", "webhook_id", "status", "attempts"], json!({
                        "id": string(), "webhook_id": string(), "status": string(), "attempts": {"type": "integer"},
                        "last_status_code": nullable("integer"),
                    }))},
                }),
            ),
        ),
        ("Webhook", webhook),
        (
            "NewWebhook",
            object(
                &["url"],
                with_tenant(json!({
                    "url": string(), "description": string(),
                    "event_types": {"type": ["array", "null"], "items": string(), "description": "null or absent: every event type"},
                })),
            ),
        ),
        (
            "WebhookPatch",
            json!({"type": "object", "properties": {
                "url": string(), "description": string(), "event_types": {"type": ["array", "null"], "items": string()},
                "enabled": {"type": "boolean"},
            }}),
        ),
        ("Toggle", object(&["enabled"], json!({"enabled": {"type": "boolean"}}))),
        ("Secret", object(&["secret"], json!({"secret": string()}))),
        ("Replayed", object(&["replayed"], json!({"replayed": {"type": "integer"}}))),
        ("TestEvent", json!({"type": "object", "properties": {"event_type": string()}})),
        (
            "AttemptResult",
            object(
                &["delivery_id", "succeeded", "duration_ms"],
                json!({
                    "delivery_id": string(), "succeeded": {"type": "boolean"}, "response_status": nullable("integer"),
                    "duration_ms": {"type": "integer"}, "error": nullable("string"),
                }),
            ),
        ),
        ("Delivery", object(&["id", "event_id", "event_type", "status", "attempts", "created_at"], delivery)),
        (
            "DeliveryDetail",
            object(
                &["id", "event_id", "webhook_id", "status", "attempt_count", "attempts", "payload"],
                detail,
            ),
        ),
        (
            "Attempt",
            object(
                &["id", "trigger", "started_at", "duration_ms", "url", "request_headers"],
                json!({
                    "id": string(), "trigger": {"type": "string", "enum": ["scheduled", "manual", "test"]}, "started_at": time(),
                    "duration_ms": {"type": "integer"}, "url": string(),
                    "request_headers": {"type": "array", "items": {"type": "array", "items": string()}},
                    "response_status": nullable("integer"),
                    "response_headers": {"type": ["array", "null"], "items": {"type": "array", "items": string()}},
                    "response_body": nullable("string"), "error_class": nullable("string"), "error_message": nullable("string"),
                }),
            ),
        ),
        (
            "Target",
            object(
                &["id", "tenant_type", "tenant_id", "url", "created_at"],
                tenant_record(json!({"url": string()})),
            ),
        ),
        ("NewTarget", object(&["url"], with_tenant(json!({"url": string()})))),
        (
            "Filter",
            object(
                &["id", "tenant_type", "tenant_id", "events", "created_at"],
                tenant_record(json!({"events": {"type": "array", "items": string()}})),
            ),
        ),
        (
            "NewFilter",
            object(&["events"], with_tenant(json!({"events": {"type": "array", "items": string()}}))),
        ),
        (
            "Subscription",
            object(
                &["id", "tenant_type", "tenant_id", "url", "events", "enabled", "created_at"],
                tenant_record(json!({
                    "target_id": nullable("string"), "filter_id": nullable("string"), "url": string(),
                    "events": {"type": ["array", "null"], "items": string()}, "enabled": {"type": "boolean"},
                    "secret": {"type": "string", "description": "Only when the subscription is created."},
                })),
            ),
        ),
        (
            "NewSubscription",
            object(
                &["target_id", "filter_id"],
                with_tenant(json!({"target_id": string(), "filter_id": string()})),
            ),
        ),
        (
            "EventType",
            object(
                &["name", "description", "product_group", "tenant_type", "resource", "example_payload"],
                event_type.clone(),
            ),
        ),
        ("NewEventType", object(&["name", "product_group", "tenant_type"], event_type)),
        (
            "Tenant",
            object(
                &["id", "name", "created_at"],
                json!({"id": string(), "name": string(), "created_at": time()}),
            ),
        ),
        (
            "Store",
            object(
                &["id", "name", "created_at", "retention"],
                json!({"id": string(), "name": string(), "created_at": time(), "retention": {"type": ["string", "null"],
                    "description": "The store's own retention, e.g. \"7d\"; null: HOOKLINE_RETENTION"}}),
            ),
        ),
        (
            "StorePatch",
            json!({"type": "object", "properties": {"retention": {"type": ["string", "null"],
                "description": "7d, 12h, 90m: at least 1h and at most HOOKLINE_RETENTION (422 beyond); null: HOOKLINE_RETENTION"}}}),
        ),
        ("NewTenant", object(&["id", "name"], json!({"id": string(), "name": string()}))),
        (
            "Installation",
            object(
                &["application_id", "store_id", "product_lines", "created_at"],
                json!({
                    "application_id": string(), "store_id": string(), "product_lines": {"type": "array", "items": string()}, "created_at": time(),
                }),
            ),
        ),
        (
            "NewInstallation",
            object(
                &["store_id"],
                json!({"store_id": string(), "product_lines": {"type": "array", "items": string()}}),
            ),
        ),
        (
            "Disconnected",
            object(
                &["application_id", "store_id", "event_id"],
                json!({"application_id": string(), "store_id": string(), "event_id": string()}),
            ),
        ),
        (
            "ApiKey",
            object(
                &["id", "name", "scope", "prefix", "created_at"],
                json!({
                    "id": string(), "name": string(), "scope": string(), "prefix": string(), "created_at": time(),
                    "last_used_at": {"type": ["string", "null"], "format": "date-time"},
                    "revoked_at": {"type": ["string", "null"], "format": "date-time"},
                    "key": {"type": "string", "description": "Only when the key is created."},
                }),
            ),
        ),
        (
            "NewApiKey",
            object(
                &["name"],
                json!({"name": string(), "scope": {"type": "string", "description": "admin, store:ID or application:ID; default: the caller's own"}}),
            ),
        ),
    ];
    list.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// `Page<X>` becomes an inline page schema around a reference to X.
pub fn response_schema(name: &str) -> Value {
    match name.strip_prefix("Page<").and_then(|n| n.strip_suffix('>')) {
        Some(item) => object(
            &["items", "next_cursor"],
            json!({
                "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}},
                "next_cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last"},
            }),
        ),
        None => json!({"$ref": format!("#/components/schemas/{name}")}),
    }
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for o in OPERATIONS {
        let mut parameters: Vec<Value> = Vec::new();
        let mut rest = o.path;
        while let Some(start) = rest.find('{') {
            let end = rest[start..].find('}').map(|e| start + e).unwrap_or(rest.len());
            parameters.push(
                json!({"name": &rest[start + 1..end], "in": "path", "required": true, "schema": string()}),
            );
            rest = &rest[end..];
        }
        let is_list = o.response.is_some_and(|r| r.starts_with("Page<"));
        if is_list {
            parameters.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 250, "default": 50}}));
            parameters.push(json!({"name": "cursor", "in": "query", "schema": string()}));
        }
        for q in o.query {
            parameters.push(json!({"name": q, "in": "query", "schema": string()}));
        }
        if o.id == "publishEvent" {
            parameters.push(json!({"name": "Idempotency-Key", "in": "header", "schema": string(),
                "description": "A repeat within 24 hours answers with the first event and delivers nothing new"}));
        }
        let mut responses = Map::new();
        let ok = match o.response {
            Some(r) => {
                json!({"description": "Success", "content": {"application/json": {"schema": response_schema(r)}}})
            }
            None if o.id == "openapi" => {
                json!({"description": "This document", "content": {"application/json": {"schema": {"type": "object"}}}})
            }
            None => json!({"description": "Done"}),
        };
        responses.insert(o.status.to_string(), ok);
        let error = json!({"$ref": "#/components/responses/Error"});
        let errors: &[u16] = match (o.method, o.id) {
            (_, "openapi") => &[],
            ("post", "publishEvent") => &[400, 401, 403, 413, 422],
            ("get", _) => &[400, 401, 403, 404],
            ("delete", _) => &[401, 403, 404, 409],
            _ => &[400, 401, 403, 404, 409, 422],
        };
        for code in errors {
            responses.insert(code.to_string(), error.clone());
        }
        let mut operation = json!({
            "operationId": o.id, "summary": o.summary, "tags": [o.tag], "parameters": parameters, "responses": responses,
        });
        if o.id == "openapi" {
            operation["security"] = json!([]);
        }
        if let Some(body) = o.body {
            operation["requestBody"] = json!({"required": o.id != "sendTestEvent",
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
        }
        let entry = paths.entry(o.path.to_string()).or_insert_with(|| json!({}));
        entry[o.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Hookline API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Publish events and manage webhooks, targets, filters and subscriptions. Every error answers {\"error\": {\"code\", \"message\", \"field\"}}; every list is paginated by cursor.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An API key: admin, store:ID or application:ID"}},
            "responses": {"Error": {"description": "The request failed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": schemas(),
        },
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A readable reference of the API, rendered from the same operations as the document.
pub fn reference_html() -> String {
    let doc = document();
    let mut out = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>API reference · Hookline</title><link rel=\"stylesheet\" href=\"/pkg/hookline.css\"></head><body>\
         <header class=\"topbar\"><a class=\"brand\" href=\"/settings/api\">Hookline</a>\
         <nav aria-label=\"Main\"><a href=\"/settings/api\">Settings › API</a></nav></header>\
         <main class=\"page reference\"><h1>API reference</h1>\
         <p class=\"hint\">Every route is under <code>/api/v1</code> and takes <code>Authorization: Bearer &lt;API key&gt;</code>. \
         Errors answer <code>{\"error\": {\"code\", \"message\", \"field\"}}</code>; lists take <code>limit</code> and \
         <code>cursor</code> and answer <code>{\"items\", \"next_cursor\"}</code>. \
         The machine-readable document is <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> (OpenAPI 3.1).</p>",
    );
    let mut tags: Vec<&str> = Vec::new();
    for o in OPERATIONS {
        if !tags.contains(&o.tag) {
            tags.push(o.tag);
        }
    }
    for tag in tags {
        out.push_str(&format!(
            "<section class=\"card\"><h2>{}</h2><table class=\"admin-table\"><tbody>",
            escape(tag)
        ));
        for o in OPERATIONS.iter().filter(|o| o.tag == tag) {
            let body = o.body.map(|b| format!(" Body: <code>{}</code>.", escape(b))).unwrap_or_default();
            let answer = match o.response {
                Some(r) => format!(" Answers {} <code>{}</code>.", o.status, escape(r)),
                None => format!(" Answers {}.", o.status),
            };
            out.push_str(&format!(
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}.{}{}</td></tr>",
                o.method.to_uppercase(),
                escape(o.path),
                escape(o.summary),
                body,
                answer
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
