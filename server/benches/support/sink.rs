//! The benchmarks' load: producers publishing review events, and the receiver, which counts
//! deliveries and keeps each one's publish-to-receive latency (the payload starts with
//! `{"t":<µs>`). Shared by the delivery and retention benchmarks through `#[path]`.
//! Requests to `/hang` are answered only after a minute, past the longest delivery timeout
//! Hookline allows (30 s): a receiver that hangs until the sender's timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::any;

pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

/// Latencies (µs) of every delivery received.
#[derive(Clone, Default)]
pub struct Sink {
    pub latencies: Arc<Mutex<Vec<u64>>>,
    pub count: Arc<AtomicUsize>,
    /// Payload bytes received, for MB/s.
    pub bytes: Arc<AtomicUsize>,
    /// Requests to `/hang` (none answered in time).
    pub hung: Arc<AtomicUsize>,
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
    sink.bytes.fetch_add(body.len(), Ordering::Relaxed);
    sink.count.fetch_add(1, Ordering::Relaxed);
    "ok"
}

/// Answers too late: the sender gives up at its timeout. A minute and not never, so that the
/// connections it leaves behind close within the scenario's time.
async fn hang(State(sink): State<Sink>) -> &'static str {
    sink.hung.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(60)).await;
    "too late"
}

/// A receiver on loopback and its URL (`…/hook`; `…/hang` for one that answers too late).
pub async fn start_sink() -> (Sink, String) {
    let sink = Sink::default();
    let app = Router::new().route("/hang", any(hang)).fallback(receive).with_state(sink.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (sink, url)
}

/// Publishes `events` events with `producers` concurrent producers, at most `rate` a second.
pub async fn publish(base: &str, key: &str, events: usize, producers: usize, rate: Option<f64>) {
    publish_sized(base, key, events, producers, rate, 0).await
}

/// Publishes one event body and expects it accepted.
pub async fn post_event(client: &reqwest::Client, url: &str, key: &str, body: String) {
    let res = client
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("publish answers");
    assert_eq!(res.status(), 202, "publish failed");
}

/// The review event's payload, padded to `bytes` when that is more than its own size (the
/// padding goes last: the receiver reads the send time from the start).
pub fn review_payload(i: usize, bytes: usize) -> String {
    let payload = format!(
        r#"{{"t":{},"i":{i},"data":{{"rating":5,"title":"Great fit","body":"Arrived fast and fits well."}}}}"#,
        now_us()
    );
    let padding = bytes.saturating_sub(payload.len() + r#","pad":"""#.len());
    if padding == 0 {
        return payload;
    }
    format!(r#"{},"pad":"{}"}}"#, &payload[..payload.len() - 1], filler(i, padding))
}

/// `n` letters and digits, different for each `seed`, that hardly compress: PostgreSQL
/// compresses large values, and would store a run of one letter for almost nothing.
fn filler(seed: usize, n: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // xorshift64: cheap enough for 250 KiB per event.
    let mut x = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x & 63) as usize] as char
        })
        .collect()
}

/// [`publish`] with payloads of `payload_bytes` (0: the review event as it is).
pub async fn publish_sized(
    base: &str,
    key: &str,
    events: usize,
    producers: usize,
    rate: Option<f64>,
    payload_bytes: usize,
) {
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
                    r#"{{"tenant_type":"store","tenant_id":"bench","event_type":"review-created","payload":{}}}"#,
                    review_payload(i, payload_bytes)
                );
                post_event(&client, &url, &key, body).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
