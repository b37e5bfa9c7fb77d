//! Admin routes for tenants (stores with their retention and deletion, applications,
//! installations) and the event catalog.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::extract::{Caller, JsonBody, Query};
use super::{ApiError, time};
use crate::AppState;
use hookline_core::entities::{event_type, installation, store};
use hookline_core::{NewEventType, Page, PageRequest, format_retention};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/stores", post(create_store).get(list_stores))
        .route("/stores/{id}", get(read_store).patch(update_store).delete(delete_store))
        .route("/applications", post(create_application))
        .route("/applications/{id}/installations", post(install).get(installations))
        .route("/applications/{id}/installations/{store_id}", delete(disconnect))
        .route("/event-types", get(event_types).post(create_event_type))
}

#[derive(Deserialize)]
struct TenantBody {
    id: String,
    name: String,
}

#[derive(Serialize)]
struct TenantView {
    id: String,
    name: String,
    created_at: String,
}

/// A store, with how long its events, deliveries and attempts are kept when an admin made it
/// shorter than `HOOKLINE_RETENTION` (`null`: the global retention).
#[derive(Serialize)]
struct StoreView {
    id: String,
    name: String,
    created_at: String,
    retention: Option<String>,
}

impl From<store::Model> for StoreView {
    fn from(s: store::Model) -> Self {
        StoreView {
            retention: s.retention_ms.map(|ms| format_retention(Duration::from_millis(ms.max(0) as u64))),
            id: s.id,
            name: s.name,
            created_at: time(s.created_at),
        }
    }
}

async fn create_store(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<TenantBody>,
) -> Result<(StatusCode, Json<StoreView>), ApiError> {
    caller.require_admin()?;
    let s = state.services.create_store(&body.id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(s.into())))
}

async fn read_store(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<StoreView>, ApiError> {
    caller.require_admin()?;
    let found = state.services.live_store(&id).await?.ok_or_else(|| ApiError::not_found("store"))?;
    Ok(Json(found.into()))
}

#[derive(Deserialize)]
struct StorePatch {
    /// `"7d"`, or `null` for the global retention; absent leaves it as it is.
    #[serde(default, deserialize_with = "present")]
    retention: Option<Option<String>>,
}

fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Changes a store (admins only): its retention, at most `HOOKLINE_RETENTION` (422 beyond).
async fn update_store(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StorePatch>,
) -> Result<Json<StoreView>, ApiError> {
    caller.require_admin()?;
    let updated = match body.retention {
        Some(retention) => state.services.set_store_retention(&caller.0, &id, retention.as_deref()).await?,
        None => state.services.live_store(&id).await?.ok_or_else(|| ApiError::not_found("store"))?,
    };
    Ok(Json(updated.into()))
}

/// Deletes a store and all of its data (admins only): 204 at once, the large tables emptied
/// in the background.
async fn delete_store(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state.services.delete_store(&caller.0, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_application(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<TenantBody>,
) -> Result<(StatusCode, Json<TenantView>), ApiError> {
    caller.require_admin()?;
    let a = state.services.create_application(&body.id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(TenantView { id: a.id, name: a.name, created_at: time(a.created_at) })))
}

async fn list_stores(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<StoreView>>, ApiError> {
    caller.require_admin()?;
    let found = state.services.stores_page(&page).await?;
    Ok(Json(found.map(StoreView::from)))
}

#[derive(Deserialize)]
struct InstallBody {
    store_id: String,
    product_lines: Option<Vec<String>>,
}

#[derive(Serialize)]
struct InstallationView {
    application_id: String,
    store_id: String,
    product_lines: Vec<String>,
    created_at: String,
}

impl From<installation::Model> for InstallationView {
    fn from(i: installation::Model) -> Self {
        InstallationView {
            product_lines: serde_json::from_str(&i.product_lines).unwrap_or_default(),
            application_id: i.application_id,
            store_id: i.store_id,
            created_at: time(i.created_at),
        }
    }
}

async fn install(
    State(state): State<AppState>,
    caller: Caller,
    Path(application_id): Path<String>,
    JsonBody(body): JsonBody<InstallBody>,
) -> Result<(StatusCode, Json<InstallationView>), ApiError> {
    caller.require_admin()?;
    let made =
        state.services.install_application(&application_id, &body.store_id, body.product_lines).await?;
    Ok((StatusCode::CREATED, Json(made.into())))
}

async fn installations(
    State(state): State<AppState>,
    caller: Caller,
    Path(application_id): Path<String>,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<InstallationView>>, ApiError> {
    let found = state.services.installations(&caller.0, &application_id, &page).await?;
    Ok(Json(found.map(InstallationView::from)))
}

#[derive(Serialize)]
struct DisconnectedView {
    application_id: String,
    store_id: String,
    /// The `integrations.applications.disconnected.v3` event sent to the application.
    event_id: String,
}

/// Disconnects an application from a store (admins only): the application's store-level
/// webhooks there are turned off and it is told with a disconnected event.
async fn disconnect(
    State(state): State<AppState>,
    caller: Caller,
    Path((application_id, store_id)): Path<(String, String)>,
) -> Result<Json<DisconnectedView>, ApiError> {
    caller.require_admin()?;
    let event_id = state.services.disconnect_application(&application_id, &store_id).await?;
    Ok(Json(DisconnectedView { application_id, store_id, event_id }))
}

#[derive(Serialize)]
struct EventTypeView {
    name: String,
    description: String,
    product_group: String,
    tenant_type: String,
    resource: String,
    example_payload: Box<RawValue>,
}

impl From<event_type::Model> for EventTypeView {
    fn from(t: event_type::Model) -> Self {
        EventTypeView {
            // Stored from a parsed JSON value, so it parses; `{}` guards a hand-edited row.
            example_payload: RawValue::from_string(t.example_payload)
                .unwrap_or_else(|_| RawValue::from_string("{}".into()).expect("{} is JSON")),
            name: t.name,
            description: t.description,
            product_group: t.product_group,
            tenant_type: t.tenant_type,
            resource: t.resource,
        }
    }
}

/// The catalog, by product group and name; the cursor is the last type's name.
async fn event_types(
    State(state): State<AppState>,
    _caller: Caller,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<EventTypeView>>, ApiError> {
    Ok(Json(state.services.event_types_page(&page).await?.map(EventTypeView::from)))
}

async fn create_event_type(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewEventType>,
) -> Result<(StatusCode, Json<EventTypeView>), ApiError> {
    let made = state.services.create_event_type(&caller.0, body).await?;
    Ok((StatusCode::CREATED, Json(made.into())))
}
