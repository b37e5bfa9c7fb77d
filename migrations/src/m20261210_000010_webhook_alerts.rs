//! Alerts before turn-off (issue 15): what a webhook's alerts have said so far, and the
//! operational event types that go with them.
//!
//! - `webhooks.alert_state`: the last state Hookline announced (`failing`, `turning_off`,
//!   `disabled`, `recovered` while its email is still owed), NULL when there is nothing to say;
//!   a process moves it with a conditional update, so several processes announce each change
//!   once;
//! - `webhooks.alert_streak`: the `failing_since` of the streak the state is about;
//! - `webhooks.alert_at`: when the state was entered;
//! - `webhooks.alert_due`: when the state's announcement (email and operational event) is
//!   owed, or may be tried again; NULL once it went out;
//! - `webhooks_alert_watch`: a partial index over the webhooks the alerts step must look at
//!   (on and failing, on and alerted, turned off by Hookline and not yet announced), so a
//!   step never reads the healthy or long-silent ones;
//! - `webhooks_alert_due`: a partial index over the announcements owed;
//! - the event types `webhook.failing` and `webhook.recovered`, beside `webhook.disabled`.
//!
//! Webhooks Hookline had already turned off count as announced: upgrading sends no email
//! about a turn-off from before.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The webhooks the alerts step looks at; its query repeats this text so that both databases
/// use the partial index.
pub const WATCH_PREDICATE: &str = "(enabled AND (failing_since IS NOT NULL OR alert_state IS NOT NULL)) \
     OR (NOT enabled AND disabled_reason IN ('automatic', 'gone') \
     AND (alert_state IS NULL OR alert_state <> 'disabled'))";

const EVENT_TYPES: [(&str, &str, &str); 2] = [
    (
        "webhook.failing",
        "One of the tenant's webhooks has been failing for a while (stage \"failing\"), or will soon be turned off if its deliveries keep failing (stage \"turning_off\").",
        r#"{"webhook_id": "0193a3c2-7b1e-7c2a-9a51-3f1d2c4b5a60", "url": "https://hooks.example.com/yotpo", "stage": "failing", "message": "Failing since 2024-01-15 11:57 UTC", "consecutive_failures": 6, "failing_since": "2024-01-15T11:57:54Z", "turn_off_at": "2024-01-16T11:57:54Z"}"#,
    ),
    (
        "webhook.recovered",
        "A delivery to one of the tenant's webhooks succeeded again after Hookline had warned that it was failing or had turned it off.",
        r#"{"webhook_id": "0193a3c2-7b1e-7c2a-9a51-3f1d2c4b5a60", "url": "https://hooks.example.com/yotpo", "message": "Healthy", "failing_since": "2024-01-15T11:57:54Z", "recovered_at": "2024-01-15T14:02:10Z"}"#,
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        // SQLite takes one column per ALTER TABLE.
        if !m.has_column("webhooks", "alert_state").await? {
            m.alter_table(Table::alter().table("webhooks").add_column(string_null("alert_state")).to_owned())
                .await?;
        }
        for column in ["alert_streak", "alert_at", "alert_due"] {
            if !m.has_column("webhooks", column).await? {
                m.alter_table(
                    Table::alter().table("webhooks").add_column(big_integer_null(column)).to_owned(),
                )
                .await?;
            }
        }
        db.execute_unprepared(
            "UPDATE webhooks SET alert_state = 'disabled', alert_streak = failing_since, alert_at = disabled_at \
             WHERE NOT enabled AND disabled_reason IN ('automatic', 'gone') AND alert_state IS NULL",
        )
        .await?;
        db.execute_unprepared(&format!(
            "CREATE INDEX IF NOT EXISTS webhooks_alert_watch ON webhooks (id) WHERE {WATCH_PREDICATE}"
        ))
        .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS webhooks_alert_due ON webhooks (alert_due) WHERE alert_due IS NOT NULL",
        )
        .await?;
        for (name, description, example) in EVENT_TYPES {
            let example: serde_json::Value = serde_json::from_str(example)
                .map_err(|e| DbErr::Migration(format!("example payload of {name}: {e}")))?;
            let insert = Query::insert()
                .into_table("event_types")
                .columns([
                    "name",
                    "description",
                    "product_group",
                    "tenant_type",
                    "resource",
                    "example_payload",
                    "created_at",
                ])
                .values_panic([
                    name.into(),
                    description.into(),
                    "Webhooks".into(),
                    "any".into(),
                    "webhook".into(),
                    serde_json::to_string(&example).unwrap_or_default().into(),
                    0i64.into(),
                ])
                .on_conflict(OnConflict::column("name").do_nothing().to_owned())
                .to_owned();
            m.exec_stmt(insert).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared(
            "DELETE FROM event_types WHERE name IN ('webhook.failing', 'webhook.recovered')",
        )
        .await?;
        m.drop_index(Index::drop().name("webhooks_alert_due").table("webhooks").to_owned()).await?;
        m.drop_index(Index::drop().name("webhooks_alert_watch").table("webhooks").to_owned()).await?;
        for column in ["alert_due", "alert_at", "alert_streak", "alert_state"] {
            m.alter_table(Table::alter().table("webhooks").drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
