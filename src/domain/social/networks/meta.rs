//! Meta (Facebook pages, Instagram accounts): Graph API webhooks.
//!
//! Subscribing: Meta calls `GET …?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C` and
//! expects `C` back when `T` is the token the connection was given. Deliveries: a POST whose
//! `X-Hub-Signature-256` is `sha256=` and the hex HMAC-SHA256 of the raw body under the
//! app secret. A body is `{object: page|instagram, entry: [{id, time, messaging: [...],
//! changes: [...]}]}`: Messenger / Instagram direct messages under `messaging`, page feed
//! comments and posts and Instagram comments under `changes`.

use serde_json::Value;

use super::{
    Incoming, MAX_ITEMS, Refusal, Sender, SocialMessage, event_id, id_of, millis, seconds,
    unreadable_body,
};

/// The answer to Meta's subscription handshake: the challenge, when the token is the
/// connection's.
pub fn handshake(
    verify_token: Option<&str>,
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
) -> Result<String, Refusal> {
    if mode != Some("subscribe") {
        return Err(Refusal::Malformed("`hub.mode` must be `subscribe`"));
    }
    let (Some(expected), Some(token)) = (verify_token, token) else {
        return Err(Refusal::Missing("hub.verify_token"));
    };
    if !super::same_secret(expected, token) {
        return Err(Refusal::BadSignature);
    }
    let challenge = challenge.ok_or(Refusal::Missing("hub.challenge"))?;
    if challenge.is_empty()
        || challenge.len() > 1_024
        || !challenge.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Refusal::Malformed(
            "`hub.challenge` must be 1 to 1024 printable characters",
        ));
    }
    Ok(challenge.to_owned())
}

/// Whether the body carries the app secret's signature.
pub fn verify(app_secret: &str, header: Option<&str>, body: &[u8]) -> Result<(), Refusal> {
    let header = header.ok_or(Refusal::Missing("X-Hub-Signature-256"))?;
    let hex_signature = header.strip_prefix("sha256=").ok_or(Refusal::Malformed(
        "`X-Hub-Signature-256` must be `sha256=<hex>`",
    ))?;
    let signature = hex::decode(hex_signature).map_err(|_| Refusal::BadSignature)?;
    super::body_signed(app_secret, body, &signature)
}

/// The messages of a verified body, for the page or account `account_id`.
pub fn read(account_id: &str, body: &[u8]) -> Vec<Incoming> {
    let Ok(root) = serde_json::from_slice::<Value>(body) else {
        return unreadable_body(body, "the body is not JSON");
    };
    let network = match root.get("object").and_then(Value::as_str) {
        Some("page") => "facebook",
        Some("instagram") => "instagram",
        _ => {
            return unreadable_body(
                body,
                "`object` is not `page` or `instagram`: no other Meta product is mapped",
            );
        }
    };
    let Some(entries) = root.get("entry").and_then(Value::as_array) else {
        return unreadable_body(body, "there is no `entry` list");
    };
    let mut out = Vec::new();
    for entry in entries {
        if out.len() > MAX_ITEMS {
            break;
        }
        let entry_account = entry.get("id").and_then(id_of);
        if entry_account.as_deref() != Some(account_id) {
            out.push(Incoming::unreadable(
                entry,
                format!(
                    "the entry is for account {}; this connection is for {account_id}",
                    entry_account.unwrap_or_else(|| "(none)".to_owned())
                ),
            ));
            continue;
        }
        // Read no further than the cap: the caller refuses a body past it.
        let messaging = entry.get("messaging").and_then(Value::as_array);
        let room = (MAX_ITEMS + 1).saturating_sub(out.len());
        for item in messaging.into_iter().flatten().take(room) {
            out.push(direct_message(network, account_id, item));
        }
        let changes = entry.get("changes").and_then(Value::as_array);
        let room = (MAX_ITEMS + 1).saturating_sub(out.len());
        for change in changes.into_iter().flatten().take(room) {
            out.push(feed_change(network, account_id, entry, change));
        }
    }
    out
}

/// A `messaging` item: a message someone sent the page or account. Read receipts,
/// deliveries, reactions and the account's own messages (echoes) are not news.
fn direct_message(network: &str, account_id: &str, item: &Value) -> Incoming {
    let Some(message) = item.get("message") else {
        return Incoming::Ignored;
    };
    if message.get("is_echo").and_then(Value::as_bool) == Some(true) {
        return Incoming::Ignored;
    }
    let Some(mid) = message.get("mid").and_then(Value::as_str) else {
        return Incoming::unreadable(item, "the message has no `mid`");
    };
    let Some(sender_id) = item.pointer("/sender/id").and_then(id_of) else {
        return Incoming::unreadable(item, "the message has no `sender.id`");
    };
    if sender_id == account_id {
        return Incoming::Ignored;
    }
    let text = match message.get("text").and_then(Value::as_str) {
        Some(text) => text.to_owned(),
        None => attachments_summary(message),
    };
    Incoming::Message(SocialMessage {
        event_id: event_id(mid),
        network: network.to_owned(),
        what: "message",
        sender: Sender {
            id: sender_id,
            handle: None,
            name: None,
            url: None,
        },
        text,
        occurred_at: item.get("timestamp").and_then(millis),
        payload: item.to_string(),
    })
}

/// What a message without text carried, e.g. `(attachments: image, file)`.
fn attachments_summary(message: &Value) -> String {
    let kinds: Vec<&str> = message
        .get("attachments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("type").and_then(Value::as_str))
        .take(10)
        .collect();
    if kinds.is_empty() {
        String::new()
    } else {
        format!("(attachments: {})", kinds.join(", "))
    }
}

/// A `changes` item: a comment or post on the page's feed, or a comment on the Instagram
/// account's media. Edits, removals, reactions and the account's own posts are not news.
fn feed_change(network: &str, account_id: &str, entry: &Value, change: &Value) -> Incoming {
    let field = change.get("field").and_then(Value::as_str).unwrap_or("");
    let value = change.get("value").unwrap_or(&Value::Null);
    let (id, text, sender, what, occurred_at) = match (network, field) {
        ("facebook", "feed") => {
            let item = value.get("item").and_then(Value::as_str).unwrap_or("");
            let verb = value.get("verb").and_then(Value::as_str).unwrap_or("");
            if !matches!(item, "comment" | "post" | "status") || verb != "add" {
                return Incoming::Ignored;
            }
            let id = value
                .get("comment_id")
                .or_else(|| value.get("post_id"))
                .and_then(id_of);
            let sender = value.pointer("/from/id").and_then(id_of).map(|id| Sender {
                id,
                handle: None,
                name: value
                    .pointer("/from/name")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                url: None,
            });
            let what = if item == "comment" { "comment" } else { "post" };
            let at = value
                .get("created_time")
                .and_then(seconds)
                .or_else(|| entry.get("time").and_then(seconds));
            (id, value.get("message"), sender, what, at)
        }
        ("instagram", "comments" | "live_comments") => {
            let sender = value.pointer("/from/id").and_then(id_of).map(|id| {
                let username = value
                    .pointer("/from/username")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                Sender {
                    url: username
                        .as_ref()
                        .filter(|u| {
                            u.chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
                        })
                        .map(|u| format!("https://www.instagram.com/{u}")),
                    handle: username,
                    name: None,
                    id,
                }
            });
            let at = entry.get("time").and_then(seconds);
            (
                value.get("id").and_then(id_of),
                value.get("text"),
                sender,
                "comment",
                at,
            )
        }
        ("instagram", "mentions") => {
            return Incoming::unreadable(
                change,
                "an Instagram mention names only the media and comment: their text and author must be fetched from the Graph API",
            );
        }
        _ => {
            return Incoming::unreadable(
                change,
                format!(
                    "the `{}` field is not a message this service maps",
                    super::clean_line(field, 60)
                ),
            );
        }
    };
    let Some(id) = id else {
        return Incoming::unreadable(change, "the change has no id");
    };
    let Some(sender) = sender else {
        return Incoming::unreadable(change, "the change has no `from.id`");
    };
    if sender.id == account_id {
        return Incoming::Ignored;
    }
    let text = text.and_then(Value::as_str).unwrap_or_default().to_owned();
    Incoming::Message(SocialMessage {
        event_id: event_id(&id),
        network: network.to_owned(),
        what,
        sender,
        text,
        occurred_at,
        payload: change.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::hmac_of;
    use super::*;

    #[test]
    fn the_handshake_echoes_the_challenge_for_the_right_token_only() {
        let ok = handshake(
            Some("tok"),
            Some("subscribe"),
            Some("tok"),
            Some("1158201444"),
        );
        assert_eq!(ok, Ok("1158201444".to_owned()));
        assert_eq!(
            handshake(Some("tok"), Some("subscribe"), Some("tok2"), Some("1")),
            Err(Refusal::BadSignature)
        );
        assert!(handshake(Some("tok"), Some("unsubscribe"), Some("tok"), Some("1")).is_err());
        assert!(handshake(None, Some("subscribe"), Some("tok"), Some("1")).is_err());
        assert!(handshake(Some("tok"), Some("subscribe"), Some("tok"), Some("<b>")).is_ok());
        assert!(handshake(Some("tok"), Some("subscribe"), Some("tok"), Some("a b")).is_err());
    }

    #[test]
    fn signatures_are_checked_over_the_raw_body() {
        let body = br#"{"object":"page"}"#;
        let good = format!("sha256={}", hex::encode(hmac_of(b"secret", body)));
        assert_eq!(verify("secret", Some(&good), body), Ok(()));
        assert_eq!(
            verify("other", Some(&good), body),
            Err(Refusal::BadSignature)
        );
        assert!(verify("secret", None, body).is_err());
        assert!(verify("secret", Some("sha1=00"), body).is_err());
        assert!(verify("secret", Some("sha256=zz"), body).is_err());
    }

    #[test]
    fn messenger_messages_are_read_and_echoes_ignored() {
        let body = serde_json::json!({
            "object": "page",
            "entry": [{"id": "PAGE", "time": 1_700_000_000_000_i64, "messaging": [
                {"sender": {"id": "PSID"}, "recipient": {"id": "PAGE"},
                 "timestamp": 1_700_000_000_000_i64,
                 "message": {"mid": "m_1", "text": "hello"}},
                {"sender": {"id": "PAGE"}, "recipient": {"id": "PSID"},
                 "message": {"mid": "m_2", "text": "hi", "is_echo": true}},
                {"sender": {"id": "PSID"}, "recipient": {"id": "PAGE"},
                 "read": {"watermark": 1}}
            ]}]
        })
        .to_string();
        let read = read("PAGE", body.as_bytes());
        assert_eq!(read.len(), 3);
        let Incoming::Message(m) = &read[0] else {
            panic!("a message: {read:?}")
        };
        assert_eq!(
            (
                m.event_id.as_str(),
                m.network.as_str(),
                m.sender.id.as_str(),
                m.text.as_str()
            ),
            ("m_1", "facebook", "PSID", "hello")
        );
        assert!(m.occurred_at.is_some());
        assert_eq!(read[1], Incoming::Ignored);
        assert_eq!(read[2], Incoming::Ignored);
    }

    #[test]
    fn another_accounts_entry_and_unknown_fields_are_unmappable() {
        let body = serde_json::json!({
            "object": "instagram",
            "entry": [
                {"id": "OTHER", "messaging": []},
                {"id": "IG", "changes": [{"field": "story_insights", "value": {}}]},
                {"id": "IG", "changes": [{"field": "comments", "value": {
                    "id": "c_1", "text": "nice", "from": {"id": "U1", "username": "ada"}}}]}
            ]
        })
        .to_string();
        let read = read("IG", body.as_bytes());
        assert!(matches!(read[0], Incoming::Unmappable { .. }));
        assert!(matches!(read[1], Incoming::Unmappable { .. }));
        let Incoming::Message(m) = &read[2] else {
            panic!("a comment: {read:?}")
        };
        assert_eq!(m.sender.handle.as_deref(), Some("ada"));
        assert_eq!(
            m.sender.url.as_deref(),
            Some("https://www.instagram.com/ada")
        );
        assert_eq!(m.what, "comment");
    }

    #[test]
    fn a_body_that_is_not_json_is_one_unmappable_item() {
        let read = read("P", b"not json");
        assert_eq!(read.len(), 1);
        let Incoming::Unmappable { event_id, .. } = &read[0] else {
            panic!("unmappable")
        };
        assert!(event_id.starts_with("sha256:"));
    }
}
