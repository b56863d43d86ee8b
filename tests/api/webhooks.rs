//! Outbound webhooks against a real local receiver: Standard Webhooks signatures, retries
//! and their schedule, Retry-After, 410, giving up and redelivering, refused addresses, a
//! rotated secret, a delivery whose worker died, and (on PostgreSQL) two instances.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::TestApp;

/// What the receiver got: headers and body of each POST, when.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    at: Instant,
}

/// A local endpoint answering from a script (then 200).
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(script: Vec<(u16, Option<&'static str>)>) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script = Arc::new(Mutex::new(script));
        let (g, s) = (got.clone(), script.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let (g, s) = (g.clone(), s.clone());
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    g.lock().expect("lock").push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body,
                        at: Instant::now(),
                    });
                    let next = {
                        let mut s = s.lock().expect("lock");
                        if s.is_empty() {
                            None
                        } else {
                            Some(s.remove(0))
                        }
                    };
                    let (status, retry_after) = next.unwrap_or((200, None));
                    let mut out = HeaderMap::new();
                    if let Some(secs) = retry_after {
                        out.insert("retry-after", secs.parse().expect("header"));
                    }
                    (StatusCode::from_u16(status).expect("status"), out, "")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, got }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    /// Waits until `n` requests arrived (or fails after 15 s).
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} deliveries arrived: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

const CREATE_ENDPOINT: &str = "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id url eventTypes active } secret userErrors { field message code } } }";
const ENDPOINTS: &str = "{ webhookEndpoints { id active disabledReason deliveries { id status attemptCount lastStatusCode eventType attempts { number statusCode } } } }";

async fn endpoint(app: &TestApp, token: &str, url: &str, types: &[&str]) -> (String, String) {
    let r = app
        .gql_as(
            Some(token),
            CREATE_ENDPOINT,
            json!({"input": {"url": url, "eventTypes": types, "description": "test"}}),
        )
        .await;
    r.assert_ok();
    assert_eq!(
        r.data("createWebhookEndpoint.userErrors"),
        &json!([]),
        "{}",
        r.body
    );
    (
        r.data("createWebhookEndpoint.endpoint.id")
            .as_str()
            .expect("id")
            .to_owned(),
        r.data("createWebhookEndpoint.secret")
            .as_str()
            .expect("secret")
            .to_owned(),
    )
}

/// Verifies a `webhook-signature` value the way the Standard Webhooks libraries do: one of
/// its signatures is the HMAC of `id.timestamp.body` under the secret.
fn verifies(secret: &str, got: &Received) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("key");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("hmac");
    mac.update(format!("{}.{}.{}", got.id, got.timestamp, got.body).as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    got.signature.split(' ').any(|s| s == expected)
}

#[tokio::test]
async fn changes_arrive_signed_with_the_entity_as_its_owner_sees_it() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(vec![]).await;
    // Created by a token without `pii:read`: its payloads never show email or phone.
    let manager = app.token("webhooks:manage customers:read activities:read");
    let (_, secret) = endpoint(
        &app,
        &manager,
        &receiver.url(),
        &["customer.created", "activity.logged"],
    )
    .await;
    let customer = app
        .customer(json!({"name": "Ada", "email": "ada@example.com"}))
        .await;
    app.gql(
        "mutation($id: ID!) { updateCustomer(input: {id: $id, name: \"Ada L.\"}) { customer { id } } }",
        json!({"id": customer}),
    )
    .await
    .assert_ok();
    app.activity(json!({"customerId": customer, "kind": "NOTE", "subject": "Hello"}))
        .await;

    let got = receiver.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.got().len(),
        2,
        "customer.updated was not asked for"
    );
    let first: Value = serde_json::from_str(&got[0].body).expect("JSON");
    assert_eq!(first["type"], "customer.created");
    assert_eq!(first["data"]["id"], customer.as_str());
    assert_eq!(first["data"]["name"], "Ada");
    assert!(first["data"].get("email").is_none(), "{first}");
    assert!(first["data"].get("orgId").is_none(), "{first}");
    let second: Value = serde_json::from_str(&got[1].body).expect("JSON");
    assert_eq!(second["type"], "activity.logged");
    assert_eq!(second["data"]["customer"]["id"], customer.as_str());
    for delivery in &got {
        assert!(delivery.id.starts_with("msg_"), "{delivery:?}");
        let ts: i64 = delivery.timestamp.parse().expect("timestamp");
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
        assert!(verifies(&secret, delivery), "{delivery:?}");
        assert!(!verifies(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            delivery
        ));
    }
    assert_ne!(got[0].id, got[1].id);
}

#[tokio::test]
async fn an_activity_shows_its_customer_only_to_an_owner_who_may_read_customers() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(vec![]).await;
    let manager = app.token("webhooks:manage activities:read");
    endpoint(&app, &manager, &receiver.url(), &["activity.logged"]).await;
    let refused = app
        .gql_as(
            Some(&manager),
            CREATE_ENDPOINT,
            json!({"input": {"url": receiver.url(), "eventTypes": ["customer.created"]}}),
        )
        .await;
    assert_eq!(
        refused.data("createWebhookEndpoint.userErrors.0.field"),
        &json!(["eventTypes"]),
        "customer events need customers:read"
    );
    let customer = app.customer(json!({"name": "Hidden"})).await;
    app.activity(json!({"customerId": customer, "kind": "NOTE", "subject": "Seen"}))
        .await;
    let got = receiver.wait_for(1).await;
    let body: Value = serde_json::from_str(&got[0].body).expect("JSON");
    assert_eq!(body["data"]["subject"], "Seen");
    assert!(body["data"].get("customer").is_none(), "{body}");
}

#[tokio::test]
async fn failures_are_retried_with_one_id_and_retry_after_is_honoured() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(vec![(500, None), (503, Some("2")), (200, None)]).await;
    let (_, secret) = endpoint(&app, &app.admin(), &receiver.url(), &["customer.created"]).await;
    app.customer(json!({"name": "Retried"})).await;
    let got = receiver.wait_for(3).await;
    assert!(
        got.iter().all(|g| g.id == got[0].id),
        "one webhook-id: {got:?}"
    );
    assert!(got.iter().all(|g| verifies(&secret, g)));
    // The schedule says 300 ms; the receiver asked for 2 s.
    let waited = got[2].at - got[1].at;
    assert!(waited >= Duration::from_millis(1_900), "{waited:?}");
    let first_wait = got[1].at - got[0].at;
    assert!(first_wait < Duration::from_millis(1_500), "{first_wait:?}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = app.gql(ENDPOINTS, json!({})).await;
    r.assert_ok();
    let delivery = &r.data("webhookEndpoints.0.deliveries.0");
    assert_eq!(delivery["status"], "DELIVERED", "{delivery}");
    assert_eq!(delivery["attemptCount"], 3);
    let codes: Vec<&Value> = delivery["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| &a["statusCode"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(503), &json!(200)]);
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_is_given_up_and_can_be_sent_again() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(vec![(500, None); 4]).await;
    endpoint(&app, &app.admin(), &receiver.url(), &["customer.created"]).await;
    app.customer(json!({"name": "Unlucky"})).await;
    // One try and three retries (the tests' schedule), then it fails.
    let got = receiver.wait_for(4).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(receiver.got().len(), 4);
    let r = app.gql(ENDPOINTS, json!({})).await;
    let delivery = r.data("webhookEndpoints.0.deliveries.0").clone();
    assert_eq!(delivery["status"], "FAILED", "{delivery}");
    assert_eq!(r.data("webhookEndpoints.0.active"), true);

    let again = app
        .gql(
            "mutation($id: ID!) { redeliverWebhook(input: {deliveryId: $id}) { delivery { id status } userErrors { message } } }",
            json!({"id": delivery["id"]}),
        )
        .await;
    again.assert_ok();
    let got_again = receiver.wait_for(5).await;
    assert_eq!(
        got_again[4].id, got[0].id,
        "redelivered under its webhook-id"
    );
}

#[tokio::test]
async fn gone_disables_the_endpoint() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(vec![(410, None)]).await;
    endpoint(&app, &app.admin(), &receiver.url(), &["customer.created"]).await;
    app.customer(json!({"name": "First"})).await;
    receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = app.gql(ENDPOINTS, json!({})).await;
    assert_eq!(r.data("webhookEndpoints.0.active"), false, "{}", r.body);
    assert!(
        r.data("webhookEndpoints.0.disabledReason")
            .as_str()
            .is_some_and(|s| s.contains("410"))
    );
    app.customer(json!({"name": "Second"})).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(receiver.got().len(), 1, "nothing more is sent");
}

#[tokio::test]
async fn registration_refuses_private_addresses_bad_types_and_callers_without_the_scope() {
    let app = TestApp::spawn_with(|c| c.webhooks.allow_private = false).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://10.0.0.1/hook",
        "ftp://example.com/hook",
        "not a url",
    ] {
        let r = app
            .gql(
                CREATE_ENDPOINT,
                json!({"input": {"url": url, "eventTypes": ["customer.created"]}}),
            )
            .await;
        r.assert_ok();
        assert_eq!(
            r.data("createWebhookEndpoint.endpoint"),
            &Value::Null,
            "{url}"
        );
        assert_eq!(
            r.data("createWebhookEndpoint.userErrors.0.field"),
            &json!(["url"]),
            "{url}"
        );
    }
    let r = app
        .gql(
            CREATE_ENDPOINT,
            json!({"input": {"url": "https://93.184.215.14/hook", "eventTypes": ["customer.exploded"]}}),
        )
        .await;
    assert_eq!(
        r.data("createWebhookEndpoint.userErrors.0.field"),
        &json!(["eventTypes"])
    );
    let reader = app.token("customers:read");
    let r = app
        .gql_as(
            Some(&reader),
            CREATE_ENDPOINT,
            json!({"input": {"url": "https://93.184.215.14/hook", "eventTypes": ["customer.created"]}}),
        )
        .await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
    let r = app.gql_as(Some(&reader), ENDPOINTS, json!({})).await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_and_tests_can_be_sent() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(vec![]).await;
    let (id, old) = endpoint(&app, &app.admin(), &receiver.url(), &["customer.created"]).await;
    let r = app
        .gql(
            "mutation($id: ID!) { rotateWebhookSecret(input: {id: $id, gracePeriodSeconds: 3600}) { secret userErrors { message } } }",
            json!({"id": id}),
        )
        .await;
    r.assert_ok();
    let new = r
        .data("rotateWebhookSecret.secret")
        .as_str()
        .expect("secret")
        .to_owned();
    assert_ne!(new, old);
    let r = app
        .gql(
            "mutation($id: ID!) { sendTestWebhook(input: {id: $id}) { delivery { id eventType } userErrors { message } } }",
            json!({"id": id}),
        )
        .await;
    r.assert_ok();
    let got = receiver.wait_for(1).await;
    let body: Value = serde_json::from_str(&got[0].body).expect("JSON");
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(got[0].signature.split(' ').count(), 2);
    assert!(verifies(&old, &got[0]) && verifies(&new, &got[0]));
    // Another tenant sees none of it.
    let other = app.token_for("another-org", "user-1", crate::helpers::ALL_SCOPES);
    let r = app.gql_as(Some(&other), ENDPOINTS, json!({})).await;
    assert_eq!(r.data("webhookEndpoints"), &json!([]));
    let r = app
        .gql_as(
            Some(&other),
            "mutation($id: ID!) { sendTestWebhook(input: {id: $id}) { delivery { id } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.error_codes(), ["NOT_FOUND"]);
}

/// A worker that claimed a delivery and died: its lease lapses, and the delivery is sent by
/// a live worker under the same `webhook-id`.
#[tokio::test]
async fn a_delivery_a_dead_worker_held_is_sent_later_under_its_id() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(vec![]).await;
    let (endpoint_id, secret) =
        endpoint(&app, &app.admin(), &receiver.url(), &["customer.created"]).await;
    let db = sea_orm::Database::connect(&app.db_url)
        .await
        .expect("database");
    use sea_orm::{ActiveModelTrait, Set};
    let id = format!("msg_{}", ulid::Ulid::new());
    // Timed from the lease's own clock, not from after the insert, which a busy machine
    // can take most of a second to finish.
    let started = Instant::now();
    let now = chrono::Utc::now();
    entity::webhook_deliveries::ActiveModel {
        id: Set(id.clone()),
        org_id: Set(app.org.clone()),
        endpoint_id: Set(endpoint_id),
        event_seq: Set(None),
        event_type: Set("webhook.test".into()),
        payload: Set(
            r#"{"type":"webhook.test","timestamp":"2026-01-01T00:00:00.000Z","data":{}}"#.into(),
        ),
        status: Set("PENDING".into()),
        attempts: Set(0),
        next_attempt_at: Set(Some(now)),
        // Claimed two seconds ago by a process that is gone, for three seconds.
        lease_until: Set(Some(now + chrono::Duration::seconds(3))),
        last_status_code: Set(None),
        last_error: Set(None),
        last_latency_ms: Set(None),
        created_at: Set(now),
        delivered_at: Set(None),
    }
    .insert(&db)
    .await
    .expect("insert");
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].id, id);
    assert!(verifies(&secret, &got[0]));
    assert!(
        started.elapsed() >= Duration::from_millis(2_500),
        "not before the lease lapsed"
    );
}

mod needs_postgres {
    use std::collections::HashMap;
    use std::time::Duration;

    use serde_json::json;

    use super::{Receiver, endpoint};
    use crate::helpers::TestApp;

    #[tokio::test]
    #[ignore = "needs PostgreSQL: TEST_DATABASE_URL=postgres://… cargo test -- --ignored needs_postgres::"]
    async fn two_instances_deliver_each_event_once() {
        assert!(
            std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()),
            "needs PostgreSQL: set TEST_DATABASE_URL=postgres://…"
        );
        let a = TestApp::spawn().await;
        let b = TestApp::spawn_with(|c| c.db.url = a.db_url.clone()).await;
        let receiver = Receiver::start(vec![]).await;
        endpoint(&a, &a.admin(), &receiver.url(), &["customer.created"]).await;
        let n = 100;
        // Both instances write for one tenant (a's), each its half.
        let token = a.admin();
        for i in 0..n {
            let app = if i % 2 == 0 { &a } else { &b };
            app.gql_as(
                Some(&token),
                "mutation($n: String!) { createCustomer(input: {name: $n}) { customer { id } } }",
                json!({"n": format!("C{i}")}),
            )
            .await
            .assert_ok();
        }
        receiver.wait_for(n).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let got = receiver.got();
        let mut by_id: HashMap<String, usize> = HashMap::new();
        for g in &got {
            *by_id.entry(g.id.clone()).or_default() += 1;
        }
        assert_eq!(by_id.len(), n, "every event delivered");
        assert!(by_id.values().all(|&k| k == 1), "none twice: {by_id:?}");
    }
}

/// A token with `webhooks:manage` but fewer scopes than an endpoint's creator cannot point
/// it elsewhere, test it or redeliver through it (it would receive what it may not read).
#[tokio::test]
async fn a_weaker_token_cannot_steer_an_endpoint_that_shows_more_than_it_may_read() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(vec![]).await;
    let (id, _) = endpoint(&app, &app.admin(), &receiver.url(), &["customer.created"]).await;
    app.customer(json!({"name": "Private", "email": "p@example.com"}))
        .await;
    receiver.wait_for(1).await;
    let r = app.gql(ENDPOINTS, json!({})).await;
    let delivery = r.data("webhookEndpoints.0.deliveries.0.id").clone();

    let weak = app.token("webhooks:manage");
    for (query, vars) in [
        (
            "mutation($id: ID!) { updateWebhookEndpoint(input: {id: $id, url: \"http://127.0.0.1:9/stolen\"}) { endpoint { url } userErrors { field } } }",
            json!({"id": id}),
        ),
        (
            "mutation($id: ID!) { sendTestWebhook(input: {id: $id}) { delivery { id } userErrors { field } } }",
            json!({"id": id}),
        ),
        (
            "mutation($id: ID!) { redeliverWebhook(input: {deliveryId: $id}) { delivery { id } userErrors { field } } }",
            json!({"id": delivery}),
        ),
        (
            "mutation($id: ID!) { rotateWebhookSecret(input: {id: $id}) { secret userErrors { field } } }",
            json!({"id": id}),
        ),
    ] {
        let r = app.gql_as(Some(&weak), query, vars).await;
        r.assert_ok();
        let payload = r.body["data"]
            .as_object()
            .and_then(|o| o.values().next())
            .cloned();
        let payload = payload.unwrap_or_default();
        assert_eq!(
            payload["userErrors"][0]["field"],
            json!(["id"]),
            "{query}: {}",
            r.body
        );
    }
    let r = app.gql("{ webhookEndpoints { url } }", json!({})).await;
    assert_eq!(
        r.data("webhookEndpoints.0.url"),
        receiver.url().as_str(),
        "the URL is unchanged"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.got().len(), 1, "nothing more was sent");
}

/// A receiver asking to wait longer than any duration can hold is waited on for a day, and
/// the other endpoints' deliveries go on.
#[tokio::test]
async fn an_absurd_retry_after_delays_only_its_own_delivery() {
    let app = TestApp::spawn().await;
    let absurd = Receiver::start(vec![(503, Some("100000000000000000"))]).await;
    let fine = Receiver::start(vec![]).await;
    endpoint(&app, &app.admin(), &absurd.url(), &["customer.created"]).await;
    app.customer(json!({"name": "First"})).await;
    absurd.wait_for(1).await;
    endpoint(&app, &app.admin(), &fine.url(), &["customer.created"]).await;
    app.customer(json!({"name": "Second"})).await;
    let got = fine.wait_for(1).await;
    let body: Value = serde_json::from_str(&got[0].body).expect("JSON");
    assert_eq!(body["data"]["name"], "Second");
    let r = app.gql(ENDPOINTS, json!({})).await;
    let first = r.data("webhookEndpoints.0.deliveries").to_string();
    assert!(first.contains("\"PENDING\""), "{first}");
}
