//! Bulk replays: a merchant (or an admin, for any store) chooses one webhook's settled
//! deliveries by creation time, status and event type, sees the count and a sample first (a
//! dry run), then starts a replay that a background runner ([`Replayer`]) works through in
//! pages. Each page puts its deliveries back in the queue, so they go out through the normal
//! claim: the webhook's rate limit, the receiver's pause and the circuit breaker apply, and
//! each request keeps its `webhook-id` (the event id: it is the same delivery). One replay
//! runs per webhook at a time. The SQL is in [`crate::store::replays`].

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use crate::entities::{delivery, replay};
use crate::error::{Error, Result};
use crate::store::replays::{PageDone, REPLAYABLE, ReplayChoice};
use crate::{DeliveryStatus, Page, PageRequest, Scope, Services, new_id, now_ms};
use hookline_domain::ReplayState;

/// Deliveries one page of a replay queues again, in one transaction.
pub const REPLAY_PAGE: u64 = 500;
/// How long a process holds a replay without writing before another may take it over.
pub const REPLAY_LEASE_MS: i64 = 30_000;
/// Deliveries a dry run shows.
pub const REPLAY_SAMPLE: u64 = 10;

/// What a replay chooses, as the caller wrote it: times in RFC 3339, statuses and event types
/// by name. Everything is optional: all settled deliveries of the webhook.
#[derive(Clone, Debug, Default)]
pub struct ReplayRequest {
    pub from: Option<String>,
    pub to: Option<String>,
    pub statuses: Option<Vec<String>>,
    pub event_types: Option<Vec<String>>,
}

/// A dry run's answer: how many deliveries a replay would queue again, and the first few.
#[derive(Clone, Debug)]
pub struct ReplayPreview {
    pub count: u64,
    pub sample: Vec<delivery::Model>,
}

/// Unix milliseconds of an RFC 3339 time (`2026-12-03T15:30:00Z`, `…+01:00`, with optional
/// fractions of a second); `None` for anything else.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = (s.get(..10)?, s.get(10..)?);
    let day = hookline_domain::parse_date_ms(date)?;
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let num = |t: &str| -> Option<i64> { t.bytes().all(|b| b.is_ascii_digit()).then(|| t.parse().ok())? };
    let (h, m, sec) = (num(rest.get(0..2)?)?, num(rest.get(3..5)?)?, num(rest.get(6..8)?)?);
    if rest.get(2..3)? != ":" || rest.get(5..6)? != ":" || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let mut rest = &rest[8..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first3 = format!("{:0<3}", &frac[..digits.min(3)]);
        millis = first3.parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.get(3..4)? != ":" {
                return None;
            }
            let (oh, om) = (num(rest.get(1..3)?)?, num(rest.get(4..6)?)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 60 + om)
        }
    };
    Some(day + ((h * 60 + m - offset_min) * 60 + sec.min(59)) * 1000 + millis)
}

impl Services {
    /// Checks a replay's choice for the webhook `webhook_id` (which must be one the scope
    /// sees): times, statuses and event types, each error naming its field.
    async fn replay_choice(
        &self,
        scope: &Scope,
        webhook_id: &str,
        req: &ReplayRequest,
    ) -> Result<ReplayChoice> {
        let hook = self.webhook(scope, webhook_id).await?;
        let time = |field: &'static str, value: &Option<String>| -> Result<Option<i64>> {
            match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => parse_rfc3339_ms(v).map(Some).ok_or_else(|| {
                    Error::invalid(
                        field,
                        format!("`{field}` must be an RFC 3339 time, such as 2026-12-03T15:30:00Z."),
                    )
                }),
            }
        };
        let (from_at, to_at) = (time("from", &req.from)?, time("to", &req.to)?);
        if let (Some(from), Some(to)) = (from_at, to_at)
            && from >= to
        {
            return Err(Error::invalid("from", "`from` must be before `to`."));
        }
        let statuses = match &req.statuses {
            None => REPLAYABLE.to_vec(),
            Some(names) if names.is_empty() => {
                return Err(Error::invalid(
                    "status",
                    "Choose at least one status, or leave `status` out for all.",
                ));
            }
            Some(names) => {
                let mut chosen = Vec::new();
                for name in names {
                    let status = DeliveryStatus::parse(name.trim()).ok_or_else(|| {
                        Error::invalid(
                            "status",
                            format!("Unknown delivery status: {name}. Use succeeded, failed or skipped."),
                        )
                    })?;
                    if !status.is_final() {
                        return Err(Error::invalid(
                            "status",
                            format!(
                                "{status} deliveries are already on their way; replay succeeded, failed or skipped ones."
                            ),
                        ));
                    }
                    if !chosen.contains(&status) {
                        chosen.push(status);
                    }
                }
                chosen
            }
        };
        let event_types = self
            .check_event_types(&hook.tenant(), &req.event_types)
            .await?
            .and_then(|json| serde_json::from_str(&json).ok());
        Ok(ReplayChoice { webhook_id: hook.id, from_at, to_at, statuses, event_types })
    }

    /// A dry run: how many deliveries a replay with this choice would queue again, and the
    /// first [`REPLAY_SAMPLE`] of them in the order it would.
    pub async fn preview_replay(
        &self,
        scope: &Scope,
        webhook_id: &str,
        req: &ReplayRequest,
    ) -> Result<ReplayPreview> {
        let choice = self.replay_choice(scope, webhook_id, req).await?;
        let store = self.store();
        Ok(ReplayPreview {
            count: store.count_replayable(&choice).await?,
            sample: store.sample_replayable(&choice, REPLAY_SAMPLE).await?,
        })
    }

    /// Starts a replay of the chosen deliveries. The webhook must be on, have no replay
    /// running, and have deliveries to replay. Without `to`, the choice ends now: deliveries
    /// made after the start are not part of it.
    pub async fn start_replay(
        &self,
        scope: &Scope,
        webhook_id: &str,
        req: &ReplayRequest,
        requested_by: Option<String>,
    ) -> Result<replay::Model> {
        let mut choice = self.replay_choice(scope, webhook_id, req).await?;
        let hook = self.webhook(scope, webhook_id).await?;
        if !hook.enabled {
            return Err(Error::Conflict("Turn the webhook on before replaying its deliveries.".into()));
        }
        let now = now_ms();
        choice.to_at = Some(choice.to_at.unwrap_or(now + 1));
        let total = self.store().count_replayable(&choice).await?;
        if total == 0 {
            return Err(Error::Unprocessable {
                field: None,
                message: "No delivery of this webhook matches: there is nothing to replay.".into(),
            });
        }
        let statuses: Vec<&str> = choice.statuses.iter().map(|s| s.as_str()).collect();
        let row = replay::ActiveModel {
            id: Set(new_id()),
            webhook_id: Set(hook.id.clone()),
            tenant_type: Set(hook.tenant_type),
            tenant_id: Set(hook.tenant_id.clone()),
            from_at: Set(choice.from_at),
            to_at: Set(choice.to_at),
            statuses: Set(Some(serde_json::to_string(&statuses).unwrap_or_default())),
            event_types: Set(choice
                .event_types
                .as_ref()
                .map(|t| serde_json::to_string(t).unwrap_or_default())),
            state: Set(ReplayState::Running),
            total: Set(total as i64),
            done: Set(0),
            cursor: Set(None),
            requested_by: Set(requested_by),
            error: Set(None),
            created_at: Set(now),
            // Not taken by any runner yet: see `store::replays`.
            updated_at: Set(0),
            finished_at: Set(None),
        };
        // One running replay per webhook: checked and written under the webhook's row lock
        // (PostgreSQL) or the process's write turn (SQLite), so two requests cannot both pass.
        let _turn = self.write_turn().await;
        let txn = sea_orm::TransactionTrait::begin(&self.db).await?;
        crate::store::webhooks::lock(&txn, &hook.id).await?;
        let running: Option<String> = replay::Entity::find()
            .select_only()
            .column(replay::Column::Id)
            .filter(replay::Column::WebhookId.eq(&hook.id))
            .filter(replay::Column::State.eq(ReplayState::Running.as_str()))
            .into_tuple()
            .one(&txn)
            .await?;
        if let Some(running) = running {
            return Err(Error::Conflict(format!(
                "Replay {running} of this webhook is still running: wait for it to finish or cancel it."
            )));
        }
        let inserted = row.insert(&txn).await?;
        txn.commit().await?;
        drop(_turn);
        self.wake_workers();
        Ok(inserted)
    }

    /// A replay the scope sees (the webhook's own scope): one whose webhook it sees.
    pub async fn replay(&self, scope: &Scope, id: &str) -> Result<replay::Model> {
        let found = replay::Entity::find_by_id(id).one(&self.db).await?.ok_or(Error::NotFound("replay"))?;
        match self.webhook(scope, &found.webhook_id).await {
            Ok(_) => Ok(found),
            Err(Error::NotFound(_)) => Err(Error::NotFound("replay")),
            Err(e) => Err(e),
        }
    }

    /// The webhook's replays, newest first.
    pub async fn list_replays(
        &self,
        scope: &Scope,
        webhook_id: &str,
        page: &PageRequest,
    ) -> Result<Page<replay::Model>> {
        let hook = self.webhook(scope, webhook_id).await?;
        let mut query = replay::Entity::find()
            .filter(replay::Column::WebhookId.eq(&hook.id))
            .order_by_desc(replay::Column::Id)
            .limit(page.limit() + 1);
        if let Some(cursor) = &page.cursor {
            query = query.filter(replay::Column::Id.lt(cursor));
        }
        let rows = query.all(&self.db).await?;
        Ok(Page::from_rows(rows, page.limit(), |r| r.id.clone()))
    }

    /// Cancels a running replay: what it queued already stays queued, the rest is left alone.
    pub async fn cancel_replay(&self, scope: &Scope, id: &str) -> Result<replay::Model> {
        let found = self.replay(scope, id).await?;
        if !self.store().cancel_replay(&found.id, now_ms()).await? {
            return Err(Error::Conflict(format!(
                "Replay {} is {}: only a running replay can be cancelled.",
                found.id, found.state
            )));
        }
        self.replay(scope, id).await
    }
}

/// The background runner of replays, one per process that delivers: it holds up to
/// [`REPLAYS_HELD`] running replays at once and queues the next page of each in turn, so a
/// replay waiting for its webhook's queue does not hold up the others.
pub struct Replayer {
    page: u64,
    /// The replays this process holds, each with its lease's stamp.
    held: Vec<(String, i64)>,
}

/// Most replays one process runs at once.
pub const REPLAYS_HELD: usize = 8;

/// What one step of the runner did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayStep {
    /// No running replay is free to take.
    Idle,
    /// Every replay held waits: its webhook still has a page of deliveries in the queue, and
    /// the replay waits for them, so fresh events keep flowing beside it.
    Waiting,
    /// A page was queued, or a replay changed hands or ended: step again soon.
    Worked,
}

/// What became of one held replay in a step.
enum Turn {
    Queued,
    Waiting,
    Released,
}

impl Default for Replayer {
    fn default() -> Self {
        Self::new(REPLAY_PAGE)
    }
}

impl Replayer {
    /// A runner that queues `page` deliveries per transaction.
    pub fn new(page: u64) -> Self {
        Replayer { page: page.max(1), held: Vec::new() }
    }

    /// One step: take a free replay if there is room, then one turn of each replay held.
    pub async fn step(&mut self, services: &Services) -> Result<ReplayStep> {
        let mut worked = false;
        if self.held.len() < REPLAYS_HELD
            && let Some(r) = services.store().take_replay(now_ms(), REPLAY_LEASE_MS).await?
        {
            self.held.push((r.id, r.updated_at));
            worked = true;
        }
        if self.held.is_empty() {
            return Ok(ReplayStep::Idle);
        }
        let mut kept = Vec::with_capacity(self.held.len());
        let mut waiting = true;
        for (id, stamp) in std::mem::take(&mut self.held) {
            match self.turn(services, &id, stamp).await {
                Ok((Turn::Queued, Some(stamp))) => {
                    waiting = false;
                    kept.push((id, stamp));
                }
                Ok((Turn::Waiting, Some(stamp))) => kept.push((id, stamp)),
                Ok((_, _)) => waiting = false,
                Err(e) => {
                    // Keep the others; this one resumes from its cursor (here, or elsewhere
                    // once its lease runs out).
                    self.held = kept;
                    self.held.push((id, stamp));
                    return Err(e);
                }
            }
        }
        self.held = kept;
        Ok(if waiting && !worked { ReplayStep::Waiting } else { ReplayStep::Worked })
    }

    /// One turn of a held replay: its next page, or a wait; answers the lease's stamp while
    /// the replay stays this process's.
    async fn turn(&self, services: &Services, id: &str, stamp: i64) -> Result<(Turn, Option<i64>)> {
        let store = services.store();
        let now = now_ms();
        let Some(current) = replay::Entity::find_by_id(id).one(&services.db).await? else {
            return Ok((Turn::Released, None));
        };
        if current.state != ReplayState::Running || current.updated_at != stamp {
            return Ok((Turn::Released, None));
        }
        let hook =
            crate::entities::webhook::Entity::find_by_id(&current.webhook_id).one(&services.db).await?;
        let stopped = match &hook {
            None => Some("The webhook was deleted."),
            Some(h) if !h.enabled => Some("The webhook was turned off."),
            _ => None,
        };
        if let Some(why) = stopped {
            store.end_replay(id, stamp, ReplayState::Failed, Some(why), now).await?;
            return Ok((Turn::Released, None));
        }
        if store.pending_of_webhook(&current.webhook_id, self.page).await? >= self.page {
            // The lease is renewed well before it runs out, not on every look.
            if now - stamp < REPLAY_LEASE_MS / 3 {
                return Ok((Turn::Waiting, Some(stamp)));
            }
            return Ok((Turn::Waiting, store.renew_replay(id, stamp, now).await?));
        }
        match store.replay_page(&current, stamp, self.page, now).await? {
            PageDone::Queued { queued, finished, stamp } => {
                if queued > 0 {
                    services.wake_workers();
                }
                if finished {
                    tracing::info!(replay = %current.id, webhook = %current.webhook_id, "replay finished");
                    return Ok((Turn::Released, None));
                }
                Ok((Turn::Queued, Some(stamp)))
            }
            PageDone::Lost => Ok((Turn::Released, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339_ms;

    #[test]
    fn reads_rfc3339_times() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("2024-01-15T11:57:54Z"), Some(1_705_319_874_000));
        assert_eq!(parse_rfc3339_ms("2024-01-15T12:57:54+01:00"), Some(1_705_319_874_000));
        assert_eq!(parse_rfc3339_ms("2024-01-15T11:57:54.25Z"), Some(1_705_319_874_250));
        assert_eq!(parse_rfc3339_ms("2024-01-15t06:57:54.250999-05:00"), Some(1_705_319_874_250));
        for bad in [
            "",
            "2024-01-15",
            "2024-01-15T11:57Z",
            "2024-01-15T25:00:00Z",
            "2024-02-30T00:00:00Z",
            "2024-01-15T11:57:54",
            "2024-01-15T11:57:54+0100",
            "yesterday",
            "2024-01-15T11:57:54.Z",
            "2024-01-15T1a:57:54Z",
            "2024-01-15T11:57:54Zjunk",
            "2024-01-15T+1:57:54Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }
}
