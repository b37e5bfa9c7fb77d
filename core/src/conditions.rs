//! A webhook's delivery-control fields as merchants set them (SPEC section 7: `ordering`,
//! `rate_limit`, `conditions`, `include_fields`), checked into what the `webhooks` and
//! `filters` columns store; and the dashboard's test bench, which runs conditions against a
//! tenant's latest events.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;

use crate::Services;
use crate::entities::event;
use crate::error::{Error, Result};
use hookline_domain::conditions::Conditions;
use hookline_domain::include_fields::IncludeFields;
use hookline_domain::{Scope, Tenant};

/// The highest rate limit a webhook may have, in requests per second: far above what one
/// process sends one endpoint, low enough to be a number a person typed on purpose.
pub const MAX_RATE_LIMIT: i64 = 10_000;

/// How many events the test bench runs conditions against.
pub const BENCH_EVENTS: u64 = 20;

/// The delivery-control fields of a new webhook, as sent (JSON values, so that a value of
/// the wrong type is refused with a message naming its field, not a generic parse error).
#[derive(Clone, Debug, Default)]
pub struct DeliveryControl {
    pub ordering: Option<Value>,
    pub rate_limit: Option<Value>,
    pub conditions: Option<Value>,
    pub include_fields: Option<Value>,
}

/// A change to them: an absent field (`None`) stays; `Some(Value::Null)` clears it.
pub type DeliveryControlPatch = DeliveryControl;

/// The fields checked, as the columns store them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CheckedControl {
    pub ordering: Option<bool>,
    pub rate_limit: Option<Option<i32>>,
    pub conditions: Option<Option<String>>,
    pub include_fields: Option<Option<String>>,
}

impl DeliveryControl {
    /// Checks every field before anything is written: a request with one bad field changes
    /// nothing.
    pub(crate) fn check(&self) -> Result<CheckedControl> {
        Ok(CheckedControl {
            ordering: self.ordering.as_ref().map(check_ordering).transpose()?,
            rate_limit: self.rate_limit.as_ref().map(check_rate_limit).transpose()?,
            conditions: self.conditions.as_ref().map(|v| check_conditions("conditions", v)).transpose()?,
            include_fields: self.include_fields.as_ref().map(check_include_fields).transpose()?,
        })
    }
}

fn check_ordering(value: &Value) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        _ => Err(Error::invalid("ordering", "ordering must be true or false.")),
    }
}

fn check_rate_limit(value: &Value) -> Result<Option<i32>> {
    let refuse = || {
        Error::invalid(
            "rate_limit",
            format!(
                "rate_limit must be a whole number of requests per second from 1 to {MAX_RATE_LIMIT}, or null for no limit."
            ),
        )
    };
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_i64() {
            Some(limit) if (1..=MAX_RATE_LIMIT).contains(&limit) => Ok(Some(limit as i32)),
            _ => Err(refuse()),
        },
        _ => Err(refuse()),
    }
}

/// Conditions as the column stores them (`None` for none); the error names `field`.
pub(crate) fn check_conditions(field: &'static str, value: &Value) -> Result<Option<String>> {
    if value.is_null() {
        return Ok(None);
    }
    Conditions::from_value(value)
        .map(|c| Some(c.to_stored()))
        .map_err(|message| Error::invalid(field, message))
}

fn check_include_fields(value: &Value) -> Result<Option<String>> {
    let paths: Vec<String> = match value {
        Value::Null => return Ok(None),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| {
                Error::invalid("include_fields", "include_fields must be a list of field paths (strings).")
            })?,
        _ => {
            return Err(Error::invalid(
                "include_fields",
                "include_fields must be a list of field paths, or null for the whole payload.",
            ));
        }
    };
    IncludeFields::parse(&paths)
        .map(|f| Some(f.to_stored()))
        .map_err(|message| Error::invalid("include_fields", message))
}

/// One event of the test bench, and whether the conditions let it through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchResult {
    pub event_id: String,
    pub event_type: String,
    pub received_at: i64,
    /// `None` when it matches; else the condition that kept it out.
    pub filtered_out_by: Option<String>,
}

impl Services {
    /// Runs `conditions` (JSON text; empty for none) against the latest [`BENCH_EVENTS`]
    /// events of these types (none: the types the webhook receives) published to the
    /// webhook's tenant, newest first. Nothing is
    /// written or sent. Events whose payload retention removed count as not matching.
    pub async fn test_conditions(
        &self,
        scope: &Scope,
        webhook_id: &str,
        conditions: &str,
        event_types: &[String],
    ) -> Result<Vec<BenchResult>> {
        let hook = self.webhook(scope, webhook_id).await?;
        let conditions = match conditions.trim() {
            "" => None,
            text => Some(Conditions::parse(text).map_err(|message| Error::invalid("conditions", message))?),
        };
        // None chosen: the types the webhook receives (every type when it receives all).
        let receives = hook.event_filter().unwrap_or_default();
        let types = if event_types.is_empty() { receives.as_slice() } else { event_types };
        let events = self.latest_events(&hook.tenant(), types).await?;
        Ok(events
            .into_iter()
            .map(|e| {
                let filtered_out_by = match (&conditions, e.payload_pruned_at) {
                    (None, _) => None,
                    (Some(_), Some(_)) => Some("the payload was removed by retention".to_string()),
                    (Some(c), None) => match serde_json::from_str::<Value>(&e.payload) {
                        Ok(payload) => c.failing(&payload),
                        Err(_) => Some("the payload is not JSON".to_string()),
                    },
                };
                BenchResult {
                    event_id: e.id,
                    event_type: e.event_type,
                    received_at: e.received_at,
                    filtered_out_by,
                }
            })
            .collect())
    }

    /// The tenant's latest [`BENCH_EVENTS`] events of these types (every type when none are
    /// named), newest first: read backwards along `events_by_tenant` (tenant, id), whose ids
    /// grow with time, and bounded.
    async fn latest_events(&self, tenant: &Tenant, event_types: &[String]) -> Result<Vec<event::Model>> {
        if event_types.len() > crate::webhooks::MAX_EVENT_TYPES {
            return Err(Error::invalid("event_types", "Choose fewer event types."));
        }
        let mut query = event::Entity::find()
            .filter(event::Column::TenantType.eq(tenant.kind.as_str()))
            .filter(event::Column::TenantId.eq(&tenant.id))
            .order_by_desc(event::Column::Id)
            .limit(BENCH_EVENTS);
        if !event_types.is_empty() {
            query = query.filter(event::Column::EventType.is_in(event_types.iter().cloned()));
        }
        Ok(query.all(&self.db).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(result: Result<CheckedControl>) -> Option<&'static str> {
        result.expect_err("refused").field()
    }

    #[test]
    fn each_field_is_checked_and_named() {
        let control = |f: fn(&mut DeliveryControl)| {
            let mut c = DeliveryControl::default();
            f(&mut c);
            c.check()
        };
        assert_eq!(field_of(control(|c| c.ordering = Some(json!("yes")))), Some("ordering"));
        assert_eq!(field_of(control(|c| c.rate_limit = Some(json!(0)))), Some("rate_limit"));
        assert_eq!(field_of(control(|c| c.rate_limit = Some(json!(10_001)))), Some("rate_limit"));
        assert_eq!(field_of(control(|c| c.rate_limit = Some(json!(1.5)))), Some("rate_limit"));
        assert_eq!(field_of(control(|c| c.conditions = Some(json!({"path": "a"})))), Some("conditions"));
        assert_eq!(field_of(control(|c| c.include_fields = Some(json!([])))), Some("include_fields"));
        assert_eq!(field_of(control(|c| c.include_fields = Some(json!([1])))), Some("include_fields"));
        assert_eq!(field_of(control(|c| c.include_fields = Some(json!("a")))), Some("include_fields"));
        let all = DeliveryControl {
            ordering: Some(json!(true)),
            rate_limit: Some(json!(50)),
            conditions: Some(json!({"path": "a", "exists": true})),
            include_fields: Some(json!(["a", "b.c"])),
        };
        assert_eq!(
            all.check().expect("valid"),
            CheckedControl {
                ordering: Some(true),
                rate_limit: Some(Some(50)),
                conditions: Some(Some(r#"{"exists":true,"path":"a"}"#.into())),
                include_fields: Some(Some(r#"["a","b.c"]"#.into())),
            }
        );
        let cleared = DeliveryControl {
            ordering: None,
            rate_limit: Some(Value::Null),
            conditions: Some(Value::Null),
            include_fields: Some(Value::Null),
        };
        assert_eq!(
            cleared.check().expect("valid"),
            CheckedControl {
                ordering: None,
                rate_limit: Some(None),
                conditions: Some(None),
                include_fields: Some(None)
            }
        );
    }
}
