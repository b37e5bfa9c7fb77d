//! "Why didn't it arrive?": what happened with one webhook for one event, as the API writes it
//! and as the dashboard's event page says it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What happened with one webhook for one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Its event types (or, for an application's webhook, the product lines it is installed
    /// for) leave the type out, or it was made after the event.
    NotSubscribed,
    /// Its payload conditions kept the event out.
    FilteredOut,
    /// The webhook was off, so the delivery was (or will be) skipped.
    WebhookOff,
    /// The receiver paused the webhook (`Retry-After`, or the circuit breaker is open).
    Paused,
    /// An ordered delivery waiting behind an earlier delivery of its key.
    BlockedKey,
    /// Waiting for its next attempt, or being sent now.
    Queued,
    Delivered,
    /// The retry schedule was used up.
    Failed,
    /// Skipped by hand (the head of a blocked ordering key), after failed attempts.
    Skipped,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Outcome::NotSubscribed,
        Outcome::FilteredOut,
        Outcome::WebhookOff,
        Outcome::Paused,
        Outcome::BlockedKey,
        Outcome::Queued,
        Outcome::Delivered,
        Outcome::Failed,
        Outcome::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NotSubscribed => "not_subscribed",
            Outcome::FilteredOut => "filtered_out",
            Outcome::WebhookOff => "webhook_off",
            Outcome::Paused => "paused",
            Outcome::BlockedKey => "blocked_key",
            Outcome::Queued => "queued",
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|outcome| outcome.as_str() == s)
    }

    /// The outcome in words, as the event page shows it.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::NotSubscribed => "Not subscribed",
            Outcome::FilteredOut => "Filtered out",
            Outcome::WebhookOff => "Webhook off",
            Outcome::Paused => "Paused",
            Outcome::BlockedKey => "Blocked key",
            Outcome::Queued => "Queued",
            Outcome::Delivered => "Delivered",
            Outcome::Failed => "Failed",
            Outcome::Skipped => "Skipped",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_their_api_strings_and_have_a_label() {
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
            assert_eq!(serde_json::to_value(outcome).unwrap(), outcome.as_str());
            assert!(!outcome.label().is_empty());
        }
        assert_eq!(Outcome::BlockedKey.label(), "Blocked key");
        assert_eq!(Outcome::parse("lost"), None);
    }
}
