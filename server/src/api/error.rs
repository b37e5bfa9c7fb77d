//! The API's one error type and its JSON shape: `{"error": {"code", "message", "field"}}`.
//! User mistakes pass through with their message; anything else is logged and answered
//! with an opaque 500.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None }
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
        ApiError { status, code, message, field }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message, "field": self.field } });
        (self.status, Json(body)).into_response()
    }
}
