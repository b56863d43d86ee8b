//! What each network sends and how it signs it: verification of a delivery against the
//! connection's secret, and reading its body into messages. Nothing is written here.
//!
//! A body is read whole-or-item-wise: every item that is a message from someone becomes a
//! [`SocialMessage`]; what is not news to a CRM (read receipts, likes, the account's own
//! messages echoed back) is [`Incoming::Ignored`]; what is verified but cannot be read as a
//! message is [`Incoming::Unmappable`], kept for inspection.

pub mod generic;
pub mod meta;
pub mod x;

use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Items one delivery may hold; a body with more is refused whole (no network sends that
/// many at once).
pub const MAX_ITEMS: usize = 1_000;

/// The headers that carry signatures, as received (each only when sent once).
#[derive(Clone, Debug, Default)]
pub struct SignatureHeaders {
    /// Meta: `X-Hub-Signature-256: sha256=<hex>`.
    pub hub_signature_256: Option<String>,
    /// X: `x-twitter-webhooks-signature: sha256=<base64>`.
    pub twitter_signature: Option<String>,
    /// Standard Webhooks.
    pub webhook_id: Option<String>,
    pub webhook_timestamp: Option<String>,
    pub webhook_signature: Option<String>,
}

/// Why a delivery or a handshake is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("`{0}` is missing (or sent more than once)")]
    Missing(&'static str),
    #[error("the signature does not match")]
    BadSignature,
    #[error("the `webhook-timestamp` is more than five minutes from now")]
    Stale,
    #[error("{0}")]
    Malformed(&'static str),
}

/// Who sent a message, as the network names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sender {
    /// The network's id of the user: what social profiles are matched by.
    pub id: String,
    pub handle: Option<String>,
    pub name: Option<String>,
    pub url: Option<String>,
}

/// A message, comment or mention from someone, to be logged as a `SOCIAL_MESSAGE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocialMessage {
    /// The provider's id of the event: a message is logged once, however often it arrives.
    pub event_id: String,
    /// The social profile network (`facebook`, `instagram`, `x`, or a generic sender's own).
    pub network: String,
    /// `message`, `comment` or `mention`: how the subject names it.
    pub what: &'static str,
    pub sender: Sender,
    pub text: String,
    pub occurred_at: Option<DateTime<Utc>>,
    /// The item as it arrived, kept should it turn out unmappable.
    pub payload: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    Message(SocialMessage),
    Unmappable {
        event_id: String,
        reason: String,
        payload: String,
    },
    Ignored,
}

impl Incoming {
    fn unmappable(event_id: String, reason: impl Into<String>, payload: String) -> Self {
        Incoming::Unmappable {
            event_id,
            reason: reason.into(),
            payload,
        }
    }

    /// An item that could not be read: keyed by its digest, so its retries are one.
    fn unreadable(item: &Value, reason: impl Into<String>) -> Self {
        let payload = item.to_string();
        Self::unmappable(digest_id(payload.as_bytes()), reason, payload)
    }
}

/// A whole body that could not be read, keyed by its digest.
fn unreadable_body(body: &[u8], reason: impl Into<String>) -> Vec<Incoming> {
    vec![Incoming::unmappable(
        digest_id(body),
        reason,
        String::from_utf8_lossy(body).into_owned(),
    )]
}

/// `sha256:<hex>`: the id of what carries none.
pub fn digest_id(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A provider's event id as stored: as sent when short and printable, else its digest.
fn event_id(raw: &str) -> String {
    if !raw.is_empty() && raw.len() <= 200 && raw.bytes().all(|b| b.is_ascii_graphic()) {
        raw.to_owned()
    } else {
        digest_id(raw.as_bytes())
    }
}

fn mac(key: &[u8]) -> Option<Hmac<Sha256>> {
    Hmac::<Sha256>::new_from_slice(key).ok()
}

/// Whether `signature` is the HMAC-SHA256 of `parts` under `key` (compared in constant time).
fn signed_by(key: &[u8], parts: &[&[u8]], signature: &[u8]) -> bool {
    let Some(mut mac) = mac(key) else {
        return false;
    };
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(signature).is_ok()
}

/// Whether `signature` is the HMAC-SHA256 of a raw body under the connection's secret, as
/// Meta and X sign (they differ only in how the header encodes it).
fn body_signed(secret: &str, body: &[u8], signature: &[u8]) -> Result<(), Refusal> {
    if signed_by(secret.as_bytes(), &[body], signature) {
        Ok(())
    } else {
        Err(Refusal::BadSignature)
    }
}

/// The HMAC-SHA256 of `data` under `key`.
fn hmac_of(key: &[u8], data: &[u8]) -> Vec<u8> {
    match mac(key) {
        Some(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        None => Vec::new(),
    }
}

/// Whether two secrets are equal, in time that does not tell how much of them matched:
/// their HMACs are compared, which have one length, in constant time.
fn same_secret(expected: &str, given: &str) -> bool {
    signed_by(
        b"same-secret",
        &[expected.as_bytes()],
        &hmac_of(b"same-secret", given.as_bytes()),
    )
}

/// Text from a network made fit to store: control characters (NUL among them) dropped
/// but for newlines and tabs, trimmed, and cut to `max_bytes` on a character boundary.
pub fn clean_text(raw: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max_bytes));
    for c in raw
        .trim()
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
    {
        if out.len() + c.len_utf8() > max_bytes {
            break;
        }
        out.push(c);
    }
    out.trim_end().to_owned()
}

/// Invisible characters that change how text reads without being seen: bidirectional
/// overrides and isolates, zero-width characters, the byte order mark (Unicode's format
/// characters that matter in names).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// One line of text (names, handles, ids): no control or invisible characters, at most
/// `max` characters.
pub fn clean_line(raw: &str, max: usize) -> String {
    raw.trim()
        .chars()
        .filter(|c| !c.is_control() && !is_invisible(*c))
        .take(max)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

/// An id that networks send as a string or an integer (a number beyond 64 bits would
/// arrive rounded, and two senders would become one).
fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// A time in milliseconds since the epoch (a number or a numeric string), when plausible.
fn millis(value: &Value) -> Option<DateTime<Utc>> {
    let ms = match value {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    plausible(Utc.timestamp_millis_opt(ms).single()?)
}

/// A time in seconds since the epoch, when plausible.
fn seconds(value: &Value) -> Option<DateTime<Utc>> {
    plausible(Utc.timestamp_opt(value.as_i64()?, 0).single()?)
}

/// Times from 2000 until a day from now; anything else is the sender's clock or a forgery,
/// and the message is dated when it arrived.
fn plausible(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let earliest = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single()?;
    (at >= earliest && at <= Utc::now() + chrono::Duration::days(1)).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cleaned_and_cut_on_a_character_boundary() {
        assert_eq!(clean_text(" a\u{0}b\nc\u{7} ", 100), "ab\nc");
        assert_eq!(clean_text("ééé", 5), "éé");
        assert_eq!(clean_line("a\nb\tc", 10), "abc");
        assert_eq!(clean_line("abcdef", 3), "abc");
        assert_eq!(clean_line("\u{202E}gnp.exe\u{200B}", 20), "gnp.exe");
    }

    #[test]
    fn event_ids_that_do_not_fit_are_digested() {
        assert_eq!(event_id("m_123"), "m_123");
        assert!(event_id(&"x".repeat(300)).starts_with("sha256:"));
        assert!(event_id("a b").starts_with("sha256:"));
        assert!(event_id("").starts_with("sha256:"));
    }

    #[test]
    fn implausible_times_are_dropped() {
        assert!(millis(&Value::from(1_700_000_000_000_i64)).is_some());
        assert!(millis(&Value::from("1700000000000")).is_some());
        assert!(millis(&Value::from(i64::MAX)).is_none());
        assert!(millis(&Value::from(-5)).is_none());
        assert!(seconds(&Value::from(1_700_000_000_i64)).is_some());
    }
}
