//! The event type catalog: `GET /api/v1/event-types` (a page), `GET /api/v1/event-types/{name}`
//! (one entry with its schema and example), `POST /api/v1/event-types` (an admin adds a type)
//! and `PATCH /api/v1/event-types/{name}` (an admin sets its schema and turns checking
//! payloads against it on or off).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Caller, JsonBody, Query};
use super::{ApiError, ErrorBody, Page, PageQuery};
use crate::AppState;
use hookline_core::entities::event_type;
use hookline_core::{NewEventType, SchemaChange, event_schema};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(event_types, create_event_type))
        .routes(routes!(read_event_type, update_event_type))
}

/// Which tenants an event type is for.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // documents the strings the API reads and writes
enum EventTenantType {
    Store,
    Application,
    Any,
}

/// Where an event type's schema comes from: set by an admin, or inferred from the example
/// payload (each field's type, every key of the example required, other keys allowed).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // documents the strings the API writes
enum SchemaSource {
    Custom,
    Inferred,
}

/// An entry of the event type catalog.
#[derive(Serialize, ToSchema)]
#[schema(as = EventType)]
struct EventTypeView {
    name: String,
    description: String,
    product_group: String,
    #[schema(value_type = EventTenantType)]
    tenant_type: String,
    /// What the event's sequence number counts.
    resource: String,
    /// What a payload of this type looks like; test sends carry it.
    #[schema(value_type = Value)]
    example_payload: Box<RawValue>,
    /// The JSON Schema of the type's payloads.
    #[schema(value_type = Object)]
    schema: serde_json::Value,
    #[schema(value_type = SchemaSource)]
    schema_source: &'static str,
    /// Whether publishing refuses (422) a payload that does not match the schema.
    validate_payloads: bool,
}

impl From<event_type::Model> for EventTypeView {
    fn from(t: event_type::Model) -> Self {
        let (schema, source) = event_schema(&t);
        EventTypeView {
            // Stored from a parsed JSON value, so it parses; `{}` guards a hand-edited row.
            example_payload: RawValue::from_string(t.example_payload)
                .unwrap_or_else(|_| RawValue::from_string("{}".into()).expect("{} is JSON")),
            name: t.name,
            description: t.description,
            product_group: t.product_group,
            tenant_type: t.tenant_type.to_string(),
            resource: t.resource,
            schema,
            schema_source: source.as_str(),
            validate_payloads: t.validate_payloads,
        }
    }
}

/// The event type catalog
///
/// By name; the cursor is the last type's name.
#[utoipa::path(
    get,
    path = "/event-types",
    operation_id = "listEventTypes",
    tag = "Event types",
    params(PageQuery),
    responses((status = 200, description = "A page of the catalog", body = Page<EventTypeView>)),
)]
async fn event_types(
    State(state): State<AppState>,
    _caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<EventTypeView>>, ApiError> {
    Ok(Json(Page::of(state.services.event_types_page(&q.page()).await?, EventTypeView::from)))
}

/// One event type with its schema and example payload
#[utoipa::path(
    get,
    path = "/event-types/{name}",
    operation_id = "getEventType",
    tag = "Event types",
    params(("name" = String, Path, description = "The event type's name, e.g. `communication.sms.sent.v1`")),
    responses(
        (status = 200, description = "The entry", body = EventTypeView),
        (status = 404, description = "No event type has this name", body = ErrorBody),
    ),
)]
async fn read_event_type(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<EventTypeView>, ApiError> {
    Ok(Json(state.services.event_type(&name).await?.into()))
}

/// A new entry of the event type catalog.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewEventType)]
struct NewEventTypeBody {
    /// The event type's name, e.g. `orders.created.v1`.
    name: String,
    #[serde(default)]
    description: String,
    product_group: String,
    #[schema(value_type = EventTenantType)]
    tenant_type: String,
    /// What the sequence number counts; the type's name by default.
    #[serde(default)]
    resource: Option<String>,
    /// What a payload of this type looks like; `{}` by default.
    #[serde(default)]
    #[schema(value_type = Option<Value>)]
    example_payload: Option<serde_json::Value>,
}

/// Add an event type (admin)
#[utoipa::path(
    post,
    path = "/event-types",
    operation_id = "createEventType",
    tag = "Event types",
    request_body = NewEventTypeBody,
    responses(
        (status = 201, description = "The new entry", body = EventTypeView),
        (status = 403, description = "This needs an admin key", body = ErrorBody),
        (status = 409, description = "An event type with this name exists", body = ErrorBody),
        (status = 422, description = "The entry is not valid", body = ErrorBody),
    ),
)]
async fn create_event_type(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewEventTypeBody>,
) -> Result<(StatusCode, Json<EventTypeView>), ApiError> {
    let new = NewEventType {
        name: body.name,
        description: body.description,
        product_group: body.product_group,
        tenant_type: body.tenant_type,
        resource: body.resource,
        example_payload: body.example_payload,
    };
    let made = state.services.create_event_type(&caller.0, new).await?;
    Ok((StatusCode::CREATED, Json(made.into())))
}

/// Tells a field that is absent from one that is `null`: `"schema": null` removes it.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// What to change of an event type; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[schema(as = EventTypePatch)]
struct EventTypePatchBody {
    /// A JSON Schema (an object; draft 2020-12 unless it names another with `$schema`) that
    /// the type's example payload satisfies, at most 64 KiB, with no references outside it;
    /// `null` removes the schema set before, and the catalog infers one from the example again.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    schema: Option<Option<serde_json::Value>>,
    /// Whether publishing refuses (422, naming the path) a payload that does not match the
    /// schema. Off by default.
    validate_payloads: Option<bool>,
}

/// Set an event type's schema, and turn checking payloads against it on or off (admin)
#[utoipa::path(
    patch,
    path = "/event-types/{name}",
    operation_id = "updateEventType",
    tag = "Event types",
    params(("name" = String, Path, description = "The event type's name")),
    request_body = EventTypePatchBody,
    responses(
        (status = 200, description = "The entry as it is now", body = EventTypeView),
        (status = 403, description = "This needs an admin key", body = ErrorBody),
        (status = 404, description = "No event type has this name", body = ErrorBody),
        (status = 422, description = "The schema is not a valid JSON Schema, or the example does not match it", body = ErrorBody),
    ),
)]
async fn update_event_type(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<EventTypePatchBody>,
) -> Result<Json<EventTypeView>, ApiError> {
    caller.require_admin()?;
    let change = SchemaChange { schema: body.schema, validate_payloads: body.validate_payloads };
    Ok(Json(state.services.change_event_schema(&caller.0, &name, change).await?.into()))
}
