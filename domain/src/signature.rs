//! Standard Webhooks signatures: `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`,
//! keyed with the base64-decoded part of a `whsec_` secret. The delivery engine signs with
//! [`signature_header`]; the webhook page's signature check runs [`diagnose`] in the browser
//! (and on the server before the WebAssembly has loaded), so both use this one signer.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::time::human_time;

/// What every signing secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";

/// How far a request's `webhook-timestamp` may be from the receiver's clock, in seconds: the
/// Standard Webhooks libraries' tolerance, which receivers apply against replays.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;

/// The headers a signed request carries, in the order a check names a missing one.
pub const SIGNED_HEADERS: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];

/// The `webhook-signature` header: one `v1,` entry per secret, space-separated.
pub fn signature_header(secrets: &[String], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().filter_map(|secret| sign(secret, msg_id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// One `v1,` signature; `None` when the secret is not base64 (no key to sign with).
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let mac = mac(secret, msg_id, timestamp, body)?;
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

fn mac(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    let key = STANDARD.decode(secret.trim().strip_prefix(SECRET_PREFIX).unwrap_or(secret.trim())).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// A request as a receiver got it: its headers (as pasted, one `name: value` a line) and body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceivedRequest {
    headers: Vec<(String, String)>,
    body: String,
}

impl ReceivedRequest {
    /// Reads pasted headers: `name: value` lines; a request line (`POST /hook HTTP/1.1`),
    /// blank lines and anything without a colon are skipped, so a copy of a whole log entry
    /// works too.
    pub fn parse(headers: &str, body: &str) -> Self {
        let headers = headers
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
            .filter(|(name, _)| !name.is_empty() && !name.contains(' '))
            .collect();
        ReceivedRequest { headers, body: body.to_string() }
    }

    /// A header's value, by case-insensitive name; an empty value counts as none.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The `webhook-id`: the event's id, by which the original body can be looked up.
    pub fn webhook_id(&self) -> Option<&str> {
        self.header("webhook-id")
    }

    pub fn body(&self) -> &str {
        &self.body
    }
}

/// One of the webhook's signing secrets, as the check knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownSecret {
    pub secret: String,
    /// When a rotation replaced it (ms since the epoch); `None` for the current secret.
    pub rotated_out_at: Option<i64>,
}

/// How a body differs from the one that was signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyChange {
    /// Only whitespace differs: a pretty-printer, a trimmed or added newline, CRLF line ends.
    Whitespace,
    /// The same JSON written differently: key order, escapes, number formats.
    ReEncoded,
}

/// What the signature check found, most telling reason first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Signed with the current secret, within the tolerance, over this very body.
    Verifies,
    MissingHeader {
        header: String,
    },
    /// A header is there but cannot be read.
    MalformedHeader {
        header: String,
    },
    /// No signature was made with this webhook's secrets; `entered` when the secret typed in
    /// the check is not this webhook's while Hookline's own current secret verifies.
    WrongSecret {
        entered: bool,
    },
    /// Signed with (or checked against) a secret a rotation replaced.
    RotatedSecret {
        rotated_out_at: i64,
    },
    /// Correctly signed, but `webhook-timestamp` is this many seconds from now (negative: in
    /// the future).
    OutsideTolerance {
        age_secs: i64,
    },
    /// The signature fits the body Hookline sent, not this one.
    BodyChanged {
        change: BodyChange,
    },
}

impl Verdict {
    pub fn verifies(&self) -> bool {
        matches!(self, Verdict::Verifies)
    }

    /// The verdict as text for an address: a plain form post's check is shown on the page the
    /// browser is sent back to.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// [`Self::encode`]'s text back; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// The verdict in a few words, for a heading.
    pub fn title(&self) -> &'static str {
        match self {
            Verdict::Verifies => "Verifies",
            Verdict::MissingHeader { .. } => "Missing header",
            Verdict::MalformedHeader { .. } => "Unreadable header",
            Verdict::WrongSecret { .. } => "Wrong secret",
            Verdict::RotatedSecret { .. } => "Rotated secret",
            Verdict::OutsideTolerance { .. } => "Timestamp outside tolerance",
            Verdict::BodyChanged { .. } => "Body changed",
        }
    }

    /// What the check found and what to do about it.
    pub fn sentence(&self) -> String {
        match self {
            Verdict::Verifies => {
                "The signature verifies with the current secret, the timestamp is within 5 minutes, \
                 and the body is the one Hookline sent."
                    .to_string()
            }
            Verdict::MissingHeader { header } => format!(
                "The {header} header is missing. Standard Webhooks signatures need webhook-id, \
                 webhook-timestamp and webhook-signature; check that your server or proxy passes them on."
            ),
            Verdict::MalformedHeader { header } if header == "webhook-timestamp" => {
                "The webhook-timestamp header is not a number of seconds.".to_string()
            }
            Verdict::MalformedHeader { header } => {
                format!("The {header} header holds no readable v1 signature.")
            }
            Verdict::WrongSecret { entered: true } => {
                "The secret you entered is not this webhook's signing secret. \
                 The request verifies with the current secret: use the one shown under Signing secret."
                    .to_string()
            }
            Verdict::WrongSecret { entered: false } => {
                "No signature in the request was made with this webhook's \
                 secrets: it was signed for another webhook, or its webhook-id or webhook-timestamp changed."
                    .to_string()
            }
            Verdict::RotatedSecret { rotated_out_at } => format!(
                "This is a secret that was rotated out on {}. Use the current secret shown under Signing secret.",
                human_time(*rotated_out_at)
            ),
            Verdict::OutsideTolerance { age_secs } if *age_secs < 0 => format!(
                "The signature is right, but webhook-timestamp is {} in the future; receivers reject \
                 timestamps more than 5 minutes away. Check the receiver's clock.",
                minutes(-age_secs)
            ),
            Verdict::OutsideTolerance { age_secs } => format!(
                "The signature is right, but webhook-timestamp is {} old; receivers reject timestamps \
                 more than 5 minutes away, against replays. Check the receiver's clock, or send the delivery again.",
                minutes(*age_secs)
            ),
            Verdict::BodyChanged { change: BodyChange::Whitespace } => {
                "The body's whitespace changed after it was \
                 sent. Verify the raw body as received, before any parsing or pretty-printing."
                    .to_string()
            }
            Verdict::BodyChanged { change: BodyChange::ReEncoded } => {
                "The body was parsed and written out again as \
                 JSON, so it is not the byte-for-byte body that was signed. Verify the raw body as received."
                    .to_string()
            }
        }
    }
}

fn minutes(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} seconds"),
        s if s < 7_200 => format!("{} minutes", s / 60),
        s if s < 172_800 => format!("{} hours", s / 3_600),
        s => format!("{} days", s / 86_400),
    }
}

/// Why `request` verifies or not against the webhook's `secrets` (current first), at `now`
/// (seconds since the epoch). `entered` is the secret the receiver uses, if the person
/// checking typed it; `original_body` the body Hookline sent with that `webhook-id`, if known.
pub fn diagnose(
    request: &ReceivedRequest,
    secrets: &[KnownSecret],
    entered: Option<&str>,
    original_body: Option<&str>,
    now: i64,
) -> Verdict {
    for header in SIGNED_HEADERS {
        if request.header(header).is_none() {
            return Verdict::MissingHeader { header: header.to_string() };
        }
    }
    let id = request.header("webhook-id").unwrap_or_default();
    let Some(timestamp) = request.header("webhook-timestamp").and_then(|t| t.parse::<i64>().ok()) else {
        return Verdict::MalformedHeader { header: "webhook-timestamp".into() };
    };
    let signatures: Vec<Vec<u8>> = request
        .header("webhook-signature")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| STANDARD.decode(s).ok())
        .collect();
    if signatures.is_empty() {
        return Verdict::MalformedHeader { header: "webhook-signature".into() };
    }
    let signs = |secret: &str, body: &[u8]| {
        signatures
            .iter()
            .any(|sig| mac(secret, id, timestamp, body).is_some_and(|m| m.verify_slice(sig).is_ok()))
    };
    let body = request.body();
    let entered = entered.map(str::trim).filter(|s| !s.is_empty());
    if let Some(entered) = entered {
        match secrets.iter().find(|k| k.secret == entered) {
            Some(KnownSecret { rotated_out_at: Some(at), .. }) => {
                return Verdict::RotatedSecret { rotated_out_at: *at };
            }
            Some(_) => {}
            None if secrets
                .iter()
                .any(|k| k.rotated_out_at.is_none() && signs(&k.secret, body.as_bytes())) =>
            {
                return Verdict::WrongSecret { entered: true };
            }
            // Neither the entered secret nor this webhook's: see whether a body changed
            // explains it, else it is the wrong secret.
            None if !signs(entered, body.as_bytes()) => {}
            None => return Verdict::WrongSecret { entered: true },
        }
    }
    match secrets.iter().find(|k| signs(&k.secret, body.as_bytes())) {
        Some(KnownSecret { rotated_out_at: Some(at), .. }) => Verdict::RotatedSecret { rotated_out_at: *at },
        Some(_) if (now - timestamp).abs() > TIMESTAMP_TOLERANCE_SECS => {
            Verdict::OutsideTolerance { age_secs: now - timestamp }
        }
        Some(_) => Verdict::Verifies,
        None => {
            let signed_body = original_body
                .filter(|o| *o != body)
                .into_iter()
                .map(str::to_string)
                .chain(rewritten(body))
                .find(|candidate| secrets.iter().any(|k| signs(&k.secret, candidate.as_bytes())));
            match signed_body {
                Some(signed) => Verdict::BodyChanged { change: body_change(&signed, body) },
                None => Verdict::WrongSecret { entered: entered.is_some() },
            }
        }
    }
}

/// Bodies the pasted one may have been before a change on the way: without a trailing newline
/// or the CRLF line ends of a copy, and the JSON as compact text.
fn rewritten(body: &str) -> Vec<String> {
    let mut candidates = vec![
        body.trim_end_matches(['\n', '\r']).to_string(),
        body.trim().to_string(),
        body.replace("\r\n", "\n"),
    ];
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(body) {
        candidates.push(value.to_string());
    }
    candidates.retain(|c| c != body);
    candidates.dedup();
    candidates
}

fn body_change(signed: &str, received: &str) -> BodyChange {
    let squeezed = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    if squeezed(signed) == squeezed(received) { BodyChange::Whitespace } else { BodyChange::ReEncoded }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const OLD: &str = "whsec_c2VjcmV0LW9mLWxhc3Qtd2Vlaw==";
    const OTHER: &str = "whsec_YW5vdGhlci13ZWJob29rcy1zZWNyZXQ=";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const NOW: i64 = 1614265330;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The example from the Standard Webhooks specification.
        let sig = sign(SECRET, ID, 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(sig.as_deref(), Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
    }

    #[test]
    fn every_active_secret_signs() {
        let header = signature_header(&[SECRET.to_string(), OLD.to_string()], "id", 1, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.split(' ').all(|s| s.starts_with("v1,")));
    }

    fn secrets() -> Vec<KnownSecret> {
        vec![
            KnownSecret { secret: SECRET.into(), rotated_out_at: None },
            KnownSecret { secret: OLD.into(), rotated_out_at: Some(1_600_000_000_000) },
        ]
    }

    /// A request as Hookline sends it, signed with `signing` at `timestamp`.
    fn request(signing: &[&str], timestamp: i64, body: &str) -> String {
        let secrets: Vec<String> = signing.iter().map(|s| s.to_string()).collect();
        format!(
            "POST /hooks HTTP/1.1\ncontent-type: application/json\nwebhook-id: {ID}\nwebhook-timestamp: {timestamp}\n\
             webhook-signature: {}\n",
            signature_header(&secrets, ID, timestamp, body.as_bytes())
        )
    }

    fn check(headers: &str, body: &str) -> Verdict {
        diagnose(&ReceivedRequest::parse(headers, body), &secrets(), None, None, NOW)
    }

    #[test]
    fn the_reference_request_verifies() {
        let headers = format!(
            "Webhook-Id: {ID}\r\nWebhook-Timestamp: 1614265330\r\n\
             Webhook-Signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\r\n"
        );
        let verdict = check(&headers, r#"{"test": 2432232314}"#);
        assert_eq!(verdict, Verdict::Verifies);
        assert!(verdict.verifies());
        // During a rotation's grace period a delivery carries both signatures: still fine.
        assert_eq!(check(&request(&[SECRET, OLD], NOW, "{}"), "{}"), Verdict::Verifies);
    }

    #[test]
    fn a_missing_header_is_named() {
        let full = request(&[SECRET], NOW, "{}");
        for header in SIGNED_HEADERS {
            let without: String =
                full.lines().filter(|l| !l.starts_with(header)).map(|l| format!("{l}\n")).collect();
            let verdict = check(&without, "{}");
            assert_eq!(verdict, Verdict::MissingHeader { header: header.into() });
            assert!(verdict.sentence().contains(header), "{}", verdict.sentence());
        }
    }

    #[test]
    fn unreadable_headers_are_named() {
        let headers = format!("webhook-id: {ID}\nwebhook-timestamp: yesterday\nwebhook-signature: v1,AAAA\n");
        assert_eq!(check(&headers, "{}"), Verdict::MalformedHeader { header: "webhook-timestamp".into() });
        let headers = format!("webhook-id: {ID}\nwebhook-timestamp: {NOW}\nwebhook-signature: sha256=abc\n");
        assert_eq!(check(&headers, "{}"), Verdict::MalformedHeader { header: "webhook-signature".into() });
    }

    #[test]
    fn another_webhooks_secret_is_the_wrong_secret() {
        let verdict = check(&request(&[OTHER], NOW, "{}"), "{}");
        assert_eq!(verdict, Verdict::WrongSecret { entered: false });
        assert!(verdict.sentence().contains("another webhook"));
    }

    #[test]
    fn an_entered_secret_that_is_not_the_webhooks_is_the_wrong_secret() {
        let parsed = ReceivedRequest::parse(&request(&[SECRET], NOW, "{}"), "{}");
        let verdict = diagnose(&parsed, &secrets(), Some(OTHER), None, NOW);
        assert_eq!(verdict, Verdict::WrongSecret { entered: true });
        // The current secret, entered, is simply right.
        assert_eq!(diagnose(&parsed, &secrets(), Some(SECRET), None, NOW), Verdict::Verifies);
    }

    #[test]
    fn a_rotated_out_secret_is_named_with_when() {
        // Signed before the rotation, with the secret since replaced.
        let verdict = check(&request(&[OLD], NOW, "{}"), "{}");
        assert_eq!(verdict, Verdict::RotatedSecret { rotated_out_at: 1_600_000_000_000 });
        assert!(verdict.sentence().contains("rotated out on 2020-09-13"), "{}", verdict.sentence());
        // A receiver still on the old secret, during the grace period when both sign.
        let parsed = ReceivedRequest::parse(&request(&[SECRET, OLD], NOW, "{}"), "{}");
        assert_eq!(
            diagnose(&parsed, &secrets(), Some(OLD), None, NOW),
            Verdict::RotatedSecret { rotated_out_at: 1_600_000_000_000 }
        );
    }

    #[test]
    fn a_timestamp_beyond_five_minutes_is_outside_tolerance() {
        let at_edge = request(&[SECRET], NOW - TIMESTAMP_TOLERANCE_SECS, "{}");
        assert_eq!(check(&at_edge, "{}"), Verdict::Verifies);
        let old = request(&[SECRET], NOW - 12 * 60, "{}");
        let verdict = check(&old, "{}");
        assert_eq!(verdict, Verdict::OutsideTolerance { age_secs: 720 });
        assert!(verdict.sentence().contains("12 minutes old"), "{}", verdict.sentence());
        let future = request(&[SECRET], NOW + 301, "{}");
        assert!(check(&future, "{}").sentence().contains("in the future"));
    }

    #[test]
    fn changed_whitespace_is_a_changed_body() {
        let sent = r#"{"review":{"id":42,"rating":5}}"#;
        let headers = request(&[SECRET], NOW, sent);
        let pretty = "{\n  \"review\": {\n    \"id\": 42,\n    \"rating\": 5\n  }\n}";
        assert_eq!(check(&headers, pretty), Verdict::BodyChanged { change: BodyChange::Whitespace });
        let newline = format!("{sent}\n");
        assert_eq!(check(&headers, &newline), Verdict::BodyChanged { change: BodyChange::Whitespace });
    }

    #[test]
    fn re_encoded_json_is_a_changed_body() {
        // Sent with its keys in the publisher's order; a receiver parsed and wrote it again.
        let sent = r#"{"b":1,"a":"é"}"#;
        let headers = request(&[SECRET], NOW, sent);
        let parsed = ReceivedRequest::parse(&headers, r#"{"a":"\u00e9","b":1}"#);
        let verdict = diagnose(&parsed, &secrets(), None, Some(sent), NOW);
        assert_eq!(verdict, Verdict::BodyChanged { change: BodyChange::ReEncoded });
        assert!(verdict.sentence().contains("written out again as JSON"));
        // Without the original body to compare with, it cannot tell: not this webhook's
        // signature over anything it can rebuild.
        assert_eq!(diagnose(&parsed, &secrets(), None, None, NOW), Verdict::WrongSecret { entered: false });
    }

    #[test]
    fn verdicts_travel_as_tagged_json() {
        let verdict = Verdict::BodyChanged { change: BodyChange::ReEncoded };
        let json = serde_json::to_string(&verdict).unwrap();
        assert_eq!(json, r#"{"verdict":"body_changed","change":"re_encoded"}"#);
        assert_eq!(Verdict::decode(&verdict.encode()), Some(verdict));
        assert_eq!(Verdict::decode("verifies"), None);
    }
}
