//! The event type catalog: the types the platform publishes, with their description, product
//! group, tenant level, example payload and JSON Schema. Seeded by the migrations; admins may
//! add to it, set a type's schema and have publishing check payloads against it.
//!
//! Every type has a schema: the one an admin set, else one inferred from its example payload
//! (`hookline_domain::infer_schema`). Checking payloads is off by default, per type; when on,
//! the compiled validator is kept beside the cached catalog entry, so a publish costs one
//! validation and no query more.

use std::sync::Arc;

use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Deserialize;
use serde_json::Value;

use crate::entities::event_type;
use crate::error::{Error, Result};
use crate::{OPERATIONAL_PREFIX, Services, now_ms};
use hookline_domain::{EventTenantType, Page, PageRequest, Scope, infer_schema, readable_path};

/// The largest schema an admin may set, as JSON text.
pub const MAX_SCHEMA: usize = 64 * 1024;
/// The longest 422 message about a payload: a type error quotes the value it refused.
const MAX_PROBLEM: usize = 300;

/// Where an event type's schema comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaSource {
    /// An admin set it.
    Custom,
    /// Inferred from the type's example payload.
    Inferred,
}

impl SchemaSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaSource::Custom => "custom",
            SchemaSource::Inferred => "inferred",
        }
    }
}

/// The type's example payload as JSON (`{}` for a hand-edited row that does not parse).
pub fn example_payload(t: &event_type::Model) -> Value {
    serde_json::from_str(&t.example_payload).unwrap_or_else(|_| Value::Object(Default::default()))
}

/// The type's JSON Schema: the one an admin set, else one inferred from its example.
pub fn event_schema(t: &event_type::Model) -> (Value, SchemaSource) {
    let custom = t.payload_schema.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok());
    match custom.filter(Value::is_object) {
        Some(schema) => (schema, SchemaSource::Custom),
        None => (infer_schema(&example_payload(t)), SchemaSource::Inferred),
    }
}

/// Whether the type matches a catalog search: every word of `query` appears, in any case,
/// in its name, description or product group.
pub fn matches_search(t: &event_type::Model, query: &str) -> bool {
    let haystack = format!("{} {} {}", t.name, t.description, t.product_group).to_lowercase();
    query.split_whitespace().all(|word| haystack.contains(&word.to_lowercase()))
}

/// What an admin changes of an event type's schema; a field left out stays as it is.
#[derive(Clone, Debug, Default)]
pub struct SchemaChange {
    /// `Some(None)` removes the schema an admin set: the catalog infers one again.
    pub schema: Option<Option<Value>>,
    pub validate_payloads: Option<bool>,
}

/// Schemas never fetch what they reference: an admin's `$ref` to a URL or a file would make
/// the server a client of whatever it names.
struct NoRetrieval;

impl jsonschema::Retrieve for NoRetrieval {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> std::result::Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("Hookline does not fetch referenced schemas ({uri}); put the definition in `$defs`.")
            .into())
    }
}

fn compile(schema: &Value) -> std::result::Result<jsonschema::Validator, String> {
    jsonschema::options().with_retriever(NoRetrieval).build(schema).map_err(|e| e.to_string())
}

/// The first thing `validator` finds wrong with `payload`, as `payload.path: problem`.
fn first_problem(validator: &jsonschema::Validator, payload: &Value) -> Option<String> {
    let mut errors = validator.iter_errors(payload);
    let first = errors.next()?;
    let mut problem = first.to_string();
    if problem.chars().count() > MAX_PROBLEM {
        problem = problem.chars().take(MAX_PROBLEM).collect::<String>() + "…";
    }
    let path = readable_path("payload", first.instance_path().as_str(), payload);
    let more = errors.take(100).count();
    Some(match more {
        0 => format!("{path}: {problem}"),
        1 => format!("{path}: {problem} (and 1 more problem)"),
        n => format!("{path}: {problem} (and {n} more problems)"),
    })
}

/// Checks a schema an admin sets and answers it as stored: a JSON object under
/// [`MAX_SCHEMA`] that compiles, and that the type's own example payload satisfies (the
/// catalog shows both, and test sends carry the example).
fn checked_schema(schema: &Value, kind: &event_type::Model) -> Result<String> {
    if !schema.is_object() {
        return Err(Error::unprocessable(
            "schema",
            "A schema is a JSON object, such as {\"type\": \"object\"}.",
        ));
    }
    let text = schema.to_string();
    if text.len() > MAX_SCHEMA {
        return Err(Error::unprocessable(
            "schema",
            format!("A schema has at most {} KiB of JSON.", MAX_SCHEMA / 1024),
        ));
    }
    let validator = compile(schema)
        .map_err(|e| Error::unprocessable("schema", format!("This is not a valid JSON Schema: {e}")))?;
    if let Some(problem) = first_problem(&validator, &example_payload(kind)) {
        return Err(Error::unprocessable(
            "schema",
            format!("The example payload of {} does not match this schema: {problem}", kind.name),
        ));
    }
    Ok(text)
}

/// A new entry of the event type catalog.
#[derive(Clone, Debug, Deserialize)]
pub struct NewEventType {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub product_group: String,
    pub tenant_type: String,
    /// What the sequence number counts; defaults to the type's name.
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub example_payload: Option<serde_json::Value>,
}

impl Services {
    /// Adds an event type to the catalog (admins only).
    pub async fn create_event_type(&self, scope: &Scope, new: NewEventType) -> Result<event_type::Model> {
        if !scope.is_admin() {
            return Err(Error::Forbidden("Only an admin key adds event types.".into()));
        }
        let name = new.name.trim();
        let valid_name = !name.is_empty()
            && name.len() <= 128
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid_name {
            return Err(Error::invalid(
                "name",
                "An event type name is 1 to 128 letters, digits, '-', '_' or '.'.",
            ));
        }
        if name.starts_with(crate::OPERATIONAL_PREFIX) {
            return Err(Error::invalid(
                "name",
                format!(
                    "Names starting with {:?} are kept for the events Hookline emits itself.",
                    crate::OPERATIONAL_PREFIX
                ),
            ));
        }
        if new.description.chars().count() > 500 {
            return Err(Error::invalid("description", "A description has at most 500 characters."));
        }
        let group = new.product_group.trim();
        if group.is_empty() || group.len() > 64 {
            return Err(Error::invalid("product_group", "A product group is 1 to 64 characters."));
        }
        Error::refuse_hidden("description", &new.description)?;
        Error::refuse_hidden("product_group", group)?;
        let Some(tenant_type) = EventTenantType::parse(&new.tenant_type) else {
            return Err(Error::invalid(
                "tenant_type",
                "tenant_type is \"store\", \"application\" or \"any\".",
            ));
        };
        let resource = new.resource.as_deref().map(str::trim).filter(|r| !r.is_empty()).unwrap_or(name);
        let example = match &new.example_payload {
            None => "{}".to_string(),
            Some(v) => v.to_string(),
        };
        if event_type::Entity::find_by_id(name).one(&self.db).await?.is_some() {
            return Err(Error::Conflict(format!("The event type {name} already exists.")));
        }
        Ok(event_type::ActiveModel {
            name: Set(name.to_string()),
            description: Set(new.description.trim().to_string()),
            product_group: Set(group.to_string()),
            tenant_type: Set(tenant_type),
            resource: Set(resource.to_string()),
            example_payload: Set(example),
            created_at: Set(now_ms()),
            payload_schema: Set(None),
            validate_payloads: Set(false),
        }
        .insert(&self.db)
        .await?)
    }

    /// One entry of the catalog, read fresh (not found: 404).
    pub async fn event_type(&self, name: &str) -> Result<event_type::Model> {
        event_type::Entity::find_by_id(name).one(&self.db).await?.ok_or(Error::NotFound("event type"))
    }

    /// The catalog narrowed by a search (see [`matches_search`]), by product group and name.
    pub async fn search_event_types(&self, query: &str) -> Result<Vec<event_type::Model>> {
        let mut types = self.event_types().await?;
        types.retain(|t| matches_search(t, query));
        Ok(types)
    }

    /// Sets or removes a type's schema, and turns checking payloads against it on or off
    /// (admins only). Publishing in this process uses the change at once; other processes
    /// within the catalog cache's lifetime.
    pub async fn change_event_schema(
        &self,
        scope: &Scope,
        name: &str,
        change: SchemaChange,
    ) -> Result<event_type::Model> {
        if !scope.is_admin() {
            return Err(Error::Forbidden("Only an admin key changes an event type's schema.".into()));
        }
        let kind = self.event_type(name).await?;
        if change.schema.is_none() && change.validate_payloads.is_none() {
            return Ok(kind);
        }
        let mut active: event_type::ActiveModel = kind.clone().into();
        if let Some(schema) = &change.schema {
            active.payload_schema = Set(schema.as_ref().map(|s| checked_schema(s, &kind)).transpose()?);
        }
        if let Some(on) = change.validate_payloads {
            if on && kind.name.starts_with(OPERATIONAL_PREFIX) {
                return Err(Error::unprocessable(
                    "validate_payloads",
                    "Hookline emits this event type itself; its payloads are not checked.",
                ));
            }
            active.validate_payloads = Set(on);
        }
        let changed = active.update(&self.db).await?;
        self.cache.forget_event_type(name);
        Ok(changed)
    }

    /// Checks a payload against its type's schema when the type asks for it; a type that
    /// does not costs nothing here. The validator is compiled once per version of the entry.
    pub(crate) fn check_payload(&self, kind: &event_type::Model, payload: &str) -> Result<()> {
        if !kind.validate_payloads {
            return Ok(());
        }
        let validator = match self.cache.validator(kind) {
            Some(v) => v,
            None => {
                let compiled = compile(&event_schema(kind).0).map_err(|e| {
                    Error::unprocessable(
                        "event_type",
                        format!(
                            "The schema of {} cannot be used ({e}); an admin must correct it.",
                            kind.name
                        ),
                    )
                })?;
                let compiled = Arc::new(compiled);
                self.cache.remember_validator(kind, &compiled);
                compiled
            }
        };
        let payload: Value = serde_json::from_str(payload)
            .map_err(|_| Error::invalid("payload", "The payload must be valid JSON."))?;
        match first_problem(&validator, &payload) {
            Some(problem) => Err(Error::unprocessable("payload", problem)),
            None => Ok(()),
        }
    }

    /// One entry of the catalog.
    pub(crate) async fn catalog_entry(&self, name: &str) -> Result<Option<event_type::Model>> {
        if let Some(found) = self.cache.event_type(name) {
            return Ok(Some(found));
        }
        let found = event_type::Entity::find_by_id(name).one(&self.db).await?;
        if let Some(found) = &found {
            self.cache.remember_event_type(found);
        }
        Ok(found)
    }

    /// The catalog by name, a page at a time.
    pub async fn event_types_page(&self, page: &PageRequest) -> Result<Page<event_type::Model>> {
        let mut query =
            event_type::Entity::find().order_by_asc(event_type::Column::Name).limit(page.limit() + 1);
        if let Some(cursor) = &page.cursor {
            query = query.filter(event_type::Column::Name.gt(cursor));
        }
        Ok(Page::from_rows(query.all(&self.db).await?, page.limit(), |t| t.name.clone()))
    }

    pub async fn event_types(&self) -> Result<Vec<event_type::Model>> {
        Ok(event_type::Entity::find()
            .order_by_asc(event_type::Column::ProductGroup)
            .order_by_asc(event_type::Column::Name)
            .all(&self.db)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;

    const SMS_SENT: &str = "communication.sms.sent.v1";

    async fn services() -> (Services, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("hookline-catalog-{}.db", crate::new_id()));
        let db = crate::connect(&format!("sqlite://{}?mode=rwc", path.display())).await.expect("a database");
        crate::migrate(&db).await.expect("migrated");
        (Services::new(db, Settings::default()), path)
    }

    #[tokio::test]
    async fn a_validator_is_compiled_once_per_version_of_the_entry_and_only_when_asked() {
        let (services, path) = services().await;
        let kind = services.catalog_entry(SMS_SENT).await.unwrap().expect("a seed type");
        let mut bad = example_payload(&kind);
        bad["customer"]["email"] = 42.into();
        let bad = &bad.to_string();
        // Off: nothing is compiled, nothing is checked.
        assert!(services.check_payload(&kind, bad).is_ok());
        assert!(services.cache.validator(&kind).is_none());

        let on = SchemaChange { schema: None, validate_payloads: Some(true) };
        services.change_event_schema(&Scope::Admin, SMS_SENT, on).await.unwrap();
        let kind = services.catalog_entry(SMS_SENT).await.unwrap().unwrap();
        assert!(kind.validate_payloads, "the change is seen at once in this process");
        let refused = services.check_payload(&kind, bad).unwrap_err();
        assert_eq!(refused.field(), Some("payload"));
        assert!(refused.to_string().starts_with("payload.customer.email: 42 is not of type"), "{refused}");
        let first = services.cache.validator(&kind).expect("kept");
        assert!(services.check_payload(&kind, &example_payload(&kind).to_string()).is_ok());
        let again = services.cache.validator(&kind).expect("kept");
        assert!(Arc::ptr_eq(&first, &again), "compiled once");

        // A new schema drops the old validator with the entry.
        let schema = serde_json::json!({"type": "object", "required": ["customer"]});
        let change = SchemaChange { schema: Some(Some(schema)), validate_payloads: None };
        services.change_event_schema(&Scope::Admin, SMS_SENT, change).await.unwrap();
        assert!(services.cache.validator(&kind).is_none());
        let kind = services.catalog_entry(SMS_SENT).await.unwrap().unwrap();
        assert!(services.check_payload(&kind, bad).is_ok(), "the new schema only asks for a customer");
        assert!(services.check_payload(&kind, "{}").is_err());
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_search_matches_every_word_in_name_description_or_group() {
        let t = event_type::Model {
            name: "communication.sms.unsubscribed.v1".into(),
            description: "A customer unsubscribes from SMS marketing.".into(),
            product_group: "SMS".into(),
            tenant_type: EventTenantType::Store,
            resource: "sms".into(),
            example_payload: "{}".into(),
            created_at: 0,
            payload_schema: None,
            validate_payloads: false,
        };
        assert!(matches_search(&t, ""));
        assert!(matches_search(&t, "sms UNSUBSCRIBES"));
        assert!(matches_search(&t, "  marketing  customer "));
        assert!(!matches_search(&t, "sms clicked"));
    }
}
