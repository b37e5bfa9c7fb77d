//! Bulk replays in the background, in processes that deliver: takes a running replay (leased,
//! so one process runs it at a time) and queues its deliveries again page by page
//! ([`hookline_core::Replayer`]). The deliveries then go out through this engine's claims like
//! any other, under the webhook's rate limit and the receiver's pause.

use std::time::Duration;

use hookline_core::{ReplayStep, Replayer, Services};

/// Between steps while a replay has pages left.
const BUSY_PAUSE: Duration = Duration::from_millis(20);
/// Between looks for a replay to run, and while a replay waits for its webhook's queue.
const IDLE_PAUSE: Duration = Duration::from_secs(1);
/// After a failed step (the database away, say): the replay resumes from its cursor.
const ERROR_PAUSE: Duration = Duration::from_secs(5);

/// Runs until aborted.
pub async fn run(services: Services) {
    let mut replayer = Replayer::default();
    loop {
        let pause = match replayer.step(&services).await {
            Ok(ReplayStep::Worked) => BUSY_PAUSE,
            Ok(ReplayStep::Idle | ReplayStep::Waiting) => IDLE_PAUSE,
            Err(e) => {
                tracing::warn!(error = %e, "a step of a replay failed");
                ERROR_PAUSE
            }
        };
        tokio::time::sleep(pause).await;
    }
}
