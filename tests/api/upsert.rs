//! `upsertCustomers`: bulk create-or-update by external id, one transaction, a result per
//! item, events only for what changed; and the `Idempotency-Key` header that makes a
//! retried mutation answer what it answered the first time.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ALL_SCOPES, TestApp, assert_no_leak};

const UPSERT: &str = "mutation($input: UpsertCustomersInput!) { upsertCustomers(input: $input) { results { externalId status customer { id name email company tags lifecycleStage version owner { subject } externalIds { source externalId } } userErrors { field message code } } userErrors { field message code } } }";

async fn upsert_as(app: &TestApp, token: &str, source: &str, items: Value) -> Value {
    let r = app
        .gql_as(
            Some(token),
            UPSERT,
            json!({"input": {"source": source, "items": items}}),
        )
        .await;
    r.assert_ok();
    r.data("upsertCustomers").clone()
}

async fn upsert(app: &TestApp, source: &str, items: Value) -> Value {
    upsert_as(app, &app.admin(), source, items).await
}

fn statuses(payload: &Value) -> Vec<&str> {
    payload["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_str().expect("status"))
        .collect()
}

fn id_of(payload: &Value, i: usize) -> &str {
    payload["results"][i]["customer"]["id"]
        .as_str()
        .expect("customer id")
}

async fn total(app: &TestApp) -> u64 {
    let r = app.gql("{ customers { totalCount } }", json!({})).await;
    r.assert_ok();
    r.data("customers.totalCount").as_u64().expect("count")
}

/// The tenant's whole `changes` feed, oldest first, once it holds at least `count` events
/// (or after a few seconds).
async fn feed(app: &TestApp, count: usize) -> Vec<Value> {
    let mut events = Vec::new();
    for _ in 0..50 {
        let r = app
            .gql(
                "{ changes(first: 500) { hasMore events { seq entity entityId op changedFields } } }",
                json!({}),
            )
            .await;
        r.assert_ok();
        assert_eq!(r.data("changes.hasMore"), false, "one page holds the feed");
        events = r.data("changes.events").as_array().expect("events").clone();
        if events.len() >= count {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    events
}

fn changed(event: &Value) -> Vec<&str> {
    event["changedFields"]
        .as_array()
        .expect("changedFields")
        .iter()
        .map(|f| f.as_str().expect("a name"))
        .collect()
}

#[tokio::test]
async fn items_are_created_updated_left_unchanged_or_refused() {
    let app = TestApp::spawn().await;
    let first = upsert(
        &app,
        "erp",
        json!([
            {"externalId": "A-1", "name": "Ada", "email": "ada@Example.com", "tags": ["VIP"]},
            {"externalId": "B-2", "name": "Bob", "company": "Acme", "lifecycleStage": "PROSPECT"},
            {"externalId": "C-3", "name": "Cy", "email": "not-an-email"},
        ]),
    )
    .await;
    assert_eq!(first["userErrors"], json!([]));
    assert_eq!(statuses(&first), ["CREATED", "CREATED", "INVALID"]);
    let a = &first["results"][0];
    assert_eq!(a["externalId"], "A-1");
    assert_eq!(a["userErrors"], json!([]));
    assert_eq!(
        a["customer"]["email"], "ada@example.com",
        "normalised as on create"
    );
    assert_eq!(a["customer"]["tags"], json!(["vip"]));
    assert_eq!(
        a["customer"]["lifecycleStage"], "LEAD",
        "the default of createCustomer"
    );
    assert_eq!(a["customer"]["version"], 1);
    assert_eq!(
        a["customer"]["owner"]["subject"], "user-1",
        "the caller by default"
    );
    assert_eq!(
        a["customer"]["externalIds"],
        json!([{"source": "erp", "externalId": "A-1"}])
    );
    let c = &first["results"][2];
    assert_eq!(c["externalId"], "C-3");
    assert_eq!(c["customer"], Value::Null);
    assert_eq!(
        c["userErrors"],
        json!([{"field": ["items", "2", "email"], "message": "is not a valid email address", "code": "INVALID_EMAIL"}])
    );
    let (ada, bob) = (id_of(&first, 0).to_owned(), id_of(&first, 1).to_owned());
    assert_eq!(total(&app).await, 2, "the invalid item wrote nothing");

    // The same again for Ada; Bob's company cleared and his email set; Cy fixed.
    let second = upsert(
        &app,
        "erp",
        json!([
            {"externalId": "A-1", "name": "Ada", "email": "ada@example.com", "tags": ["vip"]},
            {"externalId": "B-2", "name": "Bob", "company": null, "email": "bob@example.com"},
            {"externalId": "C-3", "name": "Cy"},
        ]),
    )
    .await;
    assert_eq!(statuses(&second), ["UNCHANGED", "UPDATED", "CREATED"]);
    assert_eq!(id_of(&second, 0), ada);
    assert_eq!(second["results"][0]["customer"]["version"], 1);
    let b = &second["results"][1]["customer"];
    assert_eq!(b["id"], bob.as_str());
    assert_eq!(b["version"], 2);
    assert_eq!(b["company"], Value::Null, "null clears");
    assert_eq!(b["email"], "bob@example.com");
    assert_eq!(b["lifecycleStage"], "PROSPECT", "left out stays");
    assert_eq!(total(&app).await, 3);

    // What a read returns is what the upsert returned.
    let r = app
        .gql(
            "query($id: ID!) { customer(id: $id) { name company email version } }",
            json!({"id": bob}),
        )
        .await;
    r.assert_ok();
    assert_eq!(
        r.data("customer"),
        &json!({"name": "Bob", "company": null, "email": "bob@example.com", "version": 2})
    );
}

#[tokio::test]
async fn one_invalid_item_does_not_stop_the_others() {
    let app = TestApp::spawn().await;
    let payload = upsert(
        &app,
        "shop",
        json!([
            {"externalId": "1", "name": "One"},
            {"externalId": "2", "name": ""},
            {"externalId": "3", "name": "Three", "ownerId": "usr_01JD0000000000000000000000"},
            {"externalId": " ", "name": "Blank key"},
            {"externalId": "1", "name": "One again"},
            {"externalId": "6", "name": "Six", "customFields": [1, 2], "tags": (0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()},
            {"externalId": "7", "name": "Seven"},
        ]),
    )
    .await;
    assert_eq!(
        statuses(&payload),
        [
            "CREATED", "INVALID", "INVALID", "INVALID", "INVALID", "INVALID", "CREATED"
        ]
    );
    let errors = |i: usize| -> Vec<(String, String)> {
        payload["results"][i]["userErrors"]
            .as_array()
            .expect("userErrors")
            .iter()
            .map(|e| {
                let field: Vec<&str> = e["field"]
                    .as_array()
                    .expect("field")
                    .iter()
                    .map(|f| f.as_str().expect("segment"))
                    .collect();
                (
                    field.join("."),
                    e["code"].as_str().expect("code").to_owned(),
                )
            })
            .collect()
    };
    let pair = |f: &str, c: &str| (f.to_owned(), c.to_owned());
    assert_eq!(errors(1), [pair("items.1.name", "REQUIRED")]);
    assert_eq!(errors(2), [pair("items.2.ownerId", "NOT_FOUND")]);
    assert_eq!(errors(3), [pair("items.3.externalId", "REQUIRED")]);
    // A key given twice: the later occurrence is refused, the first written.
    assert_eq!(errors(4), [pair("items.4.externalId", "DUPLICATE")]);
    assert_eq!(payload["results"][0]["customer"]["name"], "One");
    assert_eq!(
        errors(5),
        [
            pair("items.5.tags", "TOO_MANY"),
            pair("items.5.customFields", "INVALID")
        ]
    );
    assert_eq!(total(&app).await, 2);
}

#[tokio::test]
async fn items_match_by_source_and_external_id() {
    let app = TestApp::spawn().await;
    // A key given through createCustomer is matched too.
    let created = app
        .customer(
            json!({"name": "Known", "externalIds": [{"source": "Stripe", "externalId": "cus_1"}]}),
        )
        .await;
    let payload = upsert(
        &app,
        "STRIPE",
        json!([{"externalId": "cus_1", "name": "Known", "company": "Known Inc"}]),
    )
    .await;
    assert_eq!(statuses(&payload), ["UPDATED"]);
    assert_eq!(id_of(&payload, 0), created, "sources compare without case");

    // The same external id in another source is another customer.
    let erp = upsert(
        &app,
        "erp",
        json!([{"externalId": "cus_1", "name": "Other"}]),
    )
    .await;
    assert_eq!(statuses(&erp), ["CREATED"]);
    assert_ne!(id_of(&erp, 0), created);
    let again = upsert(
        &app,
        "erp",
        json!([{"externalId": "cus_1", "name": "Other"}]),
    )
    .await;
    assert_eq!(statuses(&again), ["UNCHANGED"]);
    assert_eq!(id_of(&again, 0), id_of(&erp, 0));
    assert_eq!(total(&app).await, 2);

    // A customer in the trash is not written through its key.
    app.gql(
        "mutation($id: ID!) { deleteCustomer(input: {id: $id}) { deletedCustomerId } }",
        json!({"id": created}),
    )
    .await
    .assert_ok();
    let trashed = upsert(
        &app,
        "stripe",
        json!([{"externalId": "cus_1", "name": "Back?"}]),
    )
    .await;
    assert_eq!(statuses(&trashed), ["INVALID"]);
    assert_eq!(
        trashed["results"][0]["userErrors"][0]["field"],
        json!(["items", "0", "externalId"])
    );
}

#[tokio::test]
async fn events_are_appended_only_for_what_changed() {
    let app = TestApp::spawn().await;
    let items = json!([
        {"externalId": "e1", "name": "Eve", "email": "eve@example.com"},
        {"externalId": "e2", "name": "Eli"},
    ]);
    let created = upsert(&app, "crm2", items.clone()).await;
    let events = feed(&app, 2).await;
    assert_eq!(events.len(), 2, "{events:#?}");
    for (event, i) in events.iter().zip([0, 1]) {
        assert_eq!(event["op"], "CREATED");
        assert_eq!(event["entityId"], id_of(&created, i));
        let fields = changed(event);
        assert!(
            fields.contains(&"name") && fields.contains(&"externalIds"),
            "{fields:?}"
        );
    }

    // Nothing differs: no event, no version.
    let unchanged = upsert(&app, "crm2", items).await;
    assert_eq!(statuses(&unchanged), ["UNCHANGED", "UNCHANGED"]);
    assert_eq!(feed(&app, 2).await.len(), 2);

    let updated = upsert(
        &app,
        "crm2",
        json!([
            {"externalId": "e1", "name": "Eve", "company": "Evil Corp", "tags": ["x"]},
            {"externalId": "e2", "name": "Eli"},
            {"externalId": "e3", "name": ""},
        ]),
    )
    .await;
    assert_eq!(statuses(&updated), ["UPDATED", "UNCHANGED", "INVALID"]);
    let events = feed(&app, 3).await;
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(events[2]["op"], "UPDATED");
    assert_eq!(events[2]["entityId"], id_of(&created, 0));
    assert_eq!(changed(&events[2]), ["company", "tags"]);
}

#[tokio::test]
async fn at_most_a_thousand_items_are_taken() {
    let app = TestApp::spawn().await;
    let items = |n: usize| -> Value {
        (0..n)
            .map(|i| json!({"externalId": format!("k{i}"), "name": format!("Customer {i}")}))
            .collect()
    };
    let query = "mutation($input: UpsertCustomersInput!) { upsertCustomers(input: $input) { results { status } } }";
    let r = app
        .gql(
            query,
            json!({"input": {"source": "bulk", "items": items(1_001)}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.error_codes(), ["BAD_USER_INPUT"], "{}", r.body);
    assert_eq!(r.data("upsertCustomers"), &Value::Null);
    assert_eq!(total(&app).await, 0, "nothing written");
    assert!(feed(&app, 0).await.is_empty());

    let r = app
        .gql(
            query,
            json!({"input": {"source": "bulk", "items": items(1_000)}}),
        )
        .await;
    r.assert_ok();
    let results = r
        .data("upsertCustomers.results")
        .as_array()
        .expect("results");
    assert_eq!(results.len(), 1_000);
    assert!(results.iter().all(|r| r["status"] == "CREATED"));
    assert_eq!(total(&app).await, 1_000);
}

#[tokio::test]
async fn concurrent_upserts_of_the_same_keys_create_each_once() {
    let app = TestApp::spawn().await;
    let items: Value = (0..50)
        .map(|i| json!({"externalId": format!("c{i}"), "name": format!("Concurrent {i}")}))
        .collect();
    let (a, b) = tokio::join!(
        upsert(&app, "erp", items.clone()),
        upsert(&app, "erp", items.clone())
    );
    for (i, (a, b)) in statuses(&a).into_iter().zip(statuses(&b)).enumerate() {
        let mut pair = [a, b];
        pair.sort_unstable();
        assert_eq!(pair, ["CREATED", "UNCHANGED"], "item {i}");
    }
    assert_eq!(total(&app).await, 50);
}

#[tokio::test]
async fn a_bad_source_writes_nothing() {
    let app = TestApp::spawn().await;
    let payload = upsert(&app, "  ", json!([{"externalId": "1", "name": "One"}])).await;
    assert_eq!(payload["results"], json!([]));
    assert_eq!(payload["userErrors"][0]["field"], json!(["source"]));
    assert_eq!(payload["userErrors"][0]["code"], "REQUIRED");
    assert_eq!(total(&app).await, 0);
}

#[tokio::test]
async fn another_organizations_external_ids_do_not_match() {
    let app = TestApp::spawn().await;
    let ours = upsert(&app, "erp", json!([{"externalId": "X", "name": "Ours"}])).await;
    let other_org = format!("{}-other", app.org);
    let theirs_token = app.token_for(&other_org, "user-9", ALL_SCOPES);
    let theirs = upsert_as(
        &app,
        &theirs_token,
        "erp",
        json!([{"externalId": "X", "name": "Theirs"}]),
    )
    .await;
    assert_eq!(statuses(&theirs), ["CREATED"]);
    assert_ne!(id_of(&theirs, 0), id_of(&ours, 0));
    // Ours is as it was.
    let r = app
        .gql(
            "query($id: ID!) { customer(id: $id) { name version } }",
            json!({"id": id_of(&ours, 0)}),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.data("customer"), &json!({"name": "Ours", "version": 1}));
    // And a second call of theirs updates theirs.
    let again = upsert_as(
        &app,
        &theirs_token,
        "erp",
        json!([{"externalId": "X", "name": "Theirs, renamed"}]),
    )
    .await;
    assert_eq!(statuses(&again), ["UPDATED"]);
    assert_eq!(id_of(&again, 0), id_of(&theirs, 0));
}

#[tokio::test]
async fn upserting_needs_the_write_scope_and_reading_back_the_read_scope() {
    let app = TestApp::spawn().await;
    let vars =
        json!({"input": {"source": "erp", "items": [{"externalId": "s1", "name": "Scoped"}]}});
    let reader = app.token("customers:read");
    let r = app.gql_as(Some(&reader), UPSERT, vars.clone()).await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"], "{}", r.body);
    assert_eq!(r.data("upsertCustomers"), &Value::Null);
    let r = app.gql_as(None, UPSERT, vars.clone()).await;
    assert_eq!(r.error_codes(), ["UNAUTHENTICATED"], "{}", r.body);
    assert_eq!(total(&app).await, 0);

    // Writing alone: the statuses, but not the records.
    let writer = app.token("customers:write");
    let r = app
        .gql_as(
            Some(&writer),
            "mutation($input: UpsertCustomersInput!) { upsertCustomers(input: $input) { results { externalId status customer { id } } } }",
            vars,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.error_codes(), ["FORBIDDEN"], "{}", r.body);
    assert_eq!(r.data("upsertCustomers.results.0.status"), "CREATED");
    assert_eq!(r.data("upsertCustomers.results.0.customer"), &Value::Null);
    assert_eq!(total(&app).await, 1);

    // Email is read with pii:read only, as anywhere else.
    let no_pii = app.token("customers:read customers:write");
    let r = app
        .gql_as(
            Some(&no_pii),
            "mutation($input: UpsertCustomersInput!) { upsertCustomers(input: $input) { results { status customer { name email } } } }",
            json!({"input": {"source": "erp", "items": [{"externalId": "s2", "name": "Private", "email": "p@example.com"}]}}),
        )
        .await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"], "{}", r.body);
    assert_eq!(r.data("upsertCustomers.results.0.customer.name"), "Private");
    assert_eq!(
        r.data("upsertCustomers.results.0.customer.email"),
        &Value::Null
    );
}

/// What a request costs, read from the refusal of a server whose limit is 1.
async fn cost_of(app: &TestApp, query: &str, variables: Value) -> u64 {
    let r = app.gql(query, variables).await;
    assert_eq!(r.error_codes(), ["GRAPHQL_VALIDATION_FAILED"], "{}", r.body);
    let message = r.body["errors"][0]["message"].as_str().expect("message");
    message
        .strip_prefix("the query costs ")
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a cost in {message}"))
}

#[tokio::test]
async fn the_cost_grows_with_the_items() {
    let app = TestApp::spawn_with(|c| c.max_query_complexity = 1).await;
    let items = |n: usize| -> Value {
        (0..n)
            .map(|i| json!({"externalId": format!("k{i}"), "name": "N"}))
            .collect()
    };
    let query = "mutation($input: UpsertCustomersInput!) { upsertCustomers(input: $input) { results { externalId status customer { id } } } }";
    // The write (500), each item (20), each item's result rows (5), the payload's row.
    for n in [1usize, 10, 1_000] {
        let cost = cost_of(
            &app,
            query,
            json!({"input": {"source": "s", "items": items(n)}}),
        )
        .await;
        assert_eq!(cost, 500 + 20 * n as u64 + 5 * n as u64 + 1, "{n} items");
    }
    // Written in the document rather than in variables, the same.
    let inline = "mutation { upsertCustomers(input: {source: \"s\", items: [{externalId: \"a\", name: \"A\"}, {externalId: \"b\", name: \"B\"}]}) { results { status } } }";
    assert_eq!(
        cost_of(&app, inline, json!({})).await,
        500 + 2 * 20 + 2 * 2 + 1
    );
}

// --- Idempotency-Key -------------------------------------------------------------------

struct Raw {
    status: StatusCode,
    replayed: bool,
    body: String,
}

impl Raw {
    fn json(&self) -> Value {
        let body: Value = serde_json::from_str(&self.body).expect("JSON");
        assert_no_leak(&body);
        body
    }

    fn code(&self) -> Value {
        self.json()["errors"][0]["extensions"]["code"].clone()
    }
}

async fn post(app: &TestApp, token: &str, body: &str, key: Option<&str>) -> Raw {
    let mut req = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .bearer_auth(token)
        .body(body.to_owned());
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    let res = req.send().await.expect("sent");
    let status = res.status();
    let replayed = res
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    Raw {
        status,
        replayed,
        body: res.text().await.expect("body"),
    }
}

fn upsert_body(items: Value) -> String {
    json!({
        "query": "mutation($input: UpsertCustomersInput!) { upsertCustomers(input: $input) { results { externalId status customer { id version } } } }",
        "variables": {"input": {"source": "erp", "items": items}},
    })
    .to_string()
}

#[tokio::test]
async fn a_retry_with_the_same_key_answers_the_first_response() {
    let app = TestApp::spawn().await;
    let token = app.admin();
    let body = upsert_body(json!([{"externalId": "r1", "name": "Retried"}]));
    let first = post(&app, &token, &body, Some("key-1")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(!first.replayed);
    assert_eq!(
        first.json()["data"]["upsertCustomers"]["results"][0]["status"],
        "CREATED"
    );
    let events = feed(&app, 1).await.len();

    let second = post(&app, &token, &body, Some("key-1")).await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(second.replayed, "marked as a replay");
    assert_eq!(second.body, first.body, "the identical body");
    assert_eq!(
        feed(&app, events).await.len(),
        events,
        "nothing written again"
    );
    assert_eq!(total(&app).await, 1);

    // The same request spelled differently (key order, spacing) is the same request.
    let parsed: Value = serde_json::from_str(&body).expect("JSON");
    let respelled = format!(
        "{{\n  \"variables\" : {},\n  \"query\" : {}\n}}",
        serde_json::to_string_pretty(&parsed["variables"]).expect("JSON"),
        parsed["query"]
    );
    assert!(respelled.find("variables") < respelled.find("query"));
    let third = post(&app, &token, &respelled, Some("key-1")).await;
    assert!(third.replayed);
    assert_eq!(third.body, first.body);

    // Without a key, the same request runs again (and changes nothing).
    let unkeyed = post(&app, &token, &body, None).await;
    assert!(!unkeyed.replayed);
    assert_eq!(
        unkeyed.json()["data"]["upsertCustomers"]["results"][0]["status"],
        "UNCHANGED"
    );
}

#[tokio::test]
async fn copies_sent_at_once_run_once() {
    let app = TestApp::spawn().await;
    let token = app.admin();
    let items: Value = (0..200)
        .map(|i| json!({"externalId": format!("p{i}"), "name": "Parallel"}))
        .collect();
    let body = upsert_body(items);
    let (a, b) = tokio::join!(
        post(&app, &token, &body, Some("at-once")),
        post(&app, &token, &body, Some("at-once"))
    );
    let (ran, other) = if a.status == StatusCode::OK && !a.replayed {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(ran.status, StatusCode::OK, "{}", ran.body);
    assert!(!ran.replayed);
    if other.status == StatusCode::CONFLICT {
        assert_eq!(other.code(), "IDEMPOTENCY_KEY_IN_USE");
    } else {
        assert_eq!(other.status, StatusCode::OK);
        assert!(other.replayed, "{}", other.body);
        assert_eq!(other.body, ran.body);
    }
    assert_eq!(total(&app).await, 200);
    // Once it has answered, the key replays.
    let again = post(&app, &token, &body, Some("at-once")).await;
    assert!(again.replayed);
    assert_eq!(again.body, ran.body);
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.admin();
    let first = upsert_body(json!([{"externalId": "k", "name": "First"}]));
    assert_eq!(
        post(&app, &token, &first, Some("key-2")).await.status,
        StatusCode::OK
    );
    let other = upsert_body(json!([{"externalId": "k", "name": "Second"}]));
    let refused = post(&app, &token, &other, Some("key-2")).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(refused.code(), "IDEMPOTENCY_KEY_REUSED");
    assert!(refused.json().get("data").is_none());
    let r = app.gql("{ customers { nodes { name } } }", json!({})).await;
    assert_eq!(
        r.data("customers.nodes"),
        &json!([{"name": "First"}]),
        "not run"
    );

    // Keys belong to a tenant and a caller: another caller's same key is theirs.
    let colleague = app.token_for(&app.org, "user-2", ALL_SCOPES);
    let theirs = post(&app, &colleague, &other, Some("key-2")).await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.body);
    assert!(!theirs.replayed);
    let elsewhere = app.token_for(&format!("{}-b", app.org), "user-1", ALL_SCOPES);
    let theirs = post(&app, &elsewhere, &other, Some("key-2")).await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.body);
    assert!(!theirs.replayed);
    assert_eq!(
        theirs.json()["data"]["upsertCustomers"]["results"][0]["status"],
        "CREATED"
    );
}

#[tokio::test]
async fn keys_are_bounded_and_apply_to_single_mutations() {
    let app = TestApp::spawn().await;
    let token = app.admin();
    let body = upsert_body(json!([{"externalId": "b", "name": "Bounded"}]));
    for bad in ["x".repeat(256), "tab\there".to_owned()] {
        let r = post(&app, &token, &body, Some(&bad)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad:?}: {}", r.body);
        assert_eq!(r.code(), "BAD_REQUEST");
    }
    let longest = "k".repeat(255);
    assert_eq!(
        post(&app, &token, &body, Some(&longest)).await.status,
        StatusCode::OK
    );
    assert!(post(&app, &token, &body, Some(&longest)).await.replayed);

    // A batch is refused with a key rather than run without its protection.
    let batch = format!("[{body}]");
    let r = post(&app, &token, &batch, Some("batch-key")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // Queries write nothing: they run every time.
    let query = json!({"query": "{ customers { totalCount } }"}).to_string();
    for _ in 0..2 {
        let r = post(&app, &token, &query, Some("query-key")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(!r.replayed);
    }
    // ...so the key is still free for a mutation.
    let r = post(&app, &token, &body, Some("query-key")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn a_request_that_did_nothing_frees_its_key() {
    let app = TestApp::spawn().await;
    let token = app.admin();
    let too_many: Vec<Value> = (0..1_001)
        .map(|i| json!({"externalId": format!("n{i}"), "name": "N"}))
        .collect();
    let refused = post(
        &app,
        &token,
        &upsert_body(Value::from(too_many)),
        Some("key-3"),
    )
    .await;
    assert_eq!(refused.status, StatusCode::OK);
    assert_eq!(refused.code(), "BAD_USER_INPUT");
    // Fixed, and sent with the same key: it runs.
    let fixed = upsert_body(json!([{"externalId": "n0", "name": "N"}]));
    let r = post(&app, &token, &fixed, Some("key-3")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!r.replayed);
    assert_eq!(
        r.json()["data"]["upsertCustomers"]["results"][0]["status"],
        "CREATED"
    );

    // A token without the scope: refused, and the key stays free for a token with it.
    let reader = app.token("customers:read");
    let body = upsert_body(json!([{"externalId": "n1", "name": "N"}]));
    let r = post(&app, &reader, &body, Some("key-4")).await;
    assert_eq!(r.code(), "FORBIDDEN");
    let r = post(&app, &app.token(ALL_SCOPES), &body, Some("key-4")).await;
    assert!(!r.replayed);
    assert_eq!(
        r.json()["data"]["upsertCustomers"]["results"][0]["status"],
        "CREATED"
    );
}

#[tokio::test]
async fn keys_expire_after_a_day() {
    use sea_orm::{ConnectionTrait, Database};
    let app = TestApp::spawn().await;
    let token = app.admin();
    let first = upsert_body(json!([{"externalId": "x", "name": "Day one"}]));
    assert_eq!(
        post(&app, &token, &first, Some("daily")).await.status,
        StatusCode::OK
    );
    // A day later (the row aged by hand; the clock is not injectable here).
    let db = Database::connect(&app.db_url).await.expect("database");
    let kept = db
        .execute_unprepared("UPDATE idempotency_keys SET created_at = created_at - INTERVAL '25 hours', expires_at = expires_at - INTERVAL '25 hours'")
        .await;
    if kept.is_err() {
        // SQLite has no INTERVAL: timestamps are stored as text.
        db.execute_unprepared(
            "UPDATE idempotency_keys SET expires_at = '2000-01-01 00:00:00+00:00', created_at = '2000-01-01 00:00:00+00:00'",
        )
        .await
        .expect("aged");
    }
    let next = upsert_body(json!([{"externalId": "x", "name": "Day two"}]));
    let r = post(&app, &token, &next, Some("daily")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!r.replayed);
    assert_eq!(
        r.json()["data"]["upsertCustomers"]["results"][0]["status"],
        "UPDATED"
    );
}

/// A replay never shows a token what it may not read: a token with other scopes is another
/// owner of the key, and its request runs as its own.
#[tokio::test]
async fn a_replay_is_only_for_a_token_with_the_same_scopes() {
    let app = TestApp::spawn().await;
    let body = json!({
        "query": "mutation($input: UpsertCustomersInput!) { upsertCustomers(input: $input) { results { status customer { email } } } }",
        "variables": {"input": {"source": "erp", "items": [{"externalId": "p1", "name": "Private", "email": "p@example.com"}]}},
    })
    .to_string();
    let first = post(&app, &app.admin(), &body, Some("pii-key")).await;
    assert_eq!(
        first.json()["data"]["upsertCustomers"]["results"][0]["customer"]["email"],
        "p@example.com"
    );
    let weaker = app.token("customers:read customers:write");
    let second = post(&app, &weaker, &body, Some("pii-key")).await;
    assert!(!second.replayed, "{}", second.body);
    assert!(!second.body.contains("p@example.com"), "{}", second.body);
}

#[tokio::test]
async fn a_source_is_measured_after_it_is_lower_cased() {
    let app = TestApp::spawn().await;
    // `İ` lower-cases to two characters: 64 of them become 128.
    let payload = upsert(
        &app,
        &"İ".repeat(64),
        json!([{"externalId": "1", "name": "One"}]),
    )
    .await;
    assert_eq!(
        payload["userErrors"][0]["field"],
        json!(["source"]),
        "{payload}"
    );
    assert_eq!(total(&app).await, 0);
}
