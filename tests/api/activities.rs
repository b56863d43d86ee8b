//! Activities: logging, reading, updating and deleting, and what they do to their customer.

use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn log_read_update_delete() {
    let app = TestApp::spawn().await;
    let customer = app.customer(json!({"name": "Caller"})).await;
    let r = app
        .gql(
            "mutation($i: LogActivityInput!) { logActivity(input: $i) { activity { id kind subject body occurredAt dueAt version source externalId customer { id name } author { subject } } userErrors { field code } } }",
            json!({"i": {"customerId": customer, "kind": "CALL", "subject": " Intro call ", "body": "Talked about pricing.", "occurredAt": "2026-03-01T10:00:00Z", "source": "Aircall", "externalId": "call-1"}}),
        )
        .await;
    r.assert_ok();
    let a = r.data("logActivity.activity").clone();
    assert!(a["id"].as_str().expect("id").starts_with("act_"));
    assert_eq!(a["kind"], "CALL");
    assert_eq!(a["subject"], "Intro call");
    assert_eq!(a["occurredAt"], "2026-03-01T10:00:00+00:00");
    assert_eq!(a["source"], "aircall");
    assert_eq!(a["customer"], json!({"id": customer, "name": "Caller"}));
    assert_eq!(a["author"]["subject"], "user-1");

    let r = app
        .gql(
            "query($id: ID!) { customer(id: $id) { lastActivityAt } }",
            json!({"id": customer}),
        )
        .await;
    assert_eq!(
        r.data("customer.lastActivityAt"),
        "2026-03-01T10:00:00+00:00"
    );

    let r = app
        .gql(
            "mutation($i: UpdateActivityInput!) { updateActivity(input: $i) { activity { kind subject body version dueAt } userErrors { code } } }",
            json!({"i": {"id": a["id"], "expectedVersion": 1, "kind": "TASK", "body": null, "dueAt": "2026-03-08T10:00:00Z"}}),
        )
        .await;
    r.assert_ok();
    assert_eq!(
        r.data("updateActivity.activity"),
        &json!({"kind": "TASK", "subject": "Intro call", "body": null, "version": 2, "dueAt": "2026-03-08T10:00:00+00:00"})
    );
    let r = app
        .gql(
            "mutation($i: UpdateActivityInput!) { updateActivity(input: $i) { activity { id } userErrors { code field } } }",
            json!({"i": {"id": a["id"], "expectedVersion": 1, "subject": "stale"}}),
        )
        .await;
    assert_eq!(
        r.data("updateActivity.userErrors"),
        &json!([{"code": "VERSION_CONFLICT", "field": ["expectedVersion"]}])
    );

    let r = app
        .gql("mutation($id: ID!) { deleteActivity(input: {id: $id}) { deletedActivityId userErrors { code } } }", json!({"id": a["id"]}))
        .await;
    assert_eq!(r.data("deleteActivity.deletedActivityId"), &a["id"]);
    let r = app
        .gql("query($id: ID!, $c: ID!) { activity(id: $id) { id } customer(id: $c) { lastActivityAt activities { totalCount } } }", json!({"id": a["id"], "c": customer}))
        .await;
    assert_eq!(
        r.body["data"],
        json!({"activity": null, "customer": {"lastActivityAt": null, "activities": {"totalCount": 0}}})
    );
}

#[tokio::test]
async fn last_activity_at_follows_the_latest_live_activity() {
    let app = TestApp::spawn().await;
    let customer = app.customer(json!({"name": "Busy"})).await;
    app.activity(json!({"customerId": customer, "kind": "NOTE", "subject": "old", "occurredAt": "2026-01-01T00:00:00Z"})).await;
    let newest = app.activity(json!({"customerId": customer, "kind": "NOTE", "subject": "new", "occurredAt": "2026-02-01T00:00:00Z"})).await;
    app.activity(json!({"customerId": customer, "kind": "NOTE", "subject": "middle", "occurredAt": "2026-01-15T00:00:00Z"})).await;
    assert_eq!(
        last_activity_at(&app, &customer).await,
        "2026-02-01T00:00:00+00:00"
    );
    app.gql(
        "mutation($id: ID!) { deleteActivity(input: {id: $id}) { deletedActivityId } }",
        json!({"id": newest}),
    )
    .await
    .assert_ok();
    assert_eq!(
        last_activity_at(&app, &customer).await,
        "2026-01-15T00:00:00+00:00"
    );
}

#[tokio::test]
async fn invalid_activities_write_nothing() {
    let app = TestApp::spawn().await;
    let customer = app.customer(json!({"name": "Target"})).await;
    let cases = [
        (
            json!({"customerId": "cus_01JD0000000000000000000000", "kind": "NOTE", "subject": "x"}),
            ("customerId", "NOT_FOUND"),
        ),
        (
            json!({"customerId": customer, "kind": "NOTE", "subject": "   "}),
            ("subject", "REQUIRED"),
        ),
        (
            json!({"customerId": customer, "kind": "NOTE", "subject": "x".repeat(501)}),
            ("subject", "TOO_LONG"),
        ),
        (
            json!({"customerId": customer, "kind": "NOTE", "subject": "x", "occurredAt": "1200-01-01T00:00:00Z"}),
            ("occurredAt", "INVALID"),
        ),
        (
            json!({"customerId": customer, "kind": "NOTE", "subject": "x", "body": "b".repeat(70 * 1024)}),
            ("body", "TOO_LONG"),
        ),
    ];
    for (input, (field, code)) in cases {
        let r = app
            .gql("mutation($i: LogActivityInput!) { logActivity(input: $i) { activity { id } userErrors { field code } } }", json!({"i": input}))
            .await;
        r.assert_ok();
        assert_eq!(r.data("logActivity.activity"), &Value::Null);
        assert_eq!(
            r.data("logActivity.userErrors"),
            &json!([{"field": [field], "code": code}]),
            "{input}"
        );
    }
    // An unknown kind never reaches a resolver.
    let r = app
        .gql("mutation($c: ID!) { logActivity(input: {customerId: $c, kind: FAX, subject: \"x\"}) { activity { id } } }", json!({"c": customer}))
        .await;
    assert_eq!(r.status, reqwest::StatusCode::BAD_REQUEST);
    let r = app.gql("{ activities { totalCount } }", json!({})).await;
    assert_eq!(r.data("activities.totalCount"), 0);
}

#[tokio::test]
async fn duplicate_source_and_external_id_is_refused() {
    let app = TestApp::spawn().await;
    let customer = app.customer(json!({"name": "Synced"})).await;
    app.activity(json!({"customerId": customer, "kind": "EMAIL", "subject": "a", "source": "gmail", "externalId": "m-1"})).await;
    let r = app
        .gql(
            "mutation($i: LogActivityInput!) { logActivity(input: $i) { activity { id } userErrors { field code } } }",
            json!({"i": {"customerId": customer, "kind": "EMAIL", "subject": "b", "source": "gmail", "externalId": "m-1"}}),
        )
        .await;
    assert_eq!(
        r.data("logActivity.userErrors"),
        &json!([{"field": ["externalId"], "code": "DUPLICATE"}])
    );
}

#[tokio::test]
async fn activities_of_a_trashed_customer_lose_their_customer() {
    let app = TestApp::spawn().await;
    let customer = app.customer(json!({"name": "Gone"})).await;
    let activity = app
        .activity(json!({"customerId": customer, "kind": "NOTE", "subject": "left behind"}))
        .await;
    app.gql(
        "mutation($id: ID!) { deleteCustomer(input: {id: $id}) { deletedCustomerId } }",
        json!({"id": customer}),
    )
    .await
    .assert_ok();
    let r = app
        .gql(
            "query($id: ID!) { activity(id: $id) { subject customer { id } } }",
            json!({"id": activity}),
        )
        .await;
    r.assert_ok();
    assert_eq!(
        r.data("activity"),
        &json!({"subject": "left behind", "customer": null})
    );
    let r = app
        .gql("mutation($c: ID!) { logActivity(input: {customerId: $c, kind: NOTE, subject: \"x\"}) { userErrors { field code } } }", json!({"c": customer}))
        .await;
    assert_eq!(
        r.data("logActivity.userErrors"),
        &json!([{"field": ["customerId"], "code": "NOT_FOUND"}])
    );
}

async fn last_activity_at(app: &TestApp, customer: &str) -> Value {
    let r = app
        .gql(
            "query($id: ID!) { customer(id: $id) { lastActivityAt } }",
            json!({"id": customer}),
        )
        .await;
    r.data("customer.lastActivityAt").clone()
}

/// Two activities of one customer deleted at the same moment: `lastActivityAt` ends at the
/// one left, not at whichever the last writer saw (on PostgreSQL each writer would otherwise
/// recompute from a snapshot missing the other's delete).
#[tokio::test]
async fn concurrent_activity_deletes_leave_last_activity_at_true() {
    let app = TestApp::spawn().await;
    for round in 0..6 {
        let customer = app.customer(json!({"name": format!("Busy {round}")})).await;
        let mut ids = Vec::new();
        for month in ["01", "02", "03"] {
            ids.push(
                app.activity(json!({"customerId": customer, "kind": "NOTE", "subject": month, "occurredAt": format!("2026-{month}-01T00:00:00Z")}))
                    .await,
            );
        }
        let app = &app;
        let delete = |id: String| async move {
            app.gql(
                "mutation($id: ID!) { deleteActivity(input: {id: $id}) { deletedActivityId } }",
                json!({"id": id}),
            )
            .await
            .assert_ok();
        };
        futures_util::future::join(delete(ids[1].clone()), delete(ids[2].clone())).await;
        let r = app
            .gql(
                "query($id: ID!) { customer(id: $id) { lastActivityAt } }",
                json!({"id": customer}),
            )
            .await;
        assert_eq!(
            r.data("customer.lastActivityAt"),
            "2026-01-01T00:00:00+00:00",
            "round {round}"
        );
    }
}
