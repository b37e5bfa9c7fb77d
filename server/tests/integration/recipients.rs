//! Publishing keeps each tenant's webhooks and secrets in memory: a change made by another
//! process (here, straight in the database, which this process never hears of) reaches the
//! very next publish.

use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::common::*;

impl TestApp {
    /// Runs `sql` on the database as another process would.
    async fn elsewhere(&self, sql: &str) {
        let db = self.services.database();
        db.execute_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The event's deliveries as (webhook id, status), by webhook id.
    async fn deliveries_of(&self, event_id: &str) -> Vec<(String, String)> {
        let (status, event) =
            self.api("GET", &format!("/events/{event_id}"), Some(&self.admin_key), None).await;
        assert_eq!(status, 200, "{event}");
        let mut out: Vec<(String, String)> = event["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["webhook_id"].as_str().unwrap().into(), d["status"].as_str().unwrap().into()))
            .collect();
        out.sort();
        out
    }
}

on_both_databases! {
    async fn a_webhook_changed_elsewhere_is_seen_by_the_next_publish(backend: Backend) {
        let app = spawn_driven(backend).await;
        let (id, _) = app.create_webhook("store-a", "http://127.0.0.1:9/a", None).await;
        let pending = |hooks: &[&str]| hooks.iter().map(|h| (h.to_string(), "pending".to_string())).collect::<Vec<_>>();
        let first = app.publish("store-a", "review-created", json!({})).await;
        assert_eq!(app.deliveries_of(&first).await, pending(&[&id]));

        app.elsewhere(&format!("UPDATE webhooks SET enabled = false, disabled_reason = 'manual' WHERE id = '{id}'")).await;
        let off = app.publish("store-a", "review-created", json!({})).await;
        assert_eq!(app.deliveries_of(&off).await, vec![(id.clone(), "skipped".to_string())], "turned off elsewhere");

        app.elsewhere(&format!("UPDATE webhooks SET enabled = true, disabled_reason = NULL WHERE id = '{id}'")).await;
        app.elsewhere(
            "INSERT INTO webhooks (id, tenant_type, tenant_id, url, description, enabled, consecutive_failures, \
             created_at, updated_at, ordering) VALUES ('w-elsewhere', 'store', 'store-a', 'http://127.0.0.1:9/b', '', \
             true, 0, 0, 0, false)",
        )
        .await;
        let both = app.publish("store-a", "review-created", json!({})).await;
        let mut expected = pending(&[&id, "w-elsewhere"]);
        expected.sort();
        assert_eq!(app.deliveries_of(&both).await, expected, "back on, and a webhook made elsewhere");

        app.elsewhere("UPDATE webhooks SET event_types = '[\"order-placed\"]' WHERE id = 'w-elsewhere'").await;
        let filtered = app.publish("store-a", "review-created", json!({})).await;
        assert_eq!(app.deliveries_of(&filtered).await, pending(&[&id]), "subscribed elsewhere to another type");

        app.elsewhere(&format!("DELETE FROM webhooks WHERE id = '{id}'")).await;
        let gone = app.publish("store-a", "review-created", json!({})).await;
        assert_eq!(app.deliveries_of(&gone).await, vec![], "deleted elsewhere");
    }
}
