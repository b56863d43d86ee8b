//! GraphQL-over-HTTP conformance: content negotiation, status codes, GET rules, body
//! limits, and bearer-token refusals.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, reply};

const Q: &str = r#"{"query":"{ __typename }"}"#;

#[tokio::test]
async fn negotiates_the_response_media_type() {
    let app = TestApp::spawn().await;
    let post = |accept: Option<&'static str>| {
        let mut req = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(Q);
        if let Some(accept) = accept {
            req = req.header("accept", accept);
        }
        req.send()
    };
    for (accept, expected) in [
        (
            Some("application/graphql-response+json"),
            "application/graphql-response+json",
        ),
        (Some("application/json"), "application/json"),
        (
            Some("application/json, application/graphql-response+json"),
            "application/graphql-response+json",
        ),
        (Some("*/*"), "application/graphql-response+json"),
        (None, "application/graphql-response+json"),
    ] {
        let res = post(accept).await.expect("sent");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()["content-type"],
            expected,
            "Accept: {accept:?}"
        );
        let r = reply(res).await;
        assert_eq!(r.body, json!({"data": {"__typename": "Query"}}));
    }
    let res = post(Some("text/plain")).await.expect("sent");
    assert_eq!(res.status(), StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn request_errors_get_400_and_no_data_key_under_graphql_response_json() {
    let app = TestApp::spawn().await;
    for (query, code) in [
        ("{ customers( }", "GRAPHQL_PARSE_FAILED"),
        ("{ customer(", "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }", "GRAPHQL_VALIDATION_FAILED"),
        (
            "query($n: Int!) { __typename }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ] {
        let r = app.gql_as(None, query, json!({})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.body);
        assert!(r.body.get("data").is_none(), "{query}: {}", r.body);
        assert_eq!(r.error_codes(), [code], "{query}: {}", r.body);
    }
    // The legacy format answers 200, still without `data`.
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(r#"{"query":"{ noSuchField }"}"#)
        .send()
        .await
        .expect("sent");
    let r = reply(res).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.get("data").is_none());
}

#[tokio::test]
async fn malformed_requests_get_400_before_any_resolver_runs() {
    let app = TestApp::spawn().await;
    for body in [
        "not json",
        r#"{"query": 5}"#,
        r#"{"variables": {}}"#,
        r#"{"query":"{ __typename }","variables":[1]}"#,
    ] {
        let res = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{body}");
    }
}

#[tokio::test]
async fn bodies_that_are_not_json_get_415_and_change_nothing() {
    let app = TestApp::spawn().await;
    let mutation =
        r#"{"query":"mutation { createCustomer(input: {name: \"Sneaky\"}) { customer { id } } }"}"#;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let res = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", content_type)
            .bearer_auth(app.admin())
            .body(mutation)
            .send()
            .await
            .expect("sent");
        assert_eq!(
            res.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
    }
    let r = app.gql("{ customers { totalCount } }", json!({})).await;
    assert_eq!(r.data("customers.totalCount"), 0);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let app = TestApp::spawn().await;
    let big = format!(
        r#"{{"query":"{{ __typename }}","variables":{{"pad":"{}"}}}}"#,
        "x".repeat(300 * 1024)
    );
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn get_runs_queries_but_refuses_mutations_with_405() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[
            ("query", "query Who { viewer { org } }"),
            ("operationName", "Who"),
        ])
        .bearer_auth(app.admin())
        .header("accept", "application/json")
        .send()
        .await
        .expect("sent");
    let r = reply(res).await;
    r.assert_ok();
    assert_eq!(r.data("viewer.org"), &json!(app.org));

    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[(
            "query",
            "mutation { createCustomer(input: {name: \"Via GET\"}) { customer { id } } }",
        )])
        .bearer_auth(app.admin())
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["allow"], "POST");
    let r = app.gql("{ customers { totalCount } }", json!({})).await;
    assert_eq!(
        r.data("customers.totalCount"),
        0,
        "the mutation must not have run"
    );

    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ __typename }"), ("variables", "{not json")])
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn browsers_get_graphiql_wired_to_the_endpoint() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/graphql"))
        .header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html")
    );
    let html = res.text().await.expect("html");
    assert!(html.contains("graphiql"), "not GraphiQL");
    assert!(
        html.contains(&format!("ws://{}/graphql", app.addr)),
        "no subscription endpoint"
    );
}

#[tokio::test]
async fn bad_tokens_get_401_with_a_bearer_challenge() {
    let app = TestApp::spawn().await;
    let expired = crm::auth::TokenIssuer::hs256(
        crate::helpers::SECRET.as_bytes(),
        crate::helpers::ISSUER,
        crate::helpers::AUDIENCE,
    )
    .mint(
        "u",
        &app.org,
        "customers:read",
        chrono::Duration::seconds(-120),
    )
    .expect("mint");
    let wrong_key = crm::auth::TokenIssuer::hs256(
        b"another-secret-another-secret-another",
        crate::helpers::ISSUER,
        crate::helpers::AUDIENCE,
    )
    .mint(
        "u",
        &app.org,
        "customers:read",
        chrono::Duration::minutes(5),
    )
    .expect("mint");
    let wrong_audience = crm::auth::TokenIssuer::hs256(
        crate::helpers::SECRET.as_bytes(),
        crate::helpers::ISSUER,
        "someone-else",
    )
    .mint(
        "u",
        &app.org,
        "customers:read",
        chrono::Duration::minutes(5),
    )
    .expect("mint");
    for (what, header) in [
        ("expired", format!("Bearer {expired}")),
        ("wrong key", format!("Bearer {wrong_key}")),
        ("wrong audience", format!("Bearer {wrong_audience}")),
        ("garbage", "Bearer not.a.jwt".to_owned()),
        ("basic scheme", "Basic dXNlcjpwYXNz".to_owned()),
    ] {
        let res = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .header("authorization", header)
            .body(r#"{"query":"{ customers { totalCount } }"}"#)
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
        let challenge = res.headers()["www-authenticate"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{what}: {challenge}"
        );
        let r = reply(res).await;
        assert_eq!(r.error_codes(), ["UNAUTHENTICATED"], "{what}");
    }
}

#[tokio::test]
async fn anonymous_callers_see_only_typename_and_introspection() {
    let app = TestApp::spawn().await;
    let r = app
        .gql_as(
            None,
            "{ __typename __schema { queryType { name } } }",
            json!({}),
        )
        .await;
    r.assert_ok();
    let r = app
        .gql_as(None, "{ customers { totalCount } }", json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.error_codes(), ["UNAUTHENTICATED"]);
    let r = app
        .gql_as(
            None,
            "mutation { createCustomer(input: {name: \"X\"}) { customer { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(r.error_codes(), ["UNAUTHENTICATED"]);
    assert_eq!(r.data("createCustomer"), &serde_json::Value::Null);
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/readyz"] {
        let res = app.client.get(app.url(path)).send().await.expect("sent");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    assert!(app.statements().await > 0);
}

#[tokio::test]
async fn hostile_queries_are_refused_by_depth_and_complexity_limits() {
    let app = TestApp::spawn().await;
    let deep = "{ customers { nodes { activities { nodes { customer { activities { nodes { customer { activities { nodes { customer { name } } } } } } } } } } } }";
    let r = app.gql(deep, json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let wide = "{ customers(first: 100) { nodes { activities(first: 100) { nodes { customer { activities(first: 100) { nodes { id } } } } } } } }";
    let r = app.gql(wide, json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

/// Strips ANSI colour sequences from log text.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test]
async fn client_text_cannot_forge_log_lines() {
    use std::io::{BufRead, BufReader, Read};
    // The real binary, so that what is checked is what an operator's log receives.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_crm"))
        .arg("serve")
        .current_dir(dir.path())
        .env("CRM_LISTEN", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("crm.db").display()),
        )
        .env("CRM_JWT_SECRET", crate::helpers::SECRET)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("crm serve starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut head = String::new();
    let base = loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).expect("read") == 0 {
            let _ = child.kill();
            panic!("the server stopped before listening:\n{head}");
        }
        let line = plain(&line);
        head.push_str(&line);
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().trim_end_matches("/graphql").to_owned();
        }
    };
    let client = reqwest::Client::new();
    let forged = "Evil\n2030-01-01T00:00:00.000000Z  INFO crm: forged line: admin signed in";

    // An operation name, logged with every GraphQL request (whether or not the document
    // has an operation of that name: this one does not).
    client
        .post(format!("{base}/graphql"))
        .json(&json!({"query": "query Ok { __typename }", "operationName": forged}))
        .send()
        .await
        .expect("sent");
    // A client id, logged when a client fails to authenticate.
    let res = client
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", forged),
            ("client_secret", "cs_guess"),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let _ = child.kill();
    let _ = child.wait();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("read");
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        stderr.read_to_string(&mut err).expect("read");
    }
    let text = plain(&format!("{head}{rest}{err}"));
    for logged in ["graphql executed", "client authentication failed"] {
        let line = text
            .lines()
            .find(|l| l.contains(logged))
            .unwrap_or_else(|| panic!("no `{logged}` line in:\n{text}"));
        // The caller's text is on the line, escaped.
        assert!(line.contains(r"Evil\n2030-01-01"), "{line}");
    }
    // And nowhere does it start a line of its own.
    assert!(
        text.lines()
            .all(|l| !l.contains("forged line") || l.contains("Evil")),
        "{text}"
    );
}

/// The response to `query` as `scopes`, as the text the server sent (its key order, which
/// a parsed JSON value would not keep).
async fn response_text(app: &TestApp, scopes: &str, query: &str) -> String {
    app.client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .bearer_auth(app.token(scopes))
        .body(json!({ "query": query }).to_string())
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body")
}

/// Response keys follow the query's order (GraphQL spec §7.2.2), not the alphabet.
#[tokio::test]
async fn response_keys_follow_the_query() {
    let app = TestApp::spawn().await;
    app.customer(json!({"name": "Ordered"})).await;
    let text = response_text(
        &app,
        "customers:read",
        "{ zulu: __typename customers(first: 1) { totalCount nodes { name id } } alpha: __typename viewer { subject org } }",
    )
    .await;
    let at = |key: &str| text.find(key).unwrap_or_else(|| panic!("{key} in {text}"));
    assert!(
        at("zulu") < at("alpha") && at("alpha") < at("viewer"),
        "{text}"
    );
    assert!(at("subject") < at("\"org\""), "{text}");
}

/// A field nulled by its error keeps its place among its siblings, at the top level and
/// inside objects, whether the error is a refused scope or a bad argument.
#[tokio::test]
async fn a_field_nulled_by_its_error_keeps_its_place() {
    let app = TestApp::spawn().await;
    let id = app
        .customer(json!({"name": "Ordered", "email": "o@example.com"}))
        .await;
    let cases = [
        // Without `pii:read`, `email` is refused.
        (
            "customers:read activities:read",
            format!(
                r#"{{ customer(id: "{id}") {{ email name activities(first: 1, after: "garbage") {{ totalCount }} company }} }}"#
            ),
            vec!["\"email\"", "\"name\"", "\"activities\"", "\"company\""],
        ),
        (
            "activities:read",
            r#"{ customers(first: 1) { totalCount } viewer { subject } }"#.to_owned(),
            vec!["\"customers\"", "\"viewer\""],
        ),
    ];
    for (scopes, query, keys) in cases {
        let text = response_text(&app, scopes, &query).await;
        assert!(text.contains("\"errors\""), "{text}");
        let data = text.find("\"data\"").expect("data");
        let at = |key: &str| {
            text[data..]
                .find(key)
                .unwrap_or_else(|| panic!("{key} in {text}"))
        };
        assert!(
            keys.windows(2).all(|pair| at(pair[0]) < at(pair[1])),
            "{keys:?} out of order in {text}"
        );
    }
}

/// A document is validated in full once; later requests with it must still be refused for
/// what depends on the request (variables of the wrong type or missing, selections that a
/// `@skip` on a variable hid from the first validation), as a document never seen before is.
#[tokio::test]
async fn a_document_seen_before_is_refused_as_a_new_one_would_be() {
    let app = TestApp::spawn().await;
    let id = app.customer(json!({"name": "Ada"})).await;
    let point = "query($id: ID!, $n: Int) { customer(id: $id) { name activities(first: $n) { nodes { subject } } } }";
    for _ in 0..2 {
        let r = app.gql(point, json!({"id": id, "n": 2})).await;
        assert_eq!(r.data("customer.name"), "Ada", "{}", r.body);
    }
    for (i, variables) in [
        json!({}),
        json!({"id": null}),
        json!({"id": {"a": 1}}),
        json!({"id": 5}),
        json!({"id": id, "n": "five"}),
        json!({"id": id, "n": 1.5}),
        json!({"id": id, "n": 3_000_000_000_u64}),
    ]
    .into_iter()
    .enumerate()
    {
        // The same document under another text is new to the server.
        let new = app.gql(&format!("{point} # {i}"), variables.clone()).await;
        let seen = app.gql(point, variables.clone()).await;
        assert_eq!(seen.status, new.status, "{variables}: {}", seen.body);
        assert_eq!(seen.body, new.body, "{variables}");
    }
    let refused = app.gql(point, json!({"id": {"a": 1}})).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.error_codes(), ["GRAPHQL_VALIDATION_FAILED"]);
    // And the document is still answered after those refusals.
    let r = app.gql(point, json!({"id": id, "n": 3})).await;
    assert_eq!(r.data("customer.name"), "Ada", "{}", r.body);

    // A variable with a default may stand where null may not; a null given for it is
    // refused, however often the document has been seen.
    let defaulted = "query($ok: Boolean = true) { viewer { subject @include(if: $ok) org } }";
    for _ in 0..2 {
        let r = app.gql(defaulted, json!({"ok": false})).await;
        r.assert_ok();
    }
    let new = app
        .gql(&format!("{defaulted} # new"), json!({"ok": null}))
        .await;
    let seen = app.gql(defaulted, json!({"ok": null})).await;
    assert_eq!(seen.status, StatusCode::BAD_REQUEST, "{}", seen.body);
    assert_eq!(seen.body, new.body);

    // A selection left out by `@skip` is validated all the same, whatever the variable.
    let hidden =
        "query($s: Boolean!) { __typename customer(id: \"x\") @skip(if: $s) { noSuchField } }";
    for s in [true, true, false] {
        let r = app.gql(hidden, json!({ "s": s })).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_eq!(r.error_codes(), ["GRAPHQL_VALIDATION_FAILED"], "{}", r.body);
    }
}
