//! The publish path's store functions on both databases: the counters and the recipients'
//! version that database triggers move.

use hookline_domain::{Tenant, TenantType};

use super::*;
use crate::store::events::{Counter, advance_counters};

fn store_a() -> Tenant {
    Tenant { kind: TenantType::Store, id: "store-a".into() }
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
