//! The admin overview's server function: the figures of `Services::overview` as the page
//! shows them. A non-admin gets the not-found of a page that is not theirs.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::pages::webhook::server::HourBar;

/// One endpoint of a ranking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    /// "store bench", "application acme".
    pub tenant: String,
    pub attempts: i64,
    pub failed: i64,
    /// The mean attempt's duration.
    pub mean_ms: i64,
}

/// A webhook turned off during the period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TurnedOffRow {
    pub id: String,
    pub url: String,
    pub tenant: String,
    pub reason: String,
    pub when: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverviewData {
    /// `24h` or `7d`.
    pub period: String,
    /// "in the last 24 hours", "in the last 7 days".
    pub span: String,
    pub hours: Vec<HourBar>,
    pub most_failing: Vec<EndpointRow>,
    pub slowest: Vec<EndpointRow>,
    /// Deliveries due now, in words ("42", "10000 or more").
    pub due: String,
    /// How long the oldest due delivery has waited, in words; `None` when nothing is due.
    pub oldest_due_wait: Option<String>,
    pub turned_off: Vec<TurnedOffRow>,
}

/// The overview of the last day (`period` empty or `24h`) or week (`7d`).
#[server(prefix = "/ui", endpoint = "admin_overview")]
pub async fn admin_overview(period: Option<String>) -> Result<OverviewData, AppError> {
    use crate::format::human_time;
    use crate::session::{require_admin, services};
    use hookline_core::{OVERVIEW_DUE_CAP, OverviewPeriod, iso8601};
    use hookline_domain::{DisabledReason, human_duration};
    let user = require_admin().await?;
    let period = OverviewPeriod::parse(period.as_deref().unwrap_or_default());
    let found = services()?.overview(&user.scope(), period).await?;
    let tenant = |w: &hookline_core::entities::webhook::Model| format!("{} {}", w.tenant_type, w.tenant_id);
    let endpoints = |stats: Vec<hookline_core::EndpointStat>| -> Vec<EndpointRow> {
        stats
            .into_iter()
            .map(|s| EndpointRow {
                tenant: tenant(&s.webhook),
                attempts: s.totals.attempts(),
                failed: s.totals.failed,
                mean_ms: s.totals.mean_ms(),
                id: s.webhook.id,
                url: s.webhook.url,
            })
            .collect()
    };
    // A day's bars are labelled by the hour; a week's by day and hour.
    let label = |hour: i64| {
        let at = iso8601(hour);
        match period {
            OverviewPeriod::Day => at[11..16].to_string(),
            OverviewPeriod::Week => format!("{} {}", &at[5..10], &at[11..16]),
        }
    };
    let due = if found.due as u64 >= OVERVIEW_DUE_CAP {
        format!("{OVERVIEW_DUE_CAP} or more")
    } else {
        found.due.to_string()
    };
    Ok(OverviewData {
        period: period.as_str().to_string(),
        span: match period {
            OverviewPeriod::Day => "in the last 24 hours".to_string(),
            OverviewPeriod::Week => "in the last 7 days".to_string(),
        },
        hours: found
            .hours
            .iter()
            .map(|h| HourBar { hour: label(h.hour), succeeded: h.succeeded as u64, failed: h.failed as u64 })
            .collect(),
        most_failing: endpoints(found.most_failing),
        slowest: endpoints(found.slowest),
        due,
        oldest_due_wait: found.oldest_due_at.map(|at| {
            human_duration(std::time::Duration::from_millis(found.now.saturating_sub(at).max(0) as u64))
        }),
        turned_off: found
            .turned_off
            .into_iter()
            .map(|w| TurnedOffRow {
                tenant: tenant(&w),
                reason: w.disabled_reason.unwrap_or(DisabledReason::Manual).cause(w.consecutive_failures),
                when: w.disabled_at.map(human_time).unwrap_or_default(),
                id: w.id,
                url: w.url,
            })
            .collect(),
    })
}
