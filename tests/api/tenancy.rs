//! Tenant isolation: another organization's data answers exactly like data that does not
//! exist, through every path a query can take.

use serde_json::{Value, json};

use crate::helpers::{ALL_SCOPES, TestApp};

#[tokio::test]
async fn another_orgs_rows_never_reach_the_caller() {
    let app = TestApp::spawn().await;
    // Org A's data, written by A.
    let a_customer = app.customer(json!({"name": "A's customer", "externalIds": [{"source": "crm", "externalId": "shared-key"}]})).await;
    let a_activity = app
        .activity(json!({"customerId": a_customer, "kind": "NOTE", "subject": "A's note"}))
        .await;

    let b = app.token_for("org_other", "intruder", ALL_SCOPES);
    let b = Some(b.as_str());

    // Lists and totals.
    let r = app
        .gql_as(
            b,
            "{ customers { totalCount nodes { id } } activities { totalCount nodes { id } } }",
            json!({}),
        )
        .await;
    r.assert_ok();
    assert_eq!(
        r.body["data"],
        json!({"customers": {"totalCount": 0, "nodes": []}, "activities": {"totalCount": 0, "nodes": []}})
    );

    // Lookups by id: indistinguishable from ids that never existed.
    let r = app
        .gql_as(
            b,
            "query($c: ID!, $a: ID!) { customer(id: $c) { id } activity(id: $a) { id } node(id: $c) { id } nodes(ids: [$c, $a]) { id } }",
            json!({"c": a_customer, "a": a_activity}),
        )
        .await;
    r.assert_ok();
    assert_eq!(
        r.body["data"],
        json!({"customer": null, "activity": null, "node": null, "nodes": [null, null]})
    );

    // Filters naming A's ids.
    let r = app
        .gql_as(
            b,
            "query($c: ID!) { activities(filter: {customerId: {eq: $c}}) { totalCount } }",
            json!({"c": a_customer}),
        )
        .await;
    assert_eq!(r.data("activities.totalCount"), 0);

    // Mutations by id: NOT_FOUND, nothing written.
    for (mutation, vars) in [
        (
            "mutation($id: ID!) { updateCustomer(input: {id: $id, name: \"pwned\"}) { customer { id } } }",
            json!({"id": a_customer}),
        ),
        (
            "mutation($id: ID!) { deleteCustomer(input: {id: $id}) { deletedCustomerId } }",
            json!({"id": a_customer}),
        ),
        (
            "mutation($id: ID!) { restoreCustomer(input: {id: $id}) { customer { id } } }",
            json!({"id": a_customer}),
        ),
        (
            "mutation($id: ID!) { updateActivity(input: {id: $id, subject: \"pwned\"}) { activity { id } } }",
            json!({"id": a_activity}),
        ),
        (
            "mutation($id: ID!) { deleteActivity(input: {id: $id}) { deletedActivityId } }",
            json!({"id": a_activity}),
        ),
    ] {
        let r = app.gql_as(b, mutation, vars).await;
        assert_eq!(r.error_codes(), ["NOT_FOUND"], "{mutation}");
    }
    let r = app
        .gql_as(b, "mutation($c: ID!) { logActivity(input: {customerId: $c, kind: NOTE, subject: \"x\"}) { userErrors { field code } } }", json!({"c": a_customer}))
        .await;
    assert_eq!(
        r.data("logActivity.userErrors"),
        &json!([{"field": ["customerId"], "code": "NOT_FOUND"}])
    );

    // B may use the same external key for its own customer: keys are per tenant.
    let r = app
        .gql_as(b, "mutation { createCustomer(input: {name: \"B's\", externalIds: [{source: \"crm\", externalId: \"shared-key\"}]}) { customer { id owner { subject } } userErrors { code } } }", json!({}))
        .await;
    assert_eq!(r.data("createCustomer.userErrors"), &json!([]));
    assert_eq!(r.data("createCustomer.customer.owner.subject"), "intruder");
    let b_customer = r.data("createCustomer.customer.id").clone();

    // A's owner id cannot be assigned by B.
    let r = app
        .gql("{ customers { nodes { owner { id } } } }", json!({}))
        .await;
    let a_owner = r.data("customers.nodes.0.owner.id").clone();
    let r = app
        .gql_as(b, "mutation($id: ID!, $o: ID!) { updateCustomer(input: {id: $id, ownerId: $o}) { userErrors { field code } } }", json!({"id": b_customer, "o": a_owner}))
        .await;
    assert_eq!(
        r.data("updateCustomer.userErrors"),
        &json!([{"field": ["ownerId"], "code": "NOT_FOUND"}])
    );
    let r = app
        .gql_as(
            b,
            "query($o: ID!) { node(id: $o) { id } }",
            json!({"o": a_owner}),
        )
        .await;
    assert_eq!(r.data("node"), &Value::Null);

    // A still sees exactly its own, unchanged.
    let r = app
        .gql(
            "{ customers { nodes { id name } } activities { nodes { subject } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.data("customers.nodes"),
        &json!([{"id": a_customer, "name": "A's customer"}])
    );
    assert_eq!(
        r.data("activities.nodes"),
        &json!([{"subject": "A's note"}])
    );
}

#[tokio::test]
async fn random_tenant_pairs_never_see_each_other() {
    let app = TestApp::spawn().await;
    let orgs: Vec<String> = (0..4).map(|i| format!("org_prop_{i}")).collect();
    let mut owned: Vec<Vec<String>> = vec![Vec::new(); orgs.len()];
    // A deterministic pseudo-random interleaving of writes across tenants.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for n in 0..24 {
        let org = (next() % orgs.len() as u64) as usize;
        let token = app.token_for(&orgs[org], "writer", ALL_SCOPES);
        let r = app
            .gql_as(
                Some(&token),
                "mutation($n: String!) { createCustomer(input: {name: $n}) { customer { id } } }",
                json!({"n": format!("c{n}")}),
            )
            .await;
        let id = r
            .data("createCustomer.customer.id")
            .as_str()
            .expect("id")
            .to_owned();
        let r = app
            .gql_as(Some(&token), "mutation($c: ID!) { logActivity(input: {customerId: $c, kind: NOTE, subject: \"n\"}) { activity { id } } }", json!({"c": id}))
            .await;
        r.assert_ok();
        owned[org].push(id);
    }
    for (i, org) in orgs.iter().enumerate() {
        let token = app.token_for(org, "reader", ALL_SCOPES);
        let r = app
            .gql_as(Some(&token), "{ customers(first: 100) { totalCount nodes { id activities { nodes { customer { id } } } } } activities(first: 100) { nodes { customer { id } } } }", json!({}))
            .await;
        r.assert_ok();
        let mut seen: Vec<String> = r
            .data("customers.nodes")
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        seen.sort();
        let mut mine = owned[i].clone();
        mine.sort();
        assert_eq!(seen, mine, "org {org} sees exactly its own customers");
        assert_eq!(
            r.data("customers.totalCount").as_u64(),
            Some(mine.len() as u64)
        );
        for a in r.data("activities.nodes").as_array().expect("nodes") {
            assert!(mine.contains(&a["customer"]["id"].as_str().unwrap_or_default().to_owned()));
        }
        for other in (0..orgs.len()).filter(|j| *j != i) {
            for id in &owned[other] {
                let r = app
                    .gql_as(
                        Some(&token),
                        "query($id: ID!) { customer(id: $id) { id } node(id: $id) { id } }",
                        json!({"id": id}),
                    )
                    .await;
                assert_eq!(r.body["data"], json!({"customer": null, "node": null}));
            }
        }
    }
}
