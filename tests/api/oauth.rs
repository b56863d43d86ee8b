//! OAuth2 client credentials, revocation, API client management, secret rotation and
//! brute-force throttling, as an integration sees them.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, reply};

/// What is sent, with what credentials, and the expected status and `error`.
type Case<'a> = (
    &'a str,
    Option<(&'a str, &'a str)>,
    Vec<(&'a str, &'a str)>,
    StatusCode,
    &'a str,
);

struct Client {
    id: String,
    secret: String,
}

async fn create_client(app: &TestApp, scopes: &[&str]) -> Client {
    let r = app
        .gql(
            "mutation($i: CreateApiClientInput!) { createApiClient(input: $i) { apiClient { id name scopes revokedAt } clientSecret userErrors { field code message } } }",
            json!({"i": {"name": "Billing sync", "scopes": scopes}}),
        )
        .await;
    r.assert_ok();
    assert_eq!(
        r.data("createApiClient.userErrors"),
        &json!([]),
        "{}",
        r.body
    );
    let id = r
        .data("createApiClient.apiClient.id")
        .as_str()
        .expect("id")
        .to_owned();
    assert!(id.starts_with("cli_"));
    Client {
        id,
        secret: r
            .data("createApiClient.clientSecret")
            .as_str()
            .expect("secret")
            .to_owned(),
    }
}

async fn post_form(
    app: &TestApp,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut req = app
        .client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some((id, secret)) = basic {
        req = req.header(
            "authorization",
            format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
        );
    }
    let res = req.send().await.expect("sent");
    let headers = res.headers().clone();
    let r = reply(res).await;
    (r.status, headers, r.body)
}

async fn token(
    app: &TestApp,
    client: &Client,
    scope: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    post_form(
        app,
        "/oauth/token",
        Some((&client.id, &client.secret)),
        &form,
    )
    .await
}

fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64")).expect("json")
}

#[tokio::test]
async fn client_credentials_issue_short_lived_scoped_tokens() {
    let app = TestApp::spawn().await;
    let client = create_client(&app, &["customers:read", "customers:write"]).await;

    let (status, headers, body) = token(&app, &client, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "customers:read customers:write");
    let access = body["access_token"].as_str().expect("token").to_owned();
    assert_eq!(jwt_part(&access, 0)["typ"], "at+jwt");
    let claims = jwt_part(&access, 1);
    assert!(claims["jti"].is_string());
    assert_eq!(claims["client_id"], json!(client.id));
    assert_eq!(claims["org"], json!(app.org));

    let r = app
        .gql_as(
            Some(&access),
            "{ viewer { subject org scopes } customers { totalCount } }",
            json!({}),
        )
        .await;
    r.assert_ok();
    assert_eq!(
        r.data("viewer"),
        &json!({"subject": client.id, "org": app.org, "scopes": ["customers:read", "customers:write"]})
    );

    // A narrower request gets a narrower token; the form-post method works too.
    let (status, _, body) = post_form(
        &app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "customers:read"),
            ("client_id", &client.id),
            ("client_secret", &client.secret),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "customers:read");
    let narrow = body["access_token"].as_str().expect("token");
    let r = app
        .gql_as(
            Some(narrow),
            "mutation { createCustomer(input: {name: \"x\"}) { customer { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc_6749() {
    let app = TestApp::spawn().await;
    let client = create_client(&app, &["customers:read"]).await;
    let id = client.id.as_str();
    let secret = client.secret.as_str();
    let cases: Vec<Case> = vec![
        (
            "no grant_type",
            Some((id, secret)),
            vec![],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "password grant",
            Some((id, secret)),
            vec![("grant_type", "password")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            "scope beyond the client",
            Some((id, secret)),
            vec![
                ("grant_type", "client_credentials"),
                ("scope", "customers:write"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "unknown scope",
            Some((id, secret)),
            vec![("grant_type", "client_credentials"), ("scope", "admin")],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "two auth methods",
            Some((id, secret)),
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "no credentials",
            None,
            vec![("grant_type", "client_credentials")],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "unknown client",
            Some(("cli_01JD0000000000000000000000", secret)),
            vec![("grant_type", "client_credentials")],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "wrong secret",
            Some((id, "cs_wrong")),
            vec![("grant_type", "client_credentials")],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
    ];
    for (what, basic, form, status, error) in cases {
        let (got, headers, body) = post_form(&app, "/oauth/token", basic, &form).await;
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(body["error"], error, "{what}");
        assert_eq!(headers["cache-control"], "no-store", "{what}");
        if status == StatusCode::UNAUTHORIZED {
            assert!(
                headers["www-authenticate"]
                    .to_str()
                    .unwrap_or_default()
                    .starts_with("Basic"),
                "{what}"
            );
        }
    }
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"client_credentials"}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let (status, _, body) = post_form(
        &app,
        "/oauth/token",
        Some((id, secret)),
        &[
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
}

#[tokio::test]
async fn revoked_tokens_fail_on_their_next_use() {
    let app = TestApp::spawn().await;
    let client = create_client(&app, &["customers:read"]).await;
    let other = create_client(&app, &["customers:read"]).await;
    let access = token(&app, &client, None).await.2["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    app.gql_as(Some(&access), "{ customers { totalCount } }", json!({}))
        .await
        .assert_ok();

    // Another client may not revoke it; garbage is "revoked" without complaint (RFC 7009 §2.2).
    let (status, _, body) = post_form(
        &app,
        "/oauth/revoke",
        Some((&other.id, &other.secret)),
        &[("token", &access)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
    let (status, _, _) = post_form(
        &app,
        "/oauth/revoke",
        Some((&client.id, &client.secret)),
        &[("token", "garbage")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.gql_as(Some(&access), "{ customers { totalCount } }", json!({}))
        .await
        .assert_ok();

    let (status, _, _) = post_form(
        &app,
        "/oauth/revoke",
        Some((&client.id, &client.secret)),
        &[("token", &access), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let r = app
        .gql_as(Some(&access), "{ customers { totalCount } }", json!({}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_codes(), ["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn revocations_of_expired_tokens_are_forgotten_and_live_ones_kept() {
    use entity::revoked_tokens;
    use sea_orm::{Database, EntityTrait, PaginatorTrait};

    let app = TestApp::spawn().await;
    let client = create_client(&app, &["customers:read"]).await;
    let access = token(&app, &client, None).await.2["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (status, _, _) = post_form(
        &app,
        "/oauth/revoke",
        Some((&client.id, &client.secret)),
        &[("token", &access)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A revocation whose token expired long ago, as an old one would sit in the table.
    let db = Database::connect(&app.db_url).await.expect("database");
    let long_ago = chrono::Utc::now() - chrono::Duration::days(2);
    revoked_tokens::Entity::insert(revoked_tokens::ActiveModel {
        jti: sea_orm::Set("expired-long-ago".into()),
        client_id: sea_orm::Set(client.id.clone()),
        expires_at: sea_orm::Set(long_ago),
        revoked_at: sea_orm::Set(long_ago),
    })
    .exec_without_returning(&db)
    .await
    .expect("insert");
    assert_eq!(
        revoked_tokens::Entity::find()
            .count(&db)
            .await
            .expect("count"),
        2
    );

    let pruned = crm::domain::clients::prune_revoked_tokens(&db)
        .await
        .expect("prune");
    assert_eq!(pruned, 1);
    assert!(
        revoked_tokens::Entity::find_by_id("expired-long-ago".to_owned())
            .one(&db)
            .await
            .expect("read")
            .is_none()
    );
    // The live token's revocation stays, and the token stays refused.
    let r = app
        .gql_as(Some(&access), "{ customers { totalCount } }", json!({}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn secret_rotation_keeps_the_old_secret_for_the_grace_period() {
    let app = TestApp::spawn().await;
    let client = create_client(&app, &["customers:read"]).await;
    let rotate = "mutation($i: RotateApiClientSecretInput!) { rotateApiClientSecret(input: $i) { clientSecret apiClient { id } userErrors { field code } } }";
    let r = app
        .gql(
            rotate,
            json!({"i": {"id": client.id, "gracePeriodSeconds": 3600}}),
        )
        .await;
    r.assert_ok();
    let new = Client {
        id: client.id.clone(),
        secret: r
            .data("rotateApiClientSecret.clientSecret")
            .as_str()
            .expect("secret")
            .to_owned(),
    };
    assert_ne!(new.secret, client.secret);
    assert_eq!(
        token(&app, &client, None).await.0,
        StatusCode::OK,
        "old secret, within grace"
    );
    assert_eq!(
        token(&app, &new, None).await.0,
        StatusCode::OK,
        "new secret"
    );

    let r = app
        .gql(
            rotate,
            json!({"i": {"id": client.id, "gracePeriodSeconds": 0}}),
        )
        .await;
    let newest = Client {
        id: client.id.clone(),
        secret: r
            .data("rotateApiClientSecret.clientSecret")
            .as_str()
            .expect("secret")
            .to_owned(),
    };
    assert_eq!(
        token(&app, &new, None).await.0,
        StatusCode::UNAUTHORIZED,
        "no grace"
    );
    assert_eq!(
        token(&app, &client, None).await.0,
        StatusCode::UNAUTHORIZED,
        "two rotations ago"
    );
    assert_eq!(token(&app, &newest, None).await.0, StatusCode::OK);

    let r = app
        .gql(
            rotate,
            json!({"i": {"id": client.id, "gracePeriodSeconds": 9_999_999}}),
        )
        .await;
    assert_eq!(
        r.data("rotateApiClientSecret.userErrors"),
        &json!([{"field": ["gracePeriodSeconds"], "code": "INVALID"}])
    );
}

#[tokio::test]
async fn api_clients_are_managed_within_the_callers_scopes_and_tenant() {
    let app = TestApp::spawn().await;
    let client = create_client(&app, &["activities:read"]).await;
    let r = app
        .gql("{ apiClients { id name scopes revokedAt } }", json!({}))
        .await;
    r.assert_ok();
    assert_eq!(
        r.data("apiClients"),
        &json!([{"id": client.id, "name": "Billing sync", "scopes": ["activities:read"], "revokedAt": null}])
    );

    // No more than the creator holds, and only known scopes.
    let limited = app.token("clients:manage customers:read");
    for (scopes, message) in [
        (json!(["customers:write"]), "cannot grant"),
        (json!(["root"]), "unknown scope"),
        (json!([]), "at least one"),
    ] {
        let r = app
            .gql_as(Some(&limited), "mutation($s: [String!]!) { createApiClient(input: {name: \"x\", scopes: $s}) { clientSecret userErrors { field message } } }", json!({"s": scopes}))
            .await;
        r.assert_ok();
        assert_eq!(r.data("createApiClient.clientSecret"), &Value::Null);
        assert!(
            r.data("createApiClient.userErrors.0.message")
                .as_str()
                .unwrap_or_default()
                .contains(message),
            "{}",
            r.body
        );
    }
    // Without clients:manage, nothing.
    let reader = app.token("customers:read");
    let r = app
        .gql_as(Some(&reader), "{ apiClients { id } }", json!({}))
        .await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
    assert_eq!(r.data("apiClients"), &Value::Null);
    // Another tenant sees none of them and cannot revoke them.
    let other = app.token_for("org_other", "admin", crate::helpers::ALL_SCOPES);
    let r = app
        .gql_as(Some(&other), "{ apiClients { id } }", json!({}))
        .await;
    assert_eq!(r.data("apiClients"), &json!([]));
    let r = app
        .gql_as(
            Some(&other),
            "mutation($id: ID!) { revokeApiClient(input: {id: $id}) { apiClient { id } } }",
            json!({"id": client.id}),
        )
        .await;
    assert_eq!(r.error_codes(), ["NOT_FOUND"]);

    // Revoking the client ends its tokens and its sign-ins.
    let access = token(&app, &client, None).await.2["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let r = app
        .gql(
            "mutation($id: ID!) { revokeApiClient(input: {id: $id}) { apiClient { revokedAt } } }",
            json!({"id": client.id}),
        )
        .await;
    assert!(r.data("revokeApiClient.apiClient.revokedAt").is_string());
    assert_eq!(
        app.gql_as(Some(&access), "{ activities { totalCount } }", json!({}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(token(&app, &client, None).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn repeated_failures_are_throttled() {
    let app = TestApp::spawn().await;
    let client = create_client(&app, &["customers:read"]).await;
    let wrong = Client {
        id: client.id.clone(),
        secret: "cs_guess".to_owned(),
    };
    for _ in 0..5 {
        assert_eq!(token(&app, &wrong, None).await.0, StatusCode::UNAUTHORIZED);
    }
    // Now even the right secret waits: the guesser cannot tell when it hit.
    let (status, headers, body) = token(&app, &client, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(headers.contains_key("retry-after"));
}

#[tokio::test]
async fn a_failing_client_does_not_lock_out_others_behind_the_same_address() {
    let app = TestApp::spawn().await;
    let good = create_client(&app, &["customers:read"]).await;
    let bad = create_client(&app, &["customers:read"]).await;
    let guesser = Client {
        id: bad.id.clone(),
        secret: "cs_guess".to_owned(),
    };
    // Both clients call from 127.0.0.1, as clients behind one proxy would.
    for _ in 0..5 {
        assert_eq!(
            token(&app, &guesser, None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, headers, body) = token(&app, &guesser, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "slow_down");
    assert!(headers.contains_key("retry-after"));

    // Another client at the same address still gets its token, again and again.
    for _ in 0..3 {
        let (status, _, body) = token(&app, &good, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["access_token"].is_string(), "{body}");
    }

    // The failing client stays throttled, even with its right secret.
    let (status, headers, body) = token(&app, &bad, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let wait: u64 = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&wait), "{wait}");
}

#[tokio::test]
async fn two_authorization_headers_at_the_token_endpoint_are_refused() {
    let app = TestApp::spawn().await;
    let client = create_client(&app, &["customers:read"]).await;
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", client.id, client.secret))
    );
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", &basic)
        .header("authorization", "Basic b3RoZXI6c2VjcmV0")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("sent");
    let r = reply(res).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["error"], "invalid_request", "{}", r.body);
    assert!(r.body.get("access_token").is_none());
}

/// A revoked token's open sockets close (4403) within a few seconds: by revoking the token
/// itself, or its whole client, on any instance.
#[tokio::test]
async fn revocation_closes_open_websockets() {
    use crate::ws_client::{close_code, open, subscribe};
    let app = TestApp::spawn().await;
    let client = create_client(&app, &["customers:read"]).await;
    let other = create_client(&app, &["customers:read"]).await;
    let mut tokens = Vec::new();
    for c in [&client, &client, &other] {
        let body = token(&app, c, None).await.2;
        tokens.push(body["access_token"].as_str().expect("token").to_owned());
    }
    let [revoked, kept, of_other] = [&tokens[0], &tokens[1], &tokens[2]];
    let subscription = "subscription { customerChanged { op } }";
    let mut sockets = Vec::new();
    for token in [revoked, kept, of_other] {
        let mut socket = open(&app).await;
        subscribe(&mut socket, token, subscription).await;
        sockets.push(socket);
    }

    // One token revoked: its socket closes, the client's other token stays.
    let (status, _, _) = post_form(
        &app,
        "/oauth/revoke",
        Some((&client.id, &client.secret)),
        &[("token", revoked)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let started = std::time::Instant::now();
    assert_eq!(close_code(&mut sockets[0]).await, Some(4403));
    assert!(started.elapsed() < std::time::Duration::from_secs(6));

    // The client revoked: every socket of its tokens closes; another client's stays open.
    let r = app
        .gql(
            "mutation($id: ID!) { revokeApiClient(input: {id: $id}) { apiClient { id } } }",
            json!({"id": client.id}),
        )
        .await;
    r.assert_ok();
    assert_eq!(close_code(&mut sockets[1]).await, Some(4403));
    app.customer(json!({"name": "Still heard"})).await;
    let msg = crate::ws_client::recv(&mut sockets[2]).await;
    assert_eq!(msg["type"], "next", "{msg}");
}
