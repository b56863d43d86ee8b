//! Persisted documents and batching, as Apollo's `PersistedQueryLink` and `BatchHttpLink`,
//! and relay-style trusted documents, meet them.

use crm::config::TrustedDocuments;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Reply, TestApp, reply};

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn pq(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

async fn post(app: &TestApp, body: Value) -> Reply {
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .bearer_auth(app.admin())
        .body(body.to_string())
        .send()
        .await
        .expect("sent");
    reply(res).await
}

async fn get(app: &TestApp, params: &[(&str, String)]) -> Reply {
    let res = app
        .client
        .get(app.url("/graphql"))
        .query(params)
        .header("accept", "application/graphql-response+json")
        .bearer_auth(app.admin())
        .send()
        .await
        .expect("sent");
    reply(res).await
}

const COUNT: &str = "query Count { customers { totalCount } }";

#[tokio::test]
async fn apq_over_post_asks_for_the_text_then_runs_by_hash() {
    let app = TestApp::spawn().await;
    app.customer(json!({"name": "Ada"})).await;
    let hash = sha256(COUNT);

    // The link's first try: the hash alone, unknown yet. 200, so the link sends the text.
    let first = post(&app, json!({"extensions": pq(&hash)})).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.error_codes(), ["PERSISTED_QUERY_NOT_FOUND"]);
    assert_eq!(first.body["errors"][0]["message"], "PersistedQueryNotFound");

    // The text with its hash runs and is kept.
    let full = post(&app, json!({"query": COUNT, "extensions": pq(&hash)})).await;
    full.assert_ok();
    assert_eq!(full.data("customers.totalCount"), 1);

    // From now on the hash alone runs it, in upper case too.
    let by_hash = post(&app, json!({"extensions": pq(&hash.to_uppercase())})).await;
    by_hash.assert_ok();
    assert_eq!(by_hash.data("customers.totalCount"), 1);
    // The GraphQL-over-HTTP draft's `documentId` names the same document.
    let by_id = post(&app, json!({"documentId": format!("sha256:{hash}")})).await;
    by_id.assert_ok();
    assert_eq!(by_id.data("customers.totalCount"), 1);
}

#[tokio::test]
async fn apq_over_get_runs_by_hash_and_refuses_a_hash_that_does_not_match() {
    let app = TestApp::spawn().await;
    let hash = sha256(COUNT);
    let ext = |h: &str| pq(h).to_string();
    let miss = get(&app, &[("extensions", ext(&hash))]).await;
    assert_eq!(miss.error_codes(), ["PERSISTED_QUERY_NOT_FOUND"]);

    let stored = get(&app, &[("query", COUNT.into()), ("extensions", ext(&hash))]).await;
    stored.assert_ok();
    let by_hash = get(
        &app,
        &[
            ("operationName", "Count".into()),
            ("extensions", ext(&hash)),
        ],
    )
    .await;
    by_hash.assert_ok();
    assert_eq!(by_hash.data("customers.totalCount"), 0);

    // A hash that is not the text's: refused, and nothing is kept under it.
    let other = "{ __typename }";
    let wrong = sha256("{ customers { nodes { email } } }");
    let mismatch = post(&app, json!({"query": other, "extensions": pq(&wrong)})).await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    assert!(
        mismatch.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not match")),
        "{}",
        mismatch.body
    );
    let after = post(&app, json!({"extensions": pq(&wrong)})).await;
    assert_eq!(after.error_codes(), ["PERSISTED_QUERY_NOT_FOUND"]);

    // Malformed: a wrong version, a hash that is no hash.
    let version = post(
        &app,
        json!({"extensions": {"persistedQuery": {"version": 2, "sha256Hash": hash}}}),
    )
    .await;
    assert_eq!(version.status, StatusCode::BAD_REQUEST);
    let junk = post(&app, json!({"extensions": pq(&"\u{0}".repeat(100))})).await;
    assert_eq!(junk.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn documents_are_kept_only_when_they_run_and_only_for_callers_with_a_token() {
    let app = TestApp::spawn().await;
    // A document that does not validate is not kept.
    let broken = "{ customers { nope } }";
    let r = post(
        &app,
        json!({"query": broken, "extensions": pq(&sha256(broken))}),
    )
    .await;
    assert!(r.body["errors"].is_array());
    let r = post(&app, json!({"extensions": pq(&sha256(broken))})).await;
    assert_eq!(r.error_codes(), ["PERSISTED_QUERY_NOT_FOUND"]);

    // An anonymous caller's document runs but is not kept.
    let anon = "{ __typename }";
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(json!({"query": anon, "extensions": pq(&sha256(anon))}).to_string())
        .send()
        .await
        .expect("sent");
    reply(res).await.assert_ok();
    let r = post(&app, json!({"extensions": pq(&sha256(anon))})).await;
    assert_eq!(r.error_codes(), ["PERSISTED_QUERY_NOT_FOUND"]);

    // A document over 32 KiB runs but is not kept.
    let large = format!("{{ __typename }}\n# {}", "x".repeat(40 * 1024));
    post(
        &app,
        json!({"query": large, "extensions": pq(&sha256(&large))}),
    )
    .await
    .assert_ok();
    let r = post(&app, json!({"extensions": pq(&sha256(&large))})).await;
    assert_eq!(r.error_codes(), ["PERSISTED_QUERY_NOT_FOUND"]);
}

/// `crm documents add` as an operator runs it, against the server's database.
fn add_documents(app: &TestApp, files: &[&std::path::Path]) -> (bool, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_crm"));
    command
        .arg("documents")
        .arg("add")
        .args(files)
        .args(["--database-url", &app.db_url]);
    let out = command.output().expect("crm runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn trusted_only_runs_the_documents_an_operator_added_and_nothing_else() {
    let app = TestApp::spawn_with(|c| c.edge.trusted_documents = TrustedDocuments::Only).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("count.graphql");
    std::fs::write(&file, COUNT).expect("write");
    let manifest = dir.path().join("manifest.json");
    std::fs::write(
        &manifest,
        json!({
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [{"id": "viewer-v1", "name": "Me", "type": "query", "body": "query Me { viewer { subject } }"}]
        })
        .to_string(),
    )
    .expect("write");

    // Before: nothing runs, neither in full nor by hash, nor can a client register.
    let before = post(&app, json!({"query": COUNT})).await;
    assert_eq!(before.status, StatusCode::BAD_REQUEST);
    assert_eq!(before.error_codes(), ["PERSISTED_QUERY_NOT_IN_LIST"]);
    let register = post(
        &app,
        json!({"query": COUNT, "extensions": pq(&sha256(COUNT))}),
    )
    .await;
    assert_eq!(register.error_codes(), ["PERSISTED_QUERY_NOT_IN_LIST"]);

    let (ok, out, err) = add_documents(&app, &[&file, &manifest]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&sha256(COUNT)) && out.contains("viewer-v1"),
        "{out}"
    );

    // After: the trusted ones run, by hash, by manifest id, or in full.
    post(&app, json!({"extensions": pq(&sha256(COUNT))}))
        .await
        .assert_ok();
    post(&app, json!({"query": COUNT})).await.assert_ok();
    let me = post(&app, json!({"documentId": "viewer-v1"})).await;
    me.assert_ok();
    assert_eq!(me.data("viewer.subject"), "user-1");
    // Anything else is still refused: another text, another id, a tweak of a trusted one.
    for body in [
        json!({"query": "{ customers { nodes { name } } }"}),
        json!({"query": format!("{COUNT} ")}),
        json!({"documentId": "viewer-v2"}),
        json!({"query": "{ __typename }", "documentId": "viewer-v1"}),
    ] {
        let r = post(&app, body.clone()).await;
        assert_eq!(r.error_codes(), ["PERSISTED_QUERY_NOT_IN_LIST"], "{body}");
        assert_eq!(r.body.get("data"), None, "{body}");
    }
}

#[test]
fn documents_add_refuses_files_that_are_not_graphql_naming_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.graphql");
    std::fs::write(&bad, "{ customers { ").expect("write");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("crm.db").display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["documents", "add"])
        .arg(&bad)
        .args(["--database-url", &url])
        .output()
        .expect("crm runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.graphql") && err.contains("not valid GraphQL"),
        "{err}"
    );
}

#[tokio::test]
async fn batches_answer_each_operation_in_order_up_to_the_cap() {
    let app = TestApp::spawn_with(|c| c.edge.max_batch = 3).await;
    app.customer(json!({"name": "Ada"})).await;
    let batch = post(
        &app,
        json!([
            {"query": COUNT},
            {"query": "mutation($n: String!) { createCustomer(input: {name: $n}) { customer { name } } }", "variables": {"n": "Grace"}},
            {"query": "{ customers { nope } }"},
        ]),
    )
    .await;
    assert_eq!(batch.status, StatusCode::OK, "{}", batch.body);
    let items = batch.body.as_array().expect("an array");
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["data"]["customers"]["totalCount"], 1);
    assert_eq!(
        items[1]["data"]["createCustomer"]["customer"]["name"],
        "Grace"
    );
    assert!(items[2]["errors"].is_array() && items[2].get("data").is_none());
    let count = app.gql(COUNT, json!({})).await;
    assert_eq!(count.data("customers.totalCount"), 2);

    // One operation refused at the edge (no document) takes its own place.
    let mixed = post(&app, json!([{"query": COUNT}, {"variables": {}}])).await;
    let items = mixed.body.as_array().expect("an array");
    assert_eq!(items[0]["data"]["customers"]["totalCount"], 2);
    assert_eq!(items[1]["errors"][0]["extensions"]["code"], "BAD_REQUEST");

    // Over the cap: refused whole, nothing runs.
    let four: Vec<Value> = (0..4)
        .map(|i| json!({"query": format!("mutation {{ createCustomer(input: {{name: \"N{i}\"}}) {{ customer {{ id }} }} }}")}))
        .collect();
    let refused = post(&app, Value::Array(four)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error_codes(), ["BATCH_TOO_LARGE"]);
    assert_eq!(
        app.gql(COUNT, json!({})).await.data("customers.totalCount"),
        2
    );
    let empty = post(&app, json!([])).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn batching_off_refuses_arrays() {
    let app = TestApp::spawn_with(|c| c.edge.max_batch = 0).await;
    let r = post(&app, json!([{"query": COUNT}])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("batching is off"))
    );
}

#[tokio::test]
async fn websocket_operations_run_persisted_documents_by_hash() {
    let app = TestApp::spawn().await;
    let me = "query Me { viewer { subject } }";
    let hash = sha256(me);
    let mut socket = crate::ws_client::open(&app).await;
    crate::ws_client::init(&mut socket, &app.admin()).await;
    let by_hash = json!({"type": "subscribe", "payload": {"extensions": pq(&hash)}});
    let mut first = by_hash.clone();
    first["id"] = json!("1");
    crate::ws_client::send(&mut socket, first).await;
    let refused = crate::ws_client::recv(&mut socket).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "1");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    // Kept over HTTP (WebSocket operations run documents, they do not register them).
    post(&app, json!({"query": me, "extensions": pq(&hash)}))
        .await
        .assert_ok();
    let mut second = by_hash;
    second["id"] = json!("2");
    crate::ws_client::send(&mut socket, second).await;
    let next = crate::ws_client::recv(&mut socket).await;
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(next["id"], "2");
    assert_eq!(next["payload"]["data"]["viewer"]["subject"], "user-1");
}

#[tokio::test]
async fn a_document_a_tenant_registered_runs_by_hash_for_that_tenant_only() {
    let app = TestApp::spawn().await;
    let hash = sha256(COUNT);
    post(&app, json!({"query": COUNT, "extensions": pq(&hash)}))
        .await
        .assert_ok();
    post(&app, json!({"extensions": pq(&hash)}))
        .await
        .assert_ok();
    // Another tenant, or no tenant, learns nothing of it: not found, as if never sent.
    let other = app.token_for("another-org", "user-1", crate::helpers::ALL_SCOPES);
    for token in [Some(other.as_str()), None] {
        let mut req = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(json!({"extensions": pq(&hash), "operationName": "X"}).to_string());
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let r = reply(req.send().await.expect("sent")).await;
        assert_eq!(r.error_codes(), ["PERSISTED_QUERY_NOT_FOUND"], "{}", r.body);
    }
}

/// An operator trusts a document a client had registered, while a server in trusted-only
/// mode runs on the same database: it runs at once.
#[tokio::test]
async fn documents_added_while_a_server_runs_are_trusted_at_once() {
    let open = TestApp::spawn().await;
    let later = "query Later { __typename }";
    let hash = sha256(later);
    post(&open, json!({"query": later, "extensions": pq(&hash)}))
        .await
        .assert_ok();
    let strict = TestApp::spawn_with(|c| {
        c.db.url = open.db_url.clone();
        c.edge.trusted_documents = TrustedDocuments::Only;
    })
    .await;
    let before = post(&strict, json!({"extensions": pq(&hash)})).await;
    assert_eq!(before.error_codes(), ["PERSISTED_QUERY_NOT_IN_LIST"]);

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("later.graphql");
    std::fs::write(&file, later).expect("write");
    let (ok, _, err) = add_documents(&strict, &[&file]);
    assert!(ok, "{err}");
    post(&strict, json!({"extensions": pq(&hash)}))
        .await
        .assert_ok();
    post(&strict, json!({"query": later})).await.assert_ok();
}

#[tokio::test]
async fn huge_batches_are_refused_before_they_are_built_and_after_the_token() {
    let app = TestApp::spawn_with(|c| c.edge.max_batch = 3).await;
    let huge = format!("[{}{{}}]", "{},".repeat(80_000));
    let send = |token: &str| {
        app.client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .bearer_auth(token)
            .body(huge.clone())
            .send()
    };
    let bad_token = send("garbage").await.expect("sent");
    assert_eq!(bad_token.status(), StatusCode::UNAUTHORIZED);
    let refused = reply(send(&app.admin()).await.expect("sent")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error_codes(), ["BATCH_TOO_LARGE"]);
}

#[tokio::test]
async fn operation_names_are_bounded() {
    let app = TestApp::spawn().await;
    let r = post(
        &app,
        json!({"query": "{ __typename }", "operationName": "A".repeat(10_000)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let text = r.body.to_string();
    assert!(
        text.len() < 1_000,
        "the name is not echoed: {} bytes",
        text.len()
    );
}
