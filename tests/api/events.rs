//! Every write appends its event in the same transaction: read back from the `events`
//! table, the log a later consumer tails.

use std::collections::{BTreeSet, HashMap};

use entity::events;
use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::helpers::{ALL_SCOPES, TestApp};

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

/// The names of the fields of an object type, as introspection tells any client.
async fn fields_of(app: &TestApp, type_name: &str) -> BTreeSet<String> {
    let r = app
        .gql(
            "query($t: String!) { __type(name: $t) { fields { name } } }",
            json!({"t": type_name}),
        )
        .await;
    r.assert_ok();
    let fields: BTreeSet<String> = r
        .data("__type.fields")
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["name"].as_str().expect("name").to_owned())
        .collect();
    assert!(!fields.is_empty(), "{type_name} has fields");
    fields
}

/// The whole feed of the test's tenant, oldest first, once it holds `count` events (events
/// written outside the server, as by the seed, reach the feed at its next poll of the log).
async fn feed(app: &TestApp, count: usize) -> Vec<Value> {
    let mut events = Vec::new();
    for _ in 0..100 {
        let r = app
            .gql(
                "{ changes(first: 500) { hasMore events { seq entity entityId op changedFields activity { customer { id } } } } }",
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
    assert_eq!(events.len(), count, "{events:#?}");
    events
}

fn changed_fields(event: &Value) -> Vec<&str> {
    event["changedFields"]
        .as_array()
        .expect("changedFields")
        .iter()
        .map(|f| f.as_str().expect("a name"))
        .collect()
}

#[tokio::test]
async fn changed_fields_name_fields_of_the_object_type() {
    let app = TestApp::spawn().await;
    let customer_fields = fields_of(&app, "Customer").await;
    let activity_fields = fields_of(&app, "Activity").await;

    // Another user, to hand the customer over to.
    let other = app.token_for(&app.org, "user-2", ALL_SCOPES);
    let r = app
        .gql_as(
            Some(&other),
            "mutation { createCustomer(input: {name: \"Theirs\"}) { customer { owner { id } } } }",
            json!({}),
        )
        .await;
    r.assert_ok();
    let other_user = r.data("createCustomer.customer.owner.id").clone();

    let id = app
        .customer(json!({"name": "Named", "email": "n@example.com", "externalIds": [{"source": "crm2", "externalId": "42"}]}))
        .await;
    for input in [
        json!({"id": id, "ownerId": other_user}),
        json!({"id": id, "company": "Acme", "tags": ["vip"]}),
        json!({"id": id, "externalIds": [], "socialProfiles": [{"network": "x", "handle": "named"}]}),
    ] {
        let r = app
            .gql(
                "mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) { userErrors { message } } }",
                json!({"input": input}),
            )
            .await;
        r.assert_ok();
        assert_eq!(
            r.data("updateCustomer.userErrors"),
            &json!([]),
            "{}",
            r.body
        );
    }
    let activity = app
        .activity(json!({"customerId": id, "kind": "TASK", "subject": "call back", "dueAt": "2026-06-01T00:00:00Z"}))
        .await;
    for mutation in [
        "mutation($a: ID!) { updateActivity(input: {id: $a, subject: \"call back soon\", completedAt: \"2026-06-02T00:00:00Z\"}) { userErrors { message } } }",
        "mutation($a: ID!) { deleteActivity(input: {id: $a}) { userErrors { message } } }",
        "mutation($c: ID!) { deleteCustomer(input: {id: $c}) { userErrors { message } } }",
        "mutation($c: ID!) { restoreCustomer(input: {id: $c}) { userErrors { message } } }",
    ] {
        app.gql(mutation, json!({"a": activity, "c": id}))
            .await
            .assert_ok();
    }
    // Seeded rows leave the same events as written ones.
    let db = Database::connect(&app.db_url).await.expect("database");
    crm::domain::seed::seed(&crm::domain::Store::new(db), &app.org, 2, 2)
        .await
        .expect("seed");

    // Theirs; Named: created, 3 updates, deleted, restored; the activity: logged, updated,
    // deleted; the seed: 2 customers with 2 activities each.
    let events = feed(&app, 1 + 6 + 3 + 2 + 2 * 2).await;
    for event in &events {
        let fields = match event["entity"].as_str() {
            Some("CUSTOMER") => &customer_fields,
            Some("ACTIVITY") => &activity_fields,
            other => panic!("entity {other:?}"),
        };
        for name in changed_fields(event) {
            assert!(
                fields.contains(name),
                "{name:?} is not a field of {}: {event}",
                event["entity"]
            );
        }
    }

    let of = |entity: &str, entity_id: &str| -> Vec<(String, Vec<&str>)> {
        events
            .iter()
            .filter(|e| e["entityId"] == entity_id)
            .inspect(|e| assert_eq!(e["entity"], entity))
            .map(|e| (e["op"].as_str().expect("op").to_owned(), changed_fields(e)))
            .collect()
    };
    let customer = of("CUSTOMER", &id);
    let ops: Vec<&str> = customer.iter().map(|(op, _)| op.as_str()).collect();
    assert_eq!(
        ops,
        [
            "CREATED", "UPDATED", "UPDATED", "UPDATED", "DELETED", "RESTORED"
        ]
    );
    let created = &customer[0].1;
    for name in ["owner", "name", "email", "externalIds"] {
        assert!(created.contains(&name), "{name} in {created:?}");
    }
    assert_eq!(customer[1].1, ["owner"]);
    assert_eq!(customer[2].1, ["company", "tags"]);
    assert_eq!(customer[3].1, ["externalIds", "socialProfiles"]);
    assert_eq!(customer[4].1, ["deletedAt"]);
    assert_eq!(customer[5].1, ["deletedAt"]);

    let activity = of("ACTIVITY", &activity);
    for name in ["customer", "author", "kind", "subject", "dueAt"] {
        assert!(
            activity[0].1.contains(&name),
            "{name} in {:?}",
            activity[0].1
        );
    }
    assert_eq!(
        activity[1],
        ("UPDATED".to_owned(), vec!["completedAt", "subject"])
    );
    // `Activity` has no `deletedAt`: the op says it all.
    assert_eq!(activity[2], ("DELETED".to_owned(), vec![]));
}

#[tokio::test]
async fn seed_logs_each_customer_before_its_activities() {
    let app = TestApp::spawn().await;
    let db = Database::connect(&app.db_url).await.expect("database");
    let store = crm::domain::Store::new(db);
    crm::domain::seed::seed(&store, &app.org, 12, 3)
        .await
        .expect("seed");

    let events = feed(&app, 12 + 12 * 3).await;
    let seq = |e: &Value| -> i64 { e["seq"].as_str().expect("seq").parse().expect("a number") };
    let created: HashMap<&str, i64> = events
        .iter()
        .filter(|e| e["entity"] == "CUSTOMER")
        .map(|e| {
            assert_eq!(e["op"], "CREATED");
            (e["entityId"].as_str().expect("id"), seq(e))
        })
        .collect();
    assert_eq!(created.len(), 12);
    for event in events.iter().filter(|e| e["entity"] == "ACTIVITY") {
        let customer = event["activity"]["customer"]["id"]
            .as_str()
            .expect("the activity's customer");
        assert!(
            created[customer] < seq(event),
            "an activity of {customer} (seq {}) comes before the customer's creation (seq {})",
            seq(event),
            created[customer]
        );
    }
}

/// Snapshots carry their format version; an event this build cannot read (written by a newer
/// one) is an INTERNAL error at its entity, without detail, and the feed does not skip it.
#[tokio::test]
async fn snapshots_are_versioned_and_unreadable_ones_are_errors_not_gaps() {
    use sea_orm::{ConnectionTrait, Statement};

    let app = TestApp::spawn().await;
    let first = app.customer(json!({"name": "Readable"})).await;
    let second = app.customer(json!({"name": "From the future"})).await;
    let log = log(&app).await;
    assert!(
        log.iter().all(|e| e.snapshot["snapshotVersion"] == 1),
        "{log:#?}"
    );

    let db = Database::connect(&app.db_url).await.expect("database");
    let backend = db.get_database_backend();
    let future = json!({"snapshotVersion": 99, "id": second, "fullName": "From the future"});
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        match backend {
            sea_orm::DbBackend::Postgres => "UPDATE events SET snapshot = $1 WHERE entity_id = $2",
            _ => "UPDATE events SET snapshot = ? WHERE entity_id = ?",
        },
        [future.into(), second.clone().into()],
    ))
    .await
    .expect("rewrite the snapshot");

    let r = app
        .gql(
            "{ changes(first: 10) { events { entityId customer { id name } } } }",
            json!({}),
        )
        .await;
    let events = r.data("changes.events").as_array().expect("events").clone();
    assert_eq!(
        events.len(),
        2,
        "the unreadable event is not skipped: {events:#?}"
    );
    assert_eq!(events[0]["customer"]["id"], first.as_str());
    assert_eq!(events[1]["entityId"], second.as_str());
    assert_eq!(events[1]["customer"], Value::Null);
    assert_eq!(r.error_codes(), ["INTERNAL"], "{:#?}", r.body);
    crate::helpers::assert_no_leak(&r.body);
}
