//! Alerts before turn-off: the emails a store's merchants get, through a real SMTP server
//! (server/tests/support/smtp_sink.py on Debian's python3-aiosmtpd), and the operational
//! events a subscribed webhook gets. The test steps the alerts itself, at chosen moments,
//! instead of waiting for the background step.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookline::alerts::{Alerts, StepReport};
use hookline_core::entities::webhook;
use hookline_core::now_ms;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::{Value, json};
use test_receiver::{Behaviour, Receiver};

use crate::common::*;

const PUBLIC_URL: &str = "https://hookline.test";
const OPS_EVENTS: [&str; 3] = ["webhook.failing", "webhook.recovered", "webhook.disabled"];

/// A message the SMTP server accepted.
#[derive(Clone, Debug)]
struct Mail {
    to: Vec<String>,
    data: String,
}

impl Mail {
    fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let prefix = format!("{}:", name.to_ascii_lowercase());
        head.split("\r\n")
            .find(|line| line.to_ascii_lowercase().starts_with(&prefix))
            .map(|line| line[prefix.len()..].trim().to_string())
    }

    fn subject(&self) -> String {
        self.header("subject").unwrap_or_default()
    }

    /// The body as a mail client shows it: quoted-printable decoded.
    fn text(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        if !self
            .header("content-transfer-encoding")
            .is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"))
        {
            return body.replace("\r\n", "\n");
        }
        let joined = body.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).replace("\r\n", "\n")
    }
}

/// The SMTP server, while it runs; stopped when dropped.
struct SmtpSink {
    port: u16,
    child: Option<Child>,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    async fn start() -> SmtpSink {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut sink = SmtpSink { port, child: None, mails: Arc::default() };
        sink.restart().await;
        sink
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port; returns once it accepts connections.
    async fn restart(&mut self) {
        // Debian's Python has aiosmtpd; another one first on the PATH may not.
        let python = std::env::var("HOOKLINE_TEST_PYTHON").unwrap_or_else(|_| {
            if std::path::Path::new("/usr/bin/python3").exists() {
                "/usr/bin/python3".into()
            } else {
                "python3".into()
            }
        });
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(self.port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the SMTP server (apt-get install python3-aiosmtpd)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (ready, lines) = tokio::task::spawn_blocking(move || (lines.next(), lines)).await.unwrap();
        assert!(
            matches!(&ready, Some(Ok(l)) if l == "ready"),
            "the SMTP server did not start: {ready:?} (is python3-aiosmtpd installed?)"
        );
        let mails = self.mails.clone();
        // The server's output until it stops, on a thread of its own (blocking reads).
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).expect("the SMTP server prints JSON lines");
                let to =
                    v["to"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
                mails.lock().unwrap().push(Mail { to, data: v["data"].as_str().unwrap().to_string() });
            }
        });
        self.child = Some(child);
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
        }
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// Waits until `n` messages have arrived; the step returns once the server accepted a
    /// message, and the server prints it just before accepting it.
    async fn wait_for(&self, n: usize) -> Vec<Mail> {
        self.wait_longer_for(n, Duration::from_secs(10)).await
    }

    async fn wait_longer_for(&self, n: usize, within: Duration) -> Vec<Mail> {
        let deadline = tokio::time::Instant::now() + within;
        while self.mails().len() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.mails()
    }
}

fn settings(smtp_url: &str) -> Vec<(&str, &str)> {
    vec![
        ("HOOKLINE_WORKERS", "false"),
        ("HOOKLINE_SMTP_URL", smtp_url),
        ("HOOKLINE_PUBLIC_URL", PUBLIC_URL),
        ("HOOKLINE_SMTP_FROM", "Hookline alerts <alerts@hookline.test>"),
        ("HOOKLINE_ALERT_FAILING_AFTER", "1s"),
        ("HOOKLINE_DISABLE_AFTER_FAILURES", "3"),
        // The warning comes halfway through: 2 s into the streak.
        ("HOOKLINE_DISABLE_AFTER_SPAN", "4s"),
    ]
}

/// The alerts as a delivering process runs them, with the same settings as the app.
fn alerts(extra: &[(&str, &str)]) -> Alerts {
    Alerts::from_config(&test_config("sqlite::memory:", extra))
}

async fn stored(app: &TestApp, id: &str) -> webhook::Model {
    webhook::Entity::find_by_id(id.to_string()).one(app.services.database()).await.unwrap().unwrap()
}

/// A failing webhook on store A, and a healthy one subscribed to the operational events.
async fn failing_webhook(app: &TestApp) -> (String, Receiver, Receiver) {
    let watcher = Receiver::start().await.unwrap();
    let (_, secret) = app.create_webhook("store-a", &watcher.url("/ops"), Some(OPS_EVENTS.to_vec())).await;
    watcher.set_secret(&secret);
    let down = Receiver::start().await.unwrap();
    let (id, _) = app.create_webhook("store-a", &down.url("/down"), Some(vec!["review-created"])).await;
    down.configure(Behaviour { secret: None, status: Some(503), delay_ms: None, retry_after: None });
    app.publish("store-a", "review-created", json!({"id": 1})).await;
    app.deliver_due().await;
    (id, watcher, down)
}

fn report(changed: usize, announced: usize, failed: usize) -> StepReport {
    StepReport { changed, announced, failed }
}

/// The operational events the watcher got, as (type, body).
fn ops_events(watcher: &Receiver) -> Vec<(String, Value)> {
    watcher
        .received()
        .iter()
        .map(|r| {
            assert!(r.verified, "operational events are signed like any delivery");
            (
                r.header("x-webhooks-event-type").unwrap_or_default().to_string(),
                serde_json::from_str(&r.body).unwrap(),
            )
        })
        .collect()
}

on_both_databases! {
    async fn a_failing_webhook_warns_its_store_once_per_state_until_it_recovers(backend: Backend) {
        let mut sink = SmtpSink::start().await;
        let url = sink.url();
        let extra = settings(&url);
        let app = spawn_with(backend, &extra).await;
        app.services.create_merchant("second@a.test", PASSWORD, "store-a").await.unwrap();
        let alerts = alerts(&extra);
        let (id, watcher, down) = failing_webhook(&app).await;
        let hook = stored(&app, &id).await;
        let since = hook.failing_since.expect("the failure began a streak");
        let link = format!("{PUBLIC_URL}/settings/api/webhooks/{id}");
        let expect_mail = |mail: &Mail, subject: &str| {
            assert_eq!(mail.to, vec!["merchant@a.test".to_string(), "second@a.test".to_string()], "only store A's merchants");
            assert_eq!(mail.subject(), format!("{subject}: {} (Store A)", hook.url));
            assert!(mail.header("from").is_some_and(|f| f.ends_with("<alerts@hookline.test>")), "{:?}", mail.header("from"));
            let text = mail.text();
            assert!(text.contains(&format!("Open the webhook: {link}\n")), "{text}");
            text
        };

        // Not failing for long enough yet.
        assert_eq!(alerts.step(&app.services, since + 500).await.unwrap(), report(0, 0, 0));
        assert!(sink.mails().is_empty());

        // Failing: one email, one event; a later look adds nothing.
        assert_eq!(alerts.step(&app.services, since + 1_000).await.unwrap(), report(1, 1, 0));
        assert_eq!(alerts.step(&app.services, since + 1_500).await.unwrap(), report(0, 0, 0));
        let mails = sink.wait_for(1).await;
        assert_eq!(mails.len(), 1);
        let text = expect_mail(&mails[0], "Webhook failing");
        assert!(text.contains("Failing since "), "{text}");
        // The same moment as an operational event, to the webhook subscribed to it.
        let last_event = async || {
            app.deliver_due().await;
            ops_events(&watcher).pop().expect("an operational event")
        };
        let (kind, body) = last_event().await;
        assert_eq!((kind.as_str(), body["stage"].as_str()), ("webhook.failing", Some("failing")));
        assert_eq!(body["webhook_id"], id.as_str());
        assert_eq!(body["url"], hook.url.as_str());
        assert!(body["consecutive_failures"].as_i64().is_some_and(|n| n >= 1), "{body}");

        // Halfway through the span: turn-off is near.
        assert_eq!(alerts.step(&app.services, since + 2_000).await.unwrap(), report(1, 1, 0));
        assert_eq!(alerts.step(&app.services, since + 3_000).await.unwrap(), report(0, 0, 0));
        let mails = sink.wait_for(2).await;
        assert_eq!(mails.len(), 2);
        let text = expect_mail(&mails[1], "Webhook turning off soon");
        assert!(text.contains("Unless a delivery succeeds, Hookline turns this webhook off at"), "{text}");
        let (kind, body) = last_event().await;
        assert_eq!((kind.as_str(), body["stage"].as_str()), ("webhook.failing", Some("turning_off")));

        // The streak as if it had begun 10 s ago (instead of waiting for the span), and
        // enough failures: the next one turns the webhook off.
        app.services
            .database()
            .execute_unprepared(&format!(
                "UPDATE webhooks SET failing_since = failing_since - 10000, alert_streak = alert_streak - 10000, \
                 consecutive_failures = 5 WHERE id = '{id}'"
            ))
            .await
            .unwrap();
        app.publish("store-a", "review-created", json!({"id": 2})).await;
        app.deliver_due().await;
        assert!(!stored(&app, &id).await.enabled, "turned off after the span");
        assert_eq!(alerts.step(&app.services, now_ms()).await.unwrap(), report(1, 1, 0));
        assert_eq!(alerts.step(&app.services, now_ms()).await.unwrap(), report(0, 0, 0));
        let mails = sink.wait_for(3).await;
        assert_eq!(mails.len(), 3);
        let text = expect_mail(&mails[2], "Webhook turned off");
        assert!(text.contains("Turned off automatically at"), "{text}");
        assert_eq!(last_event().await.0, "webhook.disabled", "published by the recorder, as before");

        // Turned back on, it fails no more: the first success is a recovery.
        down.configure(Behaviour { secret: None, status: Some(200), delay_ms: None, retry_after: None });
        let (status, body) = app.api("PATCH", &format!("/webhooks/{id}"), Some(&app.admin_key), Some(json!({"enabled": true}))).await;
        assert_eq!(status, 200, "{body}");
        // Back on, before any delivery: nothing to say yet.
        assert_eq!(alerts.step(&app.services, now_ms()).await.unwrap(), report(0, 0, 0));
        app.publish("store-a", "review-created", json!({"id": 3})).await;
        app.deliver_due().await;
        assert!(stored(&app, &id).await.last_success_at.is_some());
        assert_eq!(alerts.step(&app.services, now_ms()).await.unwrap(), report(1, 1, 0));
        assert_eq!(alerts.step(&app.services, now_ms()).await.unwrap(), report(0, 0, 0));
        let mails = sink.wait_for(4).await;
        assert_eq!(mails.len(), 4, "one email per state");
        let text = expect_mail(&mails[3], "Webhook recovered");
        assert!(text.contains("the webhook is healthy again"), "{text}");
        let (kind, body) = last_event().await;
        assert_eq!(kind, "webhook.recovered");
        assert_eq!(body["webhook_id"], id.as_str());
        assert!(body["recovered_at"].is_string(), "{body}");
        assert_eq!(ops_events(&watcher).len(), 4, "one event per state");
        sink.stop().await;
    }

    async fn several_processes_announce_each_change_once(backend: Backend) {
        let mut sink = SmtpSink::start().await;
        let url = sink.url();
        let extra = settings(&url);
        let app = spawn_with(backend, &extra).await;
        let (id, watcher, _down) = failing_webhook(&app).await;
        let since = stored(&app, &id).await.failing_since.unwrap();
        // Three processes look at the same moment.
        let (a, b, c) = (alerts(&extra), alerts(&extra), alerts(&extra));
        let (ra, rb, rc) = tokio::join!(
            a.step(&app.services, since + 1_000),
            b.step(&app.services, since + 1_000),
            c.step(&app.services, since + 1_000),
        );
        let reports = [ra.unwrap(), rb.unwrap(), rc.unwrap()];
        assert_eq!(reports.iter().map(|r| r.changed).sum::<usize>(), 1, "{reports:?}");
        assert_eq!(reports.iter().map(|r| r.announced).sum::<usize>(), 1, "{reports:?}");
        assert_eq!(sink.wait_for(1).await.len(), 1);
        app.deliver_due().await;
        assert_eq!(ops_events(&watcher).len(), 1);
        // Nothing more to say, whoever looks.
        for process in [&a, &b, &c] {
            assert_eq!(process.step(&app.services, since + 1_500).await.unwrap(), report(0, 0, 0));
        }
        assert_eq!(sink.mails().len(), 1);
        sink.stop().await;
    }

    async fn an_smtp_outage_delays_the_email_and_nothing_else(backend: Backend) {
        let mut sink = SmtpSink::start().await;
        let url = sink.url();
        let mut extra = settings(&url);
        // No warning of turn-off within the minute this test looks at.
        extra.push(("HOOKLINE_DISABLE_AFTER_SPAN", "1h"));
        let app = spawn_with(backend, &extra).await;
        let alerts = alerts(&extra);
        let (id, watcher, _down) = failing_webhook(&app).await;
        let since = stored(&app, &id).await.failing_since.unwrap();
        sink.stop().await;

        // The state is recorded and the event published; the email fails and is owed.
        assert_eq!(alerts.step(&app.services, since + 1_000).await.unwrap(), report(1, 0, 1));
        // Deliveries go on meanwhile: the event reaches the watcher.
        app.deliver_due().await;
        assert_eq!(ops_events(&watcher).len(), 1);
        // Not tried again before its time (30 s).
        assert_eq!(alerts.step(&app.services, since + 30_000).await.unwrap(), report(0, 0, 0));

        sink.restart().await;
        assert_eq!(alerts.step(&app.services, since + 31_000).await.unwrap(), report(0, 1, 0));
        let mails = sink.wait_for(1).await;
        assert_eq!(mails.len(), 1);
        assert!(mails[0].subject().starts_with("Webhook failing: "), "{}", mails[0].subject());
        assert_eq!(alerts.step(&app.services, since + 62_000).await.unwrap(), report(0, 0, 0));
        assert_eq!(sink.mails().len(), 1);
        // The retry published no second event (its idempotency key).
        app.deliver_due().await;
        assert_eq!(ops_events(&watcher).len(), 1);
        sink.stop().await;
    }

    async fn an_application_tenants_webhook_alerts_by_event_only(backend: Backend) {
        let mut sink = SmtpSink::start().await;
        let url = sink.url();
        let extra = settings(&url);
        let app = spawn_with(backend, &extra).await;
        let alerts = alerts(&extra);
        let (status, body) =
            app.api("POST", "/applications", Some(&app.admin_key), Some(json!({"id": "app-1", "name": "App 1"}))).await;
        assert_eq!(status, 201, "{body}");
        let watcher = Receiver::start().await.unwrap();
        let down = Receiver::start().await.unwrap();
        down.configure(Behaviour { secret: None, status: Some(503), delay_ms: None, retry_after: None });
        let mut ids = Vec::new();
        for (url, events) in [(watcher.url("/ops"), json!(OPS_EVENTS)), (down.url("/down"), Value::Null)] {
            let (status, body) = app
                .api("POST", "/webhooks", Some(&app.admin_key), Some(json!({
                    "tenant_type": "application", "tenant_id": "app-1", "url": url, "event_types": events,
                })))
                .await;
            assert_eq!(status, 201, "{body}");
            ids.push(body["id"].as_str().unwrap().to_string());
            if ids.len() == 1 {
                watcher.set_secret(body["secret"].as_str().unwrap());
            }
        }
        let Some((event_type, _)) = app
            .services
            .database()
            .query_one_raw(sea_orm::Statement::from_string(
                app.services.database().get_database_backend(),
                "SELECT name FROM event_types WHERE tenant_type = 'application' ORDER BY name LIMIT 1",
            ))
            .await
            .unwrap()
            .map(|row| (row.try_get::<String>("", "name").unwrap(), ()))
        else {
            panic!("the catalog has an application event type");
        };
        // The watcher subscribes to the operational events only; the down one to everything.
        let (status, body) = app
            .api("POST", "/events", Some(&app.admin_key), Some(json!({
                "tenant_type": "application", "tenant_id": "app-1", "event_type": event_type, "payload": {"id": 1},
            })))
            .await;
        assert_eq!(status, 202, "{body}");
        app.deliver_due().await;
        let since = stored(&app, &ids[1]).await.failing_since.expect("the application's webhook fails");
        assert_eq!(alerts.step(&app.services, since + 1_000).await.unwrap(), report(1, 1, 0));
        app.deliver_due().await;
        let events = ops_events(&watcher);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, "webhook.failing");
        assert_eq!(events[0].1["webhook_id"], ids[1].as_str());
        assert!(sink.mails().is_empty(), "an application has no merchants to email");
        sink.stop().await;
    }
}

/// The step runs by itself in a process that delivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivering_process_sends_alerts_by_itself() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let mut extra = settings(&url);
    extra.retain(|(k, _)| *k != "HOOKLINE_WORKERS");
    extra.extend([("HOOKLINE_ALERT_FAILING_AFTER", "0ms"), ("HOOKLINE_DISABLE_AFTER_SPAN", "1h")]);
    let app = spawn_with(Backend::Sqlite, &extra).await;
    let down = Receiver::start().await.unwrap();
    down.configure(Behaviour { secret: None, status: Some(503), delay_ms: None, retry_after: None });
    let (id, _) = app.create_webhook("store-a", &down.url("/down"), Some(vec!["review-created"])).await;
    app.publish("store-a", "review-created", json!({"id": 1})).await;
    // The step comes every 5 seconds.
    let mails = sink.wait_longer_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].subject().starts_with("Webhook failing: "), "{}", mails[0].subject());
    assert!(mails[0].text().contains(&format!("{PUBLIC_URL}/settings/api/webhooks/{id}")));
}

#[test]
fn alert_settings_are_checked_at_start() {
    use hookline::config::Config;
    let with = |pairs: &[(&str, &str)]| {
        let vars = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_map(&vars)
    };
    let cfg = with(&[("HOOKLINE_PUBLIC_URL", "https://hooks.example.com/")]).unwrap();
    assert!(cfg.smtp_url.is_none(), "alert emails are off by default");
    assert_eq!(cfg.smtp_from.email.to_string(), "hookline@hooks.example.com");
    assert_eq!(cfg.alert_failing_after, Duration::from_secs(3600));
    let err = with(&[("HOOKLINE_SMTP_URL", "http://mail.example")]).unwrap_err();
    assert_eq!(err.key, "HOOKLINE_SMTP_URL");
    let err = with(&[("HOOKLINE_SMTP_FROM", "nobody")]).unwrap_err();
    assert_eq!(err.key, "HOOKLINE_SMTP_FROM");
    let err = with(&[("HOOKLINE_ALERT_FAILING_AFTER", "soon")]).unwrap_err();
    assert_eq!(err.key, "HOOKLINE_ALERT_FAILING_AFTER");
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
