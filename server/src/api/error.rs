//! The API's one error type and its JSON shape: `{"error": {"code", "message", "field"}}`.
//! User mistakes pass through with their message; anything else is logged and answered
//! with an opaque 500.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<&'static str>,
    /// Seconds for `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None, retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Send a valid API key as `Authorization: Bearer <key>`.",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("No such {what}."))
    }

    pub fn with_field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
}

impl From<hookline_core::InputError> for ApiError {
    /// A value of the vocabulary that would not parse (a tenant, a URL): a 400, as from the services.
    fn from(e: hookline_core::InputError) -> Self {
        hookline_core::Error::from(e).into()
    }
}

impl From<hookline_core::Error> for ApiError {
    fn from(e: hookline_core::Error) -> Self {
        use hookline_core::Error as E;
        let field = e.field();
        let (status, code) = match &e {
            E::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            E::Unprocessable { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            E::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            E::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            E::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            E::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            E::TooManyRequests { message, retry_after_secs } => {
                let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message.clone());
                error.retry_after = Some(*retry_after_secs);
                return error;
            }
            E::Unavailable(message) => return ApiError::unavailable(message.clone()),
            E::Db(err) => {
                tracing::error!(error = %err, "database error");
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Something went wrong on our side.",
                );
            }
        };
        let message = match &e {
            E::NotFound(what) => format!("No such {what}."),
            other => other.to_string(),
        };
        ApiError { status, code, message, field, retry_after: None }
    }
}

impl ApiError {
    /// 503 with `Retry-After`: the database or the publish queue cannot take the request now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        error.retry_after = Some(hookline_core::UNAVAILABLE_RETRY_SECS);
        error
    }
}

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
struct ErrorDetail {
    /// What went wrong, for programs: `invalid_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `unprocessable`, `payload_too_large`, `rate_limited`,
    /// `unavailable` or `internal`.
    #[schema(example = "not_found")]
    code: &'static str,
    /// What went wrong, for people.
    message: String,
    /// The request field at fault, when one is.
    #[schema(required = true)]
    field: Option<&'static str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            ErrorBody { error: ErrorDetail { code: self.code, message: self.message, field: self.field } };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}
