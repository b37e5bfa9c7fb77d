//! The benchmarks' load: producers publishing review events, and the receiver, which counts
//! deliveries and keeps each one's publish-to-receive latency (the payload starts with
//! `{"t":<µs>`). Shared by the delivery and retention benchmarks through `#[path]`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;

pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

/// Latencies (µs) of every delivery received.
#[derive(Clone, Default)]
pub struct Sink {
    pub latencies: Arc<Mutex<Vec<u64>>>,
    pub count: Arc<AtomicUsize>,
}

async fn receive(State(sink): State<Sink>, body: Bytes) -> &'static str {
    let now = now_us();
    // Read the number without a JSON parser.
    let sent = body
        .strip_prefix(b"{\"t\":")
        .and_then(|rest| rest.iter().position(|b| !b.is_ascii_digit()).map(|end| &rest[..end]))
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(now);
    sink.latencies.lock().unwrap().push(now.saturating_sub(sent));
    sink.count.fetch_add(1, Ordering::Relaxed);
    "ok"
}

/// A receiver on loopback and its URL.
pub async fn start_sink() -> (Sink, String) {
    let sink = Sink::default();
    let app = Router::new().fallback(receive).with_state(sink.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (sink, url)
}

/// Publishes `events` events with `producers` concurrent producers, at most `rate` a second.
pub async fn publish(base: &str, key: &str, events: usize, producers: usize, rate: Option<f64>) {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..producers {
        let (client, next, url, key) =
            (client.clone(), next.clone(), format!("{base}/api/v1/events"), key.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= events {
                    return;
                }
                if let Some(rate) = rate {
                    let due = start + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let body = format!(
                    r#"{{"tenant_type":"store","tenant_id":"bench","event_type":"review-created","payload":{{"t":{},"i":{i},"data":{{"rating":5,"title":"Great fit","body":"Arrived fast and fits well."}}}}}}"#,
                    now_us()
                );
                let res = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("publish answers");
                assert_eq!(res.status(), 202, "publish failed");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
