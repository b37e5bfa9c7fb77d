//! A delivery's life and its attempts: where a delivery stands, what made an attempt, and why
//! an attempt failed. Each is stored as the string its `as_str()` gives.

#[cfg(feature = "sea-orm")]
use sea_orm::sea_query::StringLen;
use serde::{Deserialize, Serialize}; // named by the active enums' `db_type`

/// Where a delivery stands. `pending` waits for its next attempt, `delivering` is leased to an
/// engine, and the other three are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "sea-orm", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
#[cfg_attr(feature = "sea-orm", sea_orm(rs_type = "String", db_type = "String(StringLen::None)"))]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "pending"))]
    Pending,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "delivering"))]
    Delivering,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "succeeded"))]
    Succeeded,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "failed"))]
    Failed,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "skipped"))]
    Skipped,
}

impl DeliveryStatus {
    /// Every status, in the order the dashboard and the totals list them.
    pub const ALL: [DeliveryStatus; 5] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivering,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Failed,
        DeliveryStatus::Skipped,
    ];

    /// The settled statuses: no attempt is due any more. What a bulk replay chooses among
    /// (pending and delivering deliveries are already on their way).
    pub const SETTLED: [DeliveryStatus; 3] =
        [DeliveryStatus::Succeeded, DeliveryStatus::Failed, DeliveryStatus::Skipped];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivering => "delivering",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Skipped => "skipped",
        }
    }

    /// Whether the delivery is settled: no attempt is due any more (a manual resend may still
    /// be made).
    pub fn is_final(self) -> bool {
        Self::SETTLED.contains(&self)
    }
}

stored_as_str!(DeliveryStatus, "delivery status");

/// What made an attempt: the retry schedule, a person asking for a resend, or a test event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "sea-orm", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
#[cfg_attr(feature = "sea-orm", sea_orm(rs_type = "String", db_type = "String(StringLen::None)"))]
#[serde(rename_all = "lowercase")]
pub enum AttemptTrigger {
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "scheduled"))]
    Scheduled,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "manual"))]
    Manual,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "test"))]
    Test,
}

impl AttemptTrigger {
    pub const ALL: [AttemptTrigger; 3] =
        [AttemptTrigger::Scheduled, AttemptTrigger::Manual, AttemptTrigger::Test];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|trigger| trigger.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptTrigger::Scheduled => "scheduled",
            AttemptTrigger::Manual => "manual",
            AttemptTrigger::Test => "test",
        }
    }
}

stored_as_str!(AttemptTrigger, "attempt trigger");

/// Why an attempt failed, as the attempt log and the metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "sea-orm", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
#[cfg_attr(feature = "sea-orm", sea_orm(rs_type = "String", db_type = "String(StringLen::None)"))]
#[serde(rename_all = "snake_case")]
pub enum AttemptErrorClass {
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "timeout"))]
    Timeout,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "connect"))]
    Connect,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "dns"))]
    Dns,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "tls"))]
    Tls,
    /// The address is not one a webhook may reach (the address policy).
    #[serde(rename = "blocked_address")]
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "blocked_address"))]
    Blocked,
    /// The receiver answered, with a status outside 2xx.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "http_status"))]
    HttpStatus,
    /// Not sent: the webhook's signing secret cannot be decrypted with the configured keys.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "signing_secret"))]
    SigningSecret,
}

impl AttemptErrorClass {
    /// Every class, for the metrics' label values.
    pub const ALL: [AttemptErrorClass; 7] = [
        AttemptErrorClass::Timeout,
        AttemptErrorClass::Connect,
        AttemptErrorClass::Dns,
        AttemptErrorClass::Tls,
        AttemptErrorClass::Blocked,
        AttemptErrorClass::HttpStatus,
        AttemptErrorClass::SigningSecret,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|class| class.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptErrorClass::Timeout => "timeout",
            AttemptErrorClass::Connect => "connect",
            AttemptErrorClass::Dns => "dns",
            AttemptErrorClass::Tls => "tls",
            AttemptErrorClass::Blocked => "blocked_address",
            AttemptErrorClass::HttpStatus => "http_status",
            AttemptErrorClass::SigningSecret => "signing_secret",
        }
    }
}

stored_as_str!(AttemptErrorClass, "attempt error class");

/// Where a bulk replay of a webhook's deliveries stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "sea-orm", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
#[cfg_attr(feature = "sea-orm", sea_orm(rs_type = "String", db_type = "String(StringLen::None)"))]
#[serde(rename_all = "lowercase")]
pub enum ReplayState {
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "running"))]
    Running,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "finished"))]
    Finished,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "failed"))]
    Failed,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "cancelled"))]
    Cancelled,
}

impl ReplayState {
    pub const ALL: [ReplayState; 4] =
        [ReplayState::Running, ReplayState::Finished, ReplayState::Failed, ReplayState::Cancelled];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReplayState::Running => "running",
            ReplayState::Finished => "finished",
            ReplayState::Failed => "failed",
            ReplayState::Cancelled => "cancelled",
        }
    }
}

stored_as_str!(ReplayState, "replay state");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_states_round_trip_through_their_strings() {
        for state in ReplayState::ALL {
            assert_eq!(ReplayState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        assert_eq!(ReplayState::parse("done"), None);
    }

    #[test]
    fn statuses_round_trip_through_their_strings() {
        for status in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        let strings: Vec<&str> = DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(strings, ["pending", "delivering", "succeeded", "failed", "skipped"]);
        assert_eq!(DeliveryStatus::parse("done"), None);
    }

    #[test]
    fn settled_statuses_are_those_no_attempt_is_due_for() {
        let settled: Vec<DeliveryStatus> = DeliveryStatus::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(settled, DeliveryStatus::SETTLED);
        assert!(!DeliveryStatus::Pending.is_final() && !DeliveryStatus::Delivering.is_final());
    }

    #[test]
    fn triggers_and_error_classes_round_trip_through_their_strings() {
        for trigger in AttemptTrigger::ALL {
            assert_eq!(AttemptTrigger::parse(trigger.as_str()), Some(trigger));
            assert_eq!(serde_json::to_value(trigger).unwrap(), trigger.as_str());
        }
        for class in AttemptErrorClass::ALL {
            assert_eq!(AttemptErrorClass::parse(class.as_str()), Some(class));
            assert_eq!(serde_json::to_value(class).unwrap(), class.as_str());
        }
        assert_eq!(AttemptErrorClass::parse("blocked"), None);
    }

    #[test]
    fn only_pending_and_delivering_are_unsettled() {
        let open: Vec<_> = DeliveryStatus::ALL.into_iter().filter(|s| !s.is_final()).collect();
        assert_eq!(open, [DeliveryStatus::Pending, DeliveryStatus::Delivering]);
    }
}
