//! Request extractors that answer in the API's error shape: the caller's scope from its API
//! key, and JSON bodies parsed with a clear 400 instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use hookline_core::{Scope, Tenant};
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::AppState;

/// The scope of the request's API key.
pub struct Caller(pub Scope);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        match state.services.authenticate_api_key(key).await? {
            Some(scope) => Ok(Caller(scope)),
            None => Err(ApiError::unauthorized()),
        }
    }
}

impl Caller {
    /// The tenant a request names, or the caller's own when it names none.
    pub fn tenant(&self, tenant_type: Option<&str>, tenant_id: Option<&str>) -> Result<Tenant, ApiError> {
        match (tenant_type, tenant_id) {
            (Some(kind), Some(id)) => Ok(Tenant::from_fields(kind, id)?),
            (None, None) => self.0.own_tenant().ok_or_else(|| {
                ApiError::bad_request("tenant_type and tenant_id are required with an admin key.")
                    .with_field("tenant_id")
            }),
            (None, Some(_)) => {
                Err(ApiError::bad_request("tenant_type is required with tenant_id.")
                    .with_field("tenant_type"))
            }
            (Some(_), None) => {
                Err(ApiError::bad_request("tenant_id is required with tenant_type.").with_field("tenant_id"))
            }
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.0.is_admin() { Ok(()) } else { Err(ApiError::forbidden("This needs an admin API key.")) }
    }
}

/// A JSON body, with the parse error explained.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req, state).await?;
        let body = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!("The body is not valid JSON for this request: {e}."))
        })?;
        if json_has_nul(&bytes) {
            return Err(ApiError::bad_request(hookline_core::NUL_MESSAGE));
        }
        Ok(JsonBody(body))
    }
}

/// Whether any string in a JSON document (keys included) holds U+0000. In JSON text the
/// character can only appear escaped, so documents without `\u0000` are not walked.
fn json_has_nul(raw: &[u8]) -> bool {
    fn walk(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(walk),
            serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || walk(v)),
            _ => false,
        }
    }
    raw.windows(6).any(|w| w == b"\\u0000")
        && serde_json::from_slice::<serde_json::Value>(raw).is_ok_and(|v| walk(&v))
}

/// Reads the whole body; too large a body is a 413 in the API's shape.
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(e.status(), "payload_too_large", "The request body is too large.")
        } else {
            ApiError::bad_request(format!("The body could not be read: {e}."))
        }
    })
}

/// Refuses a path or query string holding U+0000 (`%00`) before any handler reads it: no
/// stored text can hold that character, so no id or filter with it can match anything.
pub async fn refuse_nul_in_uri(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = req.uri();
    if uri.path().contains("%00") || uri.query().is_some_and(|q| q.contains("%00")) {
        return ApiError::bad_request(hookline_core::NUL_MESSAGE).into_response();
    }
    next.run(req).await
}

/// Query parameters, with a 400 in the API's shape when one does not parse.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(raw).map(Query).map_err(|e| {
            ApiError::bad_request(format!("The query string is not valid for this request: {e}."))
        })
    }
}
