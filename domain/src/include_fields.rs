//! Thin payloads: a webhook's `include_fields`, the payload paths it is sent. The projection
//! works on the payload's text, not on a parsed map, so the body sent keeps the producer's key
//! order and each kept value's exact bytes (numbers are never rewritten); the signature is
//! then computed over exactly the projected bytes.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

use crate::conditions::FieldPath;

/// The most paths one webhook lists.
pub const MAX_INCLUDE_FIELDS: usize = 50;

/// The paths a webhook is sent, valid once constructed; `None` (no value) sends everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncludeFields {
    paths: Vec<FieldPath>,
    tree: Tree,
}

/// The paths as a tree of keys: a leaf keeps the whole value under it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Tree {
    whole: bool,
    children: Vec<(String, Tree)>,
}

impl Tree {
    fn add(&mut self, segments: &[String]) {
        let Some((first, rest)) = segments.split_first() else {
            self.whole = true;
            return;
        };
        let at = match self.children.iter().position(|(k, _)| k == first) {
            Some(i) => i,
            None => {
                self.children.push((first.clone(), Tree::default()));
                self.children.len() - 1
            }
        };
        self.children[at].1.add(rest);
    }

    fn child(&self, key: &str) -> Option<&Tree> {
        self.children.iter().find(|(k, _)| k == key).map(|(_, t)| t)
    }
}

impl IncludeFields {
    /// Checks the list a merchant gave: 1 to [`MAX_INCLUDE_FIELDS`] valid paths; repeats are
    /// dropped. The error says which entry is wrong.
    pub fn parse(paths: &[String]) -> Result<IncludeFields, String> {
        if paths.is_empty() {
            return Err("List at least one field path, or send null for the whole payload.".into());
        }
        if paths.len() > MAX_INCLUDE_FIELDS {
            return Err(format!(
                "List at most {MAX_INCLUDE_FIELDS} field paths; this lists {}.",
                paths.len()
            ));
        }
        let mut parsed: Vec<FieldPath> = Vec::with_capacity(paths.len());
        for (i, text) in paths.iter().enumerate() {
            let path = FieldPath::parse(text.trim()).map_err(|e| format!("include_fields[{i}]: {e}"))?;
            if !parsed.contains(&path) {
                parsed.push(path);
            }
        }
        let mut tree = Tree::default();
        for path in &parsed {
            tree.add(path.segments());
        }
        Ok(IncludeFields { paths: parsed, tree })
    }

    /// From the stored column (a JSON array); `None` for absent or unreadable, which sends
    /// the whole payload.
    pub fn from_stored(column: Option<&str>) -> Option<IncludeFields> {
        let list: Vec<String> = serde_json::from_str(column?).ok()?;
        IncludeFields::parse(&list).ok()
    }

    pub fn to_stored(&self) -> String {
        serde_json::to_string(&self.paths()).unwrap_or_default()
    }

    pub fn paths(&self) -> Vec<String> {
        self.paths.iter().map(|p| p.as_str().to_string()).collect()
    }

    /// The payload down to the listed paths, in the payload's own order; paths it lacks are
    /// left out. A path that reaches an array applies its rest to each element
    /// (`items.sku` keeps every item's sku). A payload that is not JSON (never stored) is
    /// sent as it is rather than lost.
    pub fn project(&self, payload: &str) -> String {
        let mut out = String::with_capacity(payload.len().min(4096));
        match project_into(payload, &self.tree, &mut out) {
            Ok(true) => out,
            Ok(false) => "{}".to_string(),
            Err(_) => payload.to_string(),
        }
    }
}

/// Writes the projection of `raw` under `tree` to `out`; `false` when nothing of it is kept.
fn project_into(raw: &str, tree: &Tree, out: &mut String) -> Result<bool, serde_json::Error> {
    if tree.whole {
        out.push_str(raw.trim());
        return Ok(true);
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    let shape = (&mut de).deserialize_any(ShapeVisitor)?;
    match shape {
        Shape::Object(members) => {
            let start = out.len();
            out.push('{');
            let mut kept = false;
            for (key, value) in members {
                let Some(child) = tree.child(&key) else { continue };
                let mark = out.len();
                if kept {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(&key)?);
                out.push(':');
                if project_into(value.get(), child, out)? {
                    kept = true;
                } else {
                    out.truncate(mark);
                }
            }
            if !kept {
                out.truncate(start);
                return Ok(false);
            }
            out.push('}');
            Ok(true)
        }
        Shape::Array(items) => {
            let start = out.len();
            out.push('[');
            let mut kept = false;
            for item in items {
                let mark = out.len();
                if kept {
                    out.push(',');
                }
                if project_into(item.get(), tree, out)? {
                    kept = true;
                } else {
                    out.truncate(mark);
                }
            }
            if !kept {
                out.truncate(start);
                return Ok(false);
            }
            out.push(']');
            Ok(true)
        }
        Shape::Scalar => Ok(false),
    }
}

/// One level of a JSON document, its members kept as raw text in their order.
enum Shape<'a> {
    Object(Vec<(String, &'a RawValue)>),
    Array(Vec<&'a RawValue>),
    Scalar,
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, &'de RawValue>()? {
            members.push((key, value));
        }
        Ok(Shape::Object(members))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            items.push(item);
        }
        Ok(Shape::Array(items))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Shape::Scalar)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Shape::Scalar)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Shape::Scalar)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Shape::Scalar)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Shape::Scalar)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Shape::Scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(paths: &[&str]) -> IncludeFields {
        IncludeFields::parse(&paths.iter().map(|p| p.to_string()).collect::<Vec<_>>()).expect("valid paths")
    }

    #[test]
    fn the_projection_keeps_the_payloads_order_and_bytes() {
        let payload =
            r#"{"z": 1, "order": {"id": "o1", "total": 150.50, "note": "x"}, "a": [1, 2], "b": null}"#;
        assert_eq!(
            fields(&["a", "order.total", "z"]).project(payload),
            r#"{"z":1,"order":{"total":150.50},"a":[1, 2]}"#
        );
        assert_eq!(
            fields(&["order", "order.id"]).project(payload),
            r#"{"order":{"id": "o1", "total": 150.50, "note": "x"}}"#
        );
        assert_eq!(fields(&["missing", "order.missing"]).project(payload), "{}");
        assert_eq!(fields(&["b"]).project(payload), r#"{"b":null}"#);
    }

    #[test]
    fn a_path_through_an_array_applies_to_each_element() {
        let payload = r#"{"items": [{"sku": "A", "qty": 1}, {"qty": 2}, {"sku": "C"}], "id": 7}"#;
        assert_eq!(
            fields(&["items.sku", "id"]).project(payload),
            r#"{"items":[{"sku":"A"},{"sku":"C"}],"id":7}"#
        );
    }

    #[test]
    fn keys_with_quotes_and_unicode_survive() {
        let payload = r#"{"qu\"ote": {"é": "ü\n"}, "x": 1}"#;
        let projected = fields(&["qu\"ote"]).project(payload);
        assert_eq!(projected, r#"{"qu\"ote":{"é": "ü\n"}}"#);
        serde_json::from_str::<serde_json::Value>(&projected).expect("valid JSON");
    }

    #[test]
    fn the_list_is_checked() {
        assert!(IncludeFields::parse(&[]).is_err());
        let many: Vec<String> = (0..=MAX_INCLUDE_FIELDS).map(|i| format!("k{i}")).collect();
        assert!(IncludeFields::parse(&many).expect_err("too many").contains("at most 50"));
        let bad = IncludeFields::parse(&["ok".into(), "a..b".into()]).expect_err("bad path");
        assert!(bad.starts_with("include_fields[1]"), "{bad}");
        assert_eq!(fields(&["a", "a", "b.c"]).paths(), vec!["a", "b.c"]);
        let stored = fields(&["a", "b.c"]).to_stored();
        assert_eq!(IncludeFields::from_stored(Some(&stored)), Some(fields(&["a", "b.c"])));
        assert_eq!(IncludeFields::from_stored(None), None);
    }
}
