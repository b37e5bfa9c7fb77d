//! The delivery engine: a queue in the database, workers that claim due deliveries with a
//! lease, send them, record each attempt, and schedule the retry.

mod client;
mod janitor;
mod retry;
pub mod signature;
mod worker;

pub use client::{ErrorClass, MAX_RESPONSE_BODY, Outcome, WebhookClient};
pub use retry::RetryPolicy;
pub use worker::{Engine, EngineConfig};
