//! Ids as types, so a webhook id cannot be passed where a delivery id is meant. Ids are
//! UUIDv7 strings made on the server (the browser has no clock to make them); stores and
//! applications have the ids their owners chose. Each is stored and serialized as its string
//! (with the `sea-orm` feature, an entity column may hold one directly).

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "sea-orm", derive(sea_orm::DeriveValueType))]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

id!(
    /// A webhook (a subscription of a URL to event types).
    WebhookId
);
id!(
    /// A published event.
    EventId
);
id!(
    /// One event's delivery to one webhook.
    DeliveryId
);
id!(
    /// One request made for a delivery.
    AttemptId
);
id!(
    /// An API key (not the key itself, which is shown once and stored hashed).
    ApiKeyId
);
id!(
    /// A store, as its owner named it.
    StoreId
);
id!(
    /// An application (a partner app installed on stores), as its owner named it.
    ApplicationId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_string_on_the_wire() {
        let id = WebhookId::from("0190-abc");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""0190-abc""#);
        assert_eq!(serde_json::from_str::<WebhookId>(r#""0190-abc""#).unwrap(), id);
        assert_eq!(id, "0190-abc");
        assert_eq!(id.to_string(), "0190-abc");
    }
}
