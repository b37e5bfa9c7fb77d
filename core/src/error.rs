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
    /// The caller asks too often; it may try again after this many seconds (HTTP 429).
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    /// The database cannot be reached or is saturated, or Hookline is too busy to queue more:
    /// nothing was written, and the same request may be sent again later (HTTP 503).
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Db(DbErr),
}

/// How long a caller told "unavailable" should wait before trying again.
pub const UNAVAILABLE_RETRY_SECS: u64 = 5;

/// What the API and the dashboard say of text holding U+0000.
pub const NUL_MESSAGE: &str = "Text may not contain the NUL character (U+0000).";

/// What they say of text holding a character that reorders or hides text.
pub const HIDDEN_MESSAGE: &str =
    "Text may not contain control characters or characters that reorder or hide text (such as U+202E).";

/// Controls (other than tab and line breaks, which descriptions may hold), bidirectional
/// formatting characters and invisible characters.
pub(crate) fn is_hidden_control(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        || matches!(c,
            '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

impl From<hookline_domain::InputError> for Error {
    /// A value of the vocabulary that would not parse: the caller's mistake, a 400.
    fn from(e: hookline_domain::InputError) -> Self {
        Error::Invalid { field: Some(e.field), message: e.message }
    }
}

impl From<DbErr> for Error {
    /// A storage failure, except text PostgreSQL refuses for holding U+0000: that is the
    /// caller's input, a 400 like any other. (The statement failed, so nothing was written.)
    fn from(e: DbErr) -> Self {
        if refuses_nul(&e) {
            return Error::Invalid { field: None, message: NUL_MESSAGE.to_string() };
        }
        if is_unavailable(&e) {
            tracing::warn!(error = %e, "the database is unavailable");
            return Error::Unavailable("The database is unavailable. Try again in a few seconds.".into());
        }
        Error::Db(e)
    }
}

/// Whether the database could not be reached at all, or not within the pool's wait: the
/// request did nothing and may simply be sent again. (A statement the database refused is
/// not that.)
pub fn is_unavailable(e: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    let sqlx = match e {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        DbErr::Conn(_) => return true,
        _ => return false,
    };
    match sqlx.as_ref() {
        Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed | Sqlx::Tls(_) => true,
        Sqlx::Database(d) => d.code().is_some_and(|code| {
            // Connection exceptions (08), operator intervention such as a shutdown (57P),
            // insufficient resources such as too many connections (53).
            code.starts_with("08") || code.starts_with("57P") || code.starts_with("53")
        }),
        _ => false,
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

    /// Refuses text a person reads (names, descriptions) holding U+0000 or a control
    /// character that reorders or hides text (bidirectional overrides and isolates, the
    /// marks, zero-width characters): with them a name can display as something it is not.
    pub(crate) fn refuse_hidden(field: &'static str, text: &str) -> Result<()> {
        Self::refuse_nul(field, text)?;
        if text.chars().any(is_hidden_control) {
            return Err(Error::invalid(field, HIDDEN_MESSAGE));
        }
        Ok(())
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
