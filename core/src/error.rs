//! The one error type of the services. User mistakes carry a message fit to show the user;
//! storage failures stay opaque until the HTTP layer logs them.

use sea_orm::DbErr;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or a field breaks a rule (HTTP 400).
    #[error("{message}")]
    Invalid { field: Option<&'static str>, message: String },
    /// The request is well formed but names something that does not exist (HTTP 422).
    #[error("{message}")]
    Unprocessable { field: Option<&'static str>, message: String },
    #[error("the payload is {size} bytes; the limit is {limit} bytes")]
    PayloadTooLarge { size: usize, limit: usize },
    /// Missing, or belonging to another tenant: the two are indistinguishable on purpose.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid { field: Some(field), message: message.into() }
    }

    pub fn unprocessable(field: &'static str, message: impl Into<String>) -> Self {
        Error::Unprocessable { field: Some(field), message: message.into() }
    }

    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::Invalid { field, .. } | Error::Unprocessable { field, .. } => *field,
            _ => None,
        }
    }
}
