//! Cursor pagination. A cursor is the id of the last item of the previous page; ids are
//! UUIDv7, so they sort by creation time and a page is one index range scan.

use serde::{Deserialize, Serialize};

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 250;

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PageRequest {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub fn limit(&self) -> u64 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only says whether more exist.
    pub fn from_rows(mut rows: Vec<T>, limit: u64, id: impl Fn(&T) -> String) -> Self {
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(id) } else { None };
        Page { items: rows, next_cursor }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}
