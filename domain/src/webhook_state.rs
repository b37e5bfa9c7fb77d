//! Whether a webhook is on, and how it is doing: why it was turned off, why it waits (paused),
//! what its alerts have announced, and its health, with the sentences the dashboard and the
//! `webhook.disabled` event say of them.

#[cfg(feature = "sea-orm")]
use sea_orm::sea_query::StringLen;
use serde::{Deserialize, Serialize}; // named by the active enums' `db_type`

use crate::time::human_time;

/// Why a webhook is off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "sea-orm", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
#[cfg_attr(feature = "sea-orm", sea_orm(rs_type = "String", db_type = "String(StringLen::None)"))]
#[serde(rename_all = "lowercase")]
pub enum DisabledReason {
    /// Someone turned it off.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "manual"))]
    Manual,
    /// Hookline turned it off after failed deliveries.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "automatic"))]
    Automatic,
    /// Hookline turned it off because the endpoint answered 410 Gone.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "gone"))]
    Gone,
    /// The application that made it was disconnected from the store.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "disconnected"))]
    Disconnected,
}

impl DisabledReason {
    pub const ALL: [DisabledReason; 4] = [
        DisabledReason::Manual,
        DisabledReason::Automatic,
        DisabledReason::Gone,
        DisabledReason::Disconnected,
    ];

    /// The reasons Hookline turns a webhook off by itself, after its deliveries.
    pub const BY_HOOKLINE: [DisabledReason; 2] = [DisabledReason::Automatic, DisabledReason::Gone];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DisabledReason::Manual => "manual",
            DisabledReason::Automatic => "automatic",
            DisabledReason::Gone => "gone",
            DisabledReason::Disconnected => "disconnected",
        }
    }

    /// Why it was turned off, in a sentence, given how many deliveries in a row had failed:
    /// "The endpoint answered 410 Gone.", "12 consecutive failed deliveries."
    pub fn cause(self, consecutive_failures: i32) -> String {
        match self {
            DisabledReason::Gone => "The endpoint answered 410 Gone.".to_string(),
            DisabledReason::Automatic => format!("{consecutive_failures} consecutive failed deliveries."),
            DisabledReason::Manual => "It was turned off by hand.".to_string(),
            DisabledReason::Disconnected => "The application that made it was disconnected.".to_string(),
        }
    }
}

stored_as_str!(DisabledReason, "disabled reason");

/// Why a webhook that is on waits before its next delivery: the receiver asked it to
/// (`Retry-After`), or its circuit breaker is open until the next probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "sea-orm", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
#[cfg_attr(feature = "sea-orm", sea_orm(rs_type = "String", db_type = "String(StringLen::None)"))]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// A 429 or 503 with `Retry-After`: the webhook waits until then.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "retry_after"))]
    RetryAfter,
    /// Deliveries kept failing: one delivery goes as a probe when the pause ends.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "circuit_open"))]
    CircuitOpen,
}

impl PauseReason {
    pub const ALL: [PauseReason; 2] = [PauseReason::RetryAfter, PauseReason::CircuitOpen];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PauseReason::RetryAfter => "retry_after",
            PauseReason::CircuitOpen => "circuit_open",
        }
    }

    /// Why deliveries wait, in a sentence, with the moment the pause ends (in UTC).
    pub fn sentence(self, until: i64) -> String {
        match self {
            PauseReason::RetryAfter => format!(
                "The endpoint asked Hookline to wait (HTTP 429 or 503 with Retry-After): deliveries to \
                 this webhook are paused until {}.",
                human_time(until)
            ),
            PauseReason::CircuitOpen => format!(
                "The circuit breaker is open after connection failures or timeouts: Hookline holds \
                 deliveries to this webhook and probes the endpoint again at {}.",
                human_time(until)
            ),
        }
    }
}

stored_as_str!(PauseReason, "pause reason");

/// What a webhook's alerts have announced (`webhooks.alert_state`); none while there is
/// nothing to say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "sea-orm", derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum))]
#[cfg_attr(feature = "sea-orm", sea_orm(rs_type = "String", db_type = "String(StringLen::None)"))]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// It has failed for longer than the failing-after setting.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "failing"))]
    Failing,
    /// Its streak will soon be long enough to turn it off.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "turning_off"))]
    TurningOff,
    /// Hookline turned it off (after failures, or a 410 Gone).
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "disabled"))]
    Disabled,
    /// A delivery succeeded after one of the above; cleared once announced.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "recovered"))]
    Recovered,
}

impl AlertState {
    pub const ALL: [AlertState; 4] =
        [AlertState::Failing, AlertState::TurningOff, AlertState::Disabled, AlertState::Recovered];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Failing => "failing",
            AlertState::TurningOff => "turning_off",
            AlertState::Disabled => "disabled",
            AlertState::Recovered => "recovered",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

stored_as_str!(AlertState, "alert state");

/// How a webhook is doing, as the dashboard shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    /// On, and its last delivery succeeded (or it has had none).
    Healthy,
    /// On, and its deliveries have failed since this moment (unix milliseconds).
    Failing { since: i64 },
    /// Off: why, when, and how its deliveries had gone until then.
    Off {
        reason: Option<DisabledReason>,
        at: Option<i64>,
        consecutive_failures: i32,
        failing_since: Option<i64>,
    },
}

impl Health {
    /// The health of a webhook from its stored state.
    pub fn of(
        enabled: bool,
        reason: Option<DisabledReason>,
        disabled_at: Option<i64>,
        consecutive_failures: i32,
        failing_since: Option<i64>,
    ) -> Self {
        match (enabled, failing_since) {
            (false, _) => Health::Off { reason, at: disabled_at, consecutive_failures, failing_since },
            (true, Some(since)) => Health::Failing { since },
            (true, None) => Health::Healthy,
        }
    }

    /// The health as a badge shows it: a word, except a failing webhook's sentence (its
    /// moment is the news); the whole sentence is the badge's title.
    pub fn badge(&self) -> String {
        match self {
            Health::Healthy => "Healthy".to_string(),
            Health::Failing { .. } => self.sentence(),
            Health::Off { .. } => "Off".to_string(),
        }
    }

    /// The health in a sentence, with its moments in UTC.
    pub fn sentence(&self) -> String {
        match self {
            Health::Healthy => "Healthy".to_string(),
            Health::Failing { since } => format!("Failing since {}", human_time(*since)),
            Health::Off { reason, at, consecutive_failures, failing_since } => {
                let when = at.map(human_time).unwrap_or_default();
                match reason {
                    Some(DisabledReason::Automatic) => format!(
                        "Turned off automatically at {when} because {consecutive_failures} consecutive deliveries failed{}.",
                        failing_since.map(|t| format!(" since {}", human_time(t))).unwrap_or_default()
                    ),
                    Some(DisabledReason::Gone) => {
                        format!("Turned off automatically at {when} because the endpoint answered 410 Gone.")
                    }
                    _ => format!("Turned off at {when}."),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAN_15: i64 = 1_705_319_874_000;

    #[test]
    fn reasons_round_trip_through_their_strings() {
        for reason in DisabledReason::ALL {
            assert_eq!(DisabledReason::parse(reason.as_str()), Some(reason));
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
        let strings: Vec<&str> = DisabledReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(strings, ["manual", "automatic", "gone", "disconnected"]);
        assert_eq!(DisabledReason::parse("Gone"), None);
    }

    #[test]
    fn alert_states_are_their_stored_strings() {
        for state in AlertState::ALL {
            assert_eq!(AlertState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        let strings: Vec<&str> = AlertState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(strings, ["failing", "turning_off", "disabled", "recovered"]);
        assert_eq!(AlertState::parse("Failing"), None);
    }

    #[test]
    fn pause_reasons_are_their_stored_strings() {
        for reason in PauseReason::ALL {
            assert_eq!(PauseReason::parse(reason.as_str()), Some(reason));
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
        let strings: Vec<&str> = PauseReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(strings, ["retry_after", "circuit_open"]);
        assert_eq!(PauseReason::parse("paused"), None);
        assert_eq!(
            PauseReason::RetryAfter.sentence(JAN_15),
            "The endpoint asked Hookline to wait (HTTP 429 or 503 with Retry-After): deliveries to this \
             webhook are paused until 2024-01-15 11:57:54 UTC."
        );
    }

    #[test]
    fn a_webhook_turned_off_says_why() {
        let off = |reason| Health::of(false, reason, Some(JAN_15), 12, Some(JAN_15 - 60_000)).sentence();
        assert_eq!(
            off(Some(DisabledReason::Automatic)),
            "Turned off automatically at 2024-01-15 11:57:54 UTC because 12 consecutive deliveries failed since 2024-01-15 11:56:54 UTC."
        );
        assert_eq!(
            off(Some(DisabledReason::Gone)),
            "Turned off automatically at 2024-01-15 11:57:54 UTC because the endpoint answered 410 Gone."
        );
        assert_eq!(off(Some(DisabledReason::Manual)), "Turned off at 2024-01-15 11:57:54 UTC.");
        assert_eq!(DisabledReason::Gone.cause(3), "The endpoint answered 410 Gone.");
        assert_eq!(DisabledReason::Automatic.cause(3), "3 consecutive failed deliveries.");
    }

    #[test]
    fn a_webhook_that_is_on_is_healthy_or_failing() {
        assert_eq!(Health::of(true, None, None, 0, None), Health::Healthy);
        assert_eq!(Health::Healthy.badge(), "Healthy");
        assert_eq!(Health::of(false, None, Some(JAN_15), 0, None).badge(), "Off");
        let failing = Health::of(true, None, None, 2, Some(JAN_15));
        assert_eq!(failing.badge(), failing.sentence());
        assert_eq!(
            Health::of(true, None, None, 2, Some(JAN_15)).sentence(),
            "Failing since 2024-01-15 11:57:54 UTC"
        );
    }
}
