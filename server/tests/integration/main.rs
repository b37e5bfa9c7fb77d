//! Hookline's integration tests: the real server on a loopback port, a real SQLite file or a
//! real PostgreSQL database per test, and a real HTTP receiver. Tests that touch storage run
//! on both databases (`…::sqlite` and `…::postgres`).

mod common;

mod cli;
mod dashboard;
mod delivery;
mod durability;
mod isolation;
mod openapi;
mod publish;
mod scopes;
mod ssrf;
mod subscriptions;
mod tenants;
mod webhooks;
