//! Encryption at rest. The operator's keys (`HOOKLINE_SECRET_KEY` and the ones it replaced)
//! form a [`Keyring`] that seals webhook signing secrets into self-describing text,
//! `enc:v1:<key id>:<base64(nonce || ciphertext)>`, and opens that text or a legacy plain
//! `whsec_` secret. A session's one-time message is sealed under a key derived from the session
//! token, which only the browser holds. Both use ChaCha20-Poly1305 with a random nonce.

use std::fmt;

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::webhooks::SECRET_PREFIX;

const SEALED_PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;
const FLASH_CONTEXT: &[u8] = b"hookline flash v1";

/// A 32-byte key that encrypts secrets at rest. Its bytes never reach a log: it shows as its id.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey {
    bytes: [u8; KEY_LEN],
    id: String,
}

impl SecretKey {
    /// 32 bytes as base64 (standard or URL-safe, padded or not) or as 64 hex characters, as
    /// `openssl rand -base64 32` or `openssl rand -hex 32` print them. The error never repeats
    /// the value: it may be a real key with a typo.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let wrong = || {
            format!(
                "not a key: give 32 random bytes as base64 or as 64 hex characters \
                 (`openssl rand -base64 32`); the value given is {} characters long",
                text.len()
            )
        };
        let bytes: Option<Vec<u8>> =
            if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                (0..KEY_LEN).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()).collect()
            } else {
                let lenient =
                    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
                GeneralPurpose::new(&alphabet::STANDARD, lenient)
                    .decode(text)
                    .or_else(|_| GeneralPurpose::new(&alphabet::URL_SAFE, lenient).decode(text))
                    .ok()
            };
        let bytes: [u8; KEY_LEN] = bytes.and_then(|b| b.try_into().ok()).ok_or_else(wrong)?;
        Ok(Self::from_bytes(bytes))
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let digest = Sha256::digest(bytes);
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        SecretKey { bytes, id }
    }

    /// The first 8 hex digits of the key's SHA-256: names the key in sealed text and in logs
    /// without giving it away.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new((&self.bytes).into())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

/// Why a stored secret cannot be read. Each says what the operator can do about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnreadableSecret {
    #[error(
        "it is encrypted under key {0}, which is neither HOOKLINE_SECRET_KEY nor one of \
         HOOKLINE_PREVIOUS_SECRET_KEYS"
    )]
    UnknownKey(String),
    #[error(
        "it is encrypted under key {0} but does not decrypt: it was altered, or copied from another webhook"
    )]
    Tampered(String),
    #[error("it is neither a whsec_ secret nor an enc:v1 encrypted one")]
    Malformed,
}

/// The keys secrets are sealed and opened with: `current` seals (none: secrets are stored as
/// given), `current` and `previous` open.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    pub current: Option<SecretKey>,
    pub previous: Vec<SecretKey>,
}

impl Keyring {
    pub fn new(current: Option<SecretKey>, previous: Vec<SecretKey>) -> Self {
        Keyring { current, previous }
    }

    /// The text to store for `plain`, bound to `context` (the webhook id), so the stored text
    /// opens only for the row it was written for. Without a current key, `plain` itself.
    pub fn seal(&self, plain: &str, context: &str) -> String {
        let Some(key) = &self.current else {
            return plain.to_string();
        };
        let sealed = seal_with(key, plain.as_bytes(), context.as_bytes());
        format!("{SEALED_PREFIX}{}:{}", key.id(), STANDARD.encode(sealed))
    }

    /// The secret stored as `stored` for `context`: sealed under any key of the ring, or a
    /// legacy plain `whsec_` secret.
    pub fn open(&self, stored: &str, context: &str) -> Result<String, UnreadableSecret> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return if stored.starts_with(SECRET_PREFIX) {
                Ok(stored.to_string())
            } else {
                Err(UnreadableSecret::Malformed)
            };
        };
        let (id, body) = rest.split_once(':').ok_or(UnreadableSecret::Malformed)?;
        let sealed = STANDARD.decode(body).map_err(|_| UnreadableSecret::Malformed)?;
        let mut candidates = self.keys().filter(|k| k.id() == id).peekable();
        if candidates.peek().is_none() {
            return Err(UnreadableSecret::UnknownKey(id.to_string()));
        }
        // Two keys may share an 8-digit id; the one that authenticates is the one.
        candidates
            .find_map(|key| open_with(key, &sealed, context.as_bytes()))
            .and_then(|plain| String::from_utf8(plain).ok())
            .ok_or_else(|| UnreadableSecret::Tampered(id.to_string()))
    }

    /// Whether `stored` is already sealed under the current key (so re-encrypting leaves it).
    pub fn is_sealed_under_current(&self, stored: &str) -> bool {
        match (&self.current, stored.strip_prefix(SEALED_PREFIX).and_then(|r| r.split_once(':'))) {
            (Some(key), Some((id, _))) => id == key.id(),
            _ => false,
        }
    }

    fn keys(&self) -> impl Iterator<Item = &SecretKey> {
        self.current.iter().chain(&self.previous)
    }
}

/// A session's one-time message, sealed under a key only the session's token gives: the
/// database keeps the token's hash, so what it stores cannot be read back from it alone.
pub(crate) fn seal_flash(token: &str, message: &str) -> String {
    STANDARD.encode(seal_with(&flash_key(token), message.as_bytes(), b""))
}

/// The message [`seal_flash`] sealed with this token; `None` for any other text.
pub(crate) fn open_flash(token: &str, stored: &str) -> Option<String> {
    let sealed = STANDARD.decode(stored).ok()?;
    String::from_utf8(open_with(&flash_key(token), &sealed, b"")?).ok()
}

fn flash_key(token: &str) -> SecretKey {
    let mut hash = Sha256::new();
    hash.update(FLASH_CONTEXT);
    hash.update(token.as_bytes());
    SecretKey::from_bytes(hash.finalize().into())
}

/// nonce || ciphertext (with its tag).
fn seal_with(key: &SecretKey, plain: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let ciphertext = key
        .cipher()
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        .expect("ChaCha20-Poly1305 encrypts any message under 256 GiB");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ciphertext);
    out
}

fn open_with(key: &SecretKey, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    key.cipher().decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes([byte; KEY_LEN])
    }

    fn ring(current: u8, previous: &[u8]) -> Keyring {
        Keyring::new(Some(key(current)), previous.iter().map(|b| key(*b)).collect())
    }

    #[test]
    fn a_sealed_secret_opens_to_itself_and_shows_nothing_of_it() {
        let ring = ring(1, &[]);
        let stored = ring.seal(SECRET, "wh-1");
        assert!(stored.starts_with(&format!("enc:v1:{}:", key(1).id())), "{stored}");
        assert!(!stored.contains(&SECRET[6..]));
        assert_ne!(stored, ring.seal(SECRET, "wh-1"), "a fresh nonce each time");
        assert_eq!(ring.open(&stored, "wh-1"), Ok(SECRET.to_string()));
        assert!(ring.is_sealed_under_current(&stored));
    }

    #[test]
    fn a_secret_sealed_under_another_key_does_not_open() {
        let stored = ring(1, &[]).seal(SECRET, "wh-1");
        let id = key(1).id().to_string();
        assert_eq!(ring(2, &[]).open(&stored, "wh-1"), Err(UnreadableSecret::UnknownKey(id)));
        assert_eq!(Keyring::default().open(&stored, "wh-1").map_err(|_| ()), Err(()));
        // A previous key still opens it, and the current one would seal it anew.
        let rotated = ring(2, &[1]);
        assert_eq!(rotated.open(&stored, "wh-1"), Ok(SECRET.to_string()));
        assert!(!rotated.is_sealed_under_current(&stored));
    }

    #[test]
    fn a_tampered_secret_does_not_open() {
        let ring = ring(1, &[]);
        let stored = ring.seal(SECRET, "wh-1");
        let (head, body) = stored.rsplit_once(':').unwrap();
        let mut bytes = STANDARD.decode(body).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!("{head}:{}", STANDARD.encode(bytes));
        assert!(matches!(ring.open(&tampered, "wh-1"), Err(UnreadableSecret::Tampered(_))));
        assert_eq!(ring.open(&format!("{head}:short"), "wh-1").map_err(|_| ()), Err(()));
        assert_eq!(ring.open("enc:v1:nocolon", "wh-1"), Err(UnreadableSecret::Malformed));
    }

    #[test]
    fn a_secret_moved_to_another_webhook_does_not_open() {
        let ring = ring(1, &[]);
        let stored = ring.seal(SECRET, "wh-1");
        assert!(matches!(ring.open(&stored, "wh-2"), Err(UnreadableSecret::Tampered(_))));
    }

    #[test]
    fn plain_secrets_are_kept_without_a_key_and_read_with_one() {
        assert_eq!(Keyring::default().seal(SECRET, "wh-1"), SECRET);
        assert_eq!(Keyring::default().open(SECRET, "wh-1"), Ok(SECRET.to_string()));
        assert_eq!(ring(1, &[]).open(SECRET, "wh-1"), Ok(SECRET.to_string()));
        assert!(!ring(1, &[]).is_sealed_under_current(SECRET));
        assert_eq!(ring(1, &[]).open("garbage", "wh-1"), Err(UnreadableSecret::Malformed));
    }

    #[test]
    fn keys_parse_from_base64_or_hex_and_nothing_else() {
        let bytes: [u8; KEY_LEN] = std::array::from_fn(|i| (i * 7 + 250) as u8);
        let expected = SecretKey::from_bytes(bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        for given in [
            STANDARD.encode(bytes),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes),
            url_safe.clone(),
            hex.clone(),
            hex.to_uppercase(),
            format!(" {hex}\n"),
        ] {
            assert_eq!(SecretKey::parse(&given), Ok(expected.clone()), "{given}");
        }
        assert!(url_safe.contains(['-', '_']), "the sample exercises the URL-safe alphabet");
        for wrong in [
            "",
            "short",
            &hex[..62],
            &format!("{hex}00"),
            &STANDARD.encode([1u8; 16]),
            "zz".repeat(32).as_str(),
        ] {
            let e = SecretKey::parse(wrong).unwrap_err();
            assert!(e.contains("32 random bytes"), "{e}");
        }
        // The key itself never shows in a log.
        assert_eq!(format!("{expected:?}"), format!("SecretKey({})", expected.id()));
        assert_eq!(expected.id().len(), 8);
    }

    #[test]
    fn a_flash_opens_only_with_its_session_token() {
        let stored = seal_flash("token-a", "api-key hkl_secret");
        assert!(!stored.contains("hkl_secret"));
        assert_eq!(open_flash("token-a", &stored).as_deref(), Some("api-key hkl_secret"));
        assert_eq!(open_flash("token-b", &stored), None);
        assert_eq!(open_flash("token-a", "api-key hkl_secret"), None);
    }
}
