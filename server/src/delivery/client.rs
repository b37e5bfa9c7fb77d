//! The one place that makes outgoing webhook requests. It resolves names itself and drops
//! every address the operator's policy does not permit, so the connection is made only to an
//! address that was checked (no DNS-rebinding window); literal IPs are checked before
//! sending; redirects are never followed; response bodies are read up to 64 KiB.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookline_core::AddressPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

pub const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// Most bytes of response headers (names and values) kept with an attempt; a receiver can
/// send hundreds of kilobytes of them.
pub const MAX_RESPONSE_HEADERS: usize = 16 * 1024;

/// The response's headers as stored text, up to [`MAX_RESPONSE_HEADERS`] bytes; what does not
/// fit is counted in a last pseudo-header.
fn storable_headers(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    let mut kept = Vec::new();
    let mut size = 0;
    let mut left_out = 0;
    for (name, value) in headers {
        let len = name.as_str().len() + value.len();
        if left_out > 0 || size + len > MAX_RESPONSE_HEADERS {
            left_out += 1;
            continue;
        }
        size += len;
        kept.push((name.to_string(), storable_text(value.as_bytes())));
    }
    if left_out > 0 {
        kept.push((
            "hookline-truncated".to_string(),
            format!("{left_out} more headers not stored (over {MAX_RESPONSE_HEADERS} bytes)"),
        ));
    }
    kept
}

/// What a receiver sent, as text every database can store: invalid UTF-8 and U+0000 (which a
/// PostgreSQL text column refuses) become U+FFFD.
fn storable_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.contains('\0') { text.replace('\0', "\u{fffd}") } else { text.into_owned() }
}

/// Why an attempt failed: the vocabulary's own (the attempt log and the metrics name it).
pub use hookline_core::AttemptErrorClass as ErrorClass;

pub struct Outcome {
    pub duration: Duration,
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub error: Option<(ErrorClass, String)>,
    /// From `Retry-After` on 429 and 503.
    pub retry_after: Option<Duration>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to addresses that webhooks may not reach")]
struct BlockedAddress(String);

#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {0}: {1}")]
struct DnsFailure(String, std::io::Error);

struct GuardedResolver {
    policy: AddressPolicy,
    /// For `http://` URLs: only allowlisted networks, never the public internet.
    allowlisted_only: bool,
}

impl GuardedResolver {
    fn permits(&self, ip: IpAddr) -> bool {
        if self.allowlisted_only { self.policy.is_allowlisted(ip) } else { self.policy.permits(ip) }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let policy = self.policy.clone();
        let allowlisted_only = self.allowlisted_only;
        Box::pin(async move {
            let resolver = GuardedResolver { policy, allowlisted_only };
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Box::new(DnsFailure(host.clone(), e)) as Box<dyn StdError + Send + Sync>)?
                .collect();
            let allowed: Vec<SocketAddr> = found.into_iter().filter(|a| resolver.permits(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(BlockedAddress(host)) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[derive(Clone)]
pub struct WebhookClient {
    https: reqwest::Client,
    http: reqwest::Client,
    policy: AddressPolicy,
    allow_http: bool,
    timeout: Duration,
}

impl WebhookClient {
    /// `idle_per_host` bounds the connections kept open to one receiver between requests.
    /// Give it the process's delivery concurrency: a receiver that takes many webhooks (a
    /// partner app subscribed for every store) then never has a connection closed only to be
    /// opened again for the next request, and no host can hold more idle connections than
    /// could be busy at once.
    pub fn new(policy: AddressPolicy, allow_http: bool, timeout: Duration, idle_per_host: usize) -> Self {
        let build = |allowlisted_only: bool| {
            reqwest::Client::builder()
                .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone(), allowlisted_only }))
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .connect_timeout(timeout)
                .pool_max_idle_per_host(idle_per_host)
                .user_agent(concat!("Hookline/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("the TLS provider is installed at start")
        };
        WebhookClient { https: build(false), http: build(true), policy, allow_http, timeout }
    }

    /// POSTs the body with the headers and reports what happened; never returns an error.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: impl Into<reqwest::Body>,
    ) -> Outcome {
        let start = Instant::now();
        let fail = |class: ErrorClass, message: String| Outcome {
            duration: start.elapsed(),
            status: None,
            headers: Vec::new(),
            body: None,
            error: Some((class, message)),
            retry_after: None,
        };
        let parsed = match reqwest::Url::parse(url) {
            Ok(u) => u,
            Err(e) => return fail(ErrorClass::Connect, format!("invalid URL: {e}")),
        };
        let is_http = parsed.scheme() == "http";
        if is_http && !self.allow_http {
            return fail(ErrorClass::Blocked, "http:// URLs are not allowed".into());
        }
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal {
            let ok = if is_http { self.policy.is_allowlisted(ip) } else { self.policy.permits(ip) };
            if !ok {
                return fail(ErrorClass::Blocked, format!("{ip} is not an address webhooks may reach"));
            }
        }
        let client = if is_http { &self.http } else { &self.https };
        let mut request = client.post(parsed).body(body);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let exchange = async {
            let mut response = request.send().await?;
            let status = response.status().as_u16();
            let headers = storable_headers(response.headers());
            let retry_after = if status == 429 || status == 503 {
                response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
            } else {
                None
            };
            let mut body = Vec::new();
            while body.len() < MAX_RESPONSE_BODY {
                match response.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    Ok(None) => break,
                    // The status already decides the attempt; a broken body does not change it.
                    Err(_) => break,
                }
            }
            body.truncate(MAX_RESPONSE_BODY);
            Ok::<_, reqwest::Error>((status, headers, body, retry_after))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => fail(ErrorClass::Timeout, format!("no response within {:?}", self.timeout)),
            Ok(Err(e)) => {
                let (class, message) = classify(&e);
                fail(class, message)
            }
            Ok(Ok((status, headers, body, retry_after))) => {
                let error = (!(200..300).contains(&status))
                    .then(|| (ErrorClass::HttpStatus, format!("HTTP {status}")));
                Outcome {
                    duration: start.elapsed(),
                    status: Some(status),
                    headers,
                    body: Some(storable_text(&body)),
                    error,
                    retry_after,
                }
            }
        }
    }
}

fn classify(e: &reqwest::Error) -> (ErrorClass, String) {
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    let mut innermost = e.to_string();
    while let Some(err) = source {
        if err.is::<BlockedAddress>() {
            return (ErrorClass::Blocked, err.to_string());
        }
        if err.is::<DnsFailure>() {
            return (ErrorClass::Dns, err.to_string());
        }
        if err.is::<rustls::Error>() {
            return (ErrorClass::Tls, err.to_string());
        }
        innermost = err.to_string();
        source = err.source();
    }
    if e.is_timeout() { (ErrorClass::Timeout, innermost) } else { (ErrorClass::Connect, innermost) }
}
