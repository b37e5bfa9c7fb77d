//! API keys over REST: list, create (shown once), get, revoke. An admin key manages every
//! key; a store's or application's key manages the keys of its own scope.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hookline_core::entities::api_key;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Caller, JsonBody, Query};
use super::{ApiError, ErrorBody, Page, PageQuery, time};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create, list))
        .routes(routes!(read, revoke))
        .routes(routes!(revoke_by_post))
}

/// An API key, without the key itself except when it is created.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKey)]
pub struct ApiKeyView {
    id: String,
    name: String,
    /// `admin`, `store:ID` or `application:ID`.
    scope: String,
    /// The key's first characters, to recognise it by.
    prefix: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(required = true, format = DateTime)]
    last_used_at: Option<String>,
    /// When the key was revoked; `null` while it works.
    #[schema(required = true, format = DateTime)]
    revoked_at: Option<String>,
    /// The key itself: only in the answer that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    key: Option<String>,
}

impl From<api_key::Model> for ApiKeyView {
    fn from(k: api_key::Model) -> Self {
        ApiKeyView {
            id: k.id,
            name: k.name,
            scope: k.scope,
            prefix: k.key_prefix,
            created_at: time(k.created_at),
            last_used_at: k.last_used_at.map(time),
            revoked_at: k.revoked_at.map(time),
            key: None,
        }
    }
}

/// A new API key.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewApiKey)]
struct CreateBody {
    name: String,
    /// `admin`, `store:ID` or `application:ID`; the caller's own scope by default. Only an admin
    /// key makes keys of another scope.
    scope: Option<String>,
}

/// Create an API key; the answer carries the key, shown once
#[utoipa::path(
    post,
    path = "/api-keys",
    operation_id = "createApiKey",
    tag = "API keys",
    request_body = CreateBody,
    responses(
        (status = 201, description = "The key, with the key itself", body = ApiKeyView),
        (status = 403, description = "The key can only create keys of its own scope", body = ErrorBody),
        (status = 422, description = "A scope whose tenant does not exist", body = ErrorBody),
    ),
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<ApiKeyView>), ApiError> {
    let created = state.services.create_api_key_as(&caller.0, body.scope.as_deref(), &body.name).await?;
    let mut view = ApiKeyView::from(state.services.api_key(&hookline_core::Scope::Admin, &created.id).await?);
    view.key = Some(created.key);
    Ok((StatusCode::CREATED, Json(view)))
}

/// API keys (all for an admin, the key's own scope otherwise)
#[utoipa::path(
    get,
    path = "/api-keys",
    operation_id = "listApiKeys",
    tag = "API keys",
    params(PageQuery),
    responses((status = 200, description = "A page of keys", body = Page<ApiKeyView>)),
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<ApiKeyView>>, ApiError> {
    Ok(Json(Page::of(state.services.list_api_keys(&caller.0, &q.page()).await?, ApiKeyView::from)))
}

/// One API key (without the key itself)
#[utoipa::path(
    get,
    path = "/api-keys/{id}",
    operation_id = "getApiKey",
    tag = "API keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key", body = ApiKeyView),
        (status = 404, description = "No such key, or not one this key manages", body = ErrorBody),
    ),
)]
async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    Ok(Json(state.services.api_key(&caller.0, &id).await?.into()))
}

/// Revoke an API key; it stops working at once
#[utoipa::path(
    delete,
    path = "/api-keys/{id}",
    operation_id = "revokeApiKey",
    tag = "API keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The revoked key", body = ApiKeyView),
        (status = 404, description = "No such key, or not one this key manages", body = ErrorBody),
    ),
)]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    Ok(Json(state.services.revoke_api_key(&caller.0, &id).await?.into()))
}

/// Revoke an API key (POST form of DELETE)
#[utoipa::path(
    post,
    path = "/api-keys/{id}/revoke",
    operation_id = "revokeApiKeyPost",
    tag = "API keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The revoked key", body = ApiKeyView),
        (status = 404, description = "No such key, or not one this key manages", body = ErrorBody),
    ),
)]
async fn revoke_by_post(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    revoke(state, caller, id).await
}
