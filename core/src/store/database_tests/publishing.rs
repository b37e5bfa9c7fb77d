//! The publish path's store functions on both databases: the counters and the recipients'
//! version that database triggers move.

use std::collections::HashMap;

use hookline_domain::{Tenant, TenantType};

use super::*;
use crate::store::events::{Counter, advance_counters};

fn store_a() -> Tenant {
    Tenant { kind: TenantType::Store, id: "store-a".into() }
}

/// A `review-created` event of `tenant`, not numbered yet, as a publish hands it to the store.
fn review_created(id: &str, tenant: &Tenant, payload: &str) -> crate::entities::event::Model {
    crate::entities::event::Model {
        id: id.into(),
        tenant_type: tenant.kind,
        tenant_id: tenant.id.clone(),
        event_type: "review-created".into(),
        payload: payload.into(),
        idempotency_key: None,
        sequence: 0,
        received_at: NOW,
        payload_pruned_at: None,
        ordering_key: None,
    }
}

impl TestDb {
    /// store-a's recipients' version as a publish reads it (0: nothing ever changed).
    async fn recipients_version(&self) -> i64 {
        let tenant = store_a();
        let moved = advance_counters(&self.db, &[Counter { tenant: &tenant, resource: "reviews", by: 1 }])
            .await
            .unwrap();
        moved.versions.get(&tenant).copied().unwrap_or(0)
    }
}

on_both_databases! {
    async fn counters_move_by_their_share_and_keep_the_order_given(db: &TestDb) {
        let (a, b) = (store_a(), Tenant { kind: TenantType::Store, id: "store-b".into() });
        let counters = [
            Counter { tenant: &a, resource: "", by: 2 },
            Counter { tenant: &a, resource: "reviews", by: 3 },
            Counter { tenant: &b, resource: "reviews", by: 1 },
        ];
        let first = advance_counters(&db.db, &counters).await.unwrap();
        assert_eq!(first.values, vec![2, 3, 1]);
        assert!(first.versions.is_empty(), "no tenant has changed recipients yet");
        let second = advance_counters(&db.db, &counters).await.unwrap();
        assert_eq!(second.values, vec![4, 6, 2], "each counter moved by its share, from where it stood");
    }

    async fn what_a_publish_reads_about_recipients_moves_their_version_and_health_does_not(db: &TestDb) {
        assert_eq!(db.recipients_version().await, 0);
        db.add_webhook("w").await;
        let mut seen = db.recipients_version().await;
        assert!(seen > 0, "a new webhook");
        let moved = |seen: &mut i64, now: i64, what: &str| {
            assert!(now > *seen, "{what} must move the version ({now} after {seen})");
            *seen = now;
        };
        for (sql, what) in [
            ("UPDATE webhooks SET url = 'http://127.0.0.1:9/other' WHERE id = 'w'", "a new address"),
            ("UPDATE webhooks SET enabled = $1 WHERE id = 'w'", "turning it off"),
            ("UPDATE webhooks SET conditions = '{\"all\":[]}' WHERE id = 'w'", "payload conditions"),
            ("UPDATE webhooks SET paused_until = 5 WHERE id = 'w'", "a pause"),
            (
                "INSERT INTO webhook_secrets (id, webhook_id, secret, created_at) VALUES ('s', 'w', 'whsec_x', 0)",
                "a new secret",
            ),
            ("UPDATE webhook_secrets SET expires_at = 10 WHERE id = 's'", "a rotated secret"),
            (
                "INSERT INTO installations (application_id, store_id, created_at, product_lines) \
                 VALUES ('app', 'store-a', 0, '[]')",
                "an installation",
            ),
            ("UPDATE installations SET product_lines = '[\"Reviews\"]' WHERE store_id = 'store-a'", "product lines"),
            ("DELETE FROM installations WHERE store_id = 'store-a'", "an uninstall"),
            ("DELETE FROM webhook_secrets WHERE id = 's'", "a deleted secret"),
        ] {
            let values = if sql.contains("$1") { vec![false.into()] } else { vec![] };
            db.exec(sql, values).await;
            moved(&mut seen, db.recipients_version().await, what);
        }
        // What the engine writes on every attempt changes nothing a publish reads.
        db.exec(
            "UPDATE webhooks SET consecutive_failures = 3, failing_since = 1, last_success_at = 2, updated_at = 9 \
             WHERE id = 'w'",
            vec![],
        )
        .await;
        db.exec("UPDATE webhook_secrets SET secret = 'sealed' WHERE webhook_id = 'w'", vec![]).await;
        assert_eq!(db.recipients_version().await, seen, "health and re-sealing leave it");
        db.exec("DELETE FROM webhooks WHERE id = 'w'", vec![]).await;
        moved(&mut seen, db.recipients_version().await, "a deleted webhook");
    }
}

/// PostgreSQL's one publish statement: counters moved, events numbered from them, payloads
/// stored byte for byte as they came (an array of text), and the deliveries' empty columns
/// left empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_numbers_and_writes_a_batch_in_one_statement() {
    use crate::DeliveryStatus;
    use crate::entities::{delivery, event};
    use crate::store::events::{KeptConnection, Numbered, insert_numbered_postgres};
    use sea_orm::EntityTrait;

    let Some(db) = TestDb::postgres().await else { return };
    let (a, b) = (store_a(), Tenant { kind: TenantType::Store, id: "store-b".into() });
    advance_counters(&db.db, &[Counter { tenant: &a, resource: "reviews", by: 10 }]).await.unwrap();
    let odd = "{ \"text\" :\t\"caf\\u00e9 \\\"quoted\\\" \u{1F600}\",\n \"n\": 1.50 }";
    let e1 = review_created("e1", &a, "{}");
    let e2 = event::Model { idempotency_key: Some("key-1".into()), ..review_created("e2", &a, odd) };
    let e3 = event::Model { ordering_key: Some("order-9".into()), ..review_created("e3", &b, "[1,2]") };
    let counters = [
        Counter { tenant: &a, resource: "reviews", by: 2 },
        Counter { tenant: &b, resource: "reviews", by: 1 },
    ];
    let numbered = [
        Numbered { event: &e1, counter: 0, back: 1 },
        Numbered { event: &e2, counter: 0, back: 0 },
        Numbered { event: &e3, counter: 1, back: 0 },
    ];
    let delivery = |id: &str, ev: &event::Model| delivery::Model {
        id: id.into(),
        event_id: ev.id.clone(),
        webhook_id: "w".into(),
        tenant_type: ev.tenant_type,
        tenant_id: ev.tenant_id.clone(),
        event_type: ev.event_type.clone(),
        status: DeliveryStatus::Delivering,
        attempts: 0,
        manual_attempts: 0,
        next_attempt_at: None,
        leased_by: Some("me".into()),
        last_status_code: None,
        last_duration_ms: None,
        ordering_key: None,
        ordering_seq: None,
        created_at: NOW,
        updated_at: NOW,
    };
    let deliveries = [
        delivery("d1", &e1),
        delivery::Model {
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(NOW + 5),
            leased_by: None,
            ordering_key: Some("order-9".into()),
            ordering_seq: Some(4),
            ..delivery("d3", &e3)
        },
    ];
    let numbers = insert_numbered_postgres(
        &db.db,
        &mut KeptConnection::default(),
        &counters,
        &numbered,
        &deliveries,
        &[],
    )
    .await
    .unwrap()
    .expect("no versions to check");
    assert_eq!(
        (numbers["e1"], numbers["e2"], numbers["e3"]),
        (11, 12, 1),
        "in batch order, after the counter"
    );
    let stored = event::Entity::find_by_id("e2").one(&db.db).await.unwrap().expect("e2 written");
    assert_eq!(stored.payload, odd, "the payload as it came");
    assert_eq!((stored.sequence, stored.idempotency_key.as_deref()), (12, Some("key-1")));
    let e3 = event::Entity::find_by_id("e3").one(&db.db).await.unwrap().expect("e3 written");
    assert_eq!(
        (e3.tenant_id.as_str(), e3.ordering_key.as_deref(), e3.payload.as_str()),
        ("store-b", Some("order-9"), "[1,2]")
    );
    let d1 = delivery::Entity::find_by_id("d1").one(&db.db).await.unwrap().expect("d1 written");
    assert_eq!(
        (d1.status, d1.next_attempt_at, d1.leased_by.as_deref(), d1.ordering_seq),
        (DeliveryStatus::Delivering, None, Some("me"), None)
    );
    let d3 = delivery::Entity::find_by_id("d3").one(&db.db).await.unwrap().expect("d3 written");
    assert_eq!(
        (d3.status, d3.next_attempt_at, d3.leased_by, d3.ordering_seq),
        (DeliveryStatus::Pending, Some(NOW + 5), None, Some(4))
    );
    let none =
        insert_numbered_postgres(&db.db, &mut KeptConnection::default(), &[], &[], &[], &[]).await.unwrap();
    assert_eq!(none, Some(HashMap::new()));
}

/// PostgreSQL's publish statement, given the versions of the recipients a batch was planned
/// on, writes it only while they are current: planned on copies that have moved since, it
/// writes nothing, not even the counters, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writes_a_batch_only_while_its_recipients_are_current() {
    use crate::entities::event;
    use crate::store::events::{KeptConnection, Numbered, insert_numbered_postgres};
    use sea_orm::EntityTrait;

    let Some(db) = TestDb::postgres().await else { return };
    let (a, b) = (store_a(), Tenant { kind: TenantType::Store, id: "store-b".into() });
    db.exec(
        "INSERT INTO recipient_versions (tenant_type, tenant_id, version) VALUES ('store', 'store-a', 3)",
        vec![],
    )
    .await;
    let event = |id: &str| review_created(id, &a, "{}");
    let (e1, e2) = (event("e1"), event("e2"));
    let counters = [Counter { tenant: &a, resource: "reviews", by: 1 }];
    // Store B has never changed: version 0, absent from the table. Both batches go through
    // one writer's kept connection: the refusal keeps it, the next batch runs on it.
    let mut kept = KeptConnection::default();
    let moved = insert_numbered_postgres(
        &db.db,
        &mut kept,
        &counters,
        &[Numbered { event: &e1, counter: 0, back: 0 }],
        &[],
        &[(&a, 2), (&b, 0)],
    )
    .await
    .expect("not an error");
    assert_eq!(moved, None, "store A's recipients moved from 2 to 3");
    assert!(event::Entity::find_by_id("e1").one(&db.db).await.unwrap().is_none());
    assert!(kept.holds(), "a refusal is an answer: the connection is kept");
    let current = insert_numbered_postgres(
        &db.db,
        &mut kept,
        &counters,
        &[Numbered { event: &e2, counter: 0, back: 0 }],
        &[],
        &[(&a, 3), (&b, 0)],
    )
    .await
    .unwrap()
    .expect("current");
    assert_eq!(current["e2"], 1, "the refused batch did not move the counter");
    assert!(kept.holds());
}

/// A publish writer's kept connection that breaks (PostgreSQL restarted, a proxy dropped it)
/// fails one batch, as a connection of the pool would, and is given back: the next batch
/// runs on a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_publish_writer_gives_back_a_broken_connection() {
    use crate::entities::event;
    use crate::store::events::{KeptConnection, Numbered, insert_numbered_postgres};

    let Some(db) = TestDb::postgres().await else { return };
    let a = store_a();
    let event = |id: &str| review_created(id, &a, "{}");
    let (e1, e2, e3) = (event("e1"), event("e2"), event("e3"));
    let counters = [Counter { tenant: &a, resource: "reviews", by: 1 }];
    let mut kept = KeptConnection::default();
    let publish = async |e: &event::Model, kept: &mut KeptConnection| {
        insert_numbered_postgres(
            &db.db,
            kept,
            &counters,
            &[Numbered { event: e, counter: 0, back: 0 }],
            &[],
            &[],
        )
        .await
    };
    assert_eq!(publish(&e1, &mut kept).await.unwrap().expect("written")["e1"], 1);
    assert!(kept.holds());
    // The kept connection alone: its last statement was the publish.
    db.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'WITH counters AS (INSERT INTO sequences%'",
        vec![],
    )
    .await;
    assert!(publish(&e2, &mut kept).await.is_err(), "the kept connection was closed under it");
    assert!(!kept.holds(), "a failed connection is given back");
    assert_eq!(publish(&e3, &mut kept).await.unwrap().expect("written")["e3"], 2, "on a fresh connection");
    assert!(kept.holds());
}
