//! The one error type of the services. User mistakes carry a message fit to show the user;
//! storage failures stay opaque until the HTTP layer logs them.

use sea_orm::{DbErr, RuntimeErr};

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
    Db(DbErr),
}

/// What the API and the dashboard say of text holding U+0000.
pub const NUL_MESSAGE: &str = "Text may not contain the NUL character (U+0000).";

impl From<DbErr> for Error {
    /// A storage failure, except text PostgreSQL refuses for holding U+0000: that is the
    /// caller's input, a 400 like any other. (The statement failed, so nothing was written.)
    fn from(e: DbErr) -> Self {
        if refuses_nul(&e) {
            return Error::Invalid { field: None, message: NUL_MESSAGE.to_string() };
        }
        Error::Db(e)
    }
}

/// PostgreSQL's `character_not_in_repertoire` (22021): a text value with a 0x00 byte.
fn refuses_nul(e: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = e else {
        return false;
    };
    matches!(e.as_database_error().and_then(|d| d.code()), Some(code) if code == "22021")
}

impl Error {
    /// Refuses text holding U+0000, which PostgreSQL cannot store (SQLite could, but the two
    /// databases answer alike).
    pub(crate) fn refuse_nul(field: &'static str, text: &str) -> Result<()> {
        if text.contains('\0') { Err(Error::invalid(field, NUL_MESSAGE)) } else { Ok(()) }
    }

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
