//! X: the Account Activity API.
//!
//! Registering (and hourly after): X calls `GET …?crc_token=T` and expects
//! `{"response_token": "sha256=<base64 HMAC-SHA256 of T under the consumer secret>"}`.
//! Deliveries: a POST whose `x-twitter-webhooks-signature` is `sha256=` and the base64
//! HMAC-SHA256 of the raw body. A body is `{for_user_id, direct_message_events: [...],
//! tweet_create_events: [...], users: {...}, ...}`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::{
    Incoming, MAX_ITEMS, Refusal, Sender, SocialMessage, event_id, hmac_of, id_of, millis,
    unreadable_body,
};

/// Event lists that are not messages: likes, follows, blocks, typing, read receipts,
/// deletions, revocations.
const NOT_MESSAGES: [&str; 10] = [
    "favorite_events",
    "follow_events",
    "unfollow_events",
    "block_events",
    "unblock_events",
    "mute_events",
    "unmute_events",
    "direct_message_indicate_typing_events",
    "direct_message_mark_read_events",
    "tweet_delete_events",
];

/// The answer to X's challenge-response check.
pub fn crc_response(consumer_secret: &str, crc_token: Option<&str>) -> Result<Value, Refusal> {
    let token = crc_token.ok_or(Refusal::Missing("crc_token"))?;
    // The answer is the HMAC of the token, which is also how a delivery of that body would
    // be signed: a token that could be a body (JSON: `{`, quotes…) would let anyone have a
    // forged delivery signed here. X's tokens are short base64-like strings.
    let token_like =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=' | b'+' | b'/' | b'.');
    if token.is_empty() || token.len() > 256 || !token.bytes().all(token_like) {
        return Err(Refusal::Malformed(
            "`crc_token` must be 1 to 256 letters, digits or `-_=+/.`",
        ));
    }
    let digest = hmac_of(consumer_secret.as_bytes(), token.as_bytes());
    Ok(serde_json::json!({ "response_token": format!("sha256={}", STANDARD.encode(digest)) }))
}

/// Whether the body carries the consumer secret's signature.
pub fn verify(consumer_secret: &str, header: Option<&str>, body: &[u8]) -> Result<(), Refusal> {
    let header = header.ok_or(Refusal::Missing("x-twitter-webhooks-signature"))?;
    let encoded = header.strip_prefix("sha256=").ok_or(Refusal::Malformed(
        "`x-twitter-webhooks-signature` must be `sha256=<base64>`",
    ))?;
    let signature = STANDARD
        .decode(encoded)
        .map_err(|_| Refusal::BadSignature)?;
    super::body_signed(consumer_secret, body, &signature)
}

/// The messages of a verified body, for the user `account_id`.
pub fn read(account_id: &str, body: &[u8]) -> Vec<Incoming> {
    let Ok(root) = serde_json::from_slice::<Value>(body) else {
        return unreadable_body(body, "the body is not JSON");
    };
    let Some(fields) = root.as_object() else {
        return unreadable_body(body, "the body is not a JSON object");
    };
    let for_user = fields.get("for_user_id").and_then(id_of);
    if for_user.as_deref() != Some(account_id) {
        return unreadable_body(
            body,
            format!(
                "the events are for user {}; this connection is for {account_id}",
                for_user.unwrap_or_else(|| "(none)".to_owned())
            ),
        );
    }
    let users = fields.get("users");
    let mut out = Vec::new();
    for (key, value) in fields {
        if out.len() > MAX_ITEMS {
            break;
        }
        let Some(items) = value.as_array() else {
            continue;
        };
        // Read no further than the cap: the caller refuses a body past it.
        let items = items.iter().take((MAX_ITEMS + 1).saturating_sub(out.len()));
        match key.as_str() {
            "direct_message_events" => {
                out.extend(items.map(|event| direct_message(account_id, users, event)))
            }
            "tweet_create_events" => out.extend(items.map(|tweet| post(account_id, tweet))),
            known if NOT_MESSAGES.contains(&known) => out.extend(items.map(|_| Incoming::Ignored)),
            other => out.extend(items.map(|item| {
                Incoming::unreadable(
                    item,
                    format!(
                        "`{}` events are not messages this service maps",
                        super::clean_line(other, 60)
                    ),
                )
            })),
        }
    }
    if out.is_empty() {
        return unreadable_body(body, "the body holds no event list");
    }
    out
}

fn sender_of(id: String, user: Option<&Value>) -> Sender {
    let handle = user
        .and_then(|u| u.get("screen_name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Sender {
        url: handle
            .as_ref()
            .filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .map(|h| format!("https://x.com/{h}")),
        handle,
        name: user
            .and_then(|u| u.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        id,
    }
}

/// A direct message to the account; the account's own (sent from it) are not news.
fn direct_message(account_id: &str, users: Option<&Value>, event: &Value) -> Incoming {
    if event.get("type").and_then(Value::as_str) != Some("message_create") {
        return Incoming::Ignored;
    }
    let Some(id) = event.get("id").and_then(id_of) else {
        return Incoming::unreadable(event, "the direct message has no `id`");
    };
    let Some(sender_id) = event.pointer("/message_create/sender_id").and_then(id_of) else {
        return Incoming::unreadable(event, "the direct message has no `sender_id`");
    };
    if sender_id == account_id {
        return Incoming::Ignored;
    }
    let user = users.and_then(|u| u.get(&sender_id));
    Incoming::Message(SocialMessage {
        event_id: event_id(&id),
        network: "x".to_owned(),
        what: "message",
        sender: sender_of(sender_id, user),
        text: event
            .pointer("/message_create/message_data/text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        occurred_at: event.get("created_timestamp").and_then(millis),
        payload: event.to_string(),
    })
}

/// A post that concerns the account (a mention, reply or quote); the account's own are
/// not news.
fn post(account_id: &str, tweet: &Value) -> Incoming {
    let Some(id) = tweet.get("id_str").and_then(id_of) else {
        return Incoming::unreadable(tweet, "the post has no `id_str`");
    };
    let Some(user_id) = tweet.pointer("/user/id_str").and_then(id_of) else {
        return Incoming::unreadable(tweet, "the post has no `user.id_str`");
    };
    if user_id == account_id {
        return Incoming::Ignored;
    }
    let text = tweet
        .pointer("/extended_tweet/full_text")
        .or_else(|| tweet.get("full_text"))
        .or_else(|| tweet.get("text"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Incoming::Message(SocialMessage {
        event_id: event_id(&id),
        network: "x".to_owned(),
        what: "mention",
        sender: sender_of(user_id, tweet.get("user")),
        text,
        occurred_at: tweet.get("timestamp_ms").and_then(millis),
        payload: tweet.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of X's documentation: consumer secret and token give this response.
    #[test]
    fn the_crc_response_is_the_base64_hmac_of_the_token() {
        let answer = crc_response("secret", Some("token")).unwrap_or_default();
        let expected = STANDARD.encode(hmac_of(b"secret", b"token"));
        assert_eq!(answer["response_token"], format!("sha256={expected}"));
        assert!(crc_response("secret", None).is_err());
        assert!(crc_response("secret", Some(&"a".repeat(2_000))).is_err());
        // Never the signature of a body that could be read as a delivery.
        assert!(crc_response("secret", Some(r#"{"for_user_id":"1"}"#)).is_err());
    }

    #[test]
    fn signatures_are_checked_over_the_raw_body() {
        let body = br#"{"for_user_id":"1"}"#;
        let good = format!("sha256={}", STANDARD.encode(hmac_of(b"s", body)));
        assert_eq!(verify("s", Some(&good), body), Ok(()));
        assert_eq!(verify("t", Some(&good), body), Err(Refusal::BadSignature));
        assert!(verify("s", Some("sha256=!!"), body).is_err());
        assert!(verify("s", None, body).is_err());
    }

    #[test]
    fn direct_messages_and_mentions_are_read_and_the_accounts_own_ignored() {
        let body = serde_json::json!({
            "for_user_id": "100",
            "direct_message_events": [
                {"type": "message_create", "id": "d1", "created_timestamp": "1700000000000",
                 "message_create": {"target": {"recipient_id": "100"}, "sender_id": "7",
                    "message_data": {"text": "hello"}}},
                {"type": "message_create", "id": "d2",
                 "message_create": {"sender_id": "100", "message_data": {"text": "mine"}}}
            ],
            "users": {"7": {"id": "7", "name": "Ada", "screen_name": "ada"}},
            "tweet_create_events": [
                {"id_str": "t1", "text": "@acme hi", "timestamp_ms": "1700000000000",
                 "user": {"id_str": "8", "screen_name": "bob", "name": "Bob"}}
            ],
            "favorite_events": [{"id": "f"}]
        })
        .to_string();
        let read = read("100", body.as_bytes());
        let messages: Vec<&SocialMessage> = read
            .iter()
            .filter_map(|i| match i {
                Incoming::Message(m) => Some(m),
                _ => None,
            })
            .collect();
        assert_eq!(messages.len(), 2, "{read:?}");
        let Some(dm) = messages.iter().find(|m| m.event_id == "d1") else {
            panic!("the DM: {read:?}")
        };
        assert_eq!(dm.sender.handle.as_deref(), Some("ada"));
        assert_eq!(dm.sender.url.as_deref(), Some("https://x.com/ada"));
        assert_eq!(dm.text, "hello");
        let Some(mention) = messages.iter().find(|m| m.event_id == "t1") else {
            panic!("the post: {read:?}")
        };
        assert_eq!(mention.what, "mention");
        assert_eq!(read.iter().filter(|i| **i == Incoming::Ignored).count(), 2);
    }

    #[test]
    fn events_for_another_user_are_unmappable() {
        let read = read("100", br#"{"for_user_id":"200","tweet_create_events":[]}"#);
        assert!(matches!(read.as_slice(), [Incoming::Unmappable { .. }]));
    }
}
