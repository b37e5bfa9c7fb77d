//! Admin routes for tenants (stores, applications, installations) and the event catalog.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::extract::{Caller, JsonBody};
use super::{ApiError, time};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/stores", post(create_store))
        .route("/applications", post(create_application))
        .route("/applications/{id}/installations", post(install))
        .route("/event-types", get(event_types))
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

async fn create_store(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<TenantBody>,
) -> Result<(StatusCode, Json<TenantView>), ApiError> {
    caller.require_admin()?;
    let s = state.services.create_store(&body.id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(TenantView { id: s.id, name: s.name, created_at: time(s.created_at) })))
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

#[derive(Deserialize)]
struct InstallBody {
    store_id: String,
}

#[derive(Serialize)]
struct InstallationView {
    application_id: String,
    store_id: String,
}

async fn install(
    State(state): State<AppState>,
    caller: Caller,
    Path(application_id): Path<String>,
    JsonBody(body): JsonBody<InstallBody>,
) -> Result<(StatusCode, Json<InstallationView>), ApiError> {
    caller.require_admin()?;
    state.services.install_application(&application_id, &body.store_id).await?;
    Ok((StatusCode::CREATED, Json(InstallationView { application_id, store_id: body.store_id })))
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

async fn event_types(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<EventTypeView>>, ApiError> {
    let types = state.services.event_types().await?;
    Ok(Json(
        types
            .into_iter()
            .filter_map(|t| {
                Some(EventTypeView {
                    example_payload: RawValue::from_string(t.example_payload).ok()?,
                    name: t.name,
                    description: t.description,
                    product_group: t.product_group,
                    tenant_type: t.tenant_type,
                    resource: t.resource,
                })
            })
            .collect(),
    ))
}
