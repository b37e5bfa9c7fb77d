//! The three-step flow over REST: `/targets`, `/filters`, `/subscriptions`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hookline_core::entities::{filter, target, webhook};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::conditions::Conditions;
use super::extract::{Caller, JsonBody, Query};
use super::vocabulary::TenantType;
use super::{ApiError, ErrorBody, Page, TenantPageQuery, time};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create_target, list_targets))
        .routes(routes!(read_target, delete_target))
        .routes(routes!(create_filter, list_filters))
        .routes(routes!(read_filter, delete_filter))
        .routes(routes!(create_subscription, list_subscriptions))
        .routes(routes!(read_subscription, delete_subscription))
}

/// Step 1: where deliveries go.
#[derive(Serialize, ToSchema)]
#[schema(as = Target)]
struct TargetView {
    id: String,
    #[schema(value_type = TenantType)]
    tenant_type: String,
    tenant_id: String,
    url: String,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<target::Model> for TargetView {
    fn from(t: target::Model) -> Self {
        TargetView {
            id: t.id,
            tenant_type: t.tenant_type.to_string(),
            tenant_id: t.tenant_id,
            url: t.url,
            created_at: time(t.created_at),
        }
    }
}

/// Step 2: which event types.
#[derive(Serialize, ToSchema)]
#[schema(as = Filter)]
struct FilterView {
    id: String,
    #[schema(value_type = TenantType)]
    tenant_type: String,
    tenant_id: String,
    events: Vec<String>,
    /// Payload conditions a subscription made from this filter starts with; `null` for none.
    #[schema(required = true, value_type = Option<Conditions>)]
    conditions: Option<serde_json::Value>,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<filter::Model> for FilterView {
    fn from(f: filter::Model) -> Self {
        FilterView {
            events: f.event_names(),
            conditions: super::conditions::stored_conditions(f.conditions.as_deref()),
            id: f.id,
            tenant_type: f.tenant_type.to_string(),
            tenant_id: f.tenant_id,
            created_at: time(f.created_at),
        }
    }
}

/// Step 3: a target subscribed to a filter; it delivers like any webhook (and is one).
#[derive(Serialize, ToSchema)]
#[schema(as = Subscription)]
struct SubscriptionView {
    id: String,
    #[schema(value_type = TenantType)]
    tenant_type: String,
    tenant_id: String,
    /// `null` for a webhook made directly rather than from a target and a filter.
    #[schema(required = true)]
    target_id: Option<String>,
    #[schema(required = true)]
    filter_id: Option<String>,
    url: String,
    /// The event types it receives; `null` for every event type.
    #[schema(required = true)]
    events: Option<Vec<String>>,
    enabled: bool,
    #[schema(format = DateTime)]
    created_at: String,
    /// The signing secret: only in the answer that creates the subscription.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    secret: Option<String>,
}

impl From<webhook::Model> for SubscriptionView {
    fn from(w: webhook::Model) -> Self {
        SubscriptionView {
            events: w.event_filter(),
            id: w.id,
            tenant_type: w.tenant_type.to_string(),
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

/// A new target.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewTarget)]
struct CreateTarget {
    /// Omit with a store's or application's key: the key's own tenant.
    #[schema(value_type = Option<TenantType>)]
    tenant_type: Option<String>,
    /// Omit with a store's or application's key.
    tenant_id: Option<String>,
    /// Where deliveries are sent: `https://`, and not a private address unless allowed.
    url: String,
}

/// Step 1: a callback URL
#[utoipa::path(
    post,
    path = "/targets",
    operation_id = "createTarget",
    tag = "Subscriptions",
    request_body = CreateTarget,
    responses(
        (status = 201, description = "The target", body = TargetView),
        (status = 403, description = "The key cannot manage this tenant", body = ErrorBody),
        (status = 422, description = "No such tenant, or a URL that is refused", body = ErrorBody),
    ),
)]
async fn create_target(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateTarget>,
) -> Result<(StatusCode, Json<TargetView>), ApiError> {
    let tenant = caller.tenant(body.tenant_type.as_deref(), body.tenant_id.as_deref())?;
    let created = state.services.create_target(&caller.0, &tenant, &body.url).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// A tenant's targets
#[utoipa::path(
    get,
    path = "/targets",
    operation_id = "listTargets",
    tag = "Subscriptions",
    params(TenantPageQuery),
    responses(
        (status = 200, description = "A page of targets, oldest first", body = Page<TargetView>),
        (status = 403, description = "The key cannot see this tenant", body = ErrorBody),
    ),
)]
async fn list_targets(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantPageQuery>,
) -> Result<Json<Page<TargetView>>, ApiError> {
    let tenant = q.tenant(&caller)?;
    Ok(Json(Page::of(state.services.list_targets(&caller.0, &tenant, &q.page()).await?, TargetView::from)))
}

/// One target
#[utoipa::path(
    get,
    path = "/targets/{id}",
    operation_id = "getTarget",
    tag = "Subscriptions",
    params(("id" = String, Path, description = "The target's id")),
    responses(
        (status = 200, description = "The target", body = TargetView),
        (status = 404, description = "No such target, or not one this key sees", body = ErrorBody),
    ),
)]
async fn read_target(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TargetView>, ApiError> {
    Ok(Json(state.services.target(&caller.0, &id).await?.into()))
}

/// Delete a target no subscription uses
#[utoipa::path(
    delete,
    path = "/targets/{id}",
    operation_id = "deleteTarget",
    tag = "Subscriptions",
    params(("id" = String, Path, description = "The target's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The key cannot manage this target", body = ErrorBody),
        (status = 404, description = "No such target, or not one this key sees", body = ErrorBody),
        (status = 409, description = "A subscription uses the target", body = ErrorBody),
    ),
)]
async fn delete_target(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.delete_target(&caller.0, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new filter.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewFilter)]
struct CreateFilter {
    /// Omit with a store's or application's key: the key's own tenant.
    #[schema(value_type = Option<TenantType>)]
    tenant_type: Option<String>,
    /// Omit with a store's or application's key.
    tenant_id: Option<String>,
    /// Event types from the catalog.
    events: Vec<String>,
    /// Payload conditions (docs/conditions.md); `null` or absent for none.
    #[serde(default)]
    #[schema(value_type = Option<Conditions>)]
    conditions: Option<serde_json::Value>,
}

/// Step 2: a list of event types
#[utoipa::path(
    post,
    path = "/filters",
    operation_id = "createFilter",
    tag = "Subscriptions",
    request_body = CreateFilter,
    responses(
        (status = 201, description = "The filter", body = FilterView),
        (status = 403, description = "The key cannot manage this tenant", body = ErrorBody),
        (status = 422, description = "No such tenant, or an unknown event type", body = ErrorBody),
    ),
)]
async fn create_filter(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateFilter>,
) -> Result<(StatusCode, Json<FilterView>), ApiError> {
    let tenant = caller.tenant(body.tenant_type.as_deref(), body.tenant_id.as_deref())?;
    let created =
        state.services.create_filter(&caller.0, &tenant, body.events, body.conditions.as_ref()).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// A tenant's filters
#[utoipa::path(
    get,
    path = "/filters",
    operation_id = "listFilters",
    tag = "Subscriptions",
    params(TenantPageQuery),
    responses(
        (status = 200, description = "A page of filters, oldest first", body = Page<FilterView>),
        (status = 403, description = "The key cannot see this tenant", body = ErrorBody),
    ),
)]
async fn list_filters(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantPageQuery>,
) -> Result<Json<Page<FilterView>>, ApiError> {
    let tenant = q.tenant(&caller)?;
    Ok(Json(Page::of(state.services.list_filters(&caller.0, &tenant, &q.page()).await?, FilterView::from)))
}

/// One filter
#[utoipa::path(
    get,
    path = "/filters/{id}",
    operation_id = "getFilter",
    tag = "Subscriptions",
    params(("id" = String, Path, description = "The filter's id")),
    responses(
        (status = 200, description = "The filter", body = FilterView),
        (status = 404, description = "No such filter, or not one this key sees", body = ErrorBody),
    ),
)]
async fn read_filter(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<FilterView>, ApiError> {
    Ok(Json(state.services.filter(&caller.0, &id).await?.into()))
}

/// Delete a filter no subscription uses
#[utoipa::path(
    delete,
    path = "/filters/{id}",
    operation_id = "deleteFilter",
    tag = "Subscriptions",
    params(("id" = String, Path, description = "The filter's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The key cannot manage this filter", body = ErrorBody),
        (status = 404, description = "No such filter, or not one this key sees", body = ErrorBody),
        (status = 409, description = "A subscription uses the filter", body = ErrorBody),
    ),
)]
async fn delete_filter(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.delete_filter(&caller.0, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new subscription.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewSubscription)]
struct CreateSubscription {
    /// Omit with a store's or application's key: the key's own tenant.
    #[schema(value_type = Option<TenantType>)]
    tenant_type: Option<String>,
    /// Omit with a store's or application's key.
    tenant_id: Option<String>,
    target_id: String,
    filter_id: String,
}

/// Step 3: subscribe a target to a filter; deliveries start
#[utoipa::path(
    post,
    path = "/subscriptions",
    operation_id = "createSubscription",
    tag = "Subscriptions",
    request_body = CreateSubscription,
    responses(
        (status = 201, description = "The subscription, with its signing secret", body = SubscriptionView),
        (status = 403, description = "The key cannot manage this tenant", body = ErrorBody),
        (status = 409, description = "The tenant has as many webhooks as it may, or the pair is subscribed already", body = ErrorBody),
        (status = 422, description = "No such tenant, or no such target or filter in it", body = ErrorBody),
    ),
)]
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

/// A tenant's subscriptions (every webhook, however made)
#[utoipa::path(
    get,
    path = "/subscriptions",
    operation_id = "listSubscriptions",
    tag = "Subscriptions",
    params(TenantPageQuery),
    responses(
        (status = 200, description = "A page of subscriptions, oldest first", body = Page<SubscriptionView>),
        (status = 403, description = "The key cannot see this tenant", body = ErrorBody),
    ),
)]
async fn list_subscriptions(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantPageQuery>,
) -> Result<Json<Page<SubscriptionView>>, ApiError> {
    let tenant = q.tenant(&caller)?;
    let found = state.services.list_webhooks(&caller.0, &tenant, &q.page()).await?;
    Ok(Json(Page::of(found, SubscriptionView::from)))
}

/// One subscription
#[utoipa::path(
    get,
    path = "/subscriptions/{id}",
    operation_id = "getSubscription",
    tag = "Subscriptions",
    params(("id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionView),
        (status = 404, description = "No such subscription, or not one this key sees", body = ErrorBody),
    ),
)]
async fn read_subscription(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, ApiError> {
    Ok(Json(state.services.webhook(&caller.0, &id).await?.into()))
}

/// Delete a subscription (its target and filter stay)
#[utoipa::path(
    delete,
    path = "/subscriptions/{id}",
    operation_id = "deleteSubscription",
    tag = "Subscriptions",
    params(("id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The key cannot manage this subscription", body = ErrorBody),
        (status = 404, description = "No such subscription, or not one this key sees", body = ErrorBody),
        (status = 409, description = "The subscription cannot be deleted now", body = ErrorBody),
    ),
)]
async fn delete_subscription(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.delete_webhook(&caller.0, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
