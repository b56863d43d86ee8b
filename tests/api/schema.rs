//! `schema.graphql` is what the code serves: schema tooling reads the file, clients the
//! live introspection, and they must agree.

use serde_json::json;

use crate::helpers::TestApp;

#[test]
fn committed_schema_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql at the repository root");
    let printed = crm::graphql::sdl();
    assert!(
        committed.trim_end() == printed.trim_end(),
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
    );
}

#[tokio::test]
async fn introspection_lists_the_contract_root_fields() {
    let app = TestApp::spawn().await;
    let r = app
        .gql_as(
            None,
            "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }",
            json!({}),
        )
        .await;
    r.assert_ok();
    let names = |path: &str| -> Vec<String> {
        r.data(path)
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| f["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let queries = names("__schema.queryType.fields");
    for field in [
        "customer",
        "customers",
        "activity",
        "activities",
        "node",
        "nodes",
        "viewer",
    ] {
        assert!(queries.contains(&field.to_owned()), "missing query {field}");
    }
    let mutations = names("__schema.mutationType.fields");
    for field in [
        "createCustomer",
        "updateCustomer",
        "deleteCustomer",
        "restoreCustomer",
        "logActivity",
        "updateActivity",
        "deleteActivity",
    ] {
        assert!(
            mutations.contains(&field.to_owned()),
            "missing mutation {field}"
        );
    }
}
