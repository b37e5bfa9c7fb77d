//! Alerts before turn-off: noticing when a webhook starts failing, nears its turn-off, is
//! turned off and recovers, and telling the store's merchants by email and the tenant's
//! webhooks by the operational events `webhook.failing` and `webhook.recovered` (the engine's
//! recorder publishes `webhook.disabled` itself). docs/alerts.md tells it for operators.
//!
//! One step, every few seconds in each process that delivers, away from the delivery path:
//! it reads only the webhooks the partial index `webhooks_alert_watch` holds (failing, or
//! alerted, or just turned off), moves each one's alert state with a conditional update
//! (the process whose update matched announces it, so several processes announce each change
//! once), then sends what is owed. The state is recorded before anything is sent; a send
//! that fails is tried again later, and a process that dies mid-send leaves the announcement
//! to another one: emails go out at least once.

pub mod mail;

use std::time::Duration;

use hookline_core::store::alerts::{AlertPolicy, AlertState, Owed, next_state};
use hookline_core::store::attempts::DisablePolicy;
use hookline_core::{
    Audience, DisabledReason, Health, PublishRequest, Services, TenantType, human_time, iso8601, now_ms,
};
use serde_json::json;

use self::mail::Mailer;
use crate::config::Config;

/// Between two steps of a process.
const STEP_EVERY: Duration = Duration::from_secs(5);
/// How long a process that took an announcement has to send it before another may.
const SEND_LEASE: Duration = Duration::from_secs(120);
/// Retries of a failed send: the first this soon, then as long again as it has waited so
/// far, up to [`RETRY_AT_MOST`].
const RETRY_FIRST: Duration = Duration::from_secs(30);
const RETRY_AT_MOST: Duration = Duration::from_secs(3600);
/// An alert this late is noise: given up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Most announcements one step sends.
const SENDS_PER_STEP: usize = 50;

/// What one step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Alert states this process moved.
    pub changed: usize,
    /// Announcements sent (the email, when there is one to send, accepted by the relay).
    pub announced: usize,
    /// Announcements that failed and are owed again later.
    pub failed: usize,
}

/// The alerts of one process: when they speak, and how they reach people.
#[derive(Clone)]
pub struct Alerts {
    policy: AlertPolicy,
    mailer: Option<Mailer>,
    /// The dashboard's address, for the link to the webhook's page.
    public_url: Option<url::Url>,
}

impl Alerts {
    pub fn from_config(cfg: &Config) -> Self {
        let mailer = cfg.smtp_url.as_ref().and_then(|url| match Mailer::new(url, cfg.smtp_from.clone()) {
            Ok(mailer) => Some(mailer),
            Err(e) => {
                tracing::error!(error = %e, "alert emails are off: the SMTP URL is not usable");
                None
            }
        });
        if mailer.is_some() && cfg.public_url.is_none() {
            tracing::warn!("alert emails cannot link to the webhook's page: set HOOKLINE_PUBLIC_URL");
        }
        Alerts {
            policy: AlertPolicy {
                failing_after: cfg.alert_failing_after,
                disable: DisablePolicy {
                    after_failures: cfg.disable_after_failures,
                    after_span: cfg.disable_after_span,
                },
            },
            mailer,
            public_url: cfg.public_url.clone(),
        }
    }

    /// Steps every few seconds until aborted.
    pub async fn run(self, services: Services) {
        loop {
            match self.step(&services, now_ms()).await {
                Ok(report) if report != StepReport::default() => tracing::debug!(?report, "alerts step"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "the alerts step failed"),
            }
            tokio::time::sleep(STEP_EVERY).await;
        }
    }

    /// Notices the changes of state as of `now`, then sends what is owed by `now`.
    pub async fn step(&self, services: &Services, now: i64) -> hookline_core::Result<StepReport> {
        let mut report = StepReport::default();
        let store = services.store();
        let mut after = String::new();
        loop {
            let page = store.watched_webhooks(&after).await?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            for watched in &page {
                if let Some(change) = next_state(watched, now, &self.policy)
                    && store.change_alert_state(watched, change, now).await?
                {
                    tracing::info!(webhook = %watched.id, state = change.to.as_str(), "webhook alert state changed");
                    report.changed += 1;
                }
            }
        }
        for _ in 0..SENDS_PER_STEP {
            let Some(owed) = store.take_owed_alert(now, now + ms(SEND_LEASE)).await? else { break };
            if now - owed.at > ms(GIVE_UP_AFTER) {
                tracing::warn!(webhook = %owed.webhook.id, state = owed.state.as_str(), "alert given up: over a day late");
                store.settle_alert(&owed.webhook.id, Some(owed.state), owed.at).await?;
                continue;
            }
            match self.announce(services, &owed).await {
                Ok(()) => {
                    store.settle_alert(&owed.webhook.id, Some(owed.state), owed.at).await?;
                    report.announced += 1;
                }
                Err(e) => {
                    let waited = Duration::from_millis((now - owed.at).max(0) as u64);
                    let retry_in = waited.clamp(RETRY_FIRST, RETRY_AT_MOST);
                    tracing::warn!(
                        webhook = %owed.webhook.id, state = owed.state.as_str(), error = %e,
                        retry_in = ?retry_in, "sending a webhook alert failed"
                    );
                    store.retry_alert(&owed.webhook.id, owed.state, owed.at, now + ms(retry_in)).await?;
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// The operational event, then the email. The event carries an idempotency key, so
    /// sending again after a failed email publishes it once.
    async fn announce(&self, services: &Services, owed: &Owed) -> Result<(), mail::MailError> {
        let message = Message::of(owed, &self.policy, self.public_url.as_ref());
        if let Some((event_type, payload)) = &message.event {
            let published = services
                .emit(PublishRequest {
                    tenant: owed.webhook.tenant(),
                    event_type: (*event_type).into(),
                    payload: payload.to_string(),
                    idempotency_key: Some(format!(
                        "alert:{}:{}:{}",
                        owed.webhook.id,
                        owed.state.as_str(),
                        owed.at
                    )),
                    ordering_key: None,
                    // Only the webhooks that may see this one, as for webhook.disabled.
                    audience: Audience::MadeBy(owed.webhook.application_id.clone()),
                })
                .await;
            if let Err(e) = published {
                // The event is the lesser channel; the email still goes.
                tracing::error!(webhook = %owed.webhook.id, error = %e, "could not publish {event_type}");
            }
        }
        let Some(mailer) = &self.mailer else { return Ok(()) };
        // Applications have no people to email: their webhooks' alerts are events only.
        if owed.webhook.tenant_type != TenantType::Store {
            return Ok(());
        }
        let recipients = match services.store().alert_recipients(&owed.webhook.tenant_id).await {
            Ok(Some(r)) if !r.emails.is_empty() => r,
            Ok(_) => return Ok(()),
            Err(e) => return Err(mail::MailError::Message(format!("reading the store's merchants: {e}"))),
        };
        let subject = format!("{} ({})", message.subject, recipients.store_name);
        mailer.send(&recipients.emails, &subject, message.body(&recipients.store_name)).await
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// "24 hours", "7 days", "90 seconds": a setting's span as people say it.
fn span_words(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs >= 86_400 && secs.is_multiple_of(86_400) {
        (secs / 86_400, "day")
    } else if secs >= 3600 && secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs >= 60 && secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") }
}

/// What an alert says: the email's subject (without the store) and lines, and the
/// operational event, if the state has one of its own.
struct Message {
    subject: String,
    lines: Vec<String>,
    link: Option<String>,
    url: String,
    event: Option<(&'static str, serde_json::Value)>,
}

impl Message {
    fn of(owed: &Owed, policy: &AlertPolicy, public_url: Option<&url::Url>) -> Self {
        let hook = &owed.webhook;
        let link = public_url
            .map(|base| format!("{}/settings/api/webhooks/{}", base.as_str().trim_end_matches('/'), hook.id));
        // The streak the alert is about: the current one while failing; afterwards the one
        // the state recorded (a new streak may have begun since).
        let since = match owed.state {
            AlertState::Failing | AlertState::TurningOff => hook.failing_since.or(owed.streak),
            AlertState::Disabled | AlertState::Recovered => owed.streak.or(hook.failing_since),
        }
        .unwrap_or(owed.at);
        let failures = hook.consecutive_failures;
        let rule = format!(
            "Hookline turns a webhook off once {} deliveries in a row have failed over at least {}.",
            policy.disable.after_failures,
            span_words(policy.disable.after_span)
        );
        let turn_off_at = policy.earliest_turn_off(since);
        let failing_event = |stage: &str, message: String| {
            json!({
                "webhook_id": hook.id,
                "url": hook.url,
                "stage": stage,
                "message": message,
                "consecutive_failures": failures,
                "failing_since": iso8601(since),
                "turn_off_at": iso8601(turn_off_at),
            })
        };
        let (subject, lines, event) = match owed.state {
            AlertState::Failing => {
                let health = Health::Failing { since }.sentence();
                (
                    format!("Webhook failing: {}", hook.url),
                    vec![
                        format!("{health}: {failures} deliveries in a row have failed."),
                        "Hookline keeps retrying them.".to_string(),
                        format!(
                            "{rule} Unless one succeeds, this one is turned off at {} at the earliest.",
                            human_time(turn_off_at)
                        ),
                    ],
                    Some(("webhook.failing", failing_event("failing", health))),
                )
            }
            AlertState::TurningOff => {
                let health = Health::Failing { since }.sentence();
                (
                    format!("Webhook turning off soon: {}", hook.url),
                    vec![
                        format!("{health}: {failures} deliveries in a row have failed."),
                        format!(
                            "Unless a delivery succeeds, Hookline turns this webhook off at {} at the earliest.",
                            human_time(turn_off_at)
                        ),
                        rule,
                    ],
                    Some(("webhook.failing", failing_event("turning_off", health))),
                )
            }
            AlertState::Disabled => {
                let health =
                    Health::of(false, hook.disabled_reason, hook.disabled_at, failures, hook.failing_since)
                        .sentence();
                let cause = hook.disabled_reason.unwrap_or(DisabledReason::Automatic).cause(failures);
                (
                    format!("Webhook turned off: {}", hook.url),
                    vec![
                        health,
                        cause,
                        "Its events are no longer delivered. Fix the endpoint, then turn the webhook back on from its page.".to_string(),
                    ],
                    // The recorder published webhook.disabled when it turned the webhook off.
                    None,
                )
            }
            AlertState::Recovered => {
                let at = hook.last_success_at.unwrap_or(owed.at);
                (
                    format!("Webhook recovered: {}", hook.url),
                    vec![
                        format!("A delivery succeeded at {}: the webhook is healthy again.", human_time(at)),
                        format!("It had been failing since {}.", human_time(since)),
                    ],
                    Some((
                        "webhook.recovered",
                        json!({
                            "webhook_id": hook.id,
                            "url": hook.url,
                            "message": Health::Healthy.sentence(),
                            "failing_since": iso8601(since),
                            "recovered_at": iso8601(at),
                        }),
                    )),
                )
            }
        };
        Message { subject, lines, link, url: hook.url.clone(), event }
    }

    fn body(&self, store_name: &str) -> String {
        let mut body = String::new();
        for line in &self.lines {
            body.push_str(line);
            body.push('\n');
        }
        body.push_str(&format!("\nWebhook: {}\nStore: {store_name}\n", self.url));
        match &self.link {
            Some(link) => body.push_str(&format!("\nOpen the webhook: {link}\n")),
            None => body.push_str("\nOpen the webhook from Settings > API > Webhooks in Hookline.\n"),
        }
        body.push_str("\n-- \nHookline\n");
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span_words(Duration::from_secs(24 * 3600)), "1 day");
        assert_eq!(span_words(Duration::from_secs(36 * 3600)), "36 hours");
        assert_eq!(span_words(Duration::from_secs(4)), "4 seconds");
        assert_eq!(span_words(Duration::from_secs(120)), "2 minutes");
    }
}
