//! Customer queries and mutations: create, read, update (with versions), soft delete,
//! restore, and validation that changes nothing.

use serde_json::{Value, json};

use crate::helpers::TestApp;

const FIELDS: &str = "id name email phone company lifecycleStage tags customFields version createdAt updatedAt deletedAt lastActivityAt owner { id subject } externalIds { source externalId } socialProfiles { network handle networkUserId url }";

async fn total(app: &TestApp) -> u64 {
    let r = app.gql("{ customers { totalCount } }", json!({})).await;
    r.assert_ok();
    r.data("customers.totalCount").as_u64().expect("count")
}

#[tokio::test]
async fn create_normalises_input_and_reads_back() {
    let app = TestApp::spawn().await;
    let r = app
        .gql(
            &format!("mutation($i: CreateCustomerInput!) {{ createCustomer(input: $i) {{ customer {{ {FIELDS} }} userErrors {{ field message code }} }} }}"),
            json!({ "i": {
                "name": "  Grace Hopper ",
                "email": "Grace@Navy.MIL",
                "phone": "+1 (202) 555-0143",
                "company": "US Navy",
                "lifecycleStage": "PROSPECT",
                "tags": ["Admiral", "cobol", "admiral"],
                "customFields": {"rank": "Rear Admiral", "born": 1906},
                "externalIds": [{"source": "Stripe", "externalId": "cus_42"}],
                "socialProfiles": [{"network": "LinkedIn", "handle": "ghopper", "url": "https://linkedin.com/in/ghopper"}]
            }}),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.data("createCustomer.userErrors"), &json!([]));
    let c = r.data("createCustomer.customer").clone();
    assert!(c["id"].as_str().expect("id").starts_with("cus_"));
    assert_eq!(c["name"], "Grace Hopper");
    assert_eq!(c["email"], "Grace@navy.mil");
    assert_eq!(c["phone"], "+12025550143");
    assert_eq!(c["lifecycleStage"], "PROSPECT");
    assert_eq!(c["tags"], json!(["admiral", "cobol"]));
    assert_eq!(
        c["customFields"],
        json!({"rank": "Rear Admiral", "born": 1906})
    );
    assert_eq!(c["version"], 1);
    assert_eq!(c["deletedAt"], Value::Null);
    assert_eq!(c["owner"]["subject"], "user-1");
    assert_eq!(
        c["externalIds"],
        json!([{"source": "stripe", "externalId": "cus_42"}])
    );
    assert_eq!(c["socialProfiles"][0]["network"], "linkedin");

    let r = app
        .gql(
            &format!("query($id: ID!) {{ customer(id: $id) {{ {FIELDS} }} }}"),
            json!({ "id": c["id"] }),
        )
        .await;
    r.assert_ok();
    assert_eq!(
        r.data("customer"),
        &c,
        "a read returns what the write returned"
    );
}

#[tokio::test]
async fn invalid_input_is_reported_field_by_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let long = "x".repeat(201);
    let cases = [
        (json!({"name": ""}), vec![("name", "REQUIRED")]),
        (json!({"name": long}), vec![("name", "TOO_LONG")]),
        (
            json!({"name": "Ok", "email": "not-an-email"}),
            vec![("email", "INVALID_EMAIL")],
        ),
        (
            json!({"name": "Ok", "phone": "call me maybe"}),
            vec![("phone", "INVALID_PHONE")],
        ),
        (
            json!({"name": "Ok", "phone": "+1 555"}),
            vec![("phone", "INVALID_PHONE")],
        ),
        (
            json!({"name": "Ok", "tags": (0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
            vec![("tags", "TOO_MANY")],
        ),
        (
            json!({"name": "Ok", "customFields": [1, 2]}),
            vec![("customFields", "INVALID")],
        ),
        (
            json!({"name": "Ok", "ownerId": "usr_01JD0000000000000000000000"}),
            vec![("ownerId", "NOT_FOUND")],
        ),
        (
            json!({"name": "", "email": "bad"}),
            vec![("name", "REQUIRED"), ("email", "INVALID_EMAIL")],
        ),
        (
            json!({"name": "Ok", "externalIds": [{"source": "s", "externalId": "1"}, {"source": "S", "externalId": "1"}]}),
            vec![("externalIds.1.externalId", "DUPLICATE")],
        ),
        (
            json!({"name": "Ok", "socialProfiles": [{"network": "x", "handle": "h", "url": "javascript:alert(1)"}]}),
            vec![("socialProfiles.0.url", "INVALID")],
        ),
    ];
    for (input, expected) in cases {
        let r = app
            .gql(
                "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } userErrors { field message code } } }",
                json!({ "i": input }),
            )
            .await;
        r.assert_ok();
        assert_eq!(r.data("createCustomer.customer"), &Value::Null, "{input}");
        let got: Vec<(String, String)> = r
            .data("createCustomer.userErrors")
            .as_array()
            .expect("userErrors")
            .iter()
            .map(|e| {
                let field = e["field"]
                    .as_array()
                    .expect("field")
                    .iter()
                    .map(|p| p.as_str().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(".");
                assert!(!e["message"].as_str().unwrap_or_default().is_empty());
                (field, e["code"].as_str().unwrap_or_default().to_owned())
            })
            .collect();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
            .collect();
        assert_eq!(got, expected, "{input}");
    }
    assert_eq!(total(&app).await, 0, "no failed create wrote anything");
}

#[tokio::test]
async fn an_external_id_belongs_to_one_customer() {
    let app = TestApp::spawn().await;
    app.customer(
        json!({"name": "First", "externalIds": [{"source": "hubspot", "externalId": "77"}]}),
    )
    .await;
    let r = app
        .gql(
            "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } userErrors { field code } } }",
            json!({"i": {"name": "Second", "externalIds": [{"source": "hubspot", "externalId": "77"}]}}),
        )
        .await;
    r.assert_ok();
    assert_eq!(
        r.data("createCustomer.userErrors"),
        &json!([{"field": ["externalIds", "0", "externalId"], "code": "DUPLICATE"}])
    );
    assert_eq!(
        total(&app).await,
        1,
        "the second customer was rolled back with its external id"
    );
}

#[tokio::test]
async fn update_changes_given_fields_clears_nulls_and_bumps_the_version() {
    let app = TestApp::spawn().await;
    let id = app
        .customer(json!({"name": "Alan", "email": "alan@example.com", "company": "Bletchley"}))
        .await;
    let r = app
        .gql(
            "mutation($i: UpdateCustomerInput!) { updateCustomer(input: $i) { customer { name email company lifecycleStage version } userErrors { field code message } } }",
            json!({"i": {"id": id, "expectedVersion": 1, "company": null, "lifecycleStage": "CUSTOMER"}}),
        )
        .await;
    r.assert_ok();
    assert_eq!(
        r.data("updateCustomer.customer"),
        &json!({"name": "Alan", "email": "alan@example.com", "company": null, "lifecycleStage": "CUSTOMER", "version": 2}),
        "{}",
        r.body
    );

    // A no-op update writes nothing: the version stays.
    let r = app
        .gql(
            "mutation($i: UpdateCustomerInput!) { updateCustomer(input: $i) { customer { version } userErrors { code } } }",
            json!({"i": {"id": id, "name": "Alan"}}),
        )
        .await;
    assert_eq!(r.data("updateCustomer.customer.version"), 2);
}

#[tokio::test]
async fn a_stale_version_is_a_conflict_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let id = app.customer(json!({"name": "Version One"})).await;
    let update = "mutation($i: UpdateCustomerInput!) { updateCustomer(input: $i) { customer { name version } userErrors { field message code } } }";
    app.gql(
        update,
        json!({"i": {"id": id, "expectedVersion": 1, "name": "Version Two"}}),
    )
    .await
    .assert_ok();
    let r = app
        .gql(
            update,
            json!({"i": {"id": id, "expectedVersion": 1, "name": "Lost Update"}}),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.data("updateCustomer.customer"), &Value::Null);
    assert_eq!(
        r.data("updateCustomer.userErrors.0.code"),
        "VERSION_CONFLICT"
    );
    assert_eq!(
        r.data("updateCustomer.userErrors.0.field"),
        &json!(["expectedVersion"])
    );
    let r = app
        .gql(
            "query($id: ID!) { customer(id: $id) { name version } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        r.data("customer"),
        &json!({"name": "Version Two", "version": 2})
    );

    let r = app
        .gql(
            "mutation($i: DeleteCustomerInput!) { deleteCustomer(input: $i) { deletedCustomerId userErrors { code } } }",
            json!({"i": {"id": id, "expectedVersion": 1}}),
        )
        .await;
    assert_eq!(
        r.data("deleteCustomer.userErrors.0.code"),
        "VERSION_CONFLICT"
    );
    assert_eq!(total(&app).await, 1);
}

#[tokio::test]
async fn invalid_updates_change_nothing() {
    let app = TestApp::spawn().await;
    let id = app
        .customer(json!({"name": "Stable", "email": "stable@example.com"}))
        .await;
    let r = app
        .gql(
            "mutation($i: UpdateCustomerInput!) { updateCustomer(input: $i) { customer { id } userErrors { field code } } }",
            json!({"i": {"id": id, "name": "Changed", "email": "broken"}}),
        )
        .await;
    assert_eq!(
        r.data("updateCustomer.userErrors"),
        &json!([{"field": ["email"], "code": "INVALID_EMAIL"}])
    );
    let r = app
        .gql(
            "query($id: ID!) { customer(id: $id) { name email version } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        r.data("customer"),
        &json!({"name": "Stable", "email": "stable@example.com", "version": 1})
    );
}

#[tokio::test]
async fn delete_moves_to_the_trash_and_restore_brings_back() {
    let app = TestApp::spawn().await;
    let id = app.customer(json!({"name": "Temporary"})).await;
    let keep = app.customer(json!({"name": "Keeper"})).await;
    let r = app
        .gql(
            "mutation($i: DeleteCustomerInput!) { deleteCustomer(input: $i) { deletedCustomerId customer { deletedAt version } userErrors { code } } }",
            json!({"i": {"id": id}}),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.data("deleteCustomer.deletedCustomerId"), &json!(id));
    assert!(r.data("deleteCustomer.customer.deletedAt").is_string());

    let r = app
        .gql(
            "query($id: ID!) { customer(id: $id) { id } node(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.body["data"], json!({"customer": null, "node": null}));
    let r = app.gql("{ customers { nodes { id } } trash: customers(filter: {deleted: true}) { nodes { id } } }", json!({})).await;
    assert_eq!(r.data("customers.nodes"), &json!([{"id": keep}]));
    assert_eq!(r.data("trash.nodes"), &json!([{"id": id}]));

    // Deleting it again: it is not there to delete.
    let r = app
        .gql("mutation($i: DeleteCustomerInput!) { deleteCustomer(input: $i) { deletedCustomerId } }", json!({"i": {"id": id}}))
        .await;
    assert_eq!(r.error_codes(), ["NOT_FOUND"]);
    assert_eq!(r.data("deleteCustomer"), &Value::Null);

    let r = app
        .gql(
            "mutation($i: RestoreCustomerInput!) { restoreCustomer(input: $i) { customer { id deletedAt version } userErrors { code } } }",
            json!({"i": {"id": id}}),
        )
        .await;
    r.assert_ok();
    assert_eq!(
        r.data("restoreCustomer.customer"),
        &json!({"id": id, "deletedAt": null, "version": 3})
    );
    assert_eq!(total(&app).await, 2);
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let app = TestApp::spawn().await;
    for id in [
        "cus_01JD0000000000000000000000",
        "nonsense",
        "act_01JD0000000000000000000000",
    ] {
        let r = app
            .gql(
                "query($id: ID!) { customer(id: $id) { id } }",
                json!({"id": id}),
            )
            .await;
        r.assert_ok();
        assert_eq!(r.data("customer"), &Value::Null);
        for mutation in [
            "mutation($id: ID!) { updateCustomer(input: {id: $id, name: \"X\"}) { customer { id } } }",
            "mutation($id: ID!) { deleteCustomer(input: {id: $id}) { deletedCustomerId } }",
            "mutation($id: ID!) { restoreCustomer(input: {id: $id}) { customer { id } } }",
        ] {
            let r = app.gql(mutation, json!({"id": id})).await;
            assert_eq!(
                r.error_codes(),
                ["NOT_FOUND"],
                "{mutation} {id}: {}",
                r.body
            );
        }
    }
}

#[tokio::test]
async fn pii_fields_need_the_pii_scope_while_siblings_resolve() {
    let app = TestApp::spawn().await;
    let id = app
        .customer(json!({"name": "Private", "email": "p@example.com", "phone": "+12025550100"}))
        .await;
    let token = app.token("customers:read");
    let r = app
        .gql_as(
            Some(&token),
            "query($id: ID!) { customer(id: $id) { name email phone } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        r.data("customer"),
        &json!({"name": "Private", "email": null, "phone": null})
    );
    assert_eq!(r.error_codes(), ["FORBIDDEN", "FORBIDDEN"]);
    let paths: Vec<&Value> = r.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| &e["path"])
        .collect();
    assert!(paths.contains(&&json!(["customer", "email"])));

    let r = app
        .gql_as(
            Some(&token),
            "mutation { createCustomer(input: {name: \"No\"}) { customer { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
    assert_eq!(total(&app).await, 1);
}

#[tokio::test]
async fn viewer_and_node_lookups() {
    let app = TestApp::spawn().await;
    let id = app.customer(json!({"name": "Noded"})).await;
    let r = app
        .gql(
            "query($ids: [ID!]!, $id: ID!) { viewer { subject org scopes } node(id: $id) { __typename id ... on Customer { name owner { id } } } nodes(ids: $ids) { __typename id } }",
            json!({"id": id, "ids": [id, "cus_01JD0000000000000000000000", "junk"]}),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.data("viewer.subject"), "user-1");
    assert_eq!(r.data("viewer.org"), &json!(app.org));
    assert_eq!(r.data("viewer.scopes").as_array().map(Vec::len), Some(7));
    assert_eq!(r.data("node.__typename"), "Customer");
    assert_eq!(r.data("node.name"), "Noded");
    let owner = r.data("node.owner.id").clone();
    assert_eq!(
        r.data("nodes"),
        &json!([{"__typename": "Customer", "id": id}, null, null])
    );
    let r = app
        .gql(
            "query($id: ID!) { node(id: $id) { __typename ... on User { subject } } }",
            json!({"id": owner}),
        )
        .await;
    assert_eq!(
        r.data("node"),
        &json!({"__typename": "User", "subject": "user-1"})
    );
}

#[tokio::test]
async fn concurrent_writers_all_land_without_lost_updates() {
    let app = TestApp::spawn().await;
    let id = app.customer(json!({"name": "Contended"})).await;
    // Twelve clients at once: each adds its own tag (read-modify-write on the server) and
    // logs an activity. None may fail and none may overwrite another.
    let writes = (0..12).map(|i| {
        let app = &app;
        let id = id.clone();
        async move {
            let r = app
                .gql(
                    "mutation($id: ID!, $n: String!) { updateCustomer(input: {id: $id, company: $n}) { customer { version } userErrors { code } } }",
                    json!({"id": id, "n": format!("company {i}")}),
                )
                .await;
            r.assert_ok();
            assert_eq!(r.data("updateCustomer.userErrors"), &json!([]), "{}", r.body);
            app.activity(json!({"customerId": id, "kind": "NOTE", "subject": format!("note {i}")})).await;
        }
    });
    futures_util::future::join_all(writes).await;
    let r = app
        .gql(
            "query($id: ID!) { customer(id: $id) { version activities { totalCount } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        r.data("customer"),
        &json!({"version": 13, "activities": {"totalCount": 12}})
    );
}

/// Replacing the linked lists with what they already hold changes nothing: no new version,
/// no event. A malformed id with an invalid patch answers like any id that names nothing:
/// the patch's errors first.
#[tokio::test]
async fn same_lists_are_no_change_and_malformed_ids_answer_like_missing_ones() {
    let app = TestApp::spawn().await;
    let id = app
        .customer(json!({"name": "Linked", "externalIds": [{"source": "erp", "externalId": "1"}], "socialProfiles": [{"network": "x", "handle": "linked"}]}))
        .await;
    let r = app
        .gql(
            "mutation($id: ID!) { updateCustomer(input: {id: $id, externalIds: [{source: \"erp\", externalId: \"1\"}], socialProfiles: [{network: \"x\", handle: \"linked\"}]}) { customer { version } userErrors { code } } }",
            json!({"id": id}),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.data("updateCustomer.customer.version"), 1);
    let feed = app
        .gql("{ changes(first: 10) { events { op } } }", json!({}))
        .await;
    assert_eq!(
        feed.data("changes.events").as_array().map(Vec::len),
        Some(1)
    );

    let answer = |id: &'static str| {
        let app = &app;
        async move {
            app.gql(
                "mutation($id: ID!) { updateCustomer(input: {id: $id, name: \"\"}) { customer { id } userErrors { field code } } }",
                json!({"id": id}),
            )
            .await
            .body
        }
    };
    let missing = answer("cus_01JD0000000000000000000000").await;
    assert_eq!(
        missing["data"]["updateCustomer"]["userErrors"][0]["code"],
        "REQUIRED"
    );
    assert_eq!(answer("garbage").await, missing);
    assert_eq!(answer("act_01JD0000000000000000000000").await, missing);
}
