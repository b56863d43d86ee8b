//! Inbound social webhooks as Meta, X and a Standard Webhooks sender send them: real
//! signatures computed here (and bad ones), handshakes, replays and duplicates, unmappable
//! payloads kept, and what a CRM user then sees over GraphQL.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::TestApp;

const META_SECRET: &str = "meta-app-secret-0123456789abcdef";
const X_SECRET: &str = "x-consumer-secret-0123456789abcdefghij";

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

const CREATE: &str = "mutation($input: CreateSocialConnectionInput!) {
    createSocialConnection(input: $input) {
        connection { id network accountId url }
        userErrors { field message code }
    }
}";

async fn connect(app: &TestApp, input: Value) -> (String, String) {
    let reply = app.gql(CREATE, json!({ "input": input })).await;
    reply.assert_ok();
    let made = reply.data("createSocialConnection");
    assert_eq!(made["userErrors"], json!([]), "{made}");
    (
        made["connection"]["id"].as_str().expect("an id").to_owned(),
        made["connection"]["url"]
            .as_str()
            .expect("a url")
            .to_owned(),
    )
}

async fn post(
    app: &TestApp,
    url: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(app.url(url))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let res = req.send().await.expect("the server answers");
    let status = res.status();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn post_meta(app: &TestApp, url: &str, body: &str) -> (StatusCode, Value) {
    let signature = format!(
        "sha256={}",
        hex::encode(hmac(META_SECRET.as_bytes(), body.as_bytes()))
    );
    post(app, url, &[("x-hub-signature-256", signature)], body).await
}

async fn post_x(app: &TestApp, url: &str, body: &str) -> (StatusCode, Value) {
    let signature = format!(
        "sha256={}",
        STANDARD.encode(hmac(X_SECRET.as_bytes(), body.as_bytes()))
    );
    post(
        app,
        url,
        &[("x-twitter-webhooks-signature", signature)],
        body,
    )
    .await
}

fn whsec_key() -> (String, Vec<u8>) {
    let key: Vec<u8> = (0u8..24)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    (format!("whsec_{}", STANDARD.encode(&key)), key)
}

async fn post_generic(
    app: &TestApp,
    url: &str,
    key: &[u8],
    id: &str,
    at: i64,
    body: &str,
) -> (StatusCode, Value) {
    let signed = format!("{id}.{at}.{body}");
    let signature = format!("v1,{}", STANDARD.encode(hmac(key, signed.as_bytes())));
    post(
        app,
        url,
        &[
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", at.to_string()),
            ("webhook-signature", signature),
        ],
        body,
    )
    .await
}

/// Every customer with its social profiles and social messages, by name.
async fn social_customers(app: &TestApp) -> Vec<Value> {
    let reply = app
        .gql(
            "{ customers(first: 50, orderBy: {field: NAME}) { nodes {
                id name lifecycleStage
                socialProfiles { network handle networkUserId url }
                activities(first: 20) { totalCount nodes { kind subject body source externalId occurredAt } }
            } } }",
            json!({}),
        )
        .await;
    reply.assert_ok();
    reply.data("customers")["nodes"]
        .as_array()
        .expect("nodes")
        .clone()
}

async fn messages(app: &TestApp, token: Option<&str>, status: Option<&str>) -> Value {
    let reply = app
        .gql_as(
            token.or(Some(&app.admin())),
            "query($s: InboundMessageStatus) { socialConnections { id messages(status: $s) {
                eventId status reason customerId activityId payload } } }",
            json!({ "s": status }),
        )
        .await;
    reply.body.clone()
}

fn meta_messages(page: &str, items: Vec<Value>) -> String {
    json!({
        "object": "page",
        "entry": [{ "id": page, "time": 1_764_000_000_000_i64, "messaging": items }]
    })
    .to_string()
}

fn message(from: &str, mid: &str, text: &str) -> Value {
    json!({
        "sender": { "id": from }, "recipient": { "id": "PAGE1" },
        "timestamp": 1_764_000_000_000_i64,
        "message": { "mid": mid, "text": text }
    })
}

#[tokio::test]
async fn meta_verifies_its_url_and_signed_messages_become_activities() {
    let app = TestApp::spawn().await;
    let (_, url) = connect(
        &app,
        json!({"network": "META", "accountId": "PAGE1", "appSecret": META_SECRET, "verifyToken": "vt-123"}),
    )
    .await;
    assert!(url.starts_with("/webhooks/inbound/meta/sco_"), "{url}");

    // The subscription handshake: the challenge comes back for the right token only.
    let res = app
        .client
        .get(app.url(&format!(
            "{url}?hub.mode=subscribe&hub.verify_token=vt-123&hub.challenge=1158201444"
        )))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/plain")
    );
    assert_eq!(res.text().await.expect("text"), "1158201444");
    let res = app
        .client
        .get(app.url(&format!(
            "{url}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1"
        )))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // A customer who already has the sender's profile.
    let ada = app
        .customer(json!({"name": "Ada", "socialProfiles": [
            {"network": "facebook", "handle": "ada.l", "networkUserId": "PSID-ADA"}]}))
        .await;

    let body = meta_messages(
        "PAGE1",
        vec![
            message("PSID-ADA", "m_1", "Hello from Ada"),
            message("PSID-NEW", "m_2", "Who are you?"),
            // The page's own reply, echoed back, and a read receipt: not news.
            json!({"sender": {"id": "PAGE1"}, "recipient": {"id": "PSID-ADA"},
                   "message": {"mid": "m_3", "text": "hi", "is_echo": true}}),
            json!({"sender": {"id": "PSID-ADA"}, "recipient": {"id": "PAGE1"},
                   "read": {"watermark": 1}}),
        ],
    );
    let (status, receipt) = post_meta(&app, &url, &body).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(
        receipt,
        json!({"processed": 2, "duplicates": 0, "unmappable": 0, "ignored": 2})
    );

    let customers = social_customers(&app).await;
    assert_eq!(customers.len(), 2, "{customers:?}");
    let known = customers
        .iter()
        .find(|c| c["id"] == ada.as_str())
        .expect("Ada");
    assert_eq!(known["activities"]["totalCount"], 1);
    let logged = &known["activities"]["nodes"][0];
    assert_eq!(logged["kind"], "SOCIAL_MESSAGE");
    assert_eq!(logged["body"], "Hello from Ada");
    assert_eq!(logged["source"], "facebook");
    assert_eq!(logged["externalId"], "m_1");
    assert_eq!(logged["occurredAt"], "2025-11-24T16:00:00+00:00");
    let lead = customers
        .iter()
        .find(|c| c["id"] != ada.as_str())
        .expect("a lead");
    assert_eq!(lead["lifecycleStage"], "LEAD");
    assert_eq!(lead["name"], "Facebook user PSID-NEW");
    assert_eq!(
        lead["socialProfiles"],
        json!([{"network": "facebook", "handle": "PSID-NEW", "networkUserId": "PSID-NEW", "url": null}])
    );
    assert_eq!(lead["activities"]["nodes"][0]["body"], "Who are you?");

    // Meta retries, and an attacker replays: nothing new is written.
    let (status, receipt) = post_meta(&app, &url, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(receipt["duplicates"], 2);
    assert_eq!(receipt["processed"], 0);
    assert_eq!(social_customers(&app).await, customers);

    // A bad, missing or malformed signature: 401, nothing stored.
    let forged = meta_messages("PAGE1", vec![message("PSID-EVE", "m_9", "forged")]);
    let good_for_other = format!(
        "sha256={}",
        hex::encode(hmac(META_SECRET.as_bytes(), body.as_bytes()))
    );
    for headers in [
        vec![("x-hub-signature-256", good_for_other)],
        vec![],
        vec![("x-hub-signature-256", "sha256=nothex".to_owned())],
        vec![(
            "x-hub-signature-256",
            format!(
                "sha256={}",
                hex::encode(hmac(b"another-app-secret-xxxxxx", forged.as_bytes()))
            ),
        )],
    ] {
        let (status, answer) = post(&app, &url, &headers, &forged).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        assert!(answer["error"].is_string());
    }
    assert_eq!(social_customers(&app).await, customers);
    let kept = messages(&app, None, None).await;
    assert_eq!(
        kept["data"]["socialConnections"][0]["messages"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn x_answers_its_crc_check_and_logs_direct_messages_and_mentions() {
    let app = TestApp::spawn().await;
    let (_, url) = connect(
        &app,
        json!({"network": "X", "accountId": "100", "appSecret": X_SECRET}),
    )
    .await;
    assert!(url.starts_with("/webhooks/inbound/x/sco_"));

    let res = app
        .client
        .get(app.url(&format!("{url}?crc_token=challenge-abc")))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.expect("json");
    let expected = STANDARD.encode(hmac(X_SECRET.as_bytes(), b"challenge-abc"));
    assert_eq!(
        answer,
        json!({"response_token": format!("sha256={expected}")})
    );
    // The check would sign any body it were given: only token-shaped ones are answered.
    let forged = r#"{"for_user_id":"100","direct_message_events":[]}"#;
    let res = app
        .client
        .get(app.url(&url))
        .query(&[("crc_token", forged)])
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    let body = json!({
        "for_user_id": "100",
        "direct_message_events": [
            {"type": "message_create", "id": "dm-1", "created_timestamp": "1764000000000",
             "message_create": {"target": {"recipient_id": "100"}, "sender_id": "7",
                "message_data": {"text": "Can I get a quote?"}}},
            {"type": "message_create", "id": "dm-2", "created_timestamp": "1764000000001",
             "message_create": {"target": {"recipient_id": "7"}, "sender_id": "100",
                "message_data": {"text": "Sure"}}}
        ],
        "users": {"7": {"id": "7", "name": "Ada Lovelace", "screen_name": "ada"}},
        "tweet_create_events": [
            {"id_str": "1500", "text": "@acme your product is great", "timestamp_ms": "1764000000002",
             "user": {"id_str": "8", "name": "Bob", "screen_name": "bob_b"}}
        ]
    })
    .to_string();
    let (status, receipt) = post_x(&app, &url, &body).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(
        receipt,
        json!({"processed": 2, "duplicates": 0, "unmappable": 0, "ignored": 1})
    );
    let customers = social_customers(&app).await;
    let names: Vec<&str> = customers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["Ada Lovelace", "Bob"]);
    assert_eq!(
        customers[0]["socialProfiles"],
        json!([{"network": "x", "handle": "ada", "networkUserId": "7", "url": "https://x.com/ada"}])
    );
    let dm = &customers[0]["activities"]["nodes"][0];
    assert_eq!(dm["subject"], "X message from @ada");
    assert_eq!(dm["body"], "Can I get a quote?");
    assert_eq!(
        customers[1]["activities"]["nodes"][0]["subject"],
        "X mention from @bob_b"
    );

    // The signature of another secret, or of another body: 401, nothing stored.
    let tampered = body.replace("quote", "refund");
    let signature = format!(
        "sha256={}",
        STANDARD.encode(hmac(X_SECRET.as_bytes(), body.as_bytes()))
    );
    let (status, _) = post(
        &app,
        &url,
        &[("x-twitter-webhooks-signature", signature)],
        &tampered,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, receipt) = post_x(&app, &url, &body).await;
    assert_eq!(
        (status, receipt["duplicates"].clone()),
        (StatusCode::OK, json!(2))
    );
    assert_eq!(social_customers(&app).await, customers);
}

#[tokio::test]
async fn generic_senders_are_verified_as_standard_webhooks() {
    let app = TestApp::spawn().await;
    let (secret, key) = whsec_key();
    let (_, url) = connect(
        &app,
        json!({"network": "GENERIC", "accountId": "support-inbox", "appSecret": secret}),
    )
    .await;
    assert!(url.starts_with("/webhooks/inbound/generic/sco_"));
    let now = chrono::Utc::now().timestamp();
    let body = json!({"type": "message.received", "data": {
        "network": "LinkedIn", "text": "Interested in a demo",
        "from": {"id": "li-42", "handle": "grace", "name": "Grace Hopper",
                 "url": "https://www.linkedin.com/in/grace"},
        "occurredAt": "2026-11-30T09:00:00Z"}})
    .to_string();

    let (status, receipt) = post_generic(&app, &url, &key, "msg_1", now, &body).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["processed"], 1);
    // The same `webhook-id` again (a retry, signed anew): a duplicate.
    let (_, receipt) = post_generic(&app, &url, &key, "msg_1", now + 1, &body).await;
    assert_eq!(receipt["duplicates"], 1);
    // Signed too long ago, with another key, or not signed at all: 401.
    let (status, _) = post_generic(&app, &url, &key, "msg_2", now - 600, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post_generic(
        &app,
        &url,
        b"another key of some length",
        "msg_3",
        now,
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post(&app, &url, &[], &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let customers = social_customers(&app).await;
    assert_eq!(customers.len(), 1, "{customers:?}");
    assert_eq!(customers[0]["name"], "Grace Hopper");
    assert_eq!(customers[0]["socialProfiles"][0]["network"], "linkedin");
    let logged = &customers[0]["activities"]["nodes"][0];
    assert_eq!(logged["subject"], "linkedin message from @grace");
    assert_eq!(logged["occurredAt"], "2026-11-30T09:00:00+00:00");

    // A verified body of another type is acknowledged and kept for inspection.
    let other = json!({"type": "reaction.added", "data": {}}).to_string();
    let (status, receipt) = post_generic(&app, &url, &key, "msg_4", now, &other).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(receipt["unmappable"], 1);
    let kept = messages(&app, None, Some("UNMAPPABLE")).await;
    let kept = &kept["data"]["socialConnections"][0]["messages"];
    assert_eq!(kept.as_array().map(Vec::len), Some(1), "{kept}");
    assert_eq!(kept[0]["eventId"], "msg_4");
    assert_eq!(kept[0]["payload"], other);
    assert!(
        kept[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("message.received")
    );
}

#[tokio::test]
async fn unmappable_deliveries_are_kept_and_their_payloads_guarded() {
    let app = TestApp::spawn().await;
    let (_, url) = connect(
        &app,
        json!({"network": "META", "accountId": "PAGE1", "appSecret": META_SECRET, "verifyToken": "vt"}),
    )
    .await;
    // An entry for another page, an Instagram-only field on a page, and a body that is not
    // JSON at all: all verified, none mappable.
    let body = json!({"object": "page", "entry": [
        {"id": "PAGE2", "messaging": [message("PSID-1", "m_1", "hi")]},
        {"id": "PAGE1", "changes": [{"field": "ratings", "value": {"rating": 5}}]}
    ]})
    .to_string();
    let (status, receipt) = post_meta(&app, &url, &body).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["unmappable"], 2);
    let (status, receipt) = post_meta(&app, &url, "not json \u{0} at all").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(receipt["unmappable"], 1);
    // Again: the same unreadable items are recognised.
    let (_, receipt) = post_meta(&app, &url, &body).await;
    assert_eq!(receipt["duplicates"], 2);
    assert!(social_customers(&app).await.is_empty());

    let kept = messages(&app, None, Some("UNMAPPABLE")).await;
    let kept = kept["data"]["socialConnections"][0]["messages"]
        .as_array()
        .expect("messages")
        .clone();
    assert_eq!(kept.len(), 3);
    assert!(
        kept.iter()
            .all(|m| m["payload"].is_string() && m["reason"].is_string())
    );
    assert!(
        kept.iter()
            .any(|m| m["payload"].as_str().unwrap_or("").contains("not json"))
    );

    // Without pii:read the payload is withheld, its siblings still answer.
    let weaker = app.token("webhooks:manage customers:read activities:read");
    let answer = messages(&app, Some(&weaker), None).await;
    assert_eq!(
        answer["data"]["socialConnections"][0]["messages"][0]["payload"],
        Value::Null
    );
    assert!(answer["data"]["socialConnections"][0]["messages"][0]["reason"].is_string());
    let codes: Vec<&str> = answer["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["extensions"]["code"].as_str())
        .collect();
    assert!(codes.iter().all(|c| *c == "FORBIDDEN"), "{answer}");
}

#[tokio::test]
async fn messages_are_cleaned_bounded_and_a_trashed_sender_is_not_revived() {
    let app = TestApp::spawn().await;
    let (_, url) = connect(
        &app,
        json!({"network": "META", "accountId": "PAGE1", "appSecret": META_SECRET, "verifyToken": "vt"}),
    )
    .await;
    let gone = app
        .customer(json!({"name": "Gone", "socialProfiles": [
            {"network": "facebook", "handle": "gone", "networkUserId": "PSID-GONE"}]}))
        .await;
    app.gql(
        "mutation($id: ID!) { deleteCustomer(input: {id: $id}) { userErrors { message } } }",
        json!({"id": gone}),
    )
    .await
    .assert_ok();
    let long = "x".repeat(70 * 1024);
    let body = meta_messages(
        "PAGE1",
        vec![
            message("PSID-GONE", "m_1", "still there?"),
            message("PSID-NUL", "m_2", "nul\u{0}bytes\u{7} and\nnewlines"),
            message("PSID-LONG", "m_3", &long),
            message(&"9".repeat(300), "m_4", "an id too long to be a profile"),
        ],
    );
    let (status, receipt) = post_meta(&app, &url, &body).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(
        receipt,
        json!({"processed": 2, "duplicates": 0, "unmappable": 2, "ignored": 0})
    );
    let customers = social_customers(&app).await;
    let bodies: Vec<String> = customers
        .iter()
        .filter_map(|c| {
            c["activities"]["nodes"][0]["body"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(
        bodies.contains(&"nulbytes and\nnewlines".to_owned()),
        "{bodies:?}"
    );
    assert!(
        bodies
            .iter()
            .any(|b| b.len() == 64 * 1024 && b.chars().all(|c| c == 'x'))
    );
    let kept = messages(&app, None, Some("UNMAPPABLE")).await;
    let reasons: Vec<&str> = kept["data"]["socialConnections"][0]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["reason"].as_str())
        .collect();
    assert!(reasons.iter().any(|r| r.contains("trash")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("255")), "{reasons:?}");

    // Back from the trash, the message is logged when the network sends it again.
    app.gql(
        "mutation($id: ID!) { restoreCustomer(input: {id: $id}) { userErrors { message } } }",
        json!({"id": gone}),
    )
    .await
    .assert_ok();
    let (status, receipt) = post_meta(&app, &url, &body).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(
        receipt,
        json!({"processed": 1, "duplicates": 2, "unmappable": 1, "ignored": 0})
    );
    let customers = social_customers(&app).await;
    let restored = customers
        .iter()
        .find(|c| c["id"] == gone.as_str())
        .expect("restored");
    assert_eq!(restored["activities"]["nodes"][0]["body"], "still there?");

    // More items than a delivery may hold: refused whole.
    let many: Vec<Value> = (0..1_001)
        .map(|i| message("PSID-MANY", &format!("k_{i}"), "hi"))
        .collect();
    let (status, _) = post_meta(&app, &url, &meta_messages("PAGE1", many)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Also within one list of another network's shape, before reading it all.
    let (_, x_url) = connect(
        &app,
        json!({"network": "X", "accountId": "100", "appSecret": X_SECRET}),
    )
    .await;
    let zeros = vec!["0"; 200_000].join(",");
    let huge = format!(r#"{{"for_user_id":"100","zz_events":[{zeros}]}}"#);
    let (status, _) = post_x(&app, &x_url, &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        !social_customers(&app)
            .await
            .iter()
            .any(|c| c["socialProfiles"][0]["networkUserId"] == "PSID-MANY")
    );
}

#[tokio::test]
async fn connections_keep_their_secrets_and_their_tenant() {
    let app = TestApp::spawn().await;
    // Refused inputs, each with its field.
    for (input, field) in [
        (
            json!({"network": "META", "accountId": "P", "appSecret": META_SECRET}),
            "verifyToken",
        ),
        (
            json!({"network": "X", "accountId": "1", "appSecret": X_SECRET, "verifyToken": "t"}),
            "verifyToken",
        ),
        (
            json!({"network": "X", "accountId": "1", "appSecret": "short"}),
            "appSecret",
        ),
        (
            json!({"network": "GENERIC", "accountId": "g", "appSecret": X_SECRET}),
            "appSecret",
        ),
        (
            json!({"network": "X", "accountId": "", "appSecret": X_SECRET}),
            "accountId",
        ),
        (
            json!({"network": "X", "accountId": "1", "appSecret": "with space 0123456789"}),
            "appSecret",
        ),
    ] {
        let reply = app.gql(CREATE, json!({"input": input})).await;
        reply.assert_ok();
        let errors = &reply.data("createSocialConnection")["userErrors"];
        assert_eq!(errors[0]["field"], json!([field]), "{input}: {errors}");
    }
    // No secret is ever readable.
    let reply = app
        .gql("{ socialConnections { appSecret } }", json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    // Making one needs the writes it will do.
    let manager_only = app.token("webhooks:manage");
    let reply = app
        .gql_as(
            Some(&manager_only),
            CREATE,
            json!({"input": {"network": "X", "accountId": "1", "appSecret": X_SECRET}}),
        )
        .await;
    assert_eq!(reply.error_codes(), ["FORBIDDEN"]);

    let (id, url) = connect(
        &app,
        json!({"network": "X", "accountId": "100", "appSecret": X_SECRET}),
    )
    .await;
    // Another tenant neither sees it nor can delete it.
    let other = app.token_for("another-org", "mallory", crate::helpers::ALL_SCOPES);
    let reply = app
        .gql_as(Some(&other), "{ socialConnections { id } }", json!({}))
        .await;
    assert_eq!(reply.data("socialConnections"), &json!([]));
    let delete = "mutation($id: ID!) { deleteSocialConnection(input: {id: $id}) {
        deletedId userErrors { code } } }";
    let reply = app.gql_as(Some(&other), delete, json!({"id": id})).await;
    assert_eq!(
        reply.data("deleteSocialConnection")["deletedId"],
        Value::Null
    );

    // Its URL under another network, or an id that is no connection's: 404.
    for wrong in [
        url.replace("/x/", "/meta/"),
        url.replace("/x/", "/generic/"),
        "/webhooks/inbound/x/sco_01ARZ3NDEKTSV4RRFFQ69G5FAV".to_owned(),
        "/webhooks/inbound/x/not-an-id".to_owned(),
        url.replace("/x/", "/myspace/"),
    ] {
        let (status, _) = post_x(&app, &wrong, "{}").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{wrong}");
    }

    // A rotated secret takes effect at once.
    let rotated = "x-consumer-secret-rotated-0123456789";
    let reply = app
        .gql(
            "mutation($id: ID!, $s: String!) { updateSocialConnection(input: {id: $id, appSecret: $s}) {
                connection { id } userErrors { message } } }",
            json!({"id": id, "s": rotated}),
        )
        .await;
    reply.assert_ok();
    let body = json!({"for_user_id": "100", "favorite_events": [{}]}).to_string();
    let (status, _) = post_x(&app, &url, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let signature = format!(
        "sha256={}",
        STANDARD.encode(hmac(rotated.as_bytes(), body.as_bytes()))
    );
    let (status, receipt) = post(
        &app,
        &url,
        &[("x-twitter-webhooks-signature", signature)],
        &body,
    )
    .await;
    assert_eq!(
        (status, receipt["ignored"].clone()),
        (StatusCode::OK, json!(1))
    );

    // Deleted: the URL is gone.
    let reply = app.gql(delete, json!({"id": id})).await;
    assert_eq!(
        reply.data("deleteSocialConnection")["deletedId"],
        id.as_str()
    );
    let (status, _) = post_x(&app, &url, &body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A burst of deliveries, as Meta sends them: every one answered 200, each new sender one
/// lead however many of its messages arrive at once, and nothing lost.
#[tokio::test]
async fn a_burst_of_deliveries_is_written_whole() {
    let app = TestApp::spawn().await;
    let (_, url) = connect(
        &app,
        json!({"network": "META", "accountId": "PAGE1", "appSecret": META_SECRET, "verifyToken": "vt"}),
    )
    .await;
    let deliveries = (0..24).map(|i| {
        let body = meta_messages(
            "PAGE1",
            (0..30)
                .map(|j| message(&format!("PSID-{}", j % 6), &format!("m_{i}_{j}"), "hi"))
                .collect(),
        );
        let app = &app;
        let url = url.clone();
        async move { post_meta(app, &url, &body).await }
    });
    let answers = futures_util::future::join_all(deliveries).await;
    for (status, receipt) in &answers {
        assert_eq!(*status, StatusCode::OK, "{receipt}");
        assert_eq!(receipt["processed"], 30, "{receipt}");
    }
    let customers = social_customers(&app).await;
    assert_eq!(customers.len(), 6);
    for customer in &customers {
        assert_eq!(customer["activities"]["totalCount"], 120, "{customer}");
    }
}
