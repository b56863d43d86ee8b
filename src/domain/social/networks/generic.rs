//! Any other source of social messages, sent as Standard Webhooks (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
//! under the connection's `whsec_…` key), in this service's own format:
//!
//! ```json
//! {"type": "message.received", "timestamp": "2026-12-01T10:00:00Z",
//!  "data": {"network": "linkedin", "text": "Hello",
//!           "from": {"id": "u-42", "handle": "ada", "name": "Ada Lovelace",
//!                    "url": "https://example.com/ada"},
//!           "occurredAt": "2026-12-01T09:59:58Z"}}
//! ```
//!
//! The `webhook-id` is the event id: a message is logged once, however often it is sent.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde_json::Value;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{Incoming, Refusal, Sender, SocialMessage, event_id, plausible};
use crate::domain::webhooks::signing;

/// How far a `webhook-timestamp` may be from now (the spec's suggested tolerance).
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// Networks a generic sender may not speak for.
const RESERVED_NETWORKS: [&str; 5] = ["facebook", "instagram", "x", "twitter", "meta"];

/// The one message type.
pub const MESSAGE_TYPE: &str = "message.received";

/// Whether the body carries a signature of the connection's key, sent recently.
pub fn verify(
    secret: &str,
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let id = id.ok_or(Refusal::Missing("webhook-id"))?;
    let timestamp = timestamp.ok_or(Refusal::Missing("webhook-timestamp"))?;
    let signatures = signatures.ok_or(Refusal::Missing("webhook-signature"))?;
    if id.is_empty() || id.len() > 255 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Refusal::Malformed(
            "`webhook-id` must be 1 to 255 printable characters",
        ));
    }
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| Refusal::Malformed("`webhook-timestamp` must be seconds since the epoch"))?;
    if now.timestamp().saturating_sub(sent).unsigned_abs() > TOLERANCE_SECS.unsigned_abs() {
        return Err(Refusal::Stale);
    }
    let key = signing::key_of(secret).ok_or(Refusal::BadSignature)?;
    // The MAC is computed once, whatever the number of signatures sent.
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| Refusal::BadSignature)?;
    for part in [id.as_bytes(), b".", timestamp.as_bytes(), b".", body] {
        mac.update(part);
    }
    // Several signatures may be sent (during a key rotation): one valid one suffices.
    let valid = signatures
        .split(' ')
        .take(10)
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| STANDARD.decode(s).ok())
        .any(|signature| mac.clone().verify_slice(&signature).is_ok());
    if valid {
        Ok(())
    } else {
        Err(Refusal::BadSignature)
    }
}

fn text_at<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// The message of a verified body, sent as `webhook_id`.
pub fn read(webhook_id: &str, body: &[u8]) -> Vec<Incoming> {
    let unmappable = |reason: &str| {
        vec![Incoming::unmappable(
            event_id(webhook_id),
            reason,
            String::from_utf8_lossy(body).into_owned(),
        )]
    };
    let Ok(root) = serde_json::from_slice::<Value>(body) else {
        return unmappable("the body is not JSON");
    };
    if root.get("type").and_then(Value::as_str) != Some(MESSAGE_TYPE) {
        return unmappable("`type` is not `message.received`, the one type mapped");
    }
    let Some(network) = text_at(&root, "/data/network") else {
        return unmappable("`data.network` is missing");
    };
    let network = network.trim().to_lowercase();
    if network.chars().count() > 32
        || !network
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.".contains(c))
    {
        return unmappable(
            "`data.network` must be a name of at most 32 letters, digits, `-`, `_` or `.`",
        );
    }
    // The networks with connections of their own are theirs: a generic sender naming one
    // could log messages as if they came from it, and pre-empt the real ones' ids.
    if RESERVED_NETWORKS.contains(&network.as_str()) {
        return unmappable(
            "`data.network` names a network with a connection of its own (META or X): connect it as such",
        );
    }
    let Some(sender_id) = text_at(&root, "/data/from/id") else {
        return unmappable("`data.from.id` is missing");
    };
    let occurred_at = text_at(&root, "/data/occurredAt")
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .and_then(|at| plausible(at.with_timezone(&Utc)));
    vec![Incoming::Message(SocialMessage {
        event_id: event_id(webhook_id),
        network,
        what: "message",
        sender: Sender {
            id: sender_id.to_owned(),
            handle: text_at(&root, "/data/from/handle").map(str::to_owned),
            name: text_at(&root, "/data/from/name").map(str::to_owned),
            url: text_at(&root, "/data/from/url").map(str::to_owned),
        },
        text: text_at(&root, "/data/text").unwrap_or_default().to_owned(),
        occurred_at,
        payload: String::from_utf8_lossy(body).into_owned(),
    })]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    /// The Standard Webhooks test vector, verified as a receiver.
    #[test]
    fn the_published_test_vector_verifies() {
        let body = br#"{"test": 2432232314}"#;
        let at = chrono::TimeZone::timestamp_opt(&Utc, 1_614_265_330, 0)
            .single()
            .unwrap_or_default();
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let id = Some("msg_p5jXN8AQM9LWM0D4loKWxJek");
        let ts = Some("1614265330");
        assert_eq!(verify(SECRET, id, ts, Some(sig), body, at), Ok(()));
        // One good signature among several suffices.
        let many = format!("v1,AAAA {sig}");
        assert_eq!(verify(SECRET, id, ts, Some(&many), body, at), Ok(()));
        assert_eq!(
            verify(SECRET, id, ts, Some(sig), b"{\"test\": 1}", at),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify(
                SECRET,
                id,
                ts,
                Some(sig),
                body,
                at + chrono::Duration::minutes(6)
            ),
            Err(Refusal::Stale)
        );
        assert!(verify(SECRET, None, ts, Some(sig), body, at).is_err());
        let extreme = i64::MIN.to_string();
        assert_eq!(
            verify(SECRET, id, Some(&extreme), Some(sig), body, at),
            Err(Refusal::Stale)
        );
    }

    #[test]
    fn a_message_is_read_and_anything_else_is_unmappable() {
        let body = serde_json::json!({"type": "message.received", "data": {
            "network": "LinkedIn", "text": "hi", "from": {"id": "u1", "name": "Ada"}}})
        .to_string();
        let read = read("msg_1", body.as_bytes());
        let [Incoming::Message(m)] = read.as_slice() else {
            panic!("a message: {read:?}")
        };
        assert_eq!(
            (m.network.as_str(), m.event_id.as_str()),
            ("linkedin", "msg_1")
        );
        let other = super::read("msg_2", br#"{"type": "other"}"#);
        assert!(matches!(other.as_slice(), [Incoming::Unmappable { .. }]));
        let posing = serde_json::json!({"type": "message.received", "data": {
            "network": "X", "text": "hi", "from": {"id": "u1"}}})
        .to_string();
        let posing = super::read("msg_3", posing.as_bytes());
        assert!(matches!(posing.as_slice(), [Incoming::Unmappable { .. }]));
    }
}
