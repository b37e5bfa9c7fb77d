//! Hookline's integration tests: the real server on a loopback port, a real SQLite file or a
//! real PostgreSQL database per test, and a real HTTP receiver. Tests that touch storage run
//! on both databases (`…::sqlite` and `…::postgres`).

mod common;
#[path = "../support/hookline_process.rs"]
mod hookline_process;

mod alerts;
mod browser;
mod catalog;
mod cli;
mod conditions;
mod connections;
mod dashboard;
mod dashboard_paging;
mod delivery;
mod durability;
mod events;
mod explain;
mod hardening;
mod isolation;
mod keep_alive;
mod key_timeline;
mod listen;
mod observability;
mod openapi;
mod ordering;
mod outage;
mod overview;
mod overview_rollups;
mod plumbing;
mod portal;
mod portal_control;
mod processes;
mod publish;
mod recipients;
mod replays;
mod retention;
mod scopes;
mod secrets;
mod ssrf;
mod steering;
mod subscriptions;
mod tenants;
mod webhooks;
