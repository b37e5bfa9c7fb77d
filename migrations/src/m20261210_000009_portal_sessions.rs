//! What the embeddable portal stores (issue 15):
//! - `portal_sessions`: a one-time link a partner app or platform asked for (its token's
//!   hash, valid for minutes), and once opened, the session it started (that token's hash, an
//!   end, a revocation). `scope` is what the portal acts as (`store:ID` or `application:ID`)
//!   and the tenant whose webhooks it shows. Tokens are kept only as SHA-256 hashes, as API
//!   keys and sign-in sessions are.
//! - `portal_origins`: the origins a tenant lets frame its portal, one row each.

use sea_orm_migration::{prelude::*, schema::*};

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
                .table("portal_sessions")
                .col(string("id").primary_key())
                .col(string("scope"))
                .col(string("tenant_type"))
                .col(string("tenant_id"))
                .col(string("link_hash"))
                .col(big_integer("link_expires_at"))
                .col(string_null("session_hash"))
                .col(big_integer_null("session_expires_at"))
                .col(big_integer_null("opened_at"))
                .col(big_integer_null("revoked_at"))
                .col(big_integer("created_at"))
                .to_owned(),
        )
        .await?;
        for (name, column) in
            [("portal_sessions_by_link", "link_hash"), ("portal_sessions_by_session", "session_hash")]
        {
            m.create_index(
                Index::create().name(name).table("portal_sessions").col(column).unique().to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table("portal_origins")
                .col(string("tenant_type"))
                .col(string("tenant_id"))
                .col(string("origin"))
                .col(big_integer("created_at"))
                .primary_key(Index::create().col("tenant_type").col("tenant_id").col("origin"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("portal_origins").to_owned()).await?;
        m.drop_table(Table::drop().table("portal_sessions").to_owned()).await
    }
}
