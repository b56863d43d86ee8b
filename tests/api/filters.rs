//! Filters: per-field operators, and/or/not, free-text search, tags, and their limits.

use serde_json::{Value, json};

use crate::helpers::TestApp;

async fn names(app: &TestApp, filter: serde_json::Value) -> Vec<String> {
    let r = app
        .gql(
            "query($f: CustomerFilter) { customers(filter: $f, orderBy: {field: NAME}) { totalCount nodes { name } } }",
            json!({"f": filter}),
        )
        .await;
    r.assert_ok();
    let names: Vec<String> = r
        .data("customers.nodes")
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        r.data("customers.totalCount").as_u64(),
        Some(names.len() as u64),
        "totalCount agrees with the list"
    );
    names
}

#[tokio::test]
async fn customer_filters_combine() {
    let app = TestApp::spawn().await;
    app.customer(json!({"name": "ada", "email": "ada@analytical.org", "company": "Analytical Engines", "lifecycleStage": "CUSTOMER", "tags": ["vip"]})).await;
    app.customer(json!({"name": "bob", "email": "bob@example.com", "company": "Example 100% Co", "lifecycleStage": "LEAD", "tags": ["trial"]})).await;
    app.customer(json!({"name": "cyd", "company": "Analytical_Works", "lifecycleStage": "PROSPECT", "tags": ["vip", "trial"]})).await;
    app.customer(json!({"name": "dee", "phone": "+12025550199", "lifecycleStage": "CHURNED"}))
        .await;

    assert_eq!(names(&app, json!({"name": {"eq": "bob"}})).await, ["bob"]);
    assert_eq!(
        names(&app, json!({"name": {"in": ["ada", "dee", "zed"]}})).await,
        ["ada", "dee"]
    );
    assert_eq!(
        names(&app, json!({"company": {"contains": "ANALYTICAL"}})).await,
        ["ada", "cyd"]
    );
    assert_eq!(
        names(&app, json!({"company": {"startsWith": "analytical_"}})).await,
        ["cyd"],
        "`_` matches literally"
    );
    assert_eq!(
        names(&app, json!({"company": {"contains": "100%"}})).await,
        ["bob"],
        "`%` matches literally"
    );
    assert_eq!(
        names(&app, json!({"email": {"isNull": true}})).await,
        ["cyd", "dee"]
    );
    assert_eq!(
        names(
            &app,
            json!({"lifecycleStage": {"in": ["LEAD", "PROSPECT"]}})
        )
        .await,
        ["bob", "cyd"]
    );
    assert_eq!(names(&app, json!({"tag": "VIP"})).await, ["ada", "cyd"]);
    assert_eq!(names(&app, json!({"search": "example"})).await, ["bob"]);
    assert_eq!(names(&app, json!({"search": "5550199"})).await, ["dee"]);
    assert_eq!(
        names(
            &app,
            json!({"or": [{"name": {"eq": "ada"}}, {"lifecycleStage": {"eq": "CHURNED"}}]})
        )
        .await,
        ["ada", "dee"]
    );
    assert_eq!(
        names(&app, json!({"not": {"tag": "trial"}})).await,
        ["ada", "dee"]
    );
    assert_eq!(
        names(
            &app,
            json!({"and": [{"tag": "vip"}, {"not": {"lifecycleStage": {"eq": "CUSTOMER"}}}]})
        )
        .await,
        ["cyd"]
    );
    assert_eq!(
        names(
            &app,
            json!({"createdAt": {"gt": "2000-01-01T00:00:00Z", "lt": "2200-01-01T00:00:00Z"}})
        )
        .await
        .len(),
        4
    );
    assert!(
        names(&app, json!({"createdAt": {"lt": "2000-01-01T00:00:00Z"}}))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn activity_filters_and_nested_connection_filters() {
    let app = TestApp::spawn().await;
    let c = app.customer(json!({"name": "filtered"})).await;
    app.activity(json!({"customerId": c, "kind": "CALL", "subject": "Kickoff call", "occurredAt": "2026-01-10T00:00:00Z"})).await;
    app.activity(json!({"customerId": c, "kind": "EMAIL", "subject": "Follow-up", "body": "Pricing attached", "occurredAt": "2026-01-20T00:00:00Z"})).await;
    app.activity(json!({"customerId": c, "kind": "TASK", "subject": "Send contract", "dueAt": "2026-02-01T00:00:00Z", "occurredAt": "2026-01-21T00:00:00Z"})).await;

    let subjects = |path: &str, r: &crate::helpers::Reply| -> Vec<String> {
        r.data(path)
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["subject"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let r = app
        .gql(
            "{ activities(filter: {kind: {in: [CALL, EMAIL]}}) { nodes { subject } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        subjects("activities.nodes", &r),
        ["Follow-up", "Kickoff call"]
    );
    let r = app
        .gql(
            "{ activities(filter: {search: \"pricing\"}) { nodes { subject } } }",
            json!({}),
        )
        .await;
    assert_eq!(subjects("activities.nodes", &r), ["Follow-up"]);
    let r = app
        .gql(
            "{ activities(filter: {dueAt: {isNull: false}}) { nodes { subject } } }",
            json!({}),
        )
        .await;
    assert_eq!(subjects("activities.nodes", &r), ["Send contract"]);
    let r = app
        .gql(
            "query($c: ID!) { customer(id: $c) { activities(filter: {occurredAt: {gte: \"2026-01-15T00:00:00Z\"}}) { totalCount nodes { subject } } } }",
            json!({"c": c}),
        )
        .await;
    assert_eq!(
        subjects("customer.activities.nodes", &r),
        ["Send contract", "Follow-up"]
    );
    assert_eq!(r.data("customer.activities.totalCount"), 2);
}

#[tokio::test]
async fn hostile_filters_are_bounded() {
    let app = TestApp::spawn().await;
    let mut deep = json!({"name": {"eq": "x"}});
    for _ in 0..8 {
        deep = json!({"not": deep});
    }
    let too_many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    for filter in [deep, json!({"name": {"in": too_many}})] {
        let r = app
            .gql(
                "query($f: CustomerFilter) { customers(filter: $f) { nodes { id } } }",
                json!({"f": filter}),
            )
            .await;
        assert_eq!(r.error_codes(), ["BAD_USER_INPUT"], "{}", r.body);
    }
}

/// Text filters match non-ASCII text as stored on both backends (SQLite folds the case of
/// ASCII letters only; PostgreSQL of every letter).
#[tokio::test]
async fn text_filters_match_non_ascii_text() {
    let app = TestApp::spawn().await;
    let id = app
        .customer(json!({"name": "Émile Ñandú Straße", "company": "ÄRGER GmbH"}))
        .await;
    app.customer(json!({"name": "Someone Else"})).await;
    for filter in [
        json!({"search": "Émile"}),
        json!({"search": "ÄRGER"}),
        json!({"search": "gmbh"}),
        json!({"name": {"contains": "Straße"}}),
        json!({"name": {"startsWith": "Émile"}}),
        json!({"name": {"startsWith": "émile Ñ"}}),
    ] {
        let r = app
            .gql(
                "query($f: CustomerFilter) { customers(filter: $f) { nodes { id } } }",
                json!({"f": filter}),
            )
            .await;
        r.assert_ok();
        let ids: Vec<&Value> = r
            .data("customers.nodes")
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| &n["id"])
            .collect();
        if filter["name"]["startsWith"] == "émile Ñ" {
            // Folded on PostgreSQL only: either it matches the one customer or nothing.
            assert!(ids.len() <= 1, "{filter}: {ids:?}");
        } else {
            assert_eq!(ids, [&json!(id)], "{filter}");
        }
    }
}
