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

#[cfg(test)]
mod tests {
    use super::*;

    fn asking(limit: Option<u64>) -> u64 {
        PageRequest { limit, cursor: None }.limit()
    }

    #[test]
    fn a_page_request_stays_within_its_bounds() {
        assert_eq!(asking(None), DEFAULT_LIMIT);
        assert_eq!(asking(Some(0)), 1);
        assert_eq!(asking(Some(7)), 7);
        assert_eq!(asking(Some(MAX_LIMIT)), MAX_LIMIT);
        assert_eq!(asking(Some(10_000)), MAX_LIMIT);
    }

    #[test]
    fn the_extra_row_only_says_whether_more_exist() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(page.items, [1, 2]);
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
        let last = Page::from_rows(vec![1, 2], 2, |n| n.to_string());
        assert_eq!(last.next_cursor, None);
    }
}
