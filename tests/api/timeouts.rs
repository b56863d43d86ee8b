//! Time limits: a request that runs past its deadline is stopped and changes nothing, its
//! connection goes back to the pool; a statement past PostgreSQL's statement timeout is
//! cancelled. Both answer TIMEOUT, without SQL.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::TestApp;

const CREATE: &str =
    "mutation($n: String!) { createCustomer(input: {name: $n}) { customer { id } } }";
const COUNT: &str = "{ customers { totalCount } }";

/// Another connection holds a lock the write needs (SQLite's write lock, PostgreSQL's table
/// lock), so the write waits; the request deadline stops it.
#[tokio::test]
async fn a_request_past_its_deadline_is_stopped_and_changes_nothing() {
    let app = TestApp::spawn_with(|c| {
        c.edge.request_timeout_secs = 1;
        c.db.statement_timeout_ms = 0;
    })
    .await;
    // One connection, so the lock and its release are on the same one.
    let mut options = sea_orm::ConnectOptions::new(app.db_url.clone());
    options.max_connections(1).sqlx_logging(false);
    let holder = sea_orm::Database::connect(options).await.expect("database");
    use sea_orm::ConnectionTrait;
    let lock = if app.db_url.starts_with("sqlite") {
        vec!["BEGIN IMMEDIATE"]
    } else {
        vec!["BEGIN", "LOCK TABLE customers IN ACCESS EXCLUSIVE MODE"]
    };
    for statement in lock {
        holder.execute_unprepared(statement).await.expect("lock");
    }
    let started = Instant::now();
    let r = app.gql(CREATE, json!({"n": "Waits"})).await;
    let took = started.elapsed();
    assert_eq!(r.error_codes(), ["TIMEOUT"], "{}", r.body);
    assert!(
        took < Duration::from_secs(5),
        "stopped at the deadline: {took:?}"
    );
    holder
        .execute_unprepared("ROLLBACK")
        .await
        .expect("release");

    // Nothing was written, and every pooled connection is usable again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        app.gql(COUNT, json!({})).await.data("customers.totalCount"),
        0
    );
    for i in 0..8 {
        app.gql(CREATE, json!({"n": format!("After {i}")}))
            .await
            .assert_ok();
    }
    assert_eq!(
        app.gql(COUNT, json!({})).await.data("customers.totalCount"),
        8
    );
}

mod needs_postgres {
    use std::time::{Duration, Instant};

    use sea_orm::{ConnectionTrait, TransactionTrait};
    use serde_json::json;

    use super::{COUNT, CREATE};
    use crate::helpers::TestApp;

    #[tokio::test]
    #[ignore = "needs PostgreSQL: TEST_DATABASE_URL=postgres://… cargo test -- --ignored needs_postgres::"]
    async fn a_statement_past_its_timeout_is_cancelled() {
        assert!(
            std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()),
            "needs PostgreSQL: set TEST_DATABASE_URL=postgres://…"
        );
        let app = TestApp::spawn_with(|c| c.db.statement_timeout_ms = 300).await;
        app.customer(json!({"name": "Ada"})).await;
        let db = sea_orm::Database::connect(&app.db_url)
            .await
            .expect("database");
        let locker = db.begin().await.expect("begin");
        locker
            .execute_unprepared("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock");
        let started = Instant::now();
        let read = app.gql(COUNT, json!({})).await;
        let write = app.gql(CREATE, json!({"n": "Waits"})).await;
        let took = started.elapsed();
        locker.rollback().await.expect("release");
        for r in [&read, &write] {
            assert!(
                r.error_codes().contains(&"TIMEOUT".to_owned()),
                "{}",
                r.body
            );
            let text = r.body.to_string();
            assert!(!text.contains("canceling statement"), "{text}");
        }
        assert!(took < Duration::from_secs(5), "{took:?}");
        // The write was cancelled whole; the server goes on.
        let count = app.gql(COUNT, json!({})).await;
        count.assert_ok();
        assert_eq!(count.data("customers.totalCount"), 1);
    }
}
