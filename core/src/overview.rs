//! The admin overview: how delivery across every store went over the last day or week, read
//! from counters (`store::overview`: the hourly counters, and for the week's whole days their
//! daily rollups) and the janitor's bounded queue reads, so it answers in the same time with
//! ten deliveries or ten million.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::entities::webhook;
use crate::error::{Error, Result};
use crate::store::overview::{EndpointTotals, HourTotals, Ranking, rank};
use crate::{HOUR_MS, Scope, Services, now_ms};

/// How many endpoints each ranking and the turned-off list show.
pub const OVERVIEW_LIST_LEN: u64 = 10;
/// Where the overview's count of due deliveries stops: counting further would read too much
/// of the queue's index for a page.
pub const OVERVIEW_DUE_CAP: u64 = 10_000;

/// The span the overview covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverviewPeriod {
    Day,
    Week,
}

impl OverviewPeriod {
    /// `24h` or `7d`, as the page's address says; anything else is the day.
    pub fn parse(s: &str) -> Self {
        if s == "7d" { OverviewPeriod::Week } else { OverviewPeriod::Day }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OverviewPeriod::Day => "24h",
            OverviewPeriod::Week => "7d",
        }
    }

    pub fn hours(self) -> i64 {
        match self {
            OverviewPeriod::Day => 24,
            OverviewPeriod::Week => 7 * 24,
        }
    }
}

/// One endpoint in a ranking: the webhook and its attempts over the period.
#[derive(Clone, Debug)]
pub struct EndpointStat {
    pub webhook: webhook::Model,
    pub totals: EndpointTotals,
}

/// The overview of a period.
#[derive(Clone, Debug)]
pub struct Overview {
    pub period: OverviewPeriod,
    /// Every hour of the period, oldest first, the current hour last (zeros where nothing
    /// was attempted).
    pub hours: Vec<HourTotals>,
    pub most_failing: Vec<EndpointStat>,
    pub slowest: Vec<EndpointStat>,
    /// Deliveries due now, counted up to [`OVERVIEW_DUE_CAP`].
    pub due: i64,
    /// When the oldest due delivery came due; `None` when nothing is due.
    pub oldest_due_at: Option<i64>,
    /// Webhooks turned off during the period and still off, latest first.
    pub turned_off: Vec<webhook::Model>,
    pub now: i64,
}

impl Services {
    /// One step of the overview's daily rollups (`store::overview`): forgets what is stale,
    /// then adds up at most one day that is over. Answers whether a day is left to add up.
    /// Housekeeping runs it after each pruning round (`Pruner`); nothing on the delivery path
    /// waits for it.
    pub async fn overview_rollup_step(&self) -> Result<bool> {
        self.store().overview_rollup_step(now_ms()).await
    }

    /// The overview of `period`, for admins only.
    pub async fn overview(&self, scope: &Scope, period: OverviewPeriod) -> Result<Overview> {
        if !scope.is_admin() {
            return Err(Error::Forbidden("Only admins see the overview.".into()));
        }
        let now = now_ms();
        let to = (now / HOUR_MS + 1) * HOUR_MS;
        let from = to - period.hours() * HOUR_MS;
        let store = self.store();
        // Two passes over the counters, at once: per hour and per webhook; whole days the
        // rollups hold come from them (the week view), every other hour from the hourly counters.
        let (counted, totals) = store.overview_totals(from, to).await?;
        let mut hours: Vec<HourTotals> = (0..period.hours())
            .map(|i| HourTotals { hour: from + i * HOUR_MS, ..Default::default() })
            .collect();
        for h in counted {
            if let Some(slot) = usize::try_from((h.hour - from) / HOUR_MS).ok().and_then(|i| hours.get_mut(i))
            {
                *slot = h;
            }
        }
        let most_failing = rank(&totals, Ranking::MostFailing, OVERVIEW_LIST_LEN as usize);
        let slowest = rank(&totals, Ranking::Slowest, OVERVIEW_LIST_LEN as usize);
        let turned_off_ids = store.turned_off_since(from, OVERVIEW_LIST_LEN).await?;
        let due = store.count_due(now, OVERVIEW_DUE_CAP).await?;
        let oldest_due_at = self.oldest_due().await?;
        // The webhooks named anywhere on the page, in one query.
        let mut ids: Vec<String> = most_failing
            .iter()
            .chain(&slowest)
            .map(|t| t.webhook_id.clone())
            .chain(turned_off_ids.iter().cloned())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let found: HashMap<String, webhook::Model> = webhook::Entity::find()
            .filter(webhook::Column::Id.is_in(ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|w| (w.id.clone(), w))
            .collect();
        // A webhook deleted since its counters were written is left out.
        let stats = |ranked: Vec<EndpointTotals>| -> Vec<EndpointStat> {
            ranked
                .into_iter()
                .filter_map(|totals| {
                    found.get(&totals.webhook_id).map(|w| EndpointStat { webhook: w.clone(), totals })
                })
                .collect()
        };
        Ok(Overview {
            period,
            hours,
            most_failing: stats(most_failing),
            slowest: stats(slowest),
            due,
            oldest_due_at,
            turned_off: turned_off_ids.iter().filter_map(|id| found.get(id).cloned()).collect(),
            now,
        })
    }
}
