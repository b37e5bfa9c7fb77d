//! Bulk replays' SQL: which deliveries a replay chooses (counted, sampled, walked in pages by
//! delivery id), one page queued again with its progress in one transaction, and the lease on
//! a running replay. The lease is the replay's `updated_at`: a process takes a replay whose
//! `updated_at` is older than the lease by a conditional UPDATE on the value it read, and every
//! later write of that process is conditional on the value it wrote last. So two processes
//! never run one replay at once, a cancelled replay stops at its next page, and a crashed
//! process's replay is taken over once its lease has run out. A replay nobody has taken yet
//! has `updated_at` 0.

use hookline_domain::{DeliveryStatus, ReplayState};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use super::Store;
use crate::entities::{delivery, replay};
use crate::error::Result;

/// The statuses a replay may choose: settled deliveries. Pending and delivering ones are
/// already on their way.
pub const REPLAYABLE: [DeliveryStatus; 3] = DeliveryStatus::SETTLED;

/// The deliveries a replay chooses: one webhook's, created in `[from_at, to_at)`, in one of
/// `statuses`, of one of `event_types` (every type when `None`), whose payload is still kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayChoice {
    pub webhook_id: String,
    pub from_at: Option<i64>,
    pub to_at: Option<i64>,
    pub statuses: Vec<DeliveryStatus>,
    pub event_types: Option<Vec<String>>,
}

impl ReplayChoice {
    /// The choice a stored replay made.
    pub fn of(r: &replay::Model) -> Self {
        let statuses = r
            .statuses
            .as_deref()
            .and_then(|s| serde_json::from_str::<Vec<String>>(s).ok())
            .map(|v| v.iter().filter_map(|s| DeliveryStatus::parse(s)).filter(|s| s.is_final()).collect())
            .unwrap_or_else(|| REPLAYABLE.to_vec());
        ReplayChoice {
            webhook_id: r.webhook_id.clone(),
            from_at: r.from_at,
            to_at: r.to_at,
            statuses,
            event_types: r.event_types.as_deref().and_then(|s| serde_json::from_str(s).ok()),
        }
    }

    fn condition(&self) -> Condition {
        let mut c = Condition::all()
            .add(delivery::Column::WebhookId.eq(&self.webhook_id))
            .add(delivery::Column::Status.is_in(self.statuses.iter().copied()))
            // An event whose payload retention removed has nothing left to send.
            .add(Expr::cust(
                "NOT EXISTS (SELECT 1 FROM events e WHERE e.id = deliveries.event_id AND e.payload_pruned_at IS NOT NULL)",
            ));
        if let Some(from) = self.from_at {
            c = c.add(delivery::Column::CreatedAt.gte(from));
        }
        if let Some(to) = self.to_at {
            c = c.add(delivery::Column::CreatedAt.lt(to));
        }
        if let Some(types) = &self.event_types {
            c = c.add(delivery::Column::EventType.is_in(types.iter().cloned()));
        }
        c
    }
}

/// What became of one page of a replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageDone {
    /// Queued again; `finished` when it was the last page. `stamp` is the lease's new value.
    Queued { queued: u64, finished: bool, stamp: i64 },
    /// The replay is no longer this process's: cancelled, or taken over after the lease ran
    /// out. Nothing was written.
    Lost,
}

impl Store<'_> {
    /// How many deliveries the choice holds now.
    pub async fn count_replayable(&self, choice: &ReplayChoice) -> Result<u64> {
        Ok(delivery::Entity::find().filter(choice.condition()).count(self.db).await?)
    }

    /// The first `n` deliveries the choice holds, in the order a replay sends them again.
    pub async fn sample_replayable(&self, choice: &ReplayChoice, n: u64) -> Result<Vec<delivery::Model>> {
        Ok(delivery::Entity::find()
            .filter(choice.condition())
            .order_by_asc(delivery::Column::Id)
            .limit(n)
            .all(self.db)
            .await?)
    }

    /// Takes a running replay whose lease ran out (or that nobody took yet), oldest lease
    /// first; its `updated_at` is then `now`, the lease's stamp.
    pub async fn take_replay(&self, now: i64, lease_ms: i64) -> Result<Option<replay::Model>> {
        let candidates = replay::Entity::find()
            .filter(replay::Column::State.eq(ReplayState::Running.as_str()))
            .filter(replay::Column::UpdatedAt.lte(now - lease_ms))
            .order_by_asc(replay::Column::UpdatedAt)
            .limit(4)
            .all(self.db)
            .await?;
        for mut r in candidates {
            let _turn = self.write_turn().await;
            let taken = replay::Entity::update_many()
                .col_expr(replay::Column::UpdatedAt, Expr::value(now))
                .filter(replay::Column::Id.eq(&r.id))
                .filter(replay::Column::State.eq(ReplayState::Running.as_str()))
                .filter(replay::Column::UpdatedAt.eq(r.updated_at))
                .exec(self.db)
                .await?;
            if taken.rows_affected == 1 {
                r.updated_at = now;
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Keeps the lease on a replay held since `stamp`; answers the new stamp, or `None` when
    /// the replay is no longer this process's.
    pub async fn renew_replay(&self, id: &str, stamp: i64, now: i64) -> Result<Option<i64>> {
        let next = now.max(stamp + 1);
        let _turn = self.write_turn().await;
        let renewed = replay::Entity::update_many()
            .col_expr(replay::Column::UpdatedAt, Expr::value(next))
            .filter(replay::Column::Id.eq(id))
            .filter(replay::Column::State.eq(ReplayState::Running.as_str()))
            .filter(replay::Column::UpdatedAt.eq(stamp))
            .exec(self.db)
            .await?;
        Ok((renewed.rows_affected == 1).then_some(next))
    }

    /// Ends a replay held since `stamp` as `failed` (with the reason) or `cancelled`; answers
    /// whether it was still this process's to end.
    pub async fn end_replay(
        &self,
        id: &str,
        stamp: i64,
        state: ReplayState,
        error: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let next = now.max(stamp + 1);
        let _turn = self.write_turn().await;
        let ended = replay::Entity::update_many()
            .col_expr(replay::Column::State, Expr::value(state.as_str()))
            .col_expr(replay::Column::Error, Expr::value(error.map(str::to_string)))
            .col_expr(replay::Column::FinishedAt, Expr::value(now))
            .col_expr(replay::Column::UpdatedAt, Expr::value(next))
            .filter(replay::Column::Id.eq(id))
            .filter(replay::Column::State.eq(ReplayState::Running.as_str()))
            .filter(replay::Column::UpdatedAt.eq(stamp))
            .exec(self.db)
            .await?;
        Ok(ended.rows_affected == 1)
    }

    /// Cancels a running replay, whoever holds it: its runner finds it gone at its next page.
    pub async fn cancel_replay(&self, id: &str, now: i64) -> Result<bool> {
        let _turn = self.write_turn().await;
        let cancelled = replay::Entity::update_many()
            .col_expr(replay::Column::State, Expr::value(ReplayState::Cancelled.as_str()))
            .col_expr(replay::Column::FinishedAt, Expr::value(now))
            .col_expr(replay::Column::UpdatedAt, Expr::value(now))
            .filter(replay::Column::Id.eq(id))
            .filter(replay::Column::State.eq(ReplayState::Running.as_str()))
            .exec(self.db)
            .await?;
        Ok(cancelled.rows_affected == 1)
    }

    /// The webhook's pending deliveries, counted up to `cap` (down its partial index).
    pub async fn pending_of_webhook(&self, webhook_id: &str, cap: u64) -> Result<u64> {
        let ids: Vec<String> = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Id)
            .filter(delivery::Column::WebhookId.eq(webhook_id))
            .filter(delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .limit(cap)
            .into_tuple()
            .all(self.db)
            .await?;
        Ok(ids.len() as u64)
    }

    /// Queues again the next `page` deliveries of the replay after its cursor, held since
    /// `stamp`, and moves its cursor and count, in one transaction: a crash leaves either both
    /// or neither. Each goes back to the queue due now with a fresh retry schedule (its
    /// scheduled attempts count from zero again: `attempts - manual_attempts` is what the
    /// claim reads). The last page (shorter than `page`) finishes the replay, its total then
    /// being what it queued.
    pub async fn replay_page(
        &self,
        held: &replay::Model,
        stamp: i64,
        page: u64,
        now: i64,
    ) -> Result<PageDone> {
        let choice = ReplayChoice::of(held);
        let next_stamp = now.max(stamp + 1);
        let _turn = self.write_turn().await;
        let txn = self.db.begin().await?;
        let mut after = choice.condition();
        if let Some(cursor) = &held.cursor {
            after = after.add(delivery::Column::Id.gt(cursor));
        }
        let ids: Vec<String> = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Id)
            .filter(after.clone())
            .order_by_asc(delivery::Column::Id)
            .limit(page)
            .into_tuple()
            .all(&txn)
            .await?;
        let mut queued = 0;
        if let Some(last) = ids.last() {
            // The same rows, by range instead of a list of ids: the status is checked again,
            // so a delivery that changed meanwhile is left alone.
            queued = delivery::Entity::update_many()
                .col_expr(delivery::Column::Status, Expr::value(DeliveryStatus::Pending.as_str()))
                .col_expr(delivery::Column::NextAttemptAt, Expr::value(now))
                .col_expr(delivery::Column::LeasedBy, Expr::value(Option::<String>::None))
                .col_expr(delivery::Column::ManualAttempts, Expr::col(delivery::Column::Attempts))
                .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
                .filter(after)
                .filter(delivery::Column::Id.lte(last))
                .exec(&txn)
                .await?
                .rows_affected;
        }
        let finished = (ids.len() as u64) < page;
        let done = held.done + queued as i64;
        let mut progress = replay::Entity::update_many()
            .col_expr(replay::Column::Done, Expr::value(done))
            .col_expr(replay::Column::UpdatedAt, Expr::value(next_stamp));
        if let Some(last) = ids.last() {
            progress = progress.col_expr(replay::Column::Cursor, Expr::value(last.clone()));
        }
        progress = if finished {
            progress
                .col_expr(replay::Column::State, Expr::value(ReplayState::Finished.as_str()))
                .col_expr(replay::Column::FinishedAt, Expr::value(now))
                .col_expr(replay::Column::Total, Expr::value(done))
        } else {
            progress.col_expr(replay::Column::Total, Expr::value(held.total.max(done)))
        };
        let moved = progress
            .filter(replay::Column::Id.eq(&held.id))
            .filter(replay::Column::State.eq(ReplayState::Running.as_str()))
            .filter(replay::Column::UpdatedAt.eq(stamp))
            .exec(&txn)
            .await?;
        if moved.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(PageDone::Lost);
        }
        txn.commit().await?;
        Ok(PageDone::Queued { queued, finished, stamp: next_stamp })
    }
}
