//! The embeddable portal over REST: one-time portal links (`/portal-sessions`), their
//! revocation, and each tenant's list of origins allowed to frame its portal. The pages the
//! link opens are the dashboard's (`app/src/pages/portal.rs`); `crate::portal` opens links.

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use hookline_core::{Tenant, iso8601};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Caller, JsonBody};
use super::vocabulary::TenantType;
use super::{ApiError, ErrorBody};
use crate::AppState;
use crate::browser::{PublicUrl, request_origin};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create_session))
        .routes(routes!(revoke_session))
        .routes(routes!(store_origins, set_store_origins))
        .routes(routes!(application_origins, set_application_origins))
}

/// Where the dashboard is, as the browser reaches it: `HOOKLINE_PUBLIC_URL` (with its path),
/// else the request's own origin.
struct DashboardBase(String);

impl<S: Send + Sync> FromRequestParts<S> for DashboardBase {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        if let Some(PublicUrl(Some(url))) = parts.extensions.get::<PublicUrl>() {
            return Ok(DashboardBase(url.as_str().trim_end_matches('/').to_string()));
        }
        let mut probe = axum::http::Request::new(Body::empty());
        *probe.uri_mut() = parts.uri.clone();
        *probe.headers_mut() = parts.headers.clone();
        match request_origin(&probe) {
            Some(origin) => Ok(DashboardBase(origin.ascii_serialization())),
            None => Err(ApiError::bad_request(
                "The request names no host to build the portal's address from; set HOOKLINE_PUBLIC_URL.",
            )),
        }
    }
}

/// Whose webhooks the portal shows.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewPortalSession)]
struct CreateBody {
    /// Omit with a store's or application's key: the key's own tenant.
    #[schema(value_type = Option<TenantType>)]
    tenant_type: Option<String>,
    /// Omit with a store's or application's key.
    tenant_id: Option<String>,
}

/// A one-time portal link.
#[derive(Serialize, ToSchema)]
#[schema(as = PortalSession)]
struct SessionView {
    /// Revoke the session with `DELETE /portal-sessions/{id}`.
    id: String,
    /// Open once, within ten minutes, e.g. as an iframe's `src`; it starts a session of an
    /// hour.
    url: String,
    /// When the link stops opening (the session it starts lasts an hour from its opening).
    #[schema(format = DateTime)]
    expires_at: String,
}

/// Create a one-time portal link for a tenant's webhooks
#[utoipa::path(
    post,
    path = "/portal-sessions",
    operation_id = "createPortalSession",
    tag = "Portal",
    request_body(content = CreateBody, description = "The tenant; `{}` with a store's or application's key for its own"),
    responses(
        (status = 201, description = "The link, valid for ten minutes and one opening", body = SessionView),
        (status = 403, description = "The key cannot manage webhooks of this tenant", body = ErrorBody),
        (status = 422, description = "No such tenant", body = ErrorBody),
    ),
)]
async fn create_session(
    State(state): State<AppState>,
    caller: Caller,
    DashboardBase(base): DashboardBase,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<SessionView>), ApiError> {
    let tenant = caller.tenant(body.tenant_type.as_deref(), body.tenant_id.as_deref())?;
    let link = state.services.create_portal_link(&caller.0, &tenant).await?;
    let url = format!("{base}/portal/start/{}", link.token);
    Ok((StatusCode::CREATED, Json(SessionView { id: link.id, url, expires_at: iso8601(link.expires_at) })))
}

/// End a portal session (or an unopened link) at once
#[utoipa::path(
    delete,
    path = "/portal-sessions/{id}",
    operation_id = "revokePortalSession",
    tag = "Portal",
    params(("id" = String, Path, description = "The portal session's id")),
    responses(
        (status = 204, description = "Ended; its pages now say so"),
        (status = 404, description = "No such portal session, or not one this key made", body = ErrorBody),
    ),
)]
async fn revoke_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.revoke_portal_session(&caller.0, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The origins allowed to frame a tenant's portal.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = PortalOrigins)]
struct OriginsBody {
    /// Each `scheme://host[:port]` (http or https; no path, no wildcard), at most 20. An
    /// empty list: nothing may frame the portal.
    origins: Vec<String>,
}

async fn read_origins(
    state: &AppState,
    caller: &Caller,
    tenant: Tenant,
) -> Result<Json<OriginsBody>, ApiError> {
    Ok(Json(OriginsBody { origins: state.services.portal_origins(&caller.0, &tenant).await? }))
}

async fn write_origins(
    state: &AppState,
    caller: &Caller,
    tenant: Tenant,
    body: OriginsBody,
) -> Result<Json<OriginsBody>, ApiError> {
    Ok(Json(OriginsBody {
        origins: state.services.set_portal_origins(&caller.0, &tenant, &body.origins).await?,
    }))
}

/// The origins allowed to frame a store's portal
#[utoipa::path(
    get,
    path = "/stores/{id}/portal-origins",
    operation_id = "getStorePortalOrigins",
    tag = "Portal",
    params(("id" = String, Path, description = "The store's id")),
    responses(
        (status = 200, description = "The allow-list", body = OriginsBody),
        (status = 403, description = "Only an admin or the store's own key", body = ErrorBody),
        (status = 404, description = "No such store", body = ErrorBody),
    ),
)]
async fn store_origins(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OriginsBody>, ApiError> {
    read_origins(&state, &caller, Tenant::store(id)).await
}

/// Replace the origins allowed to frame a store's portal
#[utoipa::path(
    put,
    path = "/stores/{id}/portal-origins",
    operation_id = "setStorePortalOrigins",
    tag = "Portal",
    params(("id" = String, Path, description = "The store's id")),
    request_body = OriginsBody,
    responses(
        (status = 200, description = "The allow-list as kept (origins as browsers write them, sorted)", body = OriginsBody),
        (status = 403, description = "Only an admin or the store's own key", body = ErrorBody),
        (status = 404, description = "No such store", body = ErrorBody),
        (status = 422, description = "An entry that is not an origin, or too many", body = ErrorBody),
    ),
)]
async fn set_store_origins(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<OriginsBody>,
) -> Result<Json<OriginsBody>, ApiError> {
    write_origins(&state, &caller, Tenant::store(id), body).await
}

/// The origins allowed to frame an application's portal (also on stores that installed it)
#[utoipa::path(
    get,
    path = "/applications/{id}/portal-origins",
    operation_id = "getApplicationPortalOrigins",
    tag = "Portal",
    params(("id" = String, Path, description = "The application's id")),
    responses(
        (status = 200, description = "The allow-list", body = OriginsBody),
        (status = 403, description = "Only an admin or the application's own key", body = ErrorBody),
        (status = 404, description = "No such application", body = ErrorBody),
    ),
)]
async fn application_origins(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OriginsBody>, ApiError> {
    read_origins(&state, &caller, Tenant::application(id)).await
}

/// Replace the origins allowed to frame an application's portal
#[utoipa::path(
    put,
    path = "/applications/{id}/portal-origins",
    operation_id = "setApplicationPortalOrigins",
    tag = "Portal",
    params(("id" = String, Path, description = "The application's id")),
    request_body = OriginsBody,
    responses(
        (status = 200, description = "The allow-list as kept (origins as browsers write them, sorted)", body = OriginsBody),
        (status = 403, description = "Only an admin or the application's own key", body = ErrorBody),
        (status = 404, description = "No such application", body = ErrorBody),
        (status = 422, description = "An entry that is not an origin, or too many", body = ErrorBody),
    ),
)]
async fn set_application_origins(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<OriginsBody>,
) -> Result<Json<OriginsBody>, ApiError> {
    write_origins(&state, &caller, Tenant::application(id), body).await
}
