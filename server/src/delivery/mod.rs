//! The delivery engine: a queue in the database, workers that claim due deliveries with a
//! lease, send them, record each attempt, and schedule the retry.
//!
//! - [`engine`]: the run loop (claim, start, wait, stop), hand-offs and `run_once`;
//! - [`capacity`]: how much is in flight, per process and per webhook;
//! - [`attempt`]: one attempt, top to bottom (prepare, send, decide);
//! - [`recorder`]: the group-commit writer of attempts;
//! - [`client`], [`signature`], [`retry`]: the request, its signature, the retry schedule;
//! - [`janitor`]: background housekeeping beside the engine;
//! - [`replayer`]: bulk replays, queued again page by page beside the engine.
//!
//! The SQL is in `hookline_core::store`; the engine calls its typed functions.

mod attempt;
mod capacity;
mod client;
mod engine;
mod error;
mod janitor;
mod recorder;
mod replayer;
mod retry;
pub mod signature;
mod steer;

pub use attempt::delivery_headers;
pub use client::{ErrorClass, MAX_RESPONSE_BODY, Outcome, WebhookClient};
pub use engine::{Engine, EngineConfig};
pub use error::EngineError;
pub use retry::RetryPolicy;
pub use steer::SteerConfig;
