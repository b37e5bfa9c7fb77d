//! Hookline's database schema. Every migration here runs unchanged on SQLite and PostgreSQL:
//! timestamps are unix milliseconds in BIGINT columns, ids are text, JSON is stored as text.

pub use sea_orm_migration::prelude::*;

mod catalog;
mod m20261122_000001_init;
mod m20261122_000002_app_owners;
mod m20261123_000003_session_flash;
mod m20261123_000004_lean_indexes;
mod m20261203_000005_hardening;
mod m20261204_000006_retention;
mod m20261210_000007_listeners;
mod m20261210_000008_event_schemas;
mod m20261210_000009_portal_sessions;
pub mod m20261210_000010_webhook_alerts;
mod m20261210_000011_overview;
pub mod m20261215_000012_delivery_control;
mod m20261216_000013_overview_rollups;
mod m20261216_000016_recipient_versions;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_init::Migration),
            Box::new(m20261122_000002_app_owners::Migration),
            Box::new(m20261123_000003_session_flash::Migration),
            Box::new(m20261123_000004_lean_indexes::Migration),
            Box::new(m20261203_000005_hardening::Migration),
            Box::new(m20261204_000006_retention::Migration),
            Box::new(m20261210_000007_listeners::Migration),
            Box::new(m20261210_000008_event_schemas::Migration),
            Box::new(m20261210_000009_portal_sessions::Migration),
            Box::new(m20261210_000010_webhook_alerts::Migration),
            Box::new(m20261210_000011_overview::Migration),
            Box::new(m20261215_000012_delivery_control::Migration),
            Box::new(m20261216_000013_overview_rollups::Migration),
            Box::new(m20261216_000016_recipient_versions::Migration),
        ]
    }
}
