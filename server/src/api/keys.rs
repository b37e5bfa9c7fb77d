//! API keys over REST: list, create (shown once), get, revoke. An admin key manages every
//! key; a store's or application's key manages the keys of its own scope.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookline_core::entities::api_key;
use hookline_core::{Page, PageRequest};
use serde::{Deserialize, Serialize};

use super::extract::{Caller, JsonBody, Query};
use super::{ApiError, time};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api-keys", post(create).get(list))
        .route("/api-keys/{id}", get(read).delete(revoke))
        .route("/api-keys/{id}/revoke", post(revoke))
}

#[derive(Serialize)]
pub struct ApiKeyView {
    id: String,
    name: String,
    scope: String,
    /// The key's first characters, to recognise it by.
    prefix: String,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    /// The key itself: only in the answer that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
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

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    scope: Option<String>,
}

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

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<ApiKeyView>>, ApiError> {
    Ok(Json(state.services.list_api_keys(&caller.0, &page).await?.map(ApiKeyView::from)))
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    Ok(Json(state.services.api_key(&caller.0, &id).await?.into()))
}

async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    Ok(Json(state.services.revoke_api_key(&caller.0, &id).await?.into()))
}
