//! One slow or dead endpoint never holds up the others.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use test_receiver::{Behaviour, Receiver};

use crate::common::*;

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

on_both_databases! {
    async fn a_hanging_endpoint_does_not_slow_a_healthy_one(backend: Backend) {
        let app = spawn_with(backend, &[
            ("HOOKLINE_DELIVERY_TIMEOUT", "1s"),
            ("HOOKLINE_DELIVERY_CONCURRENCY", "16"),
            ("HOOKLINE_PER_WEBHOOK_CONCURRENCY", "4"),
            ("HOOKLINE_RETRY_SCHEDULE", "50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms"),
        ]).await;
        let hanging = Receiver::start().await.unwrap();
        hanging.configure(Behaviour { delay_ms: Some(10_000), ..Default::default() });
        let healthy = Receiver::start().await.unwrap();
        app.create_webhook("store-a", &hanging.url("/hangs"), None).await;
        app.create_webhook("store-a", &healthy.url("/fine"), None).await;

        let mut sent = Vec::new();
        for i in 0..60 {
            sent.push(now_ms());
            app.publish("store-a", "review-created", json!({"i": i})).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let got = healthy.wait_for(60, Duration::from_secs(30)).await;
        assert_eq!(got.len(), 60);
        let mut latencies: Vec<u128> = got
            .iter()
            .map(|r| {
                let i = serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["i"].as_u64().unwrap() as usize;
                r.received_at_ms.saturating_sub(sent[i])
            })
            .collect();
        latencies.sort();
        let p95 = latencies[latencies.len() * 95 / 100];
        // A delivery to the hanging endpoint holds its slot for the whole 1 s timeout; had the
        // healthy endpoint waited for slots, its latency would be counted in seconds.
        assert!(p95 < 400, "healthy endpoint p95 latency {p95} ms; all: {latencies:?}");
        // At most 4 requests at a time reach the hanging endpoint, each held for the 1 s
        // timeout: so at most 4 per started second since the first publish (a slow machine
        // makes the run longer, not the share larger).
        let seconds = (now_ms() - sent[0]).div_ceil(1000);
        let share = 4 * (seconds as usize + 1);
        let got = hanging.received().len();
        assert!(got <= share, "the hanging endpoint got {got} requests in {seconds} s, more than its share of {share}");
    }
}
