use sea_orm_migration::{prelude::*, schema::*};

use crate::catalog::SEED_EVENT_TYPES;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("stores")
                .col(string("id").primary_key())
                .col(string("name"))
                .col(big_integer("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("applications")
                .col(string("id").primary_key())
                .col(string("name"))
                .col(big_integer("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("installations")
                .col(string("application_id"))
                .col(string("store_id"))
                .col(big_integer("created_at"))
                .primary_key(Index::create().col("application_id").col("store_id"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("event_types")
                .col(string("name").primary_key())
                .col(text("description"))
                .col(string("product_group"))
                .col(string("tenant_type"))
                .col(string("resource"))
                .col(text("example_payload"))
                .col(big_integer("created_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("webhooks")
                .col(string("id").primary_key())
                .col(string("tenant_type"))
                .col(string("tenant_id"))
                .col(text("url"))
                .col(text("description"))
                // JSON array of event type names; NULL means every event type.
                .col(text_null("event_types"))
                .col(boolean("enabled"))
                .col(string_null("disabled_reason"))
                .col(big_integer_null("disabled_at"))
                .col(integer("consecutive_failures").default(0))
                .col(big_integer_null("failing_since"))
                .col(big_integer_null("last_success_at"))
                // Set when the webhook was made as a subscription of a target and a filter.
                .col(string_null("target_id"))
                .col(string_null("filter_id"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .to_owned(),
        )
        .await?;
        for table in ["targets", "filters"] {
            let body = if table == "targets" { "url" } else { "events" };
            m.create_table(
                Table::create()
                    .table(table)
                    .col(string("id").primary_key())
                    .col(string("tenant_type"))
                    .col(string("tenant_id"))
                    .col(text(body))
                    .col(big_integer("created_at"))
                    .to_owned(),
            )
            .await?;
            m.create_index(
                Index::create()
                    .name(format!("{table}_by_tenant"))
                    .table(table)
                    .col("tenant_type")
                    .col("tenant_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(
            Index::create()
                .name("webhooks_by_tenant")
                .table("webhooks")
                .col("tenant_type")
                .col("tenant_id")
                .col("id")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("webhook_secrets")
                .col(string("id").primary_key())
                .col(string("webhook_id"))
                .col(string("secret"))
                .col(big_integer("created_at"))
                // NULL for the current secret; a rotated one signs until this time.
                .col(big_integer_null("expires_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("webhook_secrets_by_webhook")
                .table("webhook_secrets")
                .col("webhook_id")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("events")
                .col(string("id").primary_key())
                .col(string("tenant_type"))
                .col(string("tenant_id"))
                .col(string("event_type"))
                .col(text("payload"))
                .col(string_null("idempotency_key"))
                .col(big_integer("sequence"))
                .col(big_integer("received_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("events_by_idempotency_key")
                .table("events")
                .col("tenant_type")
                .col("tenant_id")
                .col("idempotency_key")
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("sequences")
                .col(string("tenant_type"))
                .col(string("tenant_id"))
                .col(string("resource"))
                .col(big_integer("value"))
                .primary_key(Index::create().col("tenant_type").col("tenant_id").col("resource"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("deliveries")
                // Also the `webhookmessageidpertarget` a receiver sees.
                .col(string("id").primary_key())
                .col(string("event_id"))
                .col(string("webhook_id"))
                .col(string("tenant_type"))
                .col(string("tenant_id"))
                .col(string("event_type"))
                .col(string("status"))
                .col(integer("attempts").default(0))
                // When the delivery is next due; while a worker holds it, when its lease ends.
                .col(big_integer_null("next_attempt_at"))
                .col(string_null("leased_by"))
                .col(integer_null("last_status_code"))
                .col(integer_null("last_duration_ms"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("deliveries_due")
                .table("deliveries")
                .col("status")
                .col("next_attempt_at")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("deliveries_by_webhook")
                .table("deliveries")
                .col("webhook_id")
                .col("id")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("deliveries_by_event").table("deliveries").col("event_id").to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("attempts")
                .col(string("id").primary_key())
                .col(string("delivery_id"))
                .col(string("webhook_id"))
                .col(string("trigger"))
                .col(big_integer("started_at"))
                .col(integer("duration_ms"))
                .col(text("url"))
                .col(text("request_headers"))
                .col(integer_null("response_status"))
                .col(text_null("response_headers"))
                .col(text_null("response_body"))
                .col(string_null("error_class"))
                .col(text_null("error_message"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("attempts_by_delivery")
                .table("attempts")
                .col("delivery_id")
                .col("id")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("users")
                .col(string("id").primary_key())
                .col(string_uniq("email"))
                .col(text("password_hash"))
                .col(string("role"))
                .col(string_null("store_id"))
                .col(big_integer("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("sessions")
                // SHA-256 of the cookie's token: a database leak yields no usable session.
                .col(string("id").primary_key())
                .col(string("user_id"))
                .col(big_integer("created_at"))
                .col(big_integer("expires_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("api_keys")
                .col(string("id").primary_key())
                .col(string("name"))
                .col(string("scope"))
                .col(string_uniq("key_hash"))
                .col(string("key_prefix"))
                .col(big_integer("created_at"))
                .col(big_integer_null("last_used_at"))
                .col(big_integer_null("revoked_at"))
                .to_owned(),
        )
        .await?;

        let mut insert = Query::insert()
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
            .to_owned();
        for t in SEED_EVENT_TYPES {
            let example: serde_json::Value = serde_json::from_str(t.example)
                .map_err(|e| DbErr::Migration(format!("example payload of {}: {e}", t.name)))?;
            insert.values_panic([
                t.name.into(),
                t.description.into(),
                t.group.into(),
                t.tenant_type.into(),
                t.resource.into(),
                serde_json::to_string(&example).unwrap_or_default().into(),
                0i64.into(),
            ]);
        }
        m.exec_stmt(insert).await?;
        Ok(())
    }
}
