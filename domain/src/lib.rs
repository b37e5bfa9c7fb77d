//! Hookline's vocabulary, shared by the server and the dashboard in the browser: the words of
//! the product as types whose values are valid once constructed. Nothing here touches the
//! database, the network or the clock, so it builds for wasm32 as well.
//!
//! With the `sea-orm` feature (the server's build), the closed sets are also sea-orm active
//! enums, stored as the same strings their `as_str()` gives.

/// What every closed set stored as a string has: `FromStr` by its `parse`, for reading its
/// stored or typed string, comparison with a string, which is what it is in the database, and
/// `Display` as that string.
macro_rules! stored_as_str {
    ($set:ty, $what:literal) => {
        impl std::str::FromStr for $set {
            type Err = $crate::input_error::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
                    .ok_or_else(|| $crate::input_error::UnknownValue { what: $what, value: s.to_string() })
            }
        }

        impl PartialEq<str> for $set {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $set {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl std::fmt::Display for $set {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod conditions;
mod delivery;
mod event_filter;
mod ids;
pub mod include_fields;
mod input_error;
mod net;
mod outcome;
mod page;
mod schema;
mod scope;
pub mod signature;
mod tenant;
mod time;
mod webhook_state;
mod webhook_url;

pub use delivery::{AttemptErrorClass, AttemptTrigger, DeliveryStatus, ReplayState};
pub use event_filter::EventFilter;
pub use ids::{ApiKeyId, ApplicationId, AttemptId, DeliveryId, EventId, StoreId, WebhookId};
pub use input_error::{InputError, UnknownValue};
pub use net::{AddressPolicy, is_public_ip};
pub use outcome::Outcome;
pub use page::{DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest};
pub use schema::{SCHEMA_DIALECT, infer_schema, readable_path};
pub use scope::Scope;
pub use tenant::{EventTenantType, Role, Tenant, TenantType};
pub use time::{human_duration, human_time, iso8601, parse_date_ms};
pub use webhook_state::{AlertState, DisabledReason, Health, PauseReason};
pub use webhook_url::{MAX_URL_LEN, UrlPolicy, WebhookUrl};
