//! Times as the dashboard shows them (the vocabulary's `human_time`), and the dates its
//! filters read (server side).

use crate::error::AppError;

pub use hookline_core::human_time;

/// A filter's date (YYYY-MM-DD, UTC) as milliseconds: its start, or with `end_of_day` the
/// start of the next day, so that `to` is inclusive.
pub fn date_bound(field: &str, s: Option<String>, end_of_day: bool) -> Result<Option<i64>, AppError> {
    match s.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => hookline_core::parse_date_ms(&s)
            .map(|ms| Some(if end_of_day { ms + 86_400_000 } else { ms }))
            .ok_or_else(|| AppError::Invalid {
                field: Some(field.to_string()),
                message: format!("{s} is not a date (YYYY-MM-DD)."),
            }),
    }
}
