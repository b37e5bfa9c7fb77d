//! Payload conditions: which events a webhook receives by what their payload says, beyond the
//! event type. Parsed and bounded once (a webhook's conditions are read when its recipients
//! are loaded), then checked against each event's payload; `failing` names the condition that
//! kept an event out, for the explain view and the dashboard's test bench.
//!
//! The shape (docs/conditions.md): one node, where a node is
//! `{"all": [node, ...]}`, `{"any": [node, ...]}` or a test `{"path": "order.total", "gt": 100}`
//! with exactly one operator among `equals`, `one_of`, `exists`, `contains`, `gt`, `gte`, `lt`,
//! `lte`. A node is an object with its operator as a key, so it reads as it is written and an
//! unknown key is an error instead of a silently ignored condition.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};
use std::cmp::Ordering;
use std::fmt;

/// At most this many tests (leaves) in one webhook's conditions: evaluation stays a few
/// dozen map lookups per event whatever a client sends.
pub const MAX_CONDITIONS: usize = 20;
/// At most this many nested `all`/`any` levels (the outermost group is level 1).
pub const MAX_DEPTH: usize = 3;
/// The longest field path, in characters.
pub const MAX_PATH_LEN: usize = 255;
/// The most values a `one_of` lists.
pub const MAX_ONE_OF: usize = 50;
/// The longest conditions document, in bytes of JSON: bounds the values compared against.
pub const MAX_JSON_LEN: usize = 16 * 1024;

/// A place in a payload: keys separated by dots; a segment of digits also indexes an array
/// (`items.0.sku`). Keys that contain a dot cannot be named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
}

impl FieldPath {
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        if text.is_empty() {
            return Err("a field path cannot be empty".to_string());
        }
        if text.chars().count() > MAX_PATH_LEN {
            return Err(format!("the field path is longer than {MAX_PATH_LEN} characters"));
        }
        if text.chars().any(char::is_control) {
            return Err(format!("the field path {text:?} contains control characters"));
        }
        let segments: Vec<String> = text.split('.').map(str::to_string).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!(
                "the field path {text:?} has an empty part: write keys separated by single dots, like order.total"
            ));
        }
        Ok(FieldPath { text: text.to_string(), segments })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The value at this path, if the payload has one.
    pub fn lookup<'v>(&self, payload: &'v Value) -> Option<&'v Value> {
        let mut at = payload;
        for segment in &self.segments {
            at = match at {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => items.get(array_index(segment)?)?,
                _ => return None,
            };
        }
        Some(at)
    }
}

/// A segment as an array index: digits only, no leading zero (so `01` is never `1`).
pub(crate) fn array_index(segment: &str) -> Option<usize> {
    if segment.is_empty()
        || !segment.bytes().all(|b| b.is_ascii_digit())
        || (segment.len() > 1 && segment.starts_with('0'))
    {
        return None;
    }
    segment.parse().ok()
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Operator {
    Equals(Value),
    OneOf(Vec<Value>),
    Exists(bool),
    Contains(Value),
    Gt(Number),
    Gte(Number),
    Lt(Number),
    Lte(Number),
}

const OPERATORS: &str = "equals, one_of, exists, contains, gt, gte, lt, lte";

#[derive(Clone, Debug, PartialEq)]
enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Test { path: FieldPath, operator: Operator },
}

/// A webhook's (or a filter's) payload conditions, valid and within bounds once constructed.
#[derive(Clone, Debug, PartialEq)]
pub struct Conditions {
    root: Node,
}

impl Conditions {
    /// Reads conditions from their JSON text (the API's field, the dashboard's textarea, the
    /// stored column); the error names where in the document the problem is.
    pub fn parse(json: &str) -> Result<Conditions, String> {
        if json.len() > MAX_JSON_LEN {
            return Err(format!("conditions are longer than {MAX_JSON_LEN} bytes"));
        }
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("conditions are not valid JSON: {e}"))?;
        Conditions::from_value(&value)
    }

    /// Reads conditions from a JSON value already parsed (the API's request body).
    pub fn from_value(value: &Value) -> Result<Conditions, String> {
        if serde_json::to_string(value).map(|s| s.len()).unwrap_or(usize::MAX) > MAX_JSON_LEN {
            return Err(format!("conditions are longer than {MAX_JSON_LEN} bytes"));
        }
        let mut tests = 0;
        let root = parse_node(value, "conditions", 0, &mut tests)?;
        Ok(Conditions { root })
    }

    /// Whether the payload passes: `None` when it does, else the condition that kept it out,
    /// as people read it (`order.total > 100`).
    pub fn failing(&self, payload: &Value) -> Option<String> {
        failing(&self.root, payload)
    }

    pub fn matches(&self, payload: &Value) -> bool {
        self.failing(payload).is_none()
    }

    /// The conditions as the API shows them and the column stores them.
    pub fn to_value(&self) -> Value {
        node_value(&self.root)
    }

    /// What the `conditions` column stores.
    pub fn to_stored(&self) -> String {
        self.to_value().to_string()
    }

    /// Conditions from the stored column: `None` when absent or (never expected) unreadable,
    /// which delivers every event as before conditions existed rather than none.
    pub fn from_stored(column: Option<&str>) -> Option<Conditions> {
        column.and_then(|text| Conditions::parse(text).ok())
    }
}

impl Serialize for Conditions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Conditions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Conditions::from_value(&value).map_err(D::Error::custom)
    }
}

fn parse_node(value: &Value, at: &str, depth: usize, tests: &mut usize) -> Result<Node, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "{at} must be an object: {{\"all\": [...]}}, {{\"any\": [...]}} or {{\"path\": ..., <operator>: ...}}"
        ));
    };
    for group in ["all", "any"] {
        if let Some(children) = map.get(group) {
            if map.len() != 1 {
                return Err(format!("{at} has \"{group}\" beside other keys; a group holds only its list"));
            }
            if depth + 1 > MAX_DEPTH {
                return Err(format!("{at}: groups nest at most {MAX_DEPTH} deep"));
            }
            let Value::Array(children) = children else {
                return Err(format!("{at}.{group} must be a list of conditions"));
            };
            if children.is_empty() {
                return Err(format!("{at}.{group} must list at least one condition"));
            }
            let mut nodes = Vec::with_capacity(children.len());
            for (i, child) in children.iter().enumerate() {
                nodes.push(parse_node(child, &format!("{at}.{group}[{i}]"), depth + 1, tests)?);
            }
            return Ok(if group == "all" { Node::All(nodes) } else { Node::Any(nodes) });
        }
    }
    *tests += 1;
    if *tests > MAX_CONDITIONS {
        return Err(format!("conditions hold more than {MAX_CONDITIONS} tests"));
    }
    let path = match map.get("path") {
        Some(Value::String(text)) => FieldPath::parse(text).map_err(|e| format!("{at}.path: {e}"))?,
        Some(_) => return Err(format!("{at}.path must be a string, like \"order.total\"")),
        None => return Err(format!("{at} needs \"path\" (or is a group: \"all\" or \"any\")")),
    };
    let mut operators = map.iter().filter(|(key, _)| key.as_str() != "path");
    let (name, operand) = match (operators.next(), operators.next()) {
        (Some(one), None) => one,
        (None, _) => return Err(format!("{at} needs an operator: one of {OPERATORS}")),
        (Some(_), Some(_)) => {
            return Err(format!("{at} has more than one operator; combine tests with \"all\""));
        }
    };
    let number = |operand: &Value| match operand {
        Value::Number(n) => Ok(n.clone()),
        _ => Err(format!("{at}.{name} must be a number")),
    };
    let operator = match name.as_str() {
        "equals" => Operator::Equals(operand.clone()),
        "contains" => Operator::Contains(operand.clone()),
        "one_of" => match operand {
            Value::Array(values) if values.is_empty() => {
                return Err(format!("{at}.one_of must list at least one value"));
            }
            Value::Array(values) if values.len() > MAX_ONE_OF => {
                return Err(format!("{at}.one_of lists more than {MAX_ONE_OF} values"));
            }
            Value::Array(values) => Operator::OneOf(values.clone()),
            _ => return Err(format!("{at}.one_of must be a list of values")),
        },
        "exists" => match operand {
            Value::Bool(b) => Operator::Exists(*b),
            _ => return Err(format!("{at}.exists must be true or false")),
        },
        "gt" => Operator::Gt(number(operand)?),
        "gte" => Operator::Gte(number(operand)?),
        "lt" => Operator::Lt(number(operand)?),
        "lte" => Operator::Lte(number(operand)?),
        other => return Err(format!("{at} has an unknown operator {other:?}; use one of {OPERATORS}")),
    };
    Ok(Node::Test { path, operator })
}

fn failing(node: &Node, payload: &Value) -> Option<String> {
    match node {
        Node::All(children) => children.iter().find_map(|child| failing(child, payload)),
        Node::Any(children) => {
            let mut reasons = Vec::with_capacity(children.len());
            for child in children {
                reasons.push(failing(child, payload)?);
            }
            Some(format!("none of ({})", reasons.join("; ")))
        }
        Node::Test { path, operator } => {
            if test(operator, path.lookup(payload)) {
                None
            } else {
                Some(describe(path, operator))
            }
        }
    }
}

fn test(operator: &Operator, found: Option<&Value>) -> bool {
    match operator {
        Operator::Exists(wanted) => found.is_some_and(|v| !v.is_null()) == *wanted,
        Operator::Equals(expected) => found.is_some_and(|v| same(v, expected)),
        Operator::OneOf(values) => found.is_some_and(|v| values.iter().any(|x| same(v, x))),
        Operator::Contains(expected) => match found {
            Some(Value::Array(items)) => items.iter().any(|item| same(item, expected)),
            Some(Value::String(text)) => expected.as_str().is_some_and(|part| text.contains(part)),
            _ => false,
        },
        Operator::Gt(n) => compare(found, n).is_some_and(Ordering::is_gt),
        Operator::Gte(n) => compare(found, n).is_some_and(Ordering::is_ge),
        Operator::Lt(n) => compare(found, n).is_some_and(Ordering::is_lt),
        Operator::Lte(n) => compare(found, n).is_some_and(Ordering::is_le),
    }
}

/// JSON equality where numbers compare by value (`100` equals `100.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// A payload value against a number: only numbers compare (a string "150" is not above 100).
fn compare(found: Option<&Value>, n: &Number) -> Option<Ordering> {
    match found {
        Some(Value::Number(x)) => numbers(x, n),
        _ => None,
    }
}

/// Integers compare exactly (ids beyond 2^53 included); anything else as f64.
fn numbers(x: &Number, y: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return Some(a.cmp(&b));
    }
    x.as_f64()?.partial_cmp(&y.as_f64()?)
}

fn describe(path: &FieldPath, operator: &Operator) -> String {
    match operator {
        Operator::Equals(v) => format!("{path} = {v}"),
        Operator::OneOf(values) => format!("{path} is one of {}", Value::Array(values.clone())),
        Operator::Exists(true) => format!("{path} exists"),
        Operator::Exists(false) => format!("{path} does not exist"),
        Operator::Contains(v) => format!("{path} contains {v}"),
        Operator::Gt(n) => format!("{path} > {n}"),
        Operator::Gte(n) => format!("{path} >= {n}"),
        Operator::Lt(n) => format!("{path} < {n}"),
        Operator::Lte(n) => format!("{path} <= {n}"),
    }
}

fn node_value(node: &Node) -> Value {
    let mut map = Map::new();
    match node {
        Node::All(children) => {
            map.insert("all".into(), Value::Array(children.iter().map(node_value).collect()));
        }
        Node::Any(children) => {
            map.insert("any".into(), Value::Array(children.iter().map(node_value).collect()));
        }
        Node::Test { path, operator } => {
            map.insert("path".into(), Value::String(path.as_str().to_string()));
            let (name, operand) = match operator {
                Operator::Equals(v) => ("equals", v.clone()),
                Operator::OneOf(values) => ("one_of", Value::Array(values.clone())),
                Operator::Exists(b) => ("exists", Value::Bool(*b)),
                Operator::Contains(v) => ("contains", v.clone()),
                Operator::Gt(n) => ("gt", Value::Number(n.clone())),
                Operator::Gte(n) => ("gte", Value::Number(n.clone())),
                Operator::Lt(n) => ("lt", Value::Number(n.clone())),
                Operator::Lte(n) => ("lte", Value::Number(n.clone())),
            };
            map.insert(name.into(), operand);
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conditions(value: Value) -> Conditions {
        Conditions::from_value(&value).expect("valid conditions")
    }

    fn error(value: Value) -> String {
        Conditions::from_value(&value).expect_err("invalid conditions")
    }

    #[test]
    fn a_nested_document_matches_and_names_the_condition_that_failed() {
        let c = conditions(json!({"all": [
            {"path": "order.total", "gt": 100},
            {"any": [{"path": "country", "one_of": ["US", "CA"]}, {"path": "vip", "exists": true}]}
        ]}));
        assert_eq!(c.failing(&json!({"order": {"total": 150}, "country": "US"})), None);
        assert_eq!(c.failing(&json!({"order": {"total": 150}, "country": "FR", "vip": 1})), None);
        assert_eq!(
            c.failing(&json!({"order": {"total": 50}, "country": "US"})).as_deref(),
            Some("order.total > 100")
        );
        assert_eq!(
            c.failing(&json!({"order": {"total": 150}, "country": "FR"})).as_deref(),
            Some(r#"none of (country is one of ["US","CA"]; vip exists)"#)
        );
        // A missing path fails a comparison rather than erroring.
        assert_eq!(c.failing(&json!({})).as_deref(), Some("order.total > 100"));
    }

    #[test]
    fn each_operator_tests_what_it_says() {
        let payload = json!({"n": 10, "f": 2.5, "s": "paid", "tags": ["vip", "eu"], "items": [{"sku": "A1"}], "nothing": null, "big": 9007199254740993u64});
        let pass = |c: Value| assert!(conditions(c.clone()).matches(&payload), "{c} should match");
        let fail = |c: Value| assert!(!conditions(c.clone()).matches(&payload), "{c} should not match");
        pass(json!({"path": "n", "equals": 10.0}));
        pass(json!({"path": "s", "equals": "paid"}));
        fail(json!({"path": "s", "equals": "Paid"}));
        fail(json!({"path": "n", "equals": "10"}));
        pass(json!({"path": "s", "one_of": ["open", "paid"]}));
        fail(json!({"path": "missing", "one_of": [null]}));
        pass(json!({"path": "tags", "contains": "vip"}));
        pass(json!({"path": "s", "contains": "ai"}));
        fail(json!({"path": "tags", "contains": "us"}));
        pass(json!({"path": "items.0.sku", "equals": "A1"}));
        fail(json!({"path": "items.1.sku", "exists": true}));
        fail(json!({"path": "items.00.sku", "exists": true}));
        pass(json!({"path": "nothing", "exists": false}));
        pass(json!({"path": "missing", "exists": false}));
        fail(json!({"path": "s", "exists": false}));
        pass(json!({"path": "n", "gte": 10}));
        fail(json!({"path": "n", "gt": 10}));
        pass(json!({"path": "f", "lt": 3}));
        pass(json!({"path": "f", "lte": 2.5}));
        fail(json!({"path": "s", "lt": 3}));
        pass(json!({"path": "big", "gt": 9007199254740992u64}));
        pass(json!({"any": [{"path": "n", "lt": 0}, {"path": "n", "gt": 5}]}));
    }

    #[test]
    fn conditions_round_trip_through_their_stored_text() {
        let value = json!({"all": [{"path": "a.b", "gte": 1.5}, {"any": [{"path": "c", "exists": false}]}]});
        let c = conditions(value.clone());
        assert_eq!(c.to_value(), value);
        assert_eq!(Conditions::parse(&c.to_stored()), Ok(c.clone()));
        assert_eq!(serde_json::to_value(&c).expect("serializes"), value);
        assert_eq!(serde_json::from_value::<Conditions>(value).expect("deserializes"), c);
        assert_eq!(Conditions::from_stored(None), None);
    }

    #[test]
    fn errors_name_the_place_and_the_rule() {
        assert!(error(json!([])).starts_with("conditions must be an object"));
        assert!(
            error(json!({"all": [{"path": "a", "gtt": 1}]}))
                .contains("conditions.all[0] has an unknown operator \"gtt\"")
        );
        assert!(error(json!({"all": []})).contains("conditions.all must list at least one"));
        assert!(error(json!({"path": "a", "gt": "1"})).contains("conditions.gt must be a number"));
        assert!(error(json!({"path": "a"})).contains("needs an operator"));
        assert!(error(json!({"path": "a", "gt": 1, "lt": 2})).contains("more than one operator"));
        assert!(error(json!({"gt": 1})).contains("needs \"path\""));
        assert!(
            error(json!({"path": "a..b", "exists": true}))
                .contains("conditions.path: the field path \"a..b\" has an empty part")
        );
        assert!(error(json!({"path": "", "exists": true})).contains("cannot be empty"));
        assert!(error(json!({"path": "a", "exists": "yes"})).contains("exists must be true or false"));
        assert!(error(json!({"path": "a", "one_of": []})).contains("at least one value"));
        assert!(
            error(json!({"all": [{"path": "a", "exists": true}], "path": "b"})).contains("beside other keys")
        );
        assert!(Conditions::parse("{").expect_err("not JSON").starts_with("conditions are not valid JSON"));
    }

    #[test]
    fn hostile_documents_are_refused_by_their_bounds() {
        let long = "a".repeat(MAX_PATH_LEN + 1);
        assert!(error(json!({"path": long, "exists": true})).contains("longer than 255"));
        let many: Vec<Value> =
            (0..=MAX_CONDITIONS).map(|i| json!({"path": format!("k{i}"), "exists": true})).collect();
        assert!(error(json!({"all": many})).contains("more than 20 tests"));
        let twenty: Vec<Value> =
            (0..MAX_CONDITIONS).map(|i| json!({"path": format!("k{i}"), "exists": true})).collect();
        conditions(json!({"all": twenty}));
        let leaf = json!({"path": "a", "exists": true});
        conditions(json!({"all": [{"any": [{"all": [leaf.clone()]}]}]}));
        assert!(
            error(json!({"all": [{"any": [{"all": [{"any": [leaf]}]}]}]})).contains("nest at most 3 deep")
        );
        let values: Vec<Value> = (0..=MAX_ONE_OF).map(|i| json!(i)).collect();
        assert!(error(json!({"path": "a", "one_of": values})).contains("more than 50 values"));
        let huge = "x".repeat(MAX_JSON_LEN);
        assert!(error(json!({"path": "a", "equals": huge})).contains("longer than"));
    }
}
