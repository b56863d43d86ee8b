//! Token attacks: each forged, stale or malformed token is refused with 401, and keys from
//! PEM files and JWKS (with rotation) verify what they should and nothing else.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{AUDIENCE, ISSUER, SECRET, TestApp, reply};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture key")
}

fn claims(org: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": "attacker", "org": org, "scope": "customers:read", "exp": now + 300, "iat": now, "iss": ISSUER, "aud": AUDIENCE})
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).expect("sign")
}

fn hs(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        claims,
    )
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

async fn status_of(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .bearer_auth(token)
        .body(r#"{"query":"{ viewer { subject org } }"}"#)
        .send()
        .await
        .expect("sent");
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let r = reply(res).await;
    if r.status == StatusCode::UNAUTHORIZED {
        let challenge = challenge.expect("a 401 carries WWW-Authenticate");
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{challenge}"
        );
    }
    (r.status, r.body)
}

async fn with_pem_keys() -> TestApp {
    TestApp::spawn_with(|c| {
        c.auth.public_key_files = vec![
            fixture("rsa-test.pem"),
            fixture("ec-test.pem"),
            fixture("ed-test.pem"),
        ];
        c.auth.leeway_secs = 5;
    })
    .await
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_refused() {
    let app = with_pem_keys().await;
    let now = chrono::Utc::now().timestamp();
    let good = claims(&app.org);
    let mut cases: Vec<(&str, String)> = Vec::new();

    // alg: none, with and without a signature part.
    let none_header = json!({"alg": "none", "typ": "JWT"});
    cases.push(("alg none", format!("{}.{}.", b64(&none_header), b64(&good))));
    cases.push((
        "alg none, no signature",
        format!("{}.{}", b64(&none_header), b64(&good)),
    ));
    // HS256 signed with the RSA public key as the HMAC secret (key confusion).
    cases.push((
        "HS256 with the RSA public key",
        sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(&pem("rsa-test.pem")),
            &good,
        ),
    ));
    cases.push((
        "HS256 with the RSA public key, RSA kid",
        sign(
            Algorithm::HS256,
            Some("rsa-test"),
            &EncodingKey::from_secret(&pem("rsa-test.pem")),
            &good,
        ),
    ));
    // RS256 claiming the EC key's kid.
    let rsa = EncodingKey::from_rsa_pem(&pem("rsa-test.key")).expect("rsa key");
    cases.push((
        "RS256 under the EC kid",
        sign(Algorithm::RS256, Some("ec-test"), &rsa, &good),
    ));
    cases.push((
        "unknown kid",
        sign(Algorithm::RS256, Some("who-knows"), &rsa, &good),
    ));
    let mut with_jku = Header::new(Algorithm::RS256);
    with_jku.kid = Some("attacker-key".into());
    with_jku.jku = Some("https://attacker.example/jwks.json".into());
    cases.push((
        "jku pointing elsewhere",
        encode(&with_jku, &good, &rsa).expect("sign"),
    ));

    let mut c = good.clone();
    c["exp"] = json!(now - 60);
    cases.push(("expired", hs(&c)));
    let mut c = good.clone();
    c["nbf"] = json!(now + 600);
    cases.push(("not yet valid", hs(&c)));
    let mut c = good.clone();
    c["iss"] = json!("someone-else");
    cases.push(("wrong issuer", hs(&c)));
    let mut c = good.clone();
    c["aud"] = json!("another-api");
    cases.push(("wrong audience", hs(&c)));
    for claim in ["org", "sub", "exp", "iss", "aud"] {
        let mut c = good.clone();
        c.as_object_mut().expect("object").remove(claim);
        cases.push((
            Box::leak(format!("missing {claim}").into_boxed_str()),
            hs(&c),
        ));
    }
    let mut c = good.clone();
    c["org"] = json!("");
    cases.push(("empty org", hs(&c)));
    let mut c = good.clone();
    c["exp"] = json!((now + 300).to_string());
    cases.push(("string-typed exp", hs(&c)));
    let mut c = good.clone();
    c["nbf"] = json!("yesterday");
    cases.push(("string-typed nbf", hs(&c)));

    // A valid token whose payload is swapped for another org's.
    let valid = hs(&good);
    let parts: Vec<&str> = valid.split('.').collect();
    let mut forged = good.clone();
    forged["org"] = json!("org_victim");
    cases.push((
        "tampered payload",
        format!("{}.{}.{}", parts[0], b64(&forged), parts[2]),
    ));
    cases.push((
        "truncated signature",
        format!("{}.{}.{}", parts[0], parts[1], &parts[2][..10]),
    ));

    for (what, token) in &cases {
        let (status, body) = status_of(&app, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{what}"
        );
        assert!(body.get("data").is_none(), "{what}");
    }
    println!("{} attack tokens refused", cases.len());

    // The control: the same claims, properly signed, are accepted.
    let (status, body) = status_of(&app, &valid).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["viewer"]["org"], json!(app.org));
}

#[tokio::test]
async fn public_keys_from_pem_files_verify_their_own_algorithm() {
    let app = with_pem_keys().await;
    let good = claims(&app.org);
    for (alg, kid, key) in [
        (
            Algorithm::RS256,
            "rsa-test",
            EncodingKey::from_rsa_pem(&pem("rsa-test.key")).expect("key"),
        ),
        (
            Algorithm::ES256,
            "ec-test",
            EncodingKey::from_ec_pem(&pem("ec-test.key")).expect("key"),
        ),
        (
            Algorithm::EdDSA,
            "ed-test",
            EncodingKey::from_ed_pem(&pem("ed-test.key")).expect("key"),
        ),
    ] {
        let (status, body) = status_of(&app, &sign(alg, Some(kid), &key, &good)).await;
        assert_eq!(status, StatusCode::OK, "{alg:?}: {body}");
        assert_eq!(body["data"]["viewer"]["subject"], "attacker");
    }
    // Leeway is bounded: a token expired by less than the leeway passes, by more does not.
    let now = chrono::Utc::now().timestamp();
    let mut c = good.clone();
    c["exp"] = json!(now - 2);
    assert_eq!(status_of(&app, &hs(&c)).await.0, StatusCode::OK);
    c["exp"] = json!(now - 30);
    assert_eq!(status_of(&app, &hs(&c)).await.0, StatusCode::UNAUTHORIZED);
}

/// A JWKS endpoint whose document the test can change, on a free port.
async fn jwks_server(doc: Arc<Mutex<Value>>) -> String {
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc.lock().expect("lock").clone()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/jwks.json")
}

fn jwk(kid: &str, key_file: &str, alg: Algorithm) -> Jwk {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem(key_file)),
        _ => EncodingKey::from_ec_pem(&pem(key_file)),
    }
    .expect("key");
    let mut jwk = Jwk::from_encoding_key(&key, alg).expect("jwk");
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

#[tokio::test]
async fn jwks_keys_verify_and_rotate_without_lookups_on_unknown_kids() {
    let doc = Arc::new(Mutex::new(
        serde_json::to_value(JwkSet {
            keys: vec![jwk("2026-a", "rsa-test.key", Algorithm::RS256)],
        })
        .expect("json"),
    ));
    let url = jwks_server(doc.clone()).await;
    let app = TestApp::spawn_with(|c| {
        c.auth.jwks_url = Some(url);
        c.auth.jwks_refresh_secs = 1;
    })
    .await;
    let good = claims(&app.org);
    let rsa = EncodingKey::from_rsa_pem(&pem("rsa-test.key")).expect("key");
    let ec = EncodingKey::from_ec_pem(&pem("ec-test.key")).expect("key");
    assert_eq!(
        status_of(&app, &sign(Algorithm::RS256, Some("2026-a"), &rsa, &good))
            .await
            .0,
        StatusCode::OK
    );
    // The provider rotates: a new key appears under a new kid. Until the next refresh it is
    // unknown and refused; afterwards it verifies, and the retired kid no longer does.
    let rotated = sign(Algorithm::ES256, Some("2026-b"), &ec, &good);
    assert_eq!(status_of(&app, &rotated).await.0, StatusCode::UNAUTHORIZED);
    *doc.lock().expect("lock") = serde_json::to_value(JwkSet {
        keys: vec![jwk("2026-b", "ec-test.key", Algorithm::ES256)],
    })
    .expect("json");
    let mut accepted = false;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if status_of(&app, &rotated).await.0 == StatusCode::OK {
            accepted = true;
            break;
        }
    }
    assert!(accepted, "the rotated key was picked up");
    assert_eq!(
        status_of(&app, &sign(Algorithm::RS256, Some("2026-a"), &rsa, &good))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

/// An HS256 token, properly signed, over a header given as raw JSON.
fn hs_with_header(header: &Value, claims: &Value) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::HS256,
    )
    .expect("sign");
    format!("{message}.{signature}")
}

#[tokio::test]
async fn tokens_with_critical_header_parameters_are_refused() {
    let app = TestApp::spawn().await;
    let good = claims(&app.org);

    // The control: the same header without `crit`, signed the same way, is accepted.
    let plain = json!({"alg": "HS256", "typ": "JWT"});
    let (status, body) = status_of(&app, &hs_with_header(&plain, &good)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // RFC 7515 §4.1.11: extensions the service does not understand make the token invalid,
    // and it understands none, so any `crit` is refused (an empty or malformed one too).
    for header in [
        json!({"alg": "HS256", "typ": "JWT", "crit": ["exp"]}),
        json!({"alg": "HS256", "crit": ["urn:example:must-check"], "urn:example:must-check": true}),
        json!({"alg": "HS256", "b64": false, "crit": ["b64"]}),
        json!({"alg": "HS256", "crit": []}),
        json!({"alg": "HS256", "crit": null}),
    ] {
        // `status_of` also checks the `WWW-Authenticate: Bearer error="invalid_token"`.
        let (status, body) = status_of(&app, &hs_with_header(&header, &good)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{header}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{header}"
        );
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("critical")),
            "{header}: {body}"
        );
        assert!(body.get("data").is_none(), "{header}");
    }
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let app = TestApp::spawn().await;
    let token = app.admin();
    let post = |values: &[String]| {
        let mut req = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(r#"{"query":"{ viewer { subject org } }"}"#);
        for value in values {
            // `header` appends: each value is a header line of its own.
            req = req.header("authorization", value);
        }
        req.send()
    };

    // The control: one header is accepted.
    let r = reply(post(&[format!("Bearer {token}")]).await.expect("sent")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    for values in [
        vec![format!("Bearer {token}"), format!("Bearer {token}")],
        vec![
            format!("Bearer {token}"),
            "Bearer forged.token.here".to_owned(),
        ],
        vec![
            "Bearer forged.token.here".to_owned(),
            format!("Bearer {token}"),
        ],
        vec![format!("Bearer {token}"), "Basic dXNlcjpwYXNz".to_owned()],
    ] {
        let r = reply(post(&values).await.expect("sent")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{values:?}: {}", r.body);
        assert!(r.body.get("data").is_none(), "{}", r.body);
        let message = r.body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("Authorization"), "{message}");
    }

    // The WebSocket upgrade is refused the same way, before any upgrade.
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .expect("request");
    let headers = request.headers_mut();
    headers.insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    for value in [
        format!("Bearer {token}"),
        "Bearer forged.token.here".to_owned(),
    ] {
        headers.append("authorization", value.parse().expect("header"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Err(WsError::Http(res)) => assert_eq!(res.status(), StatusCode::BAD_REQUEST.as_u16()),
        Err(other) => panic!("refused without an HTTP answer: {other}"),
        Ok(_) => panic!("two Authorization headers upgraded"),
    }
}
