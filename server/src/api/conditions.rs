//! Payload conditions as the API shows and takes them (docs/conditions.md): the `Conditions`
//! schema of the document, recursive like the language, with its bounds, and the stored
//! column read back as JSON.

use hookline_domain::conditions::{Conditions as Parsed, MAX_CONDITIONS, MAX_ONE_OF, MAX_PATH_LEN};
use serde_json::{Value, json};
use utoipa::openapi::{RefOr, Schema};

/// Payload conditions: a group (`all`, `any`) of conditions, or one test of a field path.
pub(crate) struct Conditions;

impl utoipa::PartialSchema for Conditions {
    fn schema() -> RefOr<Schema> {
        let node = json!({"$ref": "#/components/schemas/Conditions"});
        let group = |name: &str| {
            json!({
                "type": "object",
                "required": [name],
                "additionalProperties": false,
                "properties": {name: {"type": "array", "minItems": 1, "maxItems": MAX_CONDITIONS, "items": node}},
            })
        };
        // Any JSON value (a schema without a type does not read back as one).
        let any = json!(["string", "number", "boolean", "array", "object", "null"]);
        let schema = json!({
            "description": "Payload conditions (docs/conditions.md): {\"all\": [...]}, {\"any\": [...]} \
                (nested at most 3 deep), or a test {\"path\": \"order.total\", <operator>: value} with exactly \
                one operator of equals, one_of, exists, contains, gt, gte, lt, lte; at most 20 tests.",
            "oneOf": [
                group("all"),
                group("any"),
                {
                    "type": "object",
                    "required": ["path"],
                    "minProperties": 2,
                    "maxProperties": 2,
                    "additionalProperties": false,
                    "properties": {
                        "path": {"type": "string", "minLength": 1, "maxLength": MAX_PATH_LEN,
                                 "description": "Keys separated by dots; a number indexes an array (items.0.sku)."},
                        "equals": {"type": any, "description": "The value at the path is this JSON value (numbers by value)."},
                        "one_of": {"type": "array", "minItems": 1, "maxItems": MAX_ONE_OF, "items": {"type": any}},
                        "exists": {"type": "boolean", "description": "true: present and not null."},
                        "contains": {"type": any, "description": "An array holding this value, or a string holding this text."},
                        "gt": {"type": "number"},
                        "gte": {"type": "number"},
                        "lt": {"type": "number"},
                        "lte": {"type": "number"},
                    },
                },
            ],
        });
        RefOr::T(serde_json::from_value(schema).expect("the Conditions schema is a valid schema"))
    }
}

impl utoipa::ToSchema for Conditions {
    fn name() -> std::borrow::Cow<'static, str> {
        "Conditions".into()
    }
}

/// A stored conditions column as the API shows it; `None` for none (or, never expected, a
/// column that no longer reads, which delivers everything).
pub(crate) fn stored_conditions(column: Option<&str>) -> Option<Value> {
    Parsed::from_stored(column).map(|c| c.to_value())
}

/// A stored `include_fields` column as the API shows it.
pub(crate) fn stored_include_fields(column: Option<&str>) -> Option<Vec<String>> {
    hookline_domain::include_fields::IncludeFields::from_stored(column).map(|f| f.paths())
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    #[test]
    fn the_schema_builds_and_reads_back_as_written() {
        let RefOr::T(schema) = Conditions::schema() else { panic!("an inline schema") };
        let written = serde_json::to_value(&schema).expect("serializes");
        assert_eq!(written["oneOf"].as_array().map(Vec::len), Some(3), "{written}");
        assert_eq!(written["oneOf"][2]["properties"]["gt"]["type"], "number");
    }
}
