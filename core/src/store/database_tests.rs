//! Each store function on both databases: a fresh SQLite file, and a fresh database on the
//! PostgreSQL server named by `HOOKLINE_TEST_POSTGRES_URL` (skipped, with a note, when unset).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement, Value};

use super::attempts::{
    Attempt, DisablePolicy, Settle, Steer, all_succeeded_statement, count_hours_sql, insert_attempts_sql,
    update_deliveries_sql,
};
use super::queue::{Claimed, Lease, ProbeTaken};
use super::webhooks::{Which, turn_off};
use super::{Store, placeholders};
use crate::entities::webhook;
use crate::{
    ApplicationId, AttemptErrorClass, AttemptTrigger, DeliveryStatus, DisabledReason, HOUR_MS, PauseReason,
    StoreId,
};

pub(super) struct TestDb {
    db: DatabaseConnection,
    gate: super::WriteGate,
    file: Option<PathBuf>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
        }
    }
}

impl TestDb {
    fn store(&self) -> Store<'_> {
        Store::new(&self.db, &self.gate)
    }

    pub(super) async fn sqlite() -> TestDb {
        let file = std::env::temp_dir().join(format!("hookline-store-{}.db", uuid::Uuid::new_v4().simple()));
        let db =
            crate::connect(&format!("sqlite://{}?mode=rwc", file.display())).await.expect("a SQLite file");
        crate::migrate(&db).await.expect("the schema");
        TestDb { gate: super::WriteGate::new(&db), db, file: Some(file) }
    }

    pub(super) async fn postgres() -> Option<TestDb> {
        let Ok(admin_url) = std::env::var("HOOKLINE_TEST_POSTGRES_URL") else {
            eprintln!("skipped on PostgreSQL: HOOKLINE_TEST_POSTGRES_URL is not set");
            return None;
        };
        let name = format!("hookline_store_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await.expect("the test PostgreSQL server answers");
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("a test database");
        admin.close().await.ok();
        let (base, _) = admin_url.rsplit_once('/').expect("a database URL with a path");
        let db = crate::connect(&format!("{base}/{name}")).await.expect("the test database");
        crate::migrate(&db).await.expect("the schema");
        Some(TestDb { gate: super::WriteGate::new(&db), db, file: None })
    }

    async fn exec(&self, sql: &str, values: Vec<Value>) {
        self.db
            .execute_raw(Statement::from_sql_and_values(self.db.get_database_backend(), sql, values))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn add_webhook(&self, id: &str) {
        self.exec(
            "INSERT INTO webhooks (id, tenant_type, tenant_id, url, description, enabled, consecutive_failures, \
             created_at, updated_at) VALUES ($1, 'store', 'store-a', $2, '', $3, 0, 0, 0)",
            vec![id.into(), format!("http://127.0.0.1:9/{id}").into(), true.into()],
        )
        .await;
    }

    async fn add_event(&self, id: &str) {
        self.exec(
            "INSERT INTO events (id, tenant_type, tenant_id, event_type, payload, sequence, received_at) \
             VALUES ($1, 'store', 'store-a', 'review-created', '{}', 1, 0)",
            vec![id.into()],
        )
        .await;
    }

    /// A delivery of event `ev` to webhook `hook` with this status, due time and lease.
    async fn add_delivery(
        &self,
        id: &str,
        ev: &str,
        hook: &str,
        status: &str,
        due: Option<i64>,
        leased_by: Option<&str>,
    ) {
        self.exec(
            "INSERT INTO deliveries (id, event_id, webhook_id, tenant_type, tenant_id, event_type, status, attempts, \
             manual_attempts, next_attempt_at, leased_by, created_at, updated_at) \
             VALUES ($1, $2, $3, 'store', 'store-a', 'review-created', $4, 0, 0, $5, $6, 0, 0)",
            vec![id.into(), ev.into(), hook.into(), status.into(), due.into(), leased_by.map(str::to_string).into()],
        )
        .await;
    }

    async fn delivery(&self, id: &str) -> DeliveryRow {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                "SELECT status, attempts, manual_attempts, next_attempt_at, leased_by, last_status_code \
                 FROM deliveries WHERE id = $1",
                [id.into()],
            ))
            .await
            .unwrap()
            .expect("the delivery");
        DeliveryRow {
            status: row.try_get("", "status").unwrap(),
            attempts: row.try_get("", "attempts").unwrap(),
            manual_attempts: row.try_get("", "manual_attempts").unwrap(),
            next_attempt_at: row.try_get("", "next_attempt_at").unwrap(),
            leased_by: row.try_get("", "leased_by").unwrap(),
            last_status_code: row.try_get("", "last_status_code").unwrap(),
        }
    }

    /// `(enabled, disabled_reason, consecutive_failures, last_success_at)`.
    async fn health(&self, id: &str) -> (bool, Option<String>, i32, Option<i64>) {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                "SELECT enabled, disabled_reason, consecutive_failures, last_success_at FROM webhooks WHERE id = $1",
                [id.into()],
            ))
            .await
            .unwrap()
            .expect("the webhook");
        (
            row.try_get("", "enabled").unwrap(),
            row.try_get("", "disabled_reason").unwrap(),
            row.try_get("", "consecutive_failures").unwrap(),
            row.try_get("", "last_success_at").unwrap(),
        )
    }

    /// `(succeeded, failed)` of the webhook's hour starting at `hour`.
    async fn hour(&self, id: &str, hour: i64) -> Option<(i64, i64)> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                "SELECT succeeded, failed FROM webhook_hours WHERE webhook_id = $1 AND hour = $2",
                [id.into(), hour.into()],
            ))
            .await
            .unwrap()?;
        Some((row.try_get("", "succeeded").unwrap(), row.try_get("", "failed").unwrap()))
    }

    /// `(trigger, response_status, error_class)` of the delivery's attempts.
    async fn attempts_of(&self, delivery: &str) -> Vec<(String, Option<i32>, Option<String>)> {
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                "SELECT trigger, response_status, error_class FROM attempts WHERE delivery_id = $1 ORDER BY id",
                [delivery.into()],
            ))
            .await
            .unwrap();
        rows.into_iter()
            .map(|r| {
                (
                    r.try_get("", "trigger").unwrap(),
                    r.try_get("", "response_status").unwrap(),
                    r.try_get("", "error_class").unwrap(),
                )
            })
            .collect()
    }

    /// The webhook as the store loads it.
    async fn webhook(&self, id: &str) -> Arc<webhook::Model> {
        let claim =
            Claimed { id: String::new(), event_id: String::new(), webhook_id: id.into(), attempts: 0 };
        let mut loaded = self.store().load(&[claim], &[id.to_string()]).await.unwrap();
        loaded.webhooks.remove(id).expect("the webhook")
    }
}

#[derive(Debug)]
struct DeliveryRow {
    status: String,
    attempts: i32,
    manual_attempts: i32,
    next_attempt_at: Option<i64>,
    leased_by: Option<String>,
    last_status_code: Option<i32>,
}

const NOW: i64 = 1_700_000_000_000;

fn lease(holder: &str) -> Lease<'_> {
    Lease { holder, until: NOW + 60_000 }
}

fn policy() -> DisablePolicy {
    DisablePolicy { after_failures: 3, after_span: Duration::ZERO }
}

/// An attempt of `delivery` answered with `status` (or not answered), at `NOW`.
fn attempt(delivery: &str, hook: &Arc<webhook::Model>, status: Option<u16>, settle: Settle) -> Attempt {
    let error = match status {
        Some(s) if (200..300).contains(&s) => None,
        Some(s) => Some((AttemptErrorClass::HttpStatus, format!("HTTP {s}"))),
        None => Some((AttemptErrorClass::Timeout, "no response".into())),
    };
    Attempt {
        delivery_id: delivery.into(),
        webhook: hook.clone(),
        trigger: AttemptTrigger::Scheduled,
        request_headers: vec![("webhook-id".into(), "ev".into())],
        response_status: status,
        response_headers: vec![("content-type".into(), "text/plain".into())],
        response_body: status.map(|_| "ok".into()),
        error,
        duration: Duration::from_millis(12),
        ended_at: NOW,
        settle,
        steer: None,
        ordered: false,
        probe: false,
    }
}

fn succeeded(delivery: &str, hook: &Arc<webhook::Model>) -> Attempt {
    attempt(delivery, hook, Some(200), Settle::To(DeliveryStatus::Succeeded, None))
}

fn failed(delivery: &str, hook: &Arc<webhook::Model>, status: Option<u16>) -> Attempt {
    attempt(delivery, hook, status, Settle::To(DeliveryStatus::Pending, Some(NOW + 5_000)))
}

macro_rules! on_both_databases {
    ($(async fn $name:ident($db:ident: &TestDb) $body:block)*) => {$(
        mod $name {
            use super::*;

            async fn run($db: &TestDb) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(&TestDb::sqlite().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = TestDb::postgres().await {
                    run(&db).await
                }
            }
        }
    )*};
}

on_both_databases! {
    async fn a_claim_leases_due_deliveries_oldest_first_up_to_its_limit(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_event("e").await;
        db.add_delivery("late", "e", "w", "pending", Some(NOW - 1_000), None).await;
        db.add_delivery("early", "e", "w", "pending", Some(NOW - 5_000), None).await;
        db.add_delivery("later", "e", "w", "pending", Some(NOW - 500), None).await;
        db.add_delivery("future", "e", "w", "pending", Some(NOW + 1_000), None).await;
        db.add_delivery("done", "e", "w", "succeeded", None, None).await;
        let claimed = db.store().claim(lease("me"), NOW, 2, &[]).await.unwrap();
        let ids: Vec<&str> = claimed.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids.len(), 2);
        assert!(ids.contains(&"early") && ids.contains(&"late"), "{ids:?}");
        let row = db.delivery("early").await;
        assert_eq!((row.status.as_str(), row.leased_by.as_deref()), ("delivering", Some("me")));
        assert_eq!(row.next_attempt_at, Some(NOW + 60_000), "due again when the lease ends");
        let rest = db.store().claim(lease("other"), NOW, 10, &[]).await.unwrap();
        assert_eq!(rest.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["later"], "leased ones are not due");
    }

    async fn a_claim_takes_expired_leases_and_leaves_out_full_webhooks(db: &TestDb) {
        db.add_webhook("full").await;
        db.add_webhook("free").await;
        db.add_event("e").await;
        db.add_delivery("crashed", "e", "free", "delivering", Some(NOW - 1), Some("dead")).await;
        db.add_delivery("waiting", "e", "full", "pending", Some(NOW - 10), None).await;
        let claimed = db.store().claim(lease("me"), NOW, 10, &["full".to_string()]).await.unwrap();
        assert_eq!(claimed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["crashed"]);
        assert_eq!(db.delivery("waiting").await.status, "pending");
    }

    async fn a_claim_counts_only_scheduled_attempts(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_event("e").await;
        db.add_delivery("d", "e", "w", "pending", Some(NOW), None).await;
        db.exec("UPDATE deliveries SET attempts = 3, manual_attempts = 2", vec![]).await;
        let claimed = db.store().claim(lease("me"), NOW, 10, &[]).await.unwrap();
        assert_eq!(claimed[0].attempts, 1, "resends do not use up the retry schedule");
    }

    async fn unclaiming_gives_back_only_the_holders_deliveries(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_event("e").await;
        db.add_delivery("mine", "e", "w", "delivering", Some(NOW + 60_000), Some("me")).await;
        db.add_delivery("theirs", "e", "w", "delivering", Some(NOW + 60_000), Some("them")).await;
        let ids = ["mine".to_string(), "theirs".to_string()];
        db.store().unclaim("me", &ids, NOW).await.unwrap();
        let mine = db.delivery("mine").await;
        assert_eq!((mine.status.as_str(), mine.next_attempt_at, mine.leased_by), ("pending", Some(NOW), None));
        assert_eq!(db.delivery("theirs").await.leased_by.as_deref(), Some("them"));
        db.store().unclaim("me", &[], NOW).await.unwrap();
    }

    async fn loading_a_claim_reads_its_events_and_webhooks_once_each(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_event("e1").await;
        db.add_event("e2").await;
        let claim = |id: &str, ev: &str, hook: &str| Claimed { id: id.into(), event_id: ev.into(), webhook_id: hook.into(), attempts: 0 };
        let claims = [claim("d1", "e1", "w"), claim("d2", "e2", "w"), claim("d3", "e2", "gone")];
        let loaded = db.store().load(&claims, &super::super::queue::webhook_ids(&claims)).await.unwrap();
        assert_eq!(loaded.events.len(), 2);
        assert_eq!(loaded.webhooks.keys().collect::<Vec<_>>(), ["w"], "a deleted webhook is simply absent");
        assert!(db.store().load(&[], &[]).await.unwrap().events.is_empty());
    }

    async fn settling_without_an_attempt_needs_the_lease(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_event("e").await;
        db.add_delivery("d", "e", "w", "delivering", Some(NOW + 60_000), Some("me")).await;
        db.store().settle_unattempted("d", "them", DeliveryStatus::Skipped, NOW).await.unwrap();
        assert_eq!(db.delivery("d").await.status, "delivering", "another holder's lease stands");
        db.store().settle_unattempted("d", "me", DeliveryStatus::Skipped, NOW).await.unwrap();
        let row = db.delivery("d").await;
        assert_eq!((row.status.as_str(), row.next_attempt_at, row.leased_by), ("skipped", None, None));
    }

    async fn a_delivery_is_found_with_its_webhook_and_event(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_event("e").await;
        db.add_delivery("d", "e", "w", "failed", None, None).await;
        db.add_delivery("orphan", "e", "deleted", "failed", None, None).await;
        let (found, hook, ev) = db.store().delivery_with_parts("d").await.unwrap().expect("found");
        assert_eq!((found.id.as_str(), hook.map(|h| h.id), ev.map(|e| e.id)), ("d", Some("w".into()), Some("e".into())));
        let (_, hook, _) = db.store().delivery_with_parts("orphan").await.unwrap().expect("found");
        assert!(hook.is_none());
        assert!(db.store().delivery_with_parts("nothing").await.unwrap().is_none());
    }

    async fn due_deliveries_are_counted_up_to_the_cap(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_event("e").await;
        for i in 0..5 {
            db.add_delivery(&format!("d{i}"), "e", "w", "pending", Some(NOW - i), None).await;
        }
        db.add_delivery("later", "e", "w", "pending", Some(NOW + 1), None).await;
        assert_eq!(db.store().count_due(NOW, 100).await.unwrap(), 5);
        assert_eq!(db.store().count_due(NOW, 3).await.unwrap(), 3);
    }

    async fn recorded_successes_settle_count_and_reset_health(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_event("e").await;
        db.exec("UPDATE webhooks SET consecutive_failures = 2, failing_since = 1", vec![]).await;
        let hook = db.webhook("w").await;
        for id in ["d1", "d2"] {
            db.add_delivery(id, "e", "w", "delivering", Some(NOW + 60_000), Some("me")).await;
        }
        let turned_off = db.store().record(&[succeeded("d1", &hook), succeeded("d2", &hook)], policy()).await.unwrap();
        assert!(turned_off.is_empty());
        let row = db.delivery("d1").await;
        assert_eq!((row.status.as_str(), row.attempts, row.leased_by, row.last_status_code), ("succeeded", 1, None, Some(200)));
        assert_eq!(db.attempts_of("d2").await, [("scheduled".to_string(), Some(200), None)]);
        assert_eq!(db.hour("w", NOW / HOUR_MS * HOUR_MS).await, Some((2, 0)));
        assert_eq!(db.health("w").await, (true, None, 0, Some(NOW)));
    }

    async fn recorded_failures_reschedule_and_turn_the_webhook_off_after_the_policy(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_event("e").await;
        let hook = db.webhook("w").await;
        for id in ["d1", "d2", "d3"] {
            db.add_delivery(id, "e", "w", "delivering", Some(NOW + 60_000), Some("me")).await;
        }
        let turned_off = db.store().record(&[failed("d1", &hook, Some(500)), failed("d2", &hook, None)], policy()).await.unwrap();
        assert!(turned_off.is_empty(), "two failures of three");
        let row = db.delivery("d1").await;
        assert_eq!((row.status.as_str(), row.next_attempt_at, row.leased_by), ("pending", Some(NOW + 5_000), None));
        assert_eq!(db.attempts_of("d2").await, [("scheduled".to_string(), None, Some("timeout".to_string()))]);
        assert_eq!(db.health("w").await, (true, None, 2, None));
        let turned_off = db.store().record(&[failed("d3", &hook, Some(503))], policy()).await.unwrap();
        assert_eq!(turned_off.iter().map(|t| t.reason).collect::<Vec<_>>(), [DisabledReason::Automatic]);
        assert_eq!(db.health("w").await, (false, Some("automatic".to_string()), 3, None));
        assert_eq!(db.hour("w", NOW / HOUR_MS * HOUR_MS).await, Some((0, 3)));
    }

    async fn gone_turns_the_webhook_off_at_once_and_a_mixed_batch_is_one_transaction(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_event("e").await;
        let hook = db.webhook("w").await;
        for id in ["ok", "gone"] {
            db.add_delivery(id, "e", "w", "delivering", Some(NOW + 60_000), Some("me")).await;
        }
        let gone = attempt("gone", &hook, Some(410), Settle::To(DeliveryStatus::Failed, None));
        let turned_off = db.store().record(&[succeeded("ok", &hook), gone], policy()).await.unwrap();
        assert_eq!(turned_off.iter().map(|t| t.reason).collect::<Vec<_>>(), [DisabledReason::Gone]);
        assert_eq!(db.delivery("ok").await.status, "succeeded");
        assert_eq!(db.delivery("gone").await.status, "failed");
        assert_eq!(db.health("w").await.1.as_deref(), Some("gone"));
        assert_eq!(db.hour("w", NOW / HOUR_MS * HOUR_MS).await, Some((1, 1)));
    }

    async fn an_unreadable_signing_secret_does_not_count_against_the_webhook(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_event("e").await;
        let hook = db.webhook("w").await;
        db.add_delivery("d", "e", "w", "delivering", Some(NOW + 60_000), Some("me")).await;
        let mut unsigned = failed("d", &hook, None);
        unsigned.error = Some((AttemptErrorClass::SigningSecret, "not sent".into()));
        unsigned.response_body = None;
        db.store().record(&[unsigned], policy()).await.unwrap();
        assert_eq!(db.health("w").await, (true, None, 0, None));
        assert_eq!(db.delivery("d").await.status, "pending", "retried once the key is back");
    }

    async fn a_manual_resend_keeps_the_schedule_unless_it_succeeds(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_event("e").await;
        let hook = db.webhook("w").await;
        db.add_delivery("retrying", "e", "w", "pending", Some(NOW + 9_000), None).await;
        db.add_delivery("failed", "e", "w", "failed", None, None).await;
        let mut resend = failed("retrying", &hook, Some(500));
        resend.trigger = AttemptTrigger::Manual;
        resend.settle = Settle::UnlessSucceeded;
        let mut fixed = succeeded("failed", &hook);
        fixed.trigger = AttemptTrigger::Manual;
        fixed.settle = Settle::UnlessSucceeded;
        db.store().record(&[resend, fixed], policy()).await.unwrap();
        let row = db.delivery("retrying").await;
        assert_eq!((row.status.as_str(), row.next_attempt_at, row.manual_attempts), ("pending", Some(NOW + 9_000), 1));
        assert_eq!(db.delivery("failed").await.status, "succeeded");
    }

    async fn turning_off_touches_only_webhooks_still_on(db: &TestDb) {
        db.add_webhook("on").await;
        db.add_webhook("off").await;
        db.exec("UPDATE webhooks SET enabled = $1, disabled_reason = 'gone' WHERE id = 'off'", vec![false.into()]).await;
        assert_eq!(turn_off(&db.db, Which::One("on"), DisabledReason::Manual, NOW).await.unwrap(), 1);
        assert_eq!(turn_off(&db.db, Which::One("off"), DisabledReason::Manual, NOW).await.unwrap(), 0);
        assert_eq!(db.health("on").await.1.as_deref(), Some("manual"));
        assert_eq!(db.health("off").await.1.as_deref(), Some("gone"), "the first reason stays");
        db.exec("UPDATE webhooks SET application_id = 'app' WHERE id = 'on'", vec![]).await;
        db.exec("UPDATE webhooks SET enabled = $1, disabled_reason = NULL WHERE id = 'on'", vec![true.into()]).await;
        let (app, store) = (ApplicationId::from("app"), StoreId::from("store-a"));
        let disconnected = Which::OfApplicationInStore { application_id: &app, store_id: &store };
        assert_eq!(turn_off(&db.db, disconnected, DisabledReason::Disconnected, NOW).await.unwrap(), 1);
        assert_eq!(db.health("on").await.1.as_deref(), Some("disconnected"));
    }

    async fn a_batch_is_planned_as_a_few_multi_row_statements(db: &TestDb) {
        db.add_webhook("a").await;
        db.add_webhook("b").await;
        let (a, b) = (db.webhook("a").await, db.webhook("b").await);
        let batch = [succeeded("d1", &a), failed("d2", &a, Some(500)), succeeded("d3", &b)];
        let (sql, values) = insert_attempts_sql(&batch, 0);
        assert_eq!(values.len(), 3 * 13, "13 columns per attempt");
        assert!(sql.ends_with(&format!("VALUES {}", placeholders(3, 13, 0))), "{sql}");
        let (_, values) = count_hours_sql(&batch, 0);
        assert_eq!(values.len(), 2 * 5, "one counter row per webhook and hour");
        let (list, update, values) = update_deliveries_sql(&batch, 5);
        assert_eq!(values.len(), 3 * 9);
        assert!(list.contains("CAST($6 AS TEXT)") && list.contains("CAST($32 AS INTEGER)"), "{list}");
        assert!(update.starts_with("UPDATE deliveries SET attempts = attempts + 1"));
        let statement = all_succeeded_statement(&batch);
        assert!(statement.sql.contains("unnest($1::text[]"), "the batch as one array per column: {}", statement.sql);
        assert!(!statement.sql.contains("$18"), "no ordered attempt, no wake-up's time");
        assert!(statement.sql.contains("deliveries.id = v.id AND deliveries.id = ANY(ARRAY(SELECT id FROM v))"));
        let one = all_succeeded_statement(&batch[..1]);
        assert_eq!(one.sql, statement.sql, "one text whatever the batch's size: prepared and planned once");
    }
}

on_both_databases! {
    async fn a_claim_leaves_out_a_paused_webhook_until_its_pause_ends(db: &TestDb) {
        db.add_webhook("paused").await;
        db.add_webhook("flowing").await;
        db.add_event("e").await;
        db.add_delivery("held", "e", "paused", "pending", Some(NOW - 10), None).await;
        db.add_delivery("goes", "e", "flowing", "pending", Some(NOW - 5), None).await;
        let hook = db.webhook("paused").await;
        let mut busy = failed("held", &hook, Some(429));
        busy.steer = Some(Steer::Pause { until: NOW + 1_000 });
        db.store().record(&[busy], policy()).await.unwrap();
        let row = db.webhook("paused").await;
        assert_eq!((row.paused_until, row.pause_reason), (Some(NOW + 1_000), Some(PauseReason::RetryAfter)));
        let held = db.delivery("held").await;
        assert_eq!(held.attempts - held.manual_attempts, 0, "asked to wait: the schedule is not used up");
        db.exec("UPDATE deliveries SET next_attempt_at = $1 WHERE id = 'held'", vec![(NOW - 10).into()]).await;
        let claimed = db.store().claim(lease("me"), NOW, 10, &[]).await.unwrap();
        assert_eq!(claimed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["goes"], "the paused webhook waits");
        // A shorter pause does not shorten it.
        let mut shorter = failed("held", &hook, Some(503));
        shorter.steer = Some(Steer::Pause { until: NOW + 500 });
        db.store().record(&[shorter], policy()).await.unwrap();
        assert_eq!(db.webhook("paused").await.paused_until, Some(NOW + 1_000));
        db.exec("UPDATE deliveries SET next_attempt_at = $1 WHERE id = 'held'", vec![(NOW - 10).into()]).await;
        let claimed = db.store().claim(lease("me"), NOW + 1_000, 10, &[]).await.unwrap();
        assert_eq!(claimed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["held"], "claimed once it ends");
    }

    async fn one_caller_takes_the_breakers_probe_and_a_2xx_closes_it(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_event("e").await;
        db.add_delivery("d", "e", "w", "pending", Some(NOW), None).await;
        let hook = db.webhook("w").await;
        let mut refused = failed("d", &hook, None);
        refused.steer = Some(Steer::Breaker { interval_ms: 5_000, until: NOW + 5_000 });
        db.store().record(&[refused], policy()).await.unwrap();
        let row = db.webhook("w").await;
        assert_eq!(
            (row.paused_until, row.pause_reason, row.probe_interval_ms),
            (Some(NOW + 5_000), Some(PauseReason::CircuitOpen), Some(5_000))
        );
        let not_yet = db.store().take_probe("w", NOW + 4_999).await.unwrap();
        assert!(matches!(not_yet, ProbeTaken::Not { paused_until: Some(t), .. } if t == NOW + 5_000));
        assert_eq!(db.store().take_probe("w", NOW + 5_000).await.unwrap(), ProbeTaken::Taken);
        assert_ne!(db.store().take_probe("w", NOW + 5_000).await.unwrap(), ProbeTaken::Taken, "only one");
        assert_eq!(db.webhook("w").await.paused_until, Some(NOW + 10_000), "the next probe an interval later");
        let mut probe = succeeded("d", &hook);
        probe.steer = Some(Steer::Close);
        db.store().record(&[probe], policy()).await.unwrap();
        let row = db.webhook("w").await;
        assert_eq!((row.paused_until, row.pause_reason, row.probe_interval_ms), (None, None, None));
        assert_eq!(
            db.store().take_probe("w", NOW + 20_000).await.unwrap(),
            ProbeTaken::Not { paused_until: None, pause_reason: None, probe_interval_ms: None },
            "closed: no probe to take"
        );
    }
}

mod housekeeping;
mod parking;
mod publishing;

/// SQLite's writer sends a batch of successes as one transaction in one text: when a
/// statement late in it fails, what the statements before it wrote is rolled back with it, the
/// error comes back, and the writer writes the next batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_a_batch_in_one_text_whole_or_not_at_all() {
    let db = TestDb::sqlite().await;
    db.add_webhook("w").await;
    db.add_event("e").await;
    db.exec("UPDATE webhooks SET consecutive_failures = 2, failing_since = 1", vec![]).await;
    let hook = db.webhook("w").await;
    // Two chunks of attempts (32 rows a statement on SQLite), then the hourly counters.
    let batch: Vec<Attempt> = (1..=40).map(|n| succeeded(&format!("d{n}"), &hook)).collect();
    for n in 1..=40 {
        db.add_delivery(&format!("d{n}"), "e", "w", "delivering", Some(NOW + 60_000), Some("me")).await;
    }
    db.exec(
        "CREATE TRIGGER refuse_hours BEFORE INSERT ON webhook_hours BEGIN SELECT RAISE(ABORT, 'refused'); END",
        vec![],
    )
    .await;
    let refused = db.store().record(&batch, policy()).await.expect_err("the trigger refuses the counters");
    assert!(refused.to_string().contains("refused"), "{refused}");
    assert_eq!(db.delivery("d1").await.status, "delivering", "the first chunk was rolled back");
    assert_eq!(db.delivery("d40").await.attempts, 0);
    assert!(db.attempts_of("d1").await.is_empty());
    assert_eq!(db.health("w").await.2, 2, "the health reset was not written");

    db.exec("DROP TRIGGER refuse_hours", vec![]).await;
    db.store().record(&batch, policy()).await.expect("the writer writes again");
    assert_eq!(db.delivery("d1").await.status, "succeeded");
    assert_eq!(db.delivery("d40").await.attempts, 1);
    assert_eq!(db.attempts_of("d33").await.len(), 1);
    assert_eq!(db.hour("w", NOW / HOUR_MS * HOUR_MS).await, Some((40, 0)));
    assert_eq!(db.health("w").await, (true, None, 0, Some(NOW)));
}

/// A writer whose task ended between beginning a transaction and ending it (dropped, as a
/// task is at shutdown) leaves SQLite's write lock held: the next turn rolls that transaction
/// back before anyone writes, so nothing of it is kept and other connections can write at
/// once (not after SQLite's 30-second busy wait).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rolls_back_a_transaction_its_writer_left_open() {
    let db = TestDb::sqlite().await;
    db.add_webhook("w").await;
    {
        let mut turn = db.store().write_turn().await.expect("SQLite has a write turn");
        let rows = turn
            .begin_with(Statement::from_string(
                sea_orm::DatabaseBackend::Sqlite,
                "UPDATE webhooks SET consecutive_failures = 7 WHERE id = 'w' RETURNING id",
            ))
            .await
            .expect("the transaction begins");
        assert_eq!(rows.len(), 1);
        // Dropped here, neither committed nor rolled back.
    }
    drop(db.store().write_turn().await);
    tokio::time::timeout(Duration::from_secs(5), db.exec("UPDATE webhooks SET description = 'x'", vec![]))
        .await
        .expect("another connection writes without waiting");
    assert_eq!(db.health("w").await.2, 0, "the abandoned update is not kept");
}

/// A batch's settling finds its deliveries through the primary key on PostgreSQL, whatever
/// the table's size: joined to its `VALUES` list alone, the planner read the whole table of
/// some tens of thousands of rows for every batch (seen in the delivery bench, issue 16).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_settles_a_batch_through_the_primary_key() {
    let Some(db) = TestDb::postgres().await else { return };
    db.add_webhook("w").await;
    db.add_event("e").await;
    db.exec(
        "INSERT INTO deliveries (id, event_id, webhook_id, tenant_type, tenant_id, event_type, status, attempts, \
         manual_attempts, next_attempt_at, leased_by, created_at, updated_at) \
         SELECT 'd' || n, 'e', 'w', 'store', 'store-a', 'review-created', \
         CASE WHEN n <= 256 THEN 'delivering' ELSE 'succeeded' END, 0, 0, NULL, NULL, 0, 0 \
         FROM generate_series(1, 20000) AS n",
        vec![],
    )
    .await;
    db.exec("ANALYZE deliveries", vec![]).await;
    let hook = db.webhook("w").await;
    let batch: Vec<Attempt> = (1..=256).map(|n| succeeded(&format!("d{n}"), &hook)).collect();
    let statement = all_succeeded_statement(&batch);
    let pool = db.db.get_postgres_connection_pool();
    let explain = format!("EXPLAIN {}", statement.sql);
    let plan = statement
        .query(&explain)
        .fetch_all(pool)
        .await
        .expect("a plan")
        .iter()
        .map(|row| sea_orm::sqlx::Row::try_get::<String, _>(row, 0).expect("a line"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!plan.contains("Seq Scan on deliveries"), "{plan}");
    statement.query(&statement.sql).execute(pool).await.expect("the batch is written");
    assert_eq!(db.delivery("d1").await.status, "succeeded");
    assert_eq!(db.delivery("d256").await.attempts, 1);
    assert_eq!(db.delivery("d257").await.attempts, 0, "only the batch's rows");
}
