//! The one error type of the dashboard's server functions, what the page shows for each, and
//! on the server, the HTTP status each answers with.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AppError {
    /// A field breaks a rule; `field` names the form input it belongs to.
    Invalid {
        field: Option<String>,
        message: String,
    },
    Unauthenticated,
    NotFound,
    /// Too many tries; the next is taken after this many seconds (HTTP 429).
    Throttled {
        message: String,
        retry_after_secs: u64,
    },
    /// The database cannot be reached now (HTTP 503).
    Unavailable(String),
    Server(String),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::Invalid { message, .. } => f.write_str(message),
            AppError::Unauthenticated => f.write_str("Please sign in."),
            AppError::NotFound => f.write_str("Not found."),
            AppError::Throttled { message, .. } | AppError::Unavailable(message) => f.write_str(message),
            AppError::Server(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for AppError {}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        // Arguments that do not decode are the caller's mistake (a 400), not the server's.
        let error = match value {
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => {
                AppError::Invalid { field: None, message: value.to_string() }
            }
            other => AppError::Server(other.to_string()),
        };
        #[cfg(feature = "ssr")]
        set_error_status(&error);
        error
    }
}

impl AppError {
    /// The message for one form field, if this error is about it.
    pub fn for_field(&self, name: &str) -> Option<String> {
        match self {
            AppError::Invalid { field: Some(f), message } if f == name => Some(message.clone()),
            _ => None,
        }
    }
}

#[cfg(feature = "ssr")]
pub(crate) use ssr::{refused, set_error_status};

#[cfg(feature = "ssr")]
mod ssr {
    use leptos::prelude::*;

    use super::AppError;
    use crate::session::is_html_form_post;

    impl From<hookline_core::Error> for AppError {
        fn from(e: hookline_core::Error) -> Self {
            use hookline_core::Error as E;
            let error = match e {
                E::NotFound(_) | E::Forbidden(_) => AppError::NotFound,
                E::TooManyRequests { message, retry_after_secs } => {
                    AppError::Throttled { message, retry_after_secs }
                }
                E::Unavailable(message) => AppError::Unavailable(message),
                E::Db(err) => {
                    tracing::error!(error = %err, "database error in a server function");
                    AppError::Server("Something went wrong on our side. Try again.".into())
                }
                other => {
                    AppError::Invalid { field: other.field().map(str::to_string), message: other.to_string() }
                }
            };
            set_error_status(&error);
            error
        }
    }

    /// Gives a failed server-function call the HTTP status its error deserves, except for
    /// plain HTML form posts, which Leptos answers with a redirect carrying the error.
    pub fn set_error_status(error: &AppError) {
        let Some(res) = use_context::<leptos_axum::ResponseOptions>() else {
            return;
        };
        if is_html_form_post() {
            return;
        }
        let status = match error {
            AppError::Invalid { .. } => http::StatusCode::BAD_REQUEST,
            AppError::Unauthenticated => http::StatusCode::UNAUTHORIZED,
            AppError::NotFound => http::StatusCode::NOT_FOUND,
            AppError::Throttled { .. } => http::StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => http::StatusCode::SERVICE_UNAVAILABLE,
            AppError::Server(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
        };
        res.set_status(status);
        let retry_after = match error {
            AppError::Throttled { retry_after_secs, .. } => Some(*retry_after_secs),
            AppError::Unavailable(_) => Some(hookline_core::UNAVAILABLE_RETRY_SECS),
            _ => None,
        };
        if let Some(secs) = retry_after {
            res.insert_header(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
    }

    /// An error a server function makes itself, answered with its status.
    pub fn refused(error: AppError) -> AppError {
        set_error_status(&error);
        error
    }
}
