//! The delivery-control part of the webhook forms (new and edit): ordering, rate limit,
//! payload conditions and the fields sent, as plain inputs that post before the WebAssembly
//! has loaded; the webhook page's facts about them; and, on the server, the form's text read
//! into the services' fields (the services check them and name the field at fault).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::server::WebhookRow;
use crate::error::AppError;

/// The form inputs' names, which are also the fields an error names.
const FIELDS: [&str; 4] = ["ordering", "rate_limit", "conditions", "include_fields"];

/// Whether the error belongs to one of these inputs (shown beside it, not again at the foot
/// of the form).
pub(crate) fn is_control_field(error: &AppError) -> bool {
    FIELDS.iter().any(|f| error.for_field(f).is_some())
}

/// The four inputs as the form posts them, under `control[…]`: text as typed; the
/// checkbox is present only when checked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlForm {
    #[serde(default)]
    pub ordering: Option<String>,
    #[serde(default)]
    pub rate_limit: Option<String>,
    #[serde(default)]
    pub conditions: Option<String>,
    #[serde(default)]
    pub include_fields: Option<String>,
}

/// What the form shows first: a new webhook's defaults, or the webhook's values.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ControlValues {
    pub ordering: bool,
    pub rate_limit: Option<i32>,
    /// Pretty-printed JSON.
    pub conditions: Option<String>,
    pub include_fields: Option<Vec<String>>,
}

impl From<&WebhookRow> for ControlValues {
    fn from(row: &WebhookRow) -> Self {
        ControlValues {
            ordering: row.ordering,
            rate_limit: row.rate_limit,
            conditions: row.conditions.clone(),
            include_fields: row.include_fields.clone(),
        }
    }
}

/// The four inputs; `prefix` keeps the ids apart on a page with two forms.
#[component]
pub(crate) fn DeliveryControlFields(
    prefix: &'static str,
    initial: ControlValues,
    #[prop(into)] error: Signal<Option<AppError>>,
) -> impl IntoView {
    let field_error = move |name: &'static str| error.get().and_then(|e| e.for_field(name));
    let id = |name: &str| format!("{prefix}-{name}");
    view! {
        <fieldset class="delivery-control">
            <legend>"Delivery"</legend>
            <label class="check" for=id("ordering")>
                <input id=id("ordering") type="checkbox" name="control[ordering]" value="on" checked=initial.ordering/>
                " Keep order: deliver the events of one ordering key one at a time, in publish order"
            </label>
            <p class="field-error">{move || field_error("ordering")}</p>
            <label for=id("rate-limit")>"Rate limit " <span class="optional">"(requests per second; empty for none)"</span></label>
            <input
                id=id("rate-limit")
                name="control[rate_limit]"
                type="number"
                min="1"
                max="10000"
                step="1"
                value=initial.rate_limit.map(|n| n.to_string()).unwrap_or_default()
            />
            <p class="field-error">{move || field_error("rate_limit")}</p>
            <label for=id("conditions")>"Payload conditions " <span class="optional">"(JSON; empty for none)"</span></label>
            <textarea
                id=id("conditions")
                name="control[conditions]"
                rows="5"
                spellcheck="false"
                class="conditions-input"
                placeholder=r#"{"all": [{"path": "order.total", "gt": 100}]}"#
                // The property for a form made in the browser, the text for the server's page.
                prop:value=initial.conditions.clone().unwrap_or_default()
            >
                {initial.conditions.clone().unwrap_or_default()}
            </textarea>
            <p class="hint">
                "Only events whose payload meets these conditions are delivered. Write "
                <code>"{\"all\": [...]}"</code>", " <code>"{\"any\": [...]}"</code>" or a test such as "
                <code>"{\"path\": \"order.total\", \"gt\": 100}"</code>
                "; tests: equals, one_of, exists, contains, gt, gte, lt, lte."
            </p>
            <p class="field-error">{move || field_error("conditions")}</p>
            <label for=id("include-fields")>"Fields sent " <span class="optional">"(comma-separated paths; empty for the whole payload)"</span></label>
            <input
                id=id("include-fields")
                name="control[include_fields]"
                type="text"
                placeholder="order.id, order.total, customer.email"
                value=initial.include_fields.map(|f| f.join(", ")).unwrap_or_default()
            />
            <p class="field-error">{move || field_error("include_fields")}</p>
        </fieldset>
    }
}

/// The facts the webhook page lists about delivery control (inside its `<dl>`).
#[component]
pub(crate) fn ControlFacts(row: WebhookRow) -> impl IntoView {
    let ordering = if row.ordering { "One at a time per ordering key" } else { "Off" };
    let rate = row.rate_limit.map(|n| format!("{n} per second")).unwrap_or_else(|| "None".into());
    let fields = row.include_fields.map(|f| f.join(", ")).unwrap_or_else(|| "The whole payload".into());
    view! {
        <dt>"Order"</dt><dd id="fact-ordering">{ordering}</dd>
        <dt>"Rate limit"</dt><dd id="fact-rate-limit">{rate}</dd>
        <dt>"Conditions"</dt>
        <dd id="fact-conditions">
            {match row.conditions {
                Some(c) => view! { <pre class="conditions">{c}</pre> }.into_any(),
                None => "None: every event of its types".into_any(),
            }}
        </dd>
        <dt>"Fields sent"</dt><dd id="fact-include-fields">{fields}</dd>
    }
}

#[cfg(feature = "ssr")]
pub(crate) use ssr::control_from_form;

#[cfg(feature = "ssr")]
mod ssr {
    use serde_json::Value;

    use super::ControlForm;
    use crate::error::AppError;

    fn invalid(field: &str, message: impl Into<String>) -> AppError {
        AppError::Invalid { field: Some(field.to_string()), message: message.into() }
    }

    /// The form's four inputs as the services take them. A form that has them sets all four
    /// (an unchecked box is "off", an empty input "none"); a caller without them (no
    /// `control[…]` at all) changes none.
    pub(crate) fn control_from_form(
        form: Option<ControlForm>,
    ) -> Result<hookline_core::DeliveryControl, AppError> {
        let Some(ControlForm { ordering, rate_limit, conditions, include_fields }) = form else {
            return Ok(hookline_core::DeliveryControl::default());
        };
        let rate_limit = match rate_limit.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Value::Null,
            Some(text) => match text.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => {
                    return Err(invalid(
                        "rate_limit",
                        format!(
                            "The rate limit is a whole number of requests per second, 1 to {}, or empty for none.",
                            hookline_core::MAX_RATE_LIMIT
                        ),
                    ));
                }
            },
        };
        let conditions = match conditions.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Value::Null,
            Some(text) => serde_json::from_str(text)
                .map_err(|e| invalid("conditions", format!("The conditions are not valid JSON: {e}.")))?,
        };
        let include_fields = match include_fields.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Value::Null,
            Some(text) => Value::Array(
                text.split(',').map(str::trim).filter(|p| !p.is_empty()).map(Value::from).collect(),
            ),
        };
        Ok(hookline_core::DeliveryControl {
            ordering: Some(Value::Bool(ordering.is_some_and(|v| !v.is_empty() && v != "off"))),
            rate_limit: Some(rate_limit),
            conditions: Some(conditions),
            include_fields: Some(include_fields),
        })
    }
}
