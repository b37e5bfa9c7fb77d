//! The store functions of housekeeping, tenants and the delivery log's reads, on both
//! databases.

use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseBackend, TransactionTrait};

use super::*;
use crate::entities::api_key;
use crate::store::retention::{PruneRange, PruneReport};
use crate::store::tenants;
use crate::{EventId, WebhookId};

impl TestDb {
    async fn add_attempt(&self, id: &str, delivery: &str, hook: &str) {
        self.exec(
            "INSERT INTO attempts (id, delivery_id, webhook_id, trigger, started_at, duration_ms, url, request_headers, \
             response_body) VALUES ($1, $2, $3, 'scheduled', 0, 1, 'http://127.0.0.1:9/', '[]', 'ok')",
            vec![id.into(), delivery.into(), hook.into()],
        )
        .await;
    }

    async fn add_hour(&self, hook: &str, hour: i64, succeeded: i64, failed: i64) {
        self.exec(
            "INSERT INTO webhook_hours (webhook_id, hour, succeeded, failed, duration_ms) VALUES ($1, $2, $3, $4, 0)",
            vec![hook.into(), hour.into(), succeeded.into(), failed.into()],
        )
        .await;
    }

    async fn add_store(&self, id: &str, deleted_at: Option<i64>) {
        self.exec(
            "INSERT INTO stores (id, name, created_at, deleted_at) VALUES ($1, $1, 0, $2)",
            vec![id.into(), deleted_at.into()],
        )
        .await;
    }

    /// How many rows of `table` match `condition` (SQL written by the test).
    async fn count(&self, table: &str, condition: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table} WHERE {condition}"),
            ))
            .await
            .unwrap()
            .expect("a count");
        row.try_get("", "n").unwrap()
    }
}

on_both_databases! {
    async fn a_deleted_webhook_is_purged_a_batch_of_deliveries_at_a_time_then_its_counters(db: &TestDb) {
        db.add_webhook("gone").await;
        db.add_webhook("kept").await;
        db.add_event("e").await;
        for (id, hook) in [("d1", "gone"), ("d2", "gone"), ("d3", "kept")] {
            db.add_delivery(id, "e", hook, "failed", None, None).await;
            db.add_attempt(&format!("a-{id}"), id, hook).await;
        }
        db.add_hour("gone", 0, 1, 1).await;
        db.add_hour("kept", 0, 1, 0).await;
        assert_eq!(db.store().purge_deleted_webhook_step(1).await.unwrap(), 0, "nothing to purge");
        db.exec("DELETE FROM webhooks WHERE id = 'gone'", vec![]).await;
        db.exec("INSERT INTO webhook_purges (webhook_id, requested_at) VALUES ('gone', 0)", vec![]).await;
        assert_eq!(db.store().purge_deleted_webhook_step(1).await.unwrap(), 2, "one delivery and its attempt");
        assert_eq!(db.count("deliveries", "webhook_id = 'gone'").await, 1);
        assert_eq!(db.store().purge_deleted_webhook_step(1).await.unwrap(), 2);
        assert_eq!(db.count("webhook_hours", "webhook_id = 'gone'").await, 1, "the counters go last");
        assert_eq!(db.store().purge_deleted_webhook_step(1).await.unwrap(), 1);
        assert_eq!(db.store().purge_deleted_webhook_step(1).await.unwrap(), 0);
        assert_eq!(db.count("webhook_purges", "1 = 1").await, 0);
        assert_eq!(db.count("attempts", "webhook_id = 'gone'").await, 0);
        assert_eq!(
            (db.count("deliveries", "1 = 1").await, db.count("attempts", "1 = 1").await, db.count("webhook_hours", "1 = 1").await),
            (1, 1, 1),
            "another webhook's rows stay"
        );
    }

    async fn a_deleted_stores_events_go_in_batches_and_its_row_once_settled(db: &TestDb) {
        db.add_store("store-a", Some(NOW)).await;
        db.add_store("store-b", None).await;
        for id in ["e1", "e2", "e3"] {
            db.add_event(id).await;
        }
        db.exec(
            "INSERT INTO events (id, tenant_type, tenant_id, event_type, payload, sequence, received_at) \
             VALUES ('other', 'store', 'store-b', 'review-created', '{}', 1, 0)",
            vec![],
        )
        .await;
        assert_eq!(db.store().purge_deleted_store_step(2, NOW).await.unwrap(), 2);
        assert_eq!(db.store().purge_deleted_store_step(2, NOW).await.unwrap(), 1);
        assert_eq!(db.store().purge_deleted_store_step(2, NOW - 1).await.unwrap(), 0, "not settled yet");
        assert_eq!(db.count("stores", "id = 'store-a'").await, 1);
        assert_eq!(db.store().purge_deleted_store_step(2, NOW).await.unwrap(), 1, "the row goes");
        assert_eq!(db.count("stores", "1 = 1").await, 1);
        assert_eq!(db.store().purge_deleted_store_step(2, NOW).await.unwrap(), 0, "a live store is left alone");
        assert_eq!(db.count("events", "1 = 1").await, 1, "another store's events stay");
    }

    async fn the_earliest_due_is_of_a_waiting_delivery(db: &TestDb) {
        db.store().ping().await.unwrap();
        assert_eq!(db.store().earliest_due().await.unwrap(), None);
        db.add_webhook("w").await;
        db.add_event("e").await;
        db.add_delivery("settled", "e", "w", "failed", Some(NOW - 100), None).await;
        db.add_delivery("later", "e", "w", "pending", Some(NOW + 5), None).await;
        assert_eq!(db.store().earliest_due().await.unwrap(), Some(NOW + 5), "not yet due counts too");
        db.add_delivery("crashed", "e", "w", "delivering", Some(NOW - 3), Some("dead")).await;
        assert_eq!(db.store().earliest_due().await.unwrap(), Some(NOW - 3));
    }

    async fn a_sqlite_database_is_copied_into_a_new_file(db: &TestDb) {
        if db.store().backend() != DatabaseBackend::Sqlite {
            return;
        }
        db.add_webhook("w").await;
        let copy = std::env::temp_dir().join(format!("hookline-copy-{}.db", uuid::Uuid::new_v4().simple()));
        let path = copy.to_str().expect("a UTF-8 path");
        db.store().vacuum_into(path).await.unwrap();
        let copied = Database::connect(format!("sqlite://{path}?mode=ro")).await.expect("the copy opens");
        let n = copied
            .query_one_raw(Statement::from_string(DatabaseBackend::Sqlite, "SELECT COUNT(*) AS n FROM webhooks"))
            .await
            .unwrap()
            .expect("a count")
            .try_get::<i64>("", "n")
            .unwrap();
        copied.close().await.ok();
        assert!(db.store().vacuum_into(path).await.is_err(), "an existing file is not overwritten");
        let _ = std::fs::remove_file(&copy);
        assert_eq!(n, 1);
    }

    async fn sqlites_log_starts_again_under_a_steady_stream_of_writes(db: &TestDb) {
        let Some(file) = &db.file else { return };
        db.exec("CREATE TABLE scratch (b BLOB)", vec![]).await;
        let log = format!("{}-wal", file.display());
        let limit = crate::store::writer::LOG_PAGES_AT_MOST as u64 * 4096;
        // Eight times the log's limit through the writer, which never checkpoints itself, at
        // most 16 MB a second.
        let (started, mut written, mut largest) = (std::time::Instant::now(), 0u64, 0u64);
        while written < 8 * limit && started.elapsed() < Duration::from_secs(20) {
            let mut writer = db.gate.take().await;
            let insert =
                Statement::from_string(DatabaseBackend::Sqlite, "INSERT INTO scratch VALUES (randomblob(32000))");
            writer.transaction([insert]).await.unwrap();
            drop(writer);
            written += 32_000;
            largest = largest.max(std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // The log's file keeps its largest size; with no checkpoint, or with checkpoints that
        // never let it start again, it would hold every page written.
        assert!(written >= 8 * limit, "the test wrote only {written} bytes in 20 s");
        assert!(largest < 4 * limit, "the log grew to {largest} bytes after {written} bytes written");
    }

    async fn deleting_a_store_removes_what_it_owns_and_queues_its_webhooks_purges(db: &TestDb) {
        db.add_store("store-a", None).await;
        db.add_store("store-b", None).await;
        db.add_webhook("mine").await;
        db.add_webhook("theirs").await;
        db.exec("UPDATE webhooks SET tenant_id = 'store-b' WHERE id = 'theirs'", vec![]).await;
        for (id, scope) in [("k-a", "store:store-a"), ("k-b", "store:store-b")] {
            api_key::ActiveModel {
                id: sea_orm::Set(id.into()),
                name: sea_orm::Set(id.into()),
                scope: sea_orm::Set(scope.into()),
                key_hash: sea_orm::Set(format!("hash-{id}")),
                key_prefix: sea_orm::Set("hk_".into()),
                created_at: sea_orm::Set(0),
                last_used_at: sea_orm::Set(None),
                revoked_at: sea_orm::Set(None),
            }
            .insert(&db.db)
            .await
            .unwrap();
        }
        db.store().delete_store("store-a", "store:store-a", NOW).await.unwrap();
        assert_eq!(db.count("stores", &format!("id = 'store-a' AND deleted_at = {NOW}")).await, 1);
        assert_eq!(db.count("stores", "id = 'store-b' AND deleted_at IS NULL").await, 1);
        assert_eq!(db.count("webhooks", "1 = 1").await, 1);
        assert_eq!(db.count("webhook_purges", &format!("webhook_id = 'mine' AND requested_at = {NOW}")).await, 1);
        assert_eq!(db.count("api_keys", "id = 'k-b'").await, 1);
        assert_eq!(db.count("api_keys", "1 = 1").await, 1);
    }

    async fn a_tenants_and_a_webhooks_row_lock_inside_a_transaction(db: &TestDb) {
        db.add_store("store-a", None).await;
        db.add_webhook("w").await;
        let txn = db.db.begin().await.unwrap();
        tenants::lock(&txn, &hookline_domain::Tenant::store("store-a".to_string())).await.unwrap();
        crate::store::webhooks::lock(&txn, "w").await.unwrap();
        txn.commit().await.unwrap();
    }

    async fn status_counts_read_only_the_latest_window(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_event("e").await;
        for (id, status) in [("d1", "failed"), ("d2", "failed"), ("d3", "succeeded"), ("d4", "pending"), ("d5", "succeeded")] {
            db.add_delivery(id, "e", "w", status, None, None).await;
        }
        let all = sea_orm::Condition::all();
        let mut counts = db.store().status_counts(all.clone(), 100).await.unwrap();
        counts.sort();
        assert_eq!(counts, [("failed".to_string(), 2), ("pending".to_string(), 1), ("succeeded".to_string(), 2)]);
        let mut latest = db.store().status_counts(all, 3).await.unwrap();
        latest.sort();
        assert_eq!(latest, [("pending".to_string(), 1), ("succeeded".to_string(), 2)]);
        let none = sea_orm::Condition::all().add(crate::entities::delivery::Column::WebhookId.eq("other"));
        assert!(db.store().status_counts(none, 100).await.unwrap().is_empty());
    }

    async fn a_webhooks_hours_are_read_from_an_hour_on(db: &TestDb) {
        db.add_hour("w", 0, 1, 2).await;
        db.add_hour("w", HOUR_MS, 3, 4).await;
        db.add_hour("other", HOUR_MS, 5, 6).await;
        assert_eq!(db.store().hours_of_webhook("w", HOUR_MS).await.unwrap(), [(HOUR_MS, 3, 4)]);
        let mut all = db.store().hours_of_webhook("w", 0).await.unwrap();
        all.sort();
        assert_eq!(all, [(0, 1, 2), (HOUR_MS, 3, 4)]);
    }

    async fn the_delivered_payload_is_the_webhooks_and_gone_once_pruned(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_webhook("other").await;
        db.add_event("e").await;
        db.add_event("pruned").await;
        db.exec("UPDATE events SET payload = '{\"a\":1}' WHERE id = 'e'", vec![]).await;
        db.exec("UPDATE events SET payload_pruned_at = 1 WHERE id = 'pruned'", vec![]).await;
        db.add_delivery("d", "e", "w", "succeeded", None, None).await;
        db.add_delivery("p", "pruned", "w", "succeeded", None, None).await;
        let payload = async |event: &str, hook: &str| {
            db.store().delivered_payload(&EventId::from(event), &WebhookId::from(hook)).await.unwrap()
        };
        assert_eq!(payload("e", "w").await.as_deref(), Some("{\"a\":1}"));
        assert_eq!(payload("e", "other").await, None, "no delivery to that webhook");
        assert_eq!(payload("pruned", "w").await, None);
        assert_eq!(payload("nothing", "w").await, None);
    }

    async fn retention_deletes_a_batch_of_settled_deliveries_with_their_attempts(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_event("e").await;
        for (id, status) in [("d1", "failed"), ("d2", "pending"), ("d3", "succeeded"), ("d4", "failed")] {
            db.add_delivery(id, "e", "w", status, None, None).await;
            db.add_attempt(&format!("a-{id}"), id, "w").await;
        }
        let every = PruneRange::Deliveries { webhook: None };
        let (last, counted) = db.store().prune_range(&every, "", "d4", 3, true).await.unwrap().expect("a batch");
        assert_eq!((last.as_str(), counted.deliveries, counted.attempts), ("d3", 2, 2), "a dry run counts");
        assert_eq!(db.count("deliveries", "1 = 1").await, 4, "and removes nothing");
        let other = PruneRange::Deliveries { webhook: Some("other".into()) };
        assert_eq!(db.store().prune_range(&other, "", "d4", 3, false).await.unwrap(), None, "another webhook's range is empty");
        let (last, done) = db.store().prune_range(&every, "", "d4", 3, false).await.unwrap().expect("a batch");
        assert_eq!((last.as_str(), done), ("d3", PruneReport { deliveries: 2, attempts: 2, ..Default::default() }));
        assert_eq!(db.count("deliveries", "id IN ('d2', 'd4')").await, 2, "retrying and newer ones stay");
        assert_eq!(db.count("attempts", "1 = 1").await, 2);
        assert_eq!(db.store().prune_range(&every, "d3", "d4", 3, false).await.unwrap(), None, "the range is done");
    }

    async fn retention_deletes_events_none_of_whose_deliveries_stays(db: &TestDb) {
        db.add_webhook("w").await;
        for id in ["e1", "e2", "e3", "e4"] {
            db.add_event(id).await;
        }
        db.add_delivery("d1", "e2", "w", "pending", Some(NOW), None).await;
        db.add_delivery("z-replayed", "e3", "w", "succeeded", None, None).await;
        db.add_delivery("d2", "e4", "w", "failed", None, None).await;
        let events = PruneRange::Events { store: Some("store-a".into()) };
        let (last, done) = db.store().prune_range(&events, "", "f", 10, false).await.unwrap().expect("a batch");
        assert_eq!((last.as_str(), done.events), ("e4", 2), "e1 and e4, whose delivery is settled and older");
        assert_eq!(db.count("events", "id IN ('e2', 'e3')").await, 2, "e2 is retrying, e3 was delivered after the cutoff");
        assert_eq!(db.count("events", "1 = 1").await, 2);
        let elsewhere = PruneRange::Events { store: Some("store-b".into()) };
        assert_eq!(db.store().prune_range(&elsewhere, "", "f", 10, false).await.unwrap(), None);
    }

    async fn retention_clears_response_bodies_and_payloads_but_not_of_retrying_events(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_event("e1").await;
        db.add_event("e2").await;
        db.add_delivery("d1", "e1", "w", "failed", None, None).await;
        db.add_delivery("d2", "e2", "w", "pending", Some(NOW), None).await;
        db.add_attempt("a1", "d1", "w").await;
        let (_, done) = db.store().prune_range(&PruneRange::ResponseBodies, "", "z", 10, false).await.unwrap().expect("a batch");
        assert_eq!(done.response_bodies, 1);
        assert_eq!(db.count("attempts", "response_body IS NULL AND response_headers IS NULL").await, 1);
        assert!(!db.store().payload_cleared_from("e").await.unwrap());
        let (_, counted) = db.store().prune_range(&PruneRange::Payloads, "", "z", 10, true).await.unwrap().expect("a batch");
        assert_eq!(counted.payloads, 1);
        let (last, done) = db.store().prune_range(&PruneRange::Payloads, "", "z", 10, false).await.unwrap().expect("a batch");
        assert_eq!((last.as_str(), done.payloads), ("e2", 1));
        assert_eq!(db.count("events", "id = 'e1' AND payload = 'null' AND payload_pruned_at IS NOT NULL").await, 1);
        assert_eq!(db.count("events", "id = 'e2' AND payload_pruned_at IS NULL").await, 1, "still being delivered");
        assert!(db.store().payload_cleared_from("e").await.unwrap());
        assert!(!db.store().payload_cleared_from("e2").await.unwrap());
        assert!(!db.store().payload_cleared_from("f").await.unwrap(), "no event there");
    }

    async fn retention_deletes_hourly_counters_a_few_webhooks_or_one_store_at_a_time(db: &TestDb) {
        for id in ["w1", "w2", "w3"] {
            db.add_webhook(id).await;
            db.add_hour(id, 0, 1, 0).await;
            db.add_hour(id, HOUR_MS, 1, 0).await;
            db.add_hour(id, 2 * HOUR_MS, 1, 0).await;
        }
        db.exec("UPDATE webhooks SET tenant_id = 'store-b' WHERE id = 'w3'", vec![]).await;
        assert_eq!(db.store().prune_store_hours("store-a", 0, HOUR_MS, true).await.unwrap(), 2, "a dry run counts");
        assert_eq!(db.store().prune_store_hours("store-a", 0, HOUR_MS, false).await.unwrap(), 2, "hours in (0, 1h] of w1 and w2");
        assert_eq!(db.count("webhook_hours", &format!("hour = {HOUR_MS}")).await, 1);
        assert_eq!(db.store().prune_hours("", 0, 2, false).await.unwrap(), Some(("w2".to_string(), 2)));
        assert_eq!(db.store().prune_hours("w2", 0, 2, false).await.unwrap(), Some(("w3".to_string(), 1)));
        assert_eq!(db.store().prune_hours("w3", 0, 2, false).await.unwrap(), None);
        assert_eq!(db.count("webhook_hours", "1 = 1").await, 4);
    }
}
