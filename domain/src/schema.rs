//! Event schemas as the catalog shows them: a JSON Schema inferred from an event type's
//! example payload, for the types no admin gave one, and a JSON pointer into a payload as
//! people read it (`payload.customer.email`, `payload.items[0].sku`).

use serde_json::{Map, Value, json};

/// The JSON Schema dialect every schema Hookline writes declares.
pub const SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// A JSON Schema that the example payload satisfies: each field's type, nested objects field
/// by field, every key of the example `required`, and other keys allowed (an example shows
/// what a payload has, not all it may have). A `null` in the example says nothing of the
/// field's type, so it allows any value; an array's items are described when they all look
/// alike.
pub fn infer_schema(example: &Value) -> Value {
    let mut schema = describe(example);
    if let Value::Object(fields) = &mut schema {
        let mut with_dialect = Map::with_capacity(fields.len() + 1);
        with_dialect.insert("$schema".into(), SCHEMA_DIALECT.into());
        with_dialect.append(fields);
        return Value::Object(with_dialect);
    }
    schema
}

fn describe(value: &Value) -> Value {
    match value {
        Value::Null => json!({}),
        Value::Bool(_) => json!({ "type": "boolean" }),
        Value::Number(n) if n.is_f64() => json!({ "type": "number" }),
        Value::Number(_) => json!({ "type": "integer" }),
        Value::String(_) => json!({ "type": "string" }),
        Value::Array(items) => {
            let mut schema = Map::new();
            schema.insert("type".into(), "array".into());
            let mut described = items.iter().map(describe);
            if let Some(first) = described.next()
                && described.all(|other| other == first)
            {
                schema.insert("items".into(), first);
            }
            Value::Object(schema)
        }
        Value::Object(fields) => {
            let properties: Map<String, Value> =
                fields.iter().map(|(k, v)| (k.clone(), describe(v))).collect();
            let required: Vec<Value> = fields.keys().map(|k| Value::String(k.clone())).collect();
            json!({
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": true,
            })
        }
    }
}

/// Where a JSON pointer (`/customer/email`, as a validator reports it) points in `root`, as
/// people read it, starting from `root_name`: object keys joined with dots, array positions
/// in brackets. `root` tells an array position from an object key that is a number.
pub fn readable_path(root_name: &str, pointer: &str, root: &Value) -> String {
    let mut out = root_name.to_string();
    let mut at = Some(root);
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        match at {
            Some(Value::Array(items)) => {
                out.push_str(&format!("[{token}]"));
                at = token.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            other => {
                out.push('.');
                out.push_str(&token);
                at = other.and_then(|v| v.get(&token));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inferred_schema_describes_each_field_and_requires_the_examples_keys() {
        let example = json!({
            "event_name": "communication.sms.sent.v1",
            "flow_id": 1019753,
            "ratio": 0.5,
            "accepts_sms_marketing": true,
            "campaign_id": null,
            "customer": {"email": "tom.smith@example.com", "external_id": 7144482046187_u64},
            "tags": ["a", "b"],
            "mixed": [1, "one"],
            "none": [],
        });
        let schema = infer_schema(&example);
        assert_eq!(schema["$schema"], SCHEMA_DIALECT);
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], true);
        let p = &schema["properties"];
        assert_eq!(p["event_name"], json!({"type": "string"}));
        assert_eq!(p["flow_id"], json!({"type": "integer"}));
        assert_eq!(p["ratio"], json!({"type": "number"}));
        assert_eq!(p["accepts_sms_marketing"], json!({"type": "boolean"}));
        assert_eq!(p["campaign_id"], json!({}));
        assert_eq!(p["customer"]["properties"]["external_id"], json!({"type": "integer"}));
        assert_eq!(p["customer"]["required"], json!(["email", "external_id"]));
        assert!(p["customer"].get("$schema").is_none(), "only the root names the dialect");
        assert_eq!(p["tags"], json!({"type": "array", "items": {"type": "string"}}));
        assert_eq!(p["mixed"], json!({"type": "array"}));
        assert_eq!(p["none"], json!({"type": "array"}));
        let mut required: Vec<&str> =
            schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        required.sort_unstable();
        let mut keys: Vec<&str> =
            example.as_object().into_iter().flatten().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(required, keys);
    }

    #[test]
    fn an_example_that_is_not_an_object_gets_its_own_type() {
        assert_eq!(infer_schema(&json!("text")), json!({"$schema": SCHEMA_DIALECT, "type": "string"}));
        assert_eq!(
            infer_schema(&json!({})),
            json!({
                "$schema": SCHEMA_DIALECT, "type": "object", "properties": {}, "required": [], "additionalProperties": true
            })
        );
    }

    #[test]
    fn a_pointer_reads_as_dots_for_keys_and_brackets_for_positions() {
        let payload = json!({"customer": {"email": 1}, "items": [{"sku": 2}], "0": {"a/b": 3}});
        assert_eq!(readable_path("payload", "", &payload), "payload");
        assert_eq!(readable_path("payload", "/customer/email", &payload), "payload.customer.email");
        assert_eq!(readable_path("payload", "/items/0/sku", &payload), "payload.items[0].sku");
        // A key that is a number is still a key; `~1` is a slash in a key.
        assert_eq!(readable_path("payload", "/0/a~1b", &payload), "payload.0.a/b");
        // A pointer past what the payload holds still reads.
        assert_eq!(readable_path("payload", "/missing/x", &payload), "payload.missing.x");
    }
}
