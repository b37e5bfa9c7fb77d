//! `hookline listen`'s temporary listeners: who may open one (the tenant rules of a webhook
//! made with the same key), how many a tenant may have, which events each receives, and
//! their feed. Listeners live in the database, so the process holding a stream need not be
//! the one that published: the feed reads the tenant's events after the point where the
//! listener started, woken at once by a publish in this process and by a short poll
//! otherwise. A listener whose process died disappears once its heartbeat is old.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use sea_orm::EntityTrait;
use tokio::sync::watch;

use crate::entities::{event, installation, listener};
use crate::error::{Error, Result};
use crate::events::OPERATIONAL_PREFIX;
use crate::store::listeners as sql;
use crate::{Services, new_id, now_ms};
use hookline_domain::{EventFilter, Scope, Tenant};

/// Most listeners one tenant may have connected at once.
pub const MAX_LISTENERS_PER_TENANT: u64 = 5;
/// How often the serving process refreshes a listener's heartbeat.
pub const LISTENER_HEARTBEAT: Duration = Duration::from_secs(15);
/// A listener whose heartbeat is older than this is gone (its process died).
pub const LISTENER_EXPIRY: Duration = Duration::from_secs(60);
/// How often a feed looks for events published by other processes.
const POLL: Duration = Duration::from_secs(1);
/// Events a feed reads at once.
const BATCH: u64 = 100;
/// How far back a feed reads again: on PostgreSQL two writers may commit out of id order, so
/// an event can appear a little after a later one was read.
const LOOKBACK_MS: i64 = 3_000;
/// Most event ids a feed remembers having read (within the lookback).
const SEEN: usize = 2_000;

/// A registered listener and the rules of what it receives.
#[derive(Clone, Debug)]
pub struct Listener {
    pub row: listener::Model,
    filter: EventFilter,
    /// For an application's listener on a store it is installed on: the product lines it is
    /// installed for (as for the webhooks it makes there).
    lines: Option<Vec<String>>,
}

impl Listener {
    pub fn id(&self) -> &str {
        &self.row.id
    }

    pub fn tenant(&self) -> Tenant {
        Tenant { kind: self.row.tenant_type, id: self.row.tenant_id.clone() }
    }

    /// The event types it receives, `None` for all.
    pub fn event_types(&self) -> Option<&[String]> {
        self.filter.types()
    }
}

/// What the dashboard shows of a connected listener.
#[derive(Clone, Debug)]
pub struct ListenerView {
    pub id: String,
    pub since: i64,
    pub event_types: Option<Vec<String>>,
    pub application_id: Option<String>,
}

impl Services {
    /// Registers a listener for the tenant, receiving the given event types (`None`: all),
    /// checked as a new webhook's would be. At most [`MAX_LISTENERS_PER_TENANT`] at once.
    pub async fn open_listener(
        &self,
        scope: &Scope,
        tenant: &Tenant,
        event_types: Option<Vec<String>>,
    ) -> Result<Listener> {
        let reach = self.reach(scope, tenant).await?;
        if !self.tenant_exists(tenant).await? {
            return Err(Error::unprocessable("tenant_id", format!("No tenant {tenant} exists.")));
        }
        let stored = self.check_event_types(tenant, &event_types).await?;
        let lines = match reach.application() {
            None => None,
            Some(app) => {
                let found = installation::Entity::find_by_id((app.clone(), tenant.id.clone()))
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| {
                        Error::Forbidden(format!("Application {app} is not installed on {tenant}."))
                    })?;
                Some(serde_json::from_str::<Vec<String>>(&found.product_lines).unwrap_or_default())
            }
        };
        let now = now_ms();
        let _turn = self.write_turn().await;
        let live = sql::count_live(&self.db, tenant, now - LISTENER_EXPIRY.as_millis() as i64).await?;
        if live >= MAX_LISTENERS_PER_TENANT {
            return Err(Error::TooManyRequests {
                message: format!(
                    "{tenant} has {live} listeners connected, the most it may have at once \
                     ({MAX_LISTENERS_PER_TENANT}); stop one of them (or wait a minute for one \
                     that stopped without closing) and try again."
                ),
                retry_after_secs: LISTENER_EXPIRY.as_secs(),
            });
        }
        let row = listener::Model {
            id: new_id(),
            tenant_type: tenant.kind,
            tenant_id: tenant.id.clone(),
            application_id: reach.application(),
            event_types: stored.clone(),
            created_at: now,
            heartbeat_at: now,
        };
        sql::insert(&self.db, row.clone()).await?;
        Ok(Listener { row, filter: EventFilter::from_stored(stored.as_deref()), lines })
    }

    /// Whether the scope still reaches the listener's tenant (a key's application may have
    /// been uninstalled, a store deleted since it opened).
    pub async fn listener_allowed(&self, scope: &Scope, listener: &Listener) -> Result<bool> {
        let tenant = listener.tenant();
        let reach = match self.reach(scope, &tenant).await {
            Ok(reach) => reach,
            Err(Error::Forbidden(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        Ok(reach.application() == listener.row.application_id && self.tenant_exists(&tenant).await?)
    }

    /// Removes a listener (its stream ended).
    pub async fn close_listener(&self, id: &str) -> Result<()> {
        let _turn = self.write_turn().await;
        sql::remove(&self.db, id).await?;
        Ok(())
    }

    /// The tenant's connected listeners, oldest first. The caller has checked that the
    /// tenant is one its user may see.
    pub async fn tenant_listeners(&self, tenant: &Tenant) -> Result<Vec<ListenerView>> {
        let rows = sql::of_tenant(&self.db, tenant, now_ms() - LISTENER_EXPIRY.as_millis() as i64).await?;
        Ok(rows
            .into_iter()
            .map(|r| ListenerView {
                id: r.id,
                since: r.created_at,
                event_types: EventFilter::from_stored(r.event_types.as_deref()).into_types(),
                application_id: r.application_id,
            })
            .collect())
    }

    /// A past event to send through the listener again: one of its tenant's that it may
    /// receive (whatever its event types), with its payload still kept. Any other is not found.
    pub async fn listener_replay(&self, listener: &Listener, event_id: &str) -> Result<event::Model> {
        let found =
            event::Entity::find_by_id(event_id).one(&self.db).await?.ok_or(Error::NotFound("event"))?;
        let tenant = Tenant { kind: found.tenant_type, id: found.tenant_id.clone() };
        if tenant != listener.tenant() || !self.tenant_rules_admit(listener, &found).await? {
            return Err(Error::NotFound("event"));
        }
        if found.payload_pruned_at.is_some() {
            return Err(Error::unprocessable(
                "replay",
                format!(
                    "Event {event_id} is past the payload retention: its payload is gone, so it cannot be sent again."
                ),
            ));
        }
        Ok(found)
    }

    /// The listener's feed of new events, from now on.
    pub fn listener_feed(&self, listener: &Listener) -> ListenerFeed {
        ListenerFeed {
            services: self.clone(),
            listener: listener.clone(),
            floor: id_floor(listener.row.created_at),
            seen: VecDeque::new(),
            seen_ids: HashSet::new(),
            published: self.published.subscribe(),
            last_heartbeat: tokio::time::Instant::now(),
        }
    }

    /// Wakes this process's listener feeds: events were just written.
    pub(crate) fn events_published(&self) {
        self.published.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Whether a webhook made with the listener's key could receive this event (its type
    /// aside): an application's listener on a store gets its installed product lines only,
    /// and none of Hookline's own events, which may be about another application's webhook.
    async fn tenant_rules_admit(&self, listener: &Listener, ev: &event::Model) -> Result<bool> {
        let Some(lines) = &listener.lines else { return Ok(true) };
        if ev.event_type.starts_with(OPERATIONAL_PREFIX) {
            return Ok(false);
        }
        let Some(kind) = self.catalog_entry(&ev.event_type).await? else { return Ok(false) };
        Ok(lines.iter().any(|l| l.eq_ignore_ascii_case(&kind.product_group)))
    }
}

/// The smallest UUIDv7 of a millisecond: event ids compare as text in time order.
fn id_floor(ms: i64) -> String {
    let ms = ms.max(0) as u64;
    format!("{:08x}-{:04x}-0000-0000-000000000000", (ms >> 16) & 0xffff_ffff, ms & 0xffff)
}

/// The millisecond of a UUIDv7 event id (0 when it is not one).
fn id_ms(id: &str) -> i64 {
    let hex: String = id.chars().filter(|c| *c != '-').take(12).collect();
    i64::from_str_radix(&hex, 16).unwrap_or(0)
}

/// A listener's events as they are published, read from the database.
pub struct ListenerFeed {
    services: Services,
    listener: Listener,
    /// Events with an id above this are read; it trails the newest read by the lookback.
    floor: String,
    /// Ids read within the lookback, oldest first, so none is sent twice.
    seen: VecDeque<String>,
    seen_ids: HashSet<String>,
    published: watch::Receiver<u64>,
    last_heartbeat: tokio::time::Instant,
}

impl ListenerFeed {
    /// The next events the listener receives, oldest first. Waits until there are some, or
    /// until a heartbeat was written (then answers none, so the caller may check its own
    /// conditions). Fails with not found once the listener was removed (it expired).
    pub async fn next(&mut self) -> Result<Vec<event::Model>> {
        loop {
            if self.last_heartbeat.elapsed() >= LISTENER_HEARTBEAT {
                self.last_heartbeat = tokio::time::Instant::now();
                let alive = {
                    let _turn = self.services.write_turn().await;
                    sql::heartbeat(&self.services.db, self.listener.id(), now_ms()).await?
                };
                if !alive {
                    return Err(Error::NotFound("listener"));
                }
                return Ok(Vec::new());
            }
            // Marked seen before reading, so a publish during the read wakes the next wait.
            self.published.borrow_and_update();
            let found = self.read().await?;
            if !found.is_empty() {
                return Ok(found);
            }
            let until_heartbeat = LISTENER_HEARTBEAT.saturating_sub(self.last_heartbeat.elapsed());
            tokio::select! {
                _ = self.published.changed() => {}
                _ = tokio::time::sleep(POLL.min(until_heartbeat)) => {}
            }
        }
    }

    async fn read(&mut self) -> Result<Vec<event::Model>> {
        let tenant = self.listener.tenant();
        let rows =
            sql::events_after(&self.services.db, &tenant, &self.floor, self.listener.filter.types(), BATCH)
                .await?;
        let full = rows.len() as u64 == BATCH;
        let last = rows.last().map(|e| e.id.clone());
        let mut out = Vec::new();
        for ev in rows {
            if !self.seen_ids.insert(ev.id.clone()) {
                continue;
            }
            self.seen.push_back(ev.id.clone());
            if self.services.tenant_rules_admit(&self.listener, &ev).await? {
                out.push(ev);
            }
        }
        // The floor trails the newest id read by the lookback; a full batch of known ids
        // moves it past them, so a burst cannot hold the feed in place.
        if let Some(last) = last {
            let trailing = id_floor(id_ms(&last) - LOOKBACK_MS);
            if full && out.is_empty() {
                self.floor = last;
            } else if trailing > self.floor {
                self.floor = trailing;
            }
        }
        while let Some(oldest) = self.seen.front() {
            if self.seen.len() > SEEN || oldest.as_str() <= self.floor.as_str() {
                if self.seen.len() > SEEN && oldest.as_str() > self.floor.as_str() {
                    self.floor = oldest.clone();
                }
                let gone = self.seen.pop_front().unwrap_or_default();
                self.seen_ids.remove(&gone);
            } else {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_floor_sorts_before_every_id_of_its_millisecond_and_after_earlier_ones() {
        let id = uuid::Uuid::now_v7().to_string();
        let ms = id_ms(&id);
        assert!(ms > 1_700_000_000_000, "{id} -> {ms}");
        assert!(id_floor(ms).as_str() < id.as_str());
        assert!(id_floor(ms + 1).as_str() > id.as_str());
        assert!(id_floor(ms - 1).as_str() < id.as_str());
        assert_eq!(id_ms(&id_floor(ms)), ms);
    }
}
