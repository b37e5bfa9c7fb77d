//! A webhook receiver for Hookline's tests. It records every request it gets, verifies its
//! signature with the `standardwebhooks` crate (the reference library, unchanged), and
//! answers with a status the test chooses. Rust tests use it as a library; the browser tests
//! run it as a binary and drive it over HTTP:
//!
//! - `POST /_config` `{"secret": "whsec_…", "status": 200, "delay_ms": 0}` sets what it checks and answers;
//! - `GET /_received` lists the deliveries received so far;
//! - any other `POST` is a delivery.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Whether `standardwebhooks` accepted the signature with the configured secret.
    pub verified: bool,
    pub verify_error: Option<String>,
    pub received_at_ms: u128,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Behaviour {
    pub secret: Option<String>,
    /// The status to answer with; 200 when unset.
    pub status: Option<u16>,
    pub delay_ms: Option<u64>,
    /// Sent as `Retry-After` (seconds) with the answer.
    #[serde(default)]
    pub retry_after: Option<u64>,
}

#[derive(Default)]
struct Inner {
    behaviour: Behaviour,
    received: Vec<Received>,
}

#[derive(Clone, Default)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    addr: Option<SocketAddr>,
}

impl Receiver {
    /// Starts a receiver on a free loopback port.
    pub async fn start() -> std::io::Result<Receiver> {
        Self::start_on("127.0.0.1:0".parse().expect("a valid address")).await
    }

    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let receiver = Receiver { addr: Some(listener.local_addr()?), ..Receiver::default() };
        let app = router(receiver.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(receiver)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("the receiver is started")
    }

    /// The URL deliveries should go to, at `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr(), path)
    }

    pub fn configure(&self, behaviour: Behaviour) {
        self.lock().behaviour = behaviour;
    }

    pub fn set_secret(&self, secret: &str) {
        self.lock().behaviour.secret = Some(secret.to_string());
    }

    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Waits until at least `n` deliveries arrived, or the time is up.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub fn router(receiver: Receiver) -> Router {
    Router::new()
        .route("/_config", post(configure))
        .route("/_received", get(list))
        .fallback(deliver)
        .with_state(receiver)
}

async fn configure(State(r): State<Receiver>, Json(b): Json<Behaviour>) -> StatusCode {
    r.configure(b);
    StatusCode::NO_CONTENT
}

async fn list(State(r): State<Receiver>) -> Json<Vec<Received>> {
    Json(r.received())
}

async fn deliver(
    State(r): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap) {
    let behaviour = r.lock().behaviour.clone();
    let (verified, verify_error) = match &behaviour.secret {
        Some(secret) => {
            match standardwebhooks::Webhook::new(secret).and_then(|w| w.verify(&body, &headers)) {
                Ok(()) => (true, None),
                Err(e) => (false, Some(e.to_string())),
            }
        }
        None => (false, Some("no secret configured".into())),
    };
    let received = Received {
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        verified,
        verify_error,
        received_at_ms: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0),
    };
    r.lock().received.push(received);
    if let Some(ms) = behaviour.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut answer = HeaderMap::new();
    if let Some(secs) = behaviour.retry_after {
        answer.insert(axum::http::header::RETRY_AFTER, secs.into());
    }
    (StatusCode::from_u16(behaviour.status.unwrap_or(200)).unwrap_or(StatusCode::OK), answer)
}
