//! Every write appends its event in the same transaction: read back from the `events`
//! table, the log a later consumer tails.

use entity::events;
use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::helpers::TestApp;

async fn log(app: &TestApp) -> Vec<events::Model> {
    let db = Database::connect(&app.db_url).await.expect("database");
    events::Entity::find()
        .filter(events::Column::OrgId.eq(&app.org))
        .order_by_asc(events::Column::Seq)
        .all(&db)
        .await
        .expect("events")
}

#[tokio::test]
async fn writes_append_events_and_failed_writes_do_not() {
    let app = TestApp::spawn().await;
    let id = app
        .customer(json!({"name": "Evented", "email": "e@example.com"}))
        .await;
    app.gql(
        "mutation($id: ID!) { updateCustomer(input: {id: $id, company: \"Acme\", expectedVersion: 1}) { customer { id } } }",
        json!({"id": id}),
    )
    .await
    .assert_ok();
    // Refused writes leave no trace.
    app.gql(
        "mutation($id: ID!) { updateCustomer(input: {id: $id, email: \"broken\"}) { userErrors { code } } }",
        json!({"id": id}),
    )
    .await
    .assert_ok();
    app.gql(
        "mutation($id: ID!) { updateCustomer(input: {id: $id, company: \"Stale\", expectedVersion: 1}) { userErrors { code } } }",
        json!({"id": id}),
    )
    .await
    .assert_ok();
    let activity = app
        .activity(json!({"customerId": id, "kind": "CALL", "subject": "hello"}))
        .await;
    app.gql(
        "mutation($id: ID!) { deleteCustomer(input: {id: $id}) { deletedCustomerId } }",
        json!({"id": id}),
    )
    .await
    .assert_ok();
    app.gql(
        "mutation($id: ID!) { restoreCustomer(input: {id: $id}) { customer { id } } }",
        json!({"id": id}),
    )
    .await
    .assert_ok();

    let log = log(&app).await;
    let summary: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|e| (e.entity.as_str(), e.entity_id.as_str(), e.op.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("customer", id.as_str(), "CREATED"),
            ("customer", id.as_str(), "UPDATED"),
            ("activity", activity.as_str(), "CREATED"),
            ("customer", id.as_str(), "DELETED"),
            ("customer", id.as_str(), "RESTORED"),
        ]
    );
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq), "seq increases");
    let changed: Value = serde_json::from_str(&log[1].changed_fields).expect("json");
    assert_eq!(changed, json!(["company"]));
    assert_eq!(log[1].snapshot["company"], "Acme");
    assert_eq!(log[1].snapshot["version"], 2);
    assert_eq!(log[1].actor.as_deref(), Some("user-1"));
    assert!(log[3].snapshot["deletedAt"].is_string());
    assert_eq!(log[4].snapshot["deletedAt"], Value::Null);
}
