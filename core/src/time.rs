//! Reading the clock, which only the server does; formatting time is the domain's
//! (`hookline_domain::iso8601` and the rest), since the browser has no system clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds: the unit of every timestamp Hookline stores.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
