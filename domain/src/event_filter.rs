//! Which event types a webhook receives: all of them, or the ones it names. Read once from the
//! stored JSON array, then matched against every event published to its tenant.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventFilter {
    /// Every event type, present and future.
    #[default]
    All,
    /// Only these.
    Only(Vec<String>),
}

impl EventFilter {
    /// The named types, trimmed, sorted and without repeats.
    pub fn only(types: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        let mut names: Vec<String> = types.into_iter().map(|t| t.as_ref().trim().to_string()).collect();
        names.sort();
        names.dedup();
        EventFilter::Only(names)
    }

    /// The filter a webhook's `event_types` column holds: `None` for every type, else a JSON
    /// array of names, kept in its order. An array that cannot be read counts as every type,
    /// as it always has.
    pub fn from_stored(column: Option<&str>) -> Self {
        match column.map(serde_json::from_str::<Vec<String>>) {
            Some(Ok(types)) => EventFilter::Only(types),
            None | Some(Err(_)) => EventFilter::All,
        }
    }

    /// What the `event_types` column stores for this filter.
    pub fn to_stored(&self) -> Option<String> {
        self.types().map(|types| serde_json::to_string(types).unwrap_or_default())
    }

    /// Whether an event of this type goes to the webhook.
    pub fn matches(&self, event_type: &str) -> bool {
        match self {
            EventFilter::All => true,
            // A webhook names a few types at most: a scan beats hashing them.
            EventFilter::Only(types) => types.iter().any(|t| t == event_type),
        }
    }

    /// The named types, or `None` for every type.
    pub fn types(&self) -> Option<&[String]> {
        match self {
            EventFilter::All => None,
            EventFilter::Only(types) => Some(types),
        }
    }

    pub fn into_types(self) -> Option<Vec<String>> {
        match self {
            EventFilter::All => None,
            EventFilter::Only(types) => Some(types),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_matches_a_filter_of_all_events() {
        assert!(EventFilter::All.matches("review-created"));
        assert!(EventFilter::from_stored(None).matches("anything"));
    }

    #[test]
    fn a_named_filter_matches_only_its_types_exactly() {
        let filter = EventFilter::from_stored(Some(r#"["review-updated","review-created"]"#));
        assert!(filter.matches("review-created"));
        assert!(filter.matches("review-updated"));
        assert!(!filter.matches("review-deleted"));
        assert!(!filter.matches("review"));
        assert!(!filter.matches("Review-created"));
        assert!(!EventFilter::only(Vec::<String>::new()).matches("review-created"));
    }

    #[test]
    fn names_are_trimmed_sorted_and_kept_once() {
        let filter = EventFilter::only([" b ", "a", "b"]);
        assert_eq!(filter.types(), Some(&["a".to_string(), "b".to_string()][..]));
        assert_eq!(filter.to_stored().as_deref(), Some(r#"["a","b"]"#));
        assert_eq!(EventFilter::All.to_stored(), None);
        assert_eq!(EventFilter::from_stored(filter.to_stored().as_deref()), filter);
    }

    #[test]
    fn an_unreadable_column_counts_as_every_type() {
        assert_eq!(EventFilter::from_stored(Some("not json")), EventFilter::All);
    }
}
