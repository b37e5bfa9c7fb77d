//! "Why didn't it arrive?": for one event, what happened with each webhook of its tenant
//! (not subscribed, filtered out by a condition, off, paused by the receiver, behind a blocked
//! ordering key, queued, delivered, failed), in a sentence with its moment; and an ordering
//! key's timeline, its events in publish order (the tenant's ordering counter) with their
//! deliveries.
//!
//! Every answer reads a bounded number of rows through indexes (docs/explain.md): the event,
//! a page of the tenant's webhooks, the event's deliveries to them, and for an ordered
//! delivery still waiting one probe of the ordered-deliveries index. The rules are publish's
//! own ([`crate::events`]): an event goes to the webhooks subscribed to its type, for an
//! application's store-level webhook only on the product lines it is installed for, whose
//! conditions its payload passes; a webhook that is off gets a skipped delivery.

use std::collections::HashMap;

use sea_orm::EntityTrait;

use crate::entities::{delivery, event, installation, webhook};
use crate::error::{Error, Result};
use crate::store::explain::{KeyEventsAfter, KeyHead};
use crate::{OPERATIONAL_PREFIX, Services, now_ms};
use hookline_domain::conditions::Conditions;
use hookline_domain::{DeliveryStatus, Page, PageRequest, Scope, Tenant, TenantType, human_time};

/// The longest ordering key a publisher may give, in characters.
pub const MAX_ORDERING_KEY: usize = 255;
/// Most webhooks of an application on one store read for the timeline: far above the most a
/// tenant may have (`HOOKLINE_MAX_WEBHOOKS_PER_TENANT`).
const OWN_WEBHOOKS_READ: u64 = 10_000;

// What happened with one webhook for one event: a word of the vocabulary (the dashboard
// shows it too), named here as it always was.
pub use hookline_domain::Outcome;

/// One webhook's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookOutcome {
    pub webhook_id: String,
    pub url: String,
    pub description: String,
    pub outcome: Outcome,
    /// The why, in a sentence.
    pub detail: String,
    /// The outcome's moment (unix ms): delivered or failed at, queued or paused until, off
    /// since; `None` where there is none.
    pub at: Option<i64>,
    /// The event's delivery to this webhook, when it has one.
    pub delivery_id: Option<String>,
    /// For `blocked_key`: the event whose delivery holds the key.
    pub blocking_event_id: Option<String>,
}

/// An event explained: the event and a page of its tenant's webhooks, by id.
#[derive(Clone, Debug)]
pub struct Explanation {
    pub event: event::Model,
    pub webhooks: Page<WebhookOutcome>,
}

/// One event of an ordering key's timeline, with the deliveries the caller sees.
#[derive(Clone, Debug)]
pub struct KeyTimelineEvent {
    pub id: String,
    pub event_type: String,
    pub sequence: i64,
    pub received_at: i64,
    pub deliveries: Vec<delivery::Model>,
}

/// What the webhooks without a delivery are checked against, read once per explanation and
/// only when needed.
#[derive(Default)]
struct Lazy {
    /// The payload as JSON (`None` inside once found unreadable or pruned).
    payload: Option<Option<serde_json::Value>>,
    /// The event type's product group (`None` inside when the type left the catalog).
    group: Option<Option<String>>,
    /// An application's product lines on the event's store (`None` when not installed).
    lines: HashMap<String, Option<Vec<String>>>,
}

impl Services {
    /// Why the event did or did not reach each webhook of its tenant that the caller sees.
    /// The event must be one the caller sees, as `GET /events/{id}` has it: its tenant's own
    /// keys, an admin, or an application installed on its store that has a delivery of it
    /// (which then sees only the webhooks it made); else it is not found.
    pub async fn explain(&self, scope: &Scope, event_id: &str, page: &PageRequest) -> Result<Explanation> {
        let ev = event::Entity::find_by_id(event_id).one(&self.db).await?.ok_or(Error::NotFound("event"))?;
        let tenant = Tenant { kind: ev.tenant_type, id: ev.tenant_id.clone() };
        let store = self.store();
        let made_by = if scope.allows(&tenant) {
            None
        } else {
            match scope {
                Scope::Application(app)
                    if tenant.kind == TenantType::Store
                        && self.is_installed(app, &tenant.id).await?
                        && store.event_reaches_application(&ev.id, app).await? =>
                {
                    Some(app.clone())
                }
                _ => return Err(Error::NotFound("event")),
            }
        };
        let limit = page.limit();
        let hooks =
            store.tenant_webhooks(&tenant, made_by.as_deref(), page.cursor.as_deref(), limit + 1).await?;
        let hooks = Page::from_rows(hooks, limit, |w| w.id.clone());
        let mut deliveries: HashMap<String, delivery::Model> =
            store.event_deliveries(&ev.id).await?.into_iter().map(|d| (d.webhook_id.clone(), d)).collect();
        let now = now_ms();
        let mut lazy = Lazy::default();
        let mut items = Vec::with_capacity(hooks.items.len());
        for w in &hooks.items {
            let found = deliveries.remove(&w.id);
            let (outcome, detail, at, blocking) = match &found {
                Some(d) => self.by_delivery(w, d, now).await?,
                None => {
                    let (o, detail, at) = self.without_delivery(&ev, w, &mut lazy).await?;
                    (o, detail, at, None)
                }
            };
            items.push(WebhookOutcome {
                webhook_id: w.id.clone(),
                url: w.url.clone(),
                description: w.description.clone(),
                outcome,
                detail,
                at,
                delivery_id: found.map(|d| d.id),
                blocking_event_id: blocking,
            });
        }
        Ok(Explanation { event: ev, webhooks: Page { items, next_cursor: hooks.next_cursor } })
    }

    /// What a webhook's delivery of the event says.
    async fn by_delivery(
        &self,
        w: &webhook::Model,
        d: &delivery::Model,
        now: i64,
    ) -> Result<(Outcome, String, Option<i64>, Option<String>)> {
        let n = d.attempts;
        let answer = |code: Option<i32>| match code {
            Some(code) => format!("HTTP {code}"),
            None => "no answer: a connection error or a timeout".to_string(),
        };
        Ok(match d.status {
            DeliveryStatus::Succeeded => (
                Outcome::Delivered,
                match d.last_status_code {
                    Some(code) => format!(
                        "Delivered at {}: the endpoint answered HTTP {code} to attempt {n}.",
                        human_time(d.updated_at)
                    ),
                    None => format!("Delivered at {} on attempt {n}.", human_time(d.updated_at)),
                },
                Some(d.updated_at),
                None,
            ),
            DeliveryStatus::Failed => {
                let mut detail = format!(
                    "Failed after {}, the last at {} ({}); the retry schedule is used up. \
                     Resend it from the webhook's delivery log.",
                    attempts(n),
                    human_time(d.updated_at),
                    answer(d.last_status_code)
                );
                if let Some(key) = &d.ordering_key {
                    detail.push_str(&format!(
                        " It holds ordering key {key:?}: the key's later events wait until it is retried or skipped."
                    ));
                }
                (Outcome::Failed, detail, Some(d.updated_at), None)
            }
            DeliveryStatus::Skipped if w.enabled && d.ordering_key.is_some() && n > 0 => (
                Outcome::Skipped,
                format!(
                    "Skipped at {} after {}, so that the later events of ordering key {:?} could go on.",
                    human_time(d.updated_at),
                    attempts(n),
                    d.ordering_key.as_deref().unwrap_or_default()
                ),
                Some(d.updated_at),
                None,
            ),
            DeliveryStatus::Skipped if w.enabled => (
                Outcome::WebhookOff,
                format!(
                    "The webhook was off, so the delivery was skipped at {}. It has been turned on \
                     since: replay what it skipped from the webhook page.",
                    human_time(d.updated_at)
                ),
                Some(d.updated_at),
                None,
            ),
            DeliveryStatus::Skipped => {
                let (detail, at) = off(w, "so the delivery was skipped");
                (Outcome::WebhookOff, detail, at.or(Some(d.updated_at)), None)
            }
            DeliveryStatus::Pending | DeliveryStatus::Delivering if !w.enabled => {
                let (detail, at) = off(w, "so the queued delivery will be skipped");
                (Outcome::WebhookOff, detail, at, None)
            }
            DeliveryStatus::Delivering => (
                Outcome::Queued,
                format!("Being sent now: attempt {} started at {}.", n + 1, human_time(d.updated_at)),
                Some(d.updated_at),
                None,
            ),
            DeliveryStatus::Pending => {
                if let (Some(key), Some(seq)) = (&d.ordering_key, d.ordering_seq)
                    && let Some(mut head) = self.store().key_head(&w.id, key, seq).await?
                {
                    head.next_attempt_at =
                        crate::webhooks::shown_next_attempt(head.status, head.next_attempt_at, Some(w));
                    let (detail, at) = blocked(key, &head);
                    return Ok((Outcome::BlockedKey, detail, at, Some(head.event_id)));
                }
                let due = d.next_attempt_at.unwrap_or(now);
                if let Some(until) = w.paused_until
                    && until > now
                    && crate::store::queue::held_by_pause(w.pause_reason, until, due)
                {
                    let detail = match w.pause_reason {
                        Some(reason) => reason.sentence(until),
                        None => format!("Deliveries to this webhook are paused until {}.", human_time(until)),
                    };
                    return Ok((Outcome::Paused, detail, Some(until), None));
                }
                let detail = if n == 0 {
                    format!("Queued: the first attempt is due at {}.", human_time(due))
                } else {
                    format!(
                        "Queued: attempt {} is due at {}, after {} (last: {}).",
                        n + 1,
                        human_time(due),
                        failed_attempts(n),
                        answer(d.last_status_code)
                    )
                };
                (Outcome::Queued, detail, Some(due), None)
            }
        })
    }

    /// Why a webhook has no delivery of the event: publish's rules, in its order.
    async fn without_delivery(
        &self,
        ev: &event::Model,
        w: &webhook::Model,
        lazy: &mut Lazy,
    ) -> Result<(Outcome, String, Option<i64>)> {
        if w.created_at > ev.received_at {
            return Ok((
                Outcome::NotSubscribed,
                format!(
                    "The webhook was created at {}, after the event was published.",
                    human_time(w.created_at)
                ),
                Some(w.created_at),
            ));
        }
        if let Some(types) = w.event_filter()
            && !types.iter().any(|t| t == &ev.event_type)
        {
            let named = if types.len() <= 5 {
                types.join(", ")
            } else {
                format!("{}, {} and {} more", types[0], types[1], types.len() - 2)
            };
            return Ok((
                Outcome::NotSubscribed,
                format!("It does not subscribe to {}: it receives {named}.", ev.event_type),
                None,
            ));
        }
        if let (Some(app), TenantType::Store) = (&w.application_id, ev.tenant_type) {
            let group = match &lazy.group {
                Some(g) => g.clone(),
                None => {
                    let g = self.catalog_entry(&ev.event_type).await?.map(|k| k.product_group);
                    lazy.group = Some(g.clone());
                    g
                }
            };
            if !lazy.lines.contains_key(app) {
                let found = installation::Entity::find_by_id((app.clone(), ev.tenant_id.clone()))
                    .one(&self.db)
                    .await?
                    .map(|i| serde_json::from_str::<Vec<String>>(&i.product_lines).unwrap_or_default());
                lazy.lines.insert(app.clone(), found);
            }
            if let Some(group) = group.filter(|g| g != "Webhooks") {
                match lazy.lines.get(app).cloned().flatten() {
                    None => {
                        return Ok((
                            Outcome::NotSubscribed,
                            format!("Application {app}, which made it, is not installed on this store."),
                            None,
                        ));
                    }
                    Some(lines) if !lines.iter().any(|l| l.eq_ignore_ascii_case(&group)) => {
                        let on =
                            if lines.is_empty() { "no product line".to_string() } else { lines.join(", ") };
                        return Ok((
                            Outcome::NotSubscribed,
                            format!(
                                "Application {app}, which made it, is installed on this store for {on}, \
                                 not for {group} ({} is a {group} event).",
                                ev.event_type
                            ),
                            None,
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        // Unreadable conditions deliver everything (`Conditions::from_stored`).
        if let Some(conditions) = Conditions::from_stored(w.conditions.as_deref()) {
            if lazy.payload.is_none() {
                let readable = ev
                    .payload_pruned_at
                    .is_none()
                    .then(|| serde_json::from_str::<serde_json::Value>(&ev.payload).ok())
                    .flatten();
                lazy.payload = Some(readable);
            }
            match lazy.payload.as_ref().and_then(Option::as_ref) {
                Some(payload) => {
                    if let Some(failing) = conditions.failing(payload) {
                        return Ok((
                            Outcome::FilteredOut,
                            format!("Filtered out by its condition {failing}."),
                            None,
                        ));
                    }
                }
                None => {
                    return Ok((
                        Outcome::FilteredOut,
                        "Filtered out by its conditions (the payload was removed after the payload \
                         retention, so which condition cannot be shown)."
                            .to_string(),
                        None,
                    ));
                }
            }
        }
        if ev.event_type.starts_with(OPERATIONAL_PREFIX) {
            return Ok((
                Outcome::NotSubscribed,
                format!(
                    "Hookline sends {} only to the webhooks that may see the webhook it is about.",
                    ev.event_type
                ),
                None,
            ));
        }
        Ok((
            Outcome::NotSubscribed,
            format!(
                "It did not receive {} when the event was published: its event types or conditions \
                 were changed since.",
                ev.event_type
            ),
            None,
        ))
    }

    /// An ordering key's events in publish order, with their deliveries, within the tenant.
    /// An application installed on the store sees only its own webhooks' deliveries, and
    /// only the events that have one.
    pub async fn ordering_key_timeline(
        &self,
        scope: &Scope,
        tenant: &Tenant,
        key: &str,
        page: &PageRequest,
    ) -> Result<Page<KeyTimelineEvent>> {
        if key.is_empty() || key.chars().count() > MAX_ORDERING_KEY {
            return Err(Error::invalid(
                "ordering_key",
                format!("An ordering key has 1 to {MAX_ORDERING_KEY} characters."),
            ));
        }
        let made_by = self.reach(scope, tenant).await?.application();
        let after = match page.cursor.as_deref() {
            None => None,
            Some(cursor) => Some(
                timeline_cursor(cursor)
                    .ok_or_else(|| Error::invalid("cursor", "This cursor is not one this list answered."))?,
            ),
        };
        let limit = page.limit();
        let store = self.store();
        let rows = store.key_events(tenant, key, after.as_ref(), limit + 1).await?;
        let rows = Page::from_rows(rows, limit, |e| match e.place() {
            KeyEventsAfter::Numbered { ordering_seq, id } => format!("n:{ordering_seq}:{id}"),
            KeyEventsAfter::Unnumbered { received_at, id } => format!("t:{received_at}:{id}"),
        });
        let ids: Vec<String> = rows.items.iter().map(|e| e.id.clone()).collect();
        // An installed application's own webhooks on the store (a bounded few).
        let mine: Option<std::collections::HashSet<String>> = match &made_by {
            Some(app) => Some(
                store
                    .tenant_webhooks(tenant, Some(app), None, OWN_WEBHOOKS_READ)
                    .await?
                    .into_iter()
                    .map(|w| w.id)
                    .collect(),
            ),
            None => None,
        };
        let mut by_event: HashMap<String, Vec<delivery::Model>> = HashMap::new();
        for d in store.deliveries_of_events(&ids).await? {
            if mine.as_ref().is_none_or(|m| m.contains(&d.webhook_id)) {
                by_event.entry(d.event_id.clone()).or_default().push(d);
            }
        }
        let items = rows
            .items
            .into_iter()
            .filter_map(|e| {
                let deliveries = by_event.remove(&e.id).unwrap_or_default();
                if made_by.is_some() && deliveries.is_empty() {
                    return None;
                }
                Some(KeyTimelineEvent {
                    id: e.id,
                    event_type: e.event_type,
                    sequence: e.sequence,
                    received_at: e.received_at,
                    deliveries,
                })
            })
            .collect();
        Ok(Page { items, next_cursor: rows.next_cursor })
    }
}

/// A timeline's cursor: `n:{ordering number}:{id}` after a numbered event, `t:{received
/// at}:{id}` after one without a number.
fn timeline_cursor(cursor: &str) -> Option<KeyEventsAfter> {
    let (kind, rest) = cursor.split_once(':')?;
    let (n, id) = rest.split_once(':')?;
    let (n, id) = (n.parse::<i64>().ok()?, id.to_string());
    if id.is_empty() {
        return None;
    }
    match kind {
        "n" => Some(KeyEventsAfter::Numbered { ordering_seq: n, id }),
        "t" => Some(KeyEventsAfter::Unnumbered { received_at: n, id }),
        _ => None,
    }
}

/// "1 attempt", "3 attempts".
fn attempts(n: i32) -> String {
    if n == 1 { "1 attempt".to_string() } else { format!("{n} attempts") }
}

fn failed_attempts(n: i32) -> String {
    if n == 1 { "1 failed attempt".to_string() } else { format!("{n} failed attempts") }
}

/// A webhook that is off, in a sentence beginning "The webhook is off, {what}.", with since
/// when and why; and since when.
fn off(w: &webhook::Model, what: &str) -> (String, Option<i64>) {
    let why = w.health().sentence();
    (format!("The webhook is off, {what}. {why}"), w.disabled_at)
}

/// The key's head in a sentence, and when it moves next.
fn blocked(key: &str, head: &KeyHead) -> (String, Option<i64>) {
    let event = format!("event {} (sequence {})", head.event_id, head.ordering_seq);
    match head.status {
        DeliveryStatus::Failed => (
            format!(
                "Behind ordering key {key:?}: {event} failed after {} and holds the key until it is \
                 retried or skipped on the webhook page.",
                attempts(head.attempts)
            ),
            None,
        ),
        DeliveryStatus::Delivering => {
            (format!("Behind ordering key {key:?}: {event} is being sent now; this one follows it."), None)
        }
        _ => {
            let last = match head.last_status_code {
                Some(code) => format!(" (last answer HTTP {code})"),
                None if head.attempts > 0 => " (last attempt got no answer)".to_string(),
                None => String::new(),
            };
            let next = head.next_attempt_at.map(|t| format!(" at {}", human_time(t))).unwrap_or_default();
            (
                format!(
                    "Behind ordering key {key:?}: {event} is not delivered yet{last}; its attempt {} is due{next}, \
                     and this one follows it.",
                    head.attempts + 1
                ),
                head.next_attempt_at,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcomes_are_named_as_the_spec_names_them() {
        let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(
            names,
            [
                "not_subscribed",
                "filtered_out",
                "webhook_off",
                "paused",
                "blocked_key",
                "queued",
                "delivered",
                "failed",
                "skipped"
            ]
        );
        for o in Outcome::ALL {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
            assert_eq!(o.to_string(), o.as_str());
        }
    }

    #[test]
    fn a_blocked_key_names_the_key_and_the_event_holding_it() {
        let head = KeyHead {
            delivery_id: "d1".into(),
            event_id: "ev-1".into(),
            status: DeliveryStatus::Failed,
            attempts: 11,
            next_attempt_at: None,
            ordering_seq: 4,
            last_status_code: Some(500),
        };
        let (detail, at) = blocked("order-7", &head);
        assert!(
            detail.contains("\"order-7\"") && detail.contains("ev-1") && detail.contains("11 attempts"),
            "{detail}"
        );
        assert_eq!(at, None);
        let retrying =
            KeyHead { status: DeliveryStatus::Pending, attempts: 2, next_attempt_at: Some(1_000), ..head };
        let (detail, at) = blocked("order-7", &retrying);
        assert!(detail.contains("attempt 3") && detail.contains("HTTP 500"), "{detail}");
        assert_eq!(at, Some(1_000));
    }
}
