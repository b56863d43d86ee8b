//! The schema migrations and the seed command, on whichever backend the suite runs on.

use migration::{Migrator, MigratorTrait};
use sea_orm::Database;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn migrations_go_down_and_up_again() {
    let app = TestApp::spawn().await;
    let db = Database::connect(&app.db_url).await.expect("database");
    // The server applied them on start; undo all, then apply again.
    Migrator::down(&db, None).await.expect("down");
    assert!(
        Migrator::get_applied_migrations(&db)
            .await
            .expect("status")
            .is_empty()
    );
    Migrator::up(&db, None).await.expect("up again");
    Migrator::down(&db, None).await.expect("down again");
    Migrator::up(&db, None).await.expect("up a third time");
    app.customer(json!({"name": "After migrations"})).await;
}

#[tokio::test]
async fn seed_writes_queryable_customers_and_activities() {
    let app = TestApp::spawn().await;
    let db = Database::connect(&app.db_url).await.expect("database");
    let store = crm::domain::Store::new(db);
    let done = crm::domain::seed::seed(&store, &app.org, 30, 4)
        .await
        .expect("seed");
    assert_eq!((done.customers, done.activities), (30, 120));
    let r = app
        .gql(
            "{ customers(first: 100) { totalCount nodes { name email owner { name } activities { totalCount } } } activities { totalCount } }",
            json!({}),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.data("customers.totalCount"), 30);
    assert_eq!(r.data("activities.totalCount"), 120);
    for c in r.data("customers.nodes").as_array().expect("nodes") {
        assert!(!c["name"].as_str().unwrap_or_default().is_empty());
        assert!(c["owner"]["name"].is_string());
        assert_eq!(c["activities"]["totalCount"], 4);
    }
}

/// An event this build cannot read is not skipped in silence: the `changes` feed refuses to
/// page past it (INTERNAL, its `seq` logged), rather than handing a replica a gap.
#[tokio::test]
async fn an_unreadable_event_stops_the_feed_instead_of_being_skipped() {
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn().await;
    app.customer(json!({"name": "Before"})).await;
    let db = Database::connect(&app.db_url).await.expect("database");
    db.execute_unprepared(&format!(
        "UPDATE events SET op = 'EXPLODED' WHERE org_id = '{}'",
        app.org
    ))
    .await
    .expect("corrupt the event");
    let r = app
        .gql("{ changes { events { seq op } endCursor } }", json!({}))
        .await;
    assert_eq!(r.error_codes(), ["INTERNAL"], "{}", r.body);
    assert!(r.data("changes").is_null());
}
