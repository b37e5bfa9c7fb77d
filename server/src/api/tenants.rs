//! Admin routes for tenants (stores with their retention and deletion, applications,
//! installations). The event catalog is `event_types.rs`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Caller, JsonBody, Query};
use super::{ApiError, ErrorBody, Page, PageQuery, time};
use crate::AppState;
use hookline_core::entities::{installation, store};
use hookline_core::{ApplicationId, StoreId, format_retention};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create_store, list_stores))
        .routes(routes!(read_store, update_store, delete_store))
        .routes(routes!(create_application))
        .routes(routes!(install, installations))
        .routes(routes!(disconnect))
}

/// A new store or application.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewTenant)]
struct TenantBody {
    id: String,
    name: String,
}

/// An application.
#[derive(Serialize, ToSchema)]
#[schema(as = Tenant)]
struct TenantView {
    id: String,
    name: String,
    #[schema(format = DateTime)]
    created_at: String,
}

/// A store, with how long its events, deliveries and attempts are kept when an admin made it
/// shorter than `HOOKLINE_RETENTION` (`null`: the global retention).
#[derive(Serialize, ToSchema)]
#[schema(as = Store)]
struct StoreView {
    id: String,
    name: String,
    #[schema(format = DateTime)]
    created_at: String,
    /// The store's own retention, e.g. `7d`; `null`: HOOKLINE_RETENTION.
    #[schema(required = true)]
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

/// Create a store (admin)
#[utoipa::path(
    post,
    path = "/stores",
    operation_id = "createStore",
    tag = "Tenants",
    request_body = TenantBody,
    responses(
        (status = 201, description = "The store", body = StoreView),
        (status = 403, description = "This needs an admin key", body = ErrorBody),
        (status = 409, description = "A store with this id exists (or existed and is being deleted)", body = ErrorBody),
    ),
)]
async fn create_store(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<TenantBody>,
) -> Result<(StatusCode, Json<StoreView>), ApiError> {
    caller.require_admin()?;
    let s = state.services.create_store(&body.id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(s.into())))
}

/// A store (admin)
#[utoipa::path(
    get,
    path = "/stores/{id}",
    operation_id = "getStore",
    tag = "Tenants",
    params(("id" = String, Path, description = "The store's id")),
    responses(
        (status = 200, description = "The store", body = StoreView),
        (status = 403, description = "This needs an admin key", body = ErrorBody),
        (status = 404, description = "No such store", body = ErrorBody),
    ),
)]
async fn read_store(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<StoreView>, ApiError> {
    caller.require_admin()?;
    let found = state.services.live_store(&id).await?.ok_or_else(|| ApiError::not_found("store"))?;
    Ok(Json(found.into()))
}

/// What to change about a store.
#[derive(Deserialize, ToSchema)]
struct StorePatch {
    /// `7d`, `12h`, `90m`: at least 1h and at most HOOKLINE_RETENTION (422 beyond); `null` for
    /// the global retention; absent leaves it as it is.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    retention: Option<Option<String>>,
}

fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Shorten (or with null restore) how long a store's events, deliveries and attempts are kept (admin)
#[utoipa::path(
    patch,
    path = "/stores/{id}",
    operation_id = "updateStore",
    tag = "Tenants",
    params(("id" = String, Path, description = "The store's id")),
    request_body = StorePatch,
    responses(
        (status = 200, description = "The store as it is now", body = StoreView),
        (status = 403, description = "This needs an admin key", body = ErrorBody),
        (status = 404, description = "No such store", body = ErrorBody),
        (status = 422, description = "A retention longer than HOOKLINE_RETENTION or shorter than an hour", body = ErrorBody),
    ),
)]
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

/// Delete a store and all of its data (admin); the data is removed in the background
#[utoipa::path(
    delete,
    path = "/stores/{id}",
    operation_id = "deleteStore",
    tag = "Tenants",
    params(("id" = String, Path, description = "The store's id")),
    responses(
        (status = 204, description = "Deleted; the large tables are emptied in the background"),
        (status = 403, description = "This needs an admin key", body = ErrorBody),
        (status = 404, description = "No such store", body = ErrorBody),
        (status = 409, description = "The store cannot be deleted now", body = ErrorBody),
    ),
)]
async fn delete_store(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state.services.delete_store(&caller.0, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create an application (admin)
#[utoipa::path(
    post,
    path = "/applications",
    operation_id = "createApplication",
    tag = "Tenants",
    request_body = TenantBody,
    responses(
        (status = 201, description = "The application", body = TenantView),
        (status = 403, description = "This needs an admin key", body = ErrorBody),
        (status = 409, description = "An application with this id exists", body = ErrorBody),
    ),
)]
async fn create_application(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<TenantBody>,
) -> Result<(StatusCode, Json<TenantView>), ApiError> {
    caller.require_admin()?;
    let a = state.services.create_application(&body.id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(TenantView { id: a.id, name: a.name, created_at: time(a.created_at) })))
}

/// Every store (admin)
#[utoipa::path(
    get,
    path = "/stores",
    operation_id = "listStores",
    tag = "Tenants",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of stores", body = Page<StoreView>),
        (status = 403, description = "This needs an admin key", body = ErrorBody),
    ),
)]
async fn list_stores(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<StoreView>>, ApiError> {
    caller.require_admin()?;
    let found = state.services.stores_page(&q.page()).await?;
    Ok(Json(Page::of(found, StoreView::from)))
}

/// A store to install an application on.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewInstallation)]
struct InstallBody {
    store_id: String,
    /// The product lines the application may act on; all by default.
    product_lines: Option<Vec<String>>,
}

/// An application installed on a store.
#[derive(Serialize, ToSchema)]
#[schema(as = Installation)]
struct InstallationView {
    application_id: String,
    store_id: String,
    product_lines: Vec<String>,
    #[schema(format = DateTime)]
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

/// Install an application on a store (admin)
#[utoipa::path(
    post,
    path = "/applications/{id}/installations",
    operation_id = "installApplication",
    tag = "Tenants",
    params(("id" = String, Path, description = "The application's id")),
    request_body = InstallBody,
    responses(
        (status = 201, description = "The installation", body = InstallationView),
        (status = 403, description = "This needs an admin key", body = ErrorBody),
        (status = 404, description = "No such application", body = ErrorBody),
        (status = 409, description = "The application is installed on the store already", body = ErrorBody),
        (status = 422, description = "No such store", body = ErrorBody),
    ),
)]
async fn install(
    State(state): State<AppState>,
    caller: Caller,
    Path(application_id): Path<String>,
    JsonBody(body): JsonBody<InstallBody>,
) -> Result<(StatusCode, Json<InstallationView>), ApiError> {
    caller.require_admin()?;
    let made = state
        .services
        .install_application(&application_id.into(), &body.store_id.into(), body.product_lines)
        .await?;
    Ok((StatusCode::CREATED, Json(made.into())))
}

/// The stores an application is installed on (admin or the application)
#[utoipa::path(
    get,
    path = "/applications/{id}/installations",
    operation_id = "listInstallations",
    tag = "Tenants",
    params(("id" = String, Path, description = "The application's id"), PageQuery),
    responses(
        (status = 200, description = "A page of installations", body = Page<InstallationView>),
        (status = 403, description = "The key is neither an admin's nor this application's", body = ErrorBody),
        (status = 404, description = "No such application", body = ErrorBody),
    ),
)]
async fn installations(
    State(state): State<AppState>,
    caller: Caller,
    Path(application_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<InstallationView>>, ApiError> {
    let found = state.services.installations(&caller.0, &application_id, &q.page()).await?;
    Ok(Json(Page::of(found, InstallationView::from)))
}

/// The application was disconnected from the store.
#[derive(Serialize, ToSchema)]
#[schema(as = Disconnected)]
struct DisconnectedView {
    application_id: String,
    store_id: String,
    /// The `integrations.applications.disconnected.v3` event sent to the application.
    event_id: String,
}

/// Disconnect an application from a store (admin)
///
/// The application's store-level webhooks there are turned off, and it is told with an
/// `integrations.applications.disconnected.v3` event.
#[utoipa::path(
    delete,
    path = "/applications/{id}/installations/{store_id}",
    operation_id = "disconnectApplication",
    tag = "Tenants",
    params(
        ("id" = String, Path, description = "The application's id"),
        ("store_id" = String, Path, description = "The store's id"),
    ),
    responses(
        (status = 200, description = "Disconnected", body = DisconnectedView),
        (status = 403, description = "This needs an admin key", body = ErrorBody),
        (status = 404, description = "The application is not installed on the store", body = ErrorBody),
        (status = 422, description = "The disconnected event cannot be sent", body = ErrorBody),
    ),
)]
async fn disconnect(
    State(state): State<AppState>,
    caller: Caller,
    Path((application_id, store_id)): Path<(String, String)>,
) -> Result<Json<DisconnectedView>, ApiError> {
    caller.require_admin()?;
    let (application, store) = (ApplicationId::new(application_id), StoreId::new(store_id));
    let event_id = state.services.disconnect_application(&application, &store).await?;
    Ok(Json(DisconnectedView {
        application_id: application.into_string(),
        store_id: store.into_string(),
        event_id: event_id.into_string(),
    }))
}
