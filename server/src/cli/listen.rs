//! `hookline listen` and `hookline trigger`: a developer's events on localhost, through one
//! outgoing connection to the operator's Hookline (no public URL). `listen` holds the server's
//! `GET /api/v1/listen` stream (server-sent events) and forwards each event to a local URL
//! with the headers and body of a delivery; `trigger` publishes a catalog type's example
//! payload. Neither opens a database: they are clients of the REST API.
//!
//! When the server goes away, `listen` says so and exits with status 1 (a supervisor or the
//! developer starts it again); it does not reconnect by itself, since a new stream is a new
//! listener with a new secret.

use std::time::{Duration, Instant};

use clap::Args;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::Value;

/// How long the local receiver may take to answer one event.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest message the stream may carry (a payload at the server's largest limit, escaped).
const MAX_MESSAGE: usize = 8 * 1024 * 1024;

#[derive(Args, Debug)]
pub struct ListenArgs {
    /// Your Hookline's address, e.g. https://hookline.example
    #[arg(long)]
    pub url: String,
    /// An API key: a store's, an application's or an admin's
    #[arg(long)]
    pub key: String,
    /// Where to send each event, e.g. http://localhost:8080/webhooks
    #[arg(long)]
    pub forward_to: String,
    /// Only these event types (comma-separated); all by default
    #[arg(long)]
    pub events: Option<String>,
    /// Send this past event again first, then keep listening
    #[arg(long)]
    pub replay: Option<String>,
    /// The tenant's type (store or application); needed with an admin key
    #[arg(long)]
    pub tenant_type: Option<String>,
    /// The tenant's id; needed with an admin key, or an application's key listening to a store
    #[arg(long)]
    pub tenant_id: Option<String>,
}

#[derive(Args, Debug)]
pub struct TriggerArgs {
    /// A name from the event type catalog, e.g. order.created
    pub event_type: String,
    /// Your Hookline's address, e.g. https://hookline.example
    #[arg(long)]
    pub url: String,
    /// An API key that may publish for the tenant
    #[arg(long)]
    pub key: String,
    /// The tenant's type (store or application); needed with an admin key
    #[arg(long)]
    pub tenant_type: Option<String>,
    /// The tenant's id; needed with an admin key
    #[arg(long)]
    pub tenant_id: Option<String>,
}

/// `ListenerStarted` of the API.
#[derive(Deserialize)]
struct Started {
    secret: String,
    tenant_type: String,
    tenant_id: String,
    event_types: Option<Vec<String>>,
}

/// `ListenedEvent` of the API.
#[derive(Deserialize)]
struct Delivered {
    event_id: String,
    event_type: String,
    replay: bool,
    headers: Vec<(String, String)>,
    body: String,
}

/// `hookline listen`: runs until the server ends the stream (an error) or Ctrl-C (success).
pub async fn listen(args: ListenArgs) -> Result<(), String> {
    let base = base_url(&args.url)?;
    let forward_to = reqwest::Url::parse(&args.forward_to)
        .map_err(|e| format!("--forward-to {:?} is not a URL: {e}", args.forward_to))?;
    let mut url = base.clone();
    url.set_path(&format!("{}/api/v1/listen", base.path().trim_end_matches('/')));
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in [
            ("tenant_type", &args.tenant_type),
            ("tenant_id", &args.tenant_id),
            ("events", &args.events),
            ("replay", &args.replay),
        ] {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
    }
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let forwarder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(FORWARD_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let mut response = client
        .get(url)
        .bearer_auth(args.key.trim())
        .header(ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(|e| format!("cannot reach Hookline at {base}: {}", error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(api_error("cannot listen", response).await);
    }
    let mut messages = Messages::default();
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        let chunk = tokio::select! {
            chunk = response.chunk() => chunk,
            () = &mut stop => {
                eprintln!("Stopped listening.");
                return Ok(());
            }
        };
        let chunk = match chunk {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                return Err(format!("the connection to Hookline at {base} ended (the server went away)"));
            }
            Err(e) => return Err(format!("lost the connection to Hookline at {base}: {}", error_chain(&e))),
        };
        messages.push(&chunk)?;
        while let Some((name, data)) = messages.next() {
            match name.as_str() {
                "listening" => {
                    let started: Started = serde_json::from_str(&data)
                        .map_err(|e| format!("the server sent a start this CLI cannot read: {e}"))?;
                    let types =
                        started.event_types.map_or_else(|| "all events".to_string(), |t| t.join(", "));
                    println!(
                        "Listening to {} {} ({types}), forwarding to {forward_to}",
                        started.tenant_type, started.tenant_id
                    );
                    println!("Signing secret: {}", started.secret);
                    println!("(verify the events with this secret; it lasts as long as this command runs)");
                }
                "delivery" => {
                    let event: Delivered = serde_json::from_str(&data)
                        .map_err(|e| format!("the server sent an event this CLI cannot read: {e}"))?;
                    println!("{}", forward(&forwarder, &forward_to, event).await);
                }
                "closed" => return Err(format!("Hookline ended the stream: {data}")),
                _ => {}
            }
        }
    }
}

/// Sends one event to the local receiver; answers the line to print.
async fn forward(client: &reqwest::Client, to: &reqwest::Url, event: Delivered) -> String {
    let mut request = client.post(to.clone());
    for (name, value) in &event.headers {
        request = request.header(name, value);
    }
    let started = Instant::now();
    let outcome = request.body(event.body).send().await;
    let took = started.elapsed().as_millis();
    let replay = if event.replay { " (replay)" } else { "" };
    let result = match outcome {
        Ok(answer) => {
            let status = answer.status();
            format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""))
        }
        Err(e) => format!("error: {}", error_chain(&e)),
    };
    format!(
        "{}  {}  {}{replay}  -> {}  [{took} ms]",
        clock(),
        event.event_type,
        event.event_id,
        result.trim_end()
    )
}

/// `hookline trigger`: publishes the catalog's example payload for the type; prints the
/// event's id alone on stdout.
pub async fn trigger(args: TriggerArgs) -> Result<(), String> {
    let base = base_url(&args.url)?;
    let api = |path: &str| format!("{}/api/v1{path}", base.as_str().trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let key = args.key.trim();
    let mut cursor: Option<String> = None;
    let example = loop {
        let mut list = reqwest::Url::parse(&api("/event-types")).map_err(|e| e.to_string())?;
        list.query_pairs_mut().append_pair("limit", "250");
        if let Some(c) = &cursor {
            list.query_pairs_mut().append_pair("cursor", c);
        }
        let response = client
            .get(list)
            .bearer_auth(key)
            .send()
            .await
            .map_err(|e| format!("cannot reach Hookline at {base}: {}", error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(api_error("cannot read the event type catalog", response).await);
        }
        let page: Value = read_json(response).await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if let Some(found) = items.iter().find(|t| t["name"] == args.event_type.as_str()) {
            break found["example_payload"].clone();
        }
        match page["next_cursor"].as_str() {
            Some(next) if !items.is_empty() => cursor = Some(next.to_string()),
            _ => return Err(format!("the event type catalog has no {:?}", args.event_type)),
        }
    };
    let mut body = serde_json::json!({"event_type": args.event_type, "payload": example});
    if let Some(kind) = &args.tenant_type {
        body["tenant_type"] = Value::String(kind.clone());
    }
    if let Some(id) = &args.tenant_id {
        body["tenant_id"] = Value::String(id.clone());
    }
    let response = client
        .post(api("/events"))
        .bearer_auth(key)
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("cannot reach Hookline at {base}: {}", error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(api_error("cannot publish", response).await);
    }
    let accepted: Value = read_json(response).await?;
    let id = accepted["id"].as_str().ok_or("the server's answer has no event id")?;
    println!("{id}");
    eprintln!("Published {} with the catalog's example payload.", args.event_type);
    Ok(())
}

fn base_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("--url {raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("--url {raw:?} must start with https:// (or http://)"));
    }
    Ok(url)
}

async fn read_json(response: reqwest::Response) -> Result<Value, String> {
    let text = response.text().await.map_err(|e| format!("cannot read the server's answer: {e}"))?;
    serde_json::from_str(&text)
        .map_err(|_| "the server's answer is not JSON; is --url a Hookline?".to_string())
}

/// What to print for an API error: its status and the API's own message.
async fn api_error(what: &str, response: reqwest::Response) -> String {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.chars().take(200).collect());
    format!("{what}: {} {}: {message}", status.as_u16(), status.canonical_reason().unwrap_or(""))
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// The time of day, UTC, as the event lines show it.
fn clock() -> String {
    let now = hookline_core::iso8601(hookline_core::now_ms());
    now.get(11..19).unwrap_or(&now).to_string()
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Server-sent events, parsed as the bytes arrive: each message's `event` name and `data`.
#[derive(Default)]
struct Messages {
    buffer: Vec<u8>,
}

impl Messages {
    fn push(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() > MAX_MESSAGE {
            return Err("the server sent a message larger than this CLI takes".into());
        }
        Ok(())
    }

    /// The next complete message; comments (keep-alives) are skipped.
    fn next(&mut self) -> Option<(String, String)> {
        loop {
            let end = self.buffer.windows(2).position(|w| w == b"\n\n")?;
            let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
            let block = String::from_utf8_lossy(&block);
            let (mut name, mut data) = (String::from("message"), Vec::new());
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim_start().to_string();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value).to_string());
                }
            }
            if !data.is_empty() {
                return Some((name, data.join("\n")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_parsed_across_chunks_and_keep_alives_are_skipped() {
        let mut m = Messages::default();
        m.push(b":\n\nevent: listening\ndata: {\"a\":").unwrap();
        assert_eq!(m.next(), None);
        m.push(b"1}\n\nevent: closed\ndata: one\ndata: two\n\n").unwrap();
        assert_eq!(m.next(), Some(("listening".into(), "{\"a\":1}".into())));
        assert_eq!(m.next(), Some(("closed".into(), "one\ntwo".into())));
        assert_eq!(m.next(), None);
    }
}
