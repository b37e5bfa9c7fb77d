//! The three-step flow over REST: `/targets`, `/filters`, `/subscriptions`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookline_core::entities::{filter, target, webhook};
use hookline_core::{Page, PageRequest};
use serde::{Deserialize, Serialize};

use super::extract::{Caller, JsonBody, Query};
use super::{ApiError, time};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/targets", post(create_target).get(list_targets))
        .route("/targets/{id}", get(read_target).delete(delete_target))
        .route("/filters", post(create_filter).get(list_filters))
        .route("/filters/{id}", get(read_filter).delete(delete_filter))
        .route("/subscriptions", post(create_subscription).get(list_subscriptions))
        .route("/subscriptions/{id}", get(read_subscription).delete(delete_subscription))
}

#[derive(Deserialize)]
struct TenantQuery {
    tenant_type: Option<String>,
    tenant_id: Option<String>,
    limit: Option<u64>,
    cursor: Option<String>,
}

impl TenantQuery {
    fn page(&self) -> PageRequest {
        PageRequest { limit: self.limit, cursor: self.cursor.clone() }
    }
}

#[derive(Serialize)]
struct TargetView {
    id: String,
    tenant_type: String,
    tenant_id: String,
    url: String,
    created_at: String,
}

impl From<target::Model> for TargetView {
    fn from(t: target::Model) -> Self {
        TargetView {
            id: t.id,
            tenant_type: t.tenant_type,
            tenant_id: t.tenant_id,
            url: t.url,
            created_at: time(t.created_at),
        }
    }
}

#[derive(Serialize)]
struct FilterView {
    id: String,
    tenant_type: String,
    tenant_id: String,
    events: Vec<String>,
    created_at: String,
}

impl From<filter::Model> for FilterView {
    fn from(f: filter::Model) -> Self {
        FilterView {
            events: f.event_names(),
            id: f.id,
            tenant_type: f.tenant_type,
            tenant_id: f.tenant_id,
            created_at: time(f.created_at),
        }
    }
}

#[derive(Serialize)]
struct SubscriptionView {
    id: String,
    tenant_type: String,
    tenant_id: String,
    target_id: Option<String>,
    filter_id: Option<String>,
    url: String,
    /// `null` for every event type.
    events: Option<Vec<String>>,
    enabled: bool,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl From<webhook::Model> for SubscriptionView {
    fn from(w: webhook::Model) -> Self {
        SubscriptionView {
            events: w.event_filter(),
            id: w.id,
            tenant_type: w.tenant_type,
            tenant_id: w.tenant_id,
            target_id: w.target_id,
            filter_id: w.filter_id,
            url: w.url,
            enabled: w.enabled,
            created_at: time(w.created_at),
            secret: None,
        }
    }
}

#[derive(Deserialize)]
struct CreateTarget {
    tenant_type: Option<String>,
    tenant_id: Option<String>,
    url: String,
}

async fn create_target(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateTarget>,
) -> Result<(StatusCode, Json<TargetView>), ApiError> {
    let tenant = caller.tenant(body.tenant_type.as_deref(), body.tenant_id.as_deref())?;
    let created = state.services.create_target(&caller.0, &tenant, &body.url).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

async fn list_targets(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantQuery>,
) -> Result<Json<Page<TargetView>>, ApiError> {
    let tenant = caller.tenant(q.tenant_type.as_deref(), q.tenant_id.as_deref())?;
    Ok(Json(state.services.list_targets(&caller.0, &tenant, &q.page()).await?.map(TargetView::from)))
}

async fn read_target(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TargetView>, ApiError> {
    Ok(Json(state.services.target(&caller.0, &id).await?.into()))
}

async fn delete_target(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.delete_target(&caller.0, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct CreateFilter {
    tenant_type: Option<String>,
    tenant_id: Option<String>,
    events: Vec<String>,
}

async fn create_filter(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateFilter>,
) -> Result<(StatusCode, Json<FilterView>), ApiError> {
    let tenant = caller.tenant(body.tenant_type.as_deref(), body.tenant_id.as_deref())?;
    let created = state.services.create_filter(&caller.0, &tenant, body.events).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

async fn list_filters(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantQuery>,
) -> Result<Json<Page<FilterView>>, ApiError> {
    let tenant = caller.tenant(q.tenant_type.as_deref(), q.tenant_id.as_deref())?;
    Ok(Json(state.services.list_filters(&caller.0, &tenant, &q.page()).await?.map(FilterView::from)))
}

async fn read_filter(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<FilterView>, ApiError> {
    Ok(Json(state.services.filter(&caller.0, &id).await?.into()))
}

async fn delete_filter(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.delete_filter(&caller.0, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct CreateSubscription {
    tenant_type: Option<String>,
    tenant_id: Option<String>,
    target_id: String,
    filter_id: String,
}

async fn create_subscription(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateSubscription>,
) -> Result<(StatusCode, Json<SubscriptionView>), ApiError> {
    let tenant = caller.tenant(body.tenant_type.as_deref(), body.tenant_id.as_deref())?;
    let created =
        state.services.create_subscription(&caller.0, &tenant, &body.target_id, &body.filter_id).await?;
    let mut view = SubscriptionView::from(created.webhook);
    view.secret = Some(created.secret);
    Ok((StatusCode::CREATED, Json(view)))
}

async fn list_subscriptions(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantQuery>,
) -> Result<Json<Page<SubscriptionView>>, ApiError> {
    let tenant = caller.tenant(q.tenant_type.as_deref(), q.tenant_id.as_deref())?;
    Ok(Json(state.services.list_webhooks(&caller.0, &tenant, &q.page()).await?.map(SubscriptionView::from)))
}

async fn read_subscription(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, ApiError> {
    Ok(Json(state.services.webhook(&caller.0, &id).await?.into()))
}

async fn delete_subscription(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.delete_webhook(&caller.0, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
