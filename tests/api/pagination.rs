//! Keyset pagination: every ordering, both directions, cursors that survive inserts, and
//! arguments that are refused.

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// Walks a connection to the end with `first`/`after` (or `last`/`before` when backward),
/// returning the ids in the order the connection defines.
async fn walk(app: &TestApp, field: &str, args: &str, page: usize, backward: bool) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let (size, cur) = if backward {
            ("last", "before")
        } else {
            ("first", "after")
        };
        let query = format!(
            "query($c: String) {{ list: {field}({size}: {page}, {cur}: $c{args}) {{ edges {{ cursor node {{ id }} }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"
        );
        let r = app.gql(&query, json!({"c": cursor})).await;
        r.assert_ok();
        let edges = r.data("list.edges").as_array().expect("edges").clone();
        let mut got: Vec<String> = edges
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert!(got.len() <= page);
        let info = r.data("list.pageInfo").clone();
        if backward {
            got.extend(ids);
            ids = got;
            if info["hasPreviousPage"] == false {
                return ids;
            }
            cursor = info["startCursor"].as_str().map(str::to_owned);
        } else {
            ids.extend(got);
            if info["hasNextPage"] == false {
                return ids;
            }
            cursor = info["endCursor"].as_str().map(str::to_owned);
        }
    }
    panic!("pagination did not end");
}

async fn seed(app: &TestApp) -> Vec<(String, String, Option<String>)> {
    // Names collide on purpose: ties must be broken by id, never skipped or repeated.
    let names = [
        "delta", "alpha", "charlie", "alpha", "echo", "bravo", "delta", "foxtrot", "golf", "alpha",
        "hotel",
    ];
    let mut rows = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let id = app.customer(json!({"name": name})).await;
        let last = if i % 3 == 0 {
            None
        } else {
            let at = format!("2026-0{}-01T00:00:00Z", 1 + (i % 4));
            app.activity(
                json!({"customerId": id, "kind": "NOTE", "subject": "x", "occurredAt": at}),
            )
            .await;
            Some(at)
        };
        rows.push((id, (*name).to_owned(), last));
    }
    rows
}

#[tokio::test]
async fn every_ordering_pages_forward_and_backward_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let rows = seed(&app).await;

    let mut by_name = rows.clone();
    by_name.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    let expect_name: Vec<String> = by_name.iter().map(|r| r.0.clone()).collect();

    let mut by_last = rows.clone();
    // NULLs last; ties by id.
    by_last.sort_by(|a, b| (a.2.is_none(), &a.2, &a.0).cmp(&(b.2.is_none(), &b.2, &b.0)));
    let expect_last: Vec<String> = by_last.iter().map(|r| r.0.clone()).collect();
    let mut by_last_desc = rows.clone();
    by_last_desc.sort_by(|a, b| (a.2.is_none(), &b.2, &b.0).cmp(&(b.2.is_none(), &a.2, &a.0)));
    let expect_last_desc: Vec<String> = by_last_desc.iter().map(|r| r.0.clone()).collect();

    let created: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let mut created_desc = created.clone();
    created_desc.reverse();

    for (args, expected) in [
        ("", &created),
        (
            ", orderBy: {field: CREATED_AT, direction: DESC}",
            &created_desc,
        ),
        (", orderBy: {field: NAME}", &expect_name),
        (", orderBy: {field: LAST_ACTIVITY_AT}", &expect_last),
        (
            ", orderBy: {field: LAST_ACTIVITY_AT, direction: DESC}",
            &expect_last_desc,
        ),
    ] {
        for page in [1, 3, 4, 20] {
            assert_eq!(
                &walk(&app, "customers", args, page, false).await,
                expected,
                "forward {args} page {page}"
            );
            assert_eq!(
                &walk(&app, "customers", args, page, true).await,
                expected,
                "backward {args} page {page}"
            );
        }
    }
}

#[tokio::test]
async fn activities_page_newest_first_by_default() {
    let app = TestApp::spawn().await;
    let customer = app.customer(json!({"name": "Timeline"})).await;
    let mut ids = Vec::new();
    for day in 1..=9 {
        ids.push(app.activity(json!({"customerId": customer, "kind": "NOTE", "subject": format!("day {day}"), "occurredAt": format!("2026-05-0{day}T00:00:00Z")})).await);
    }
    ids.reverse();
    assert_eq!(walk(&app, "activities", "", 2, false).await, ids);
    assert_eq!(walk(&app, "activities", "", 4, true).await, ids);
    let mut oldest_first = ids.clone();
    oldest_first.reverse();
    assert_eq!(
        walk(
            &app,
            "activities",
            ", orderBy: {field: OCCURRED_AT, direction: ASC}",
            5,
            false
        )
        .await,
        oldest_first
    );
}

#[tokio::test]
async fn a_cursor_survives_inserts_before_it() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for name in ["m0", "m1", "m2", "m3"] {
        ids.push(app.customer(json!({"name": name})).await);
    }
    let page = "query($c: String) { customers(first: 2, after: $c, orderBy: {field: NAME}) { nodes { id } pageInfo { hasNextPage endCursor } } }";
    let r = app.gql(page, json!({"c": null})).await;
    r.assert_ok();
    assert_eq!(
        r.data("customers.nodes"),
        &json!([{"id": ids[0]}, {"id": ids[1]}])
    );
    let cursor = r.data("customers.pageInfo.endCursor").clone();
    // Two rows sorting before the cursor appear between two requests. The order is now
    // a0 a1 m0 m1 m2 m3: an OFFSET 2 page would repeat m0 and m1 (and a third request would
    // serve m2 m3 again); the keyset page after m1 is still m2 m3, and the last.
    for name in ["a0", "a1"] {
        app.customer(json!({"name": name})).await;
    }
    let r = app.gql(page, json!({"c": cursor})).await;
    r.assert_ok();
    assert_eq!(
        r.data("customers.nodes"),
        &json!([{"id": ids[2]}, {"id": ids[3]}])
    );
    assert_eq!(r.data("customers.pageInfo.hasNextPage"), false);
}

#[tokio::test]
async fn bad_page_arguments_are_refused_with_bad_user_input() {
    let app = TestApp::spawn().await;
    app.customer(json!({"name": "one"})).await;
    let r = app
        .gql(
            "{ customers(first: 1, orderBy: {field: NAME}) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let name_cursor = r.data("customers.pageInfo.endCursor").clone();
    for (args, cursor) in [
        ("first: -1", json!(null)),
        ("first: 101", json!(null)),
        ("first: 1, last: 1", json!(null)),
        ("after: \"garbage!!\"", json!(null)),
        ("before: $c", json!("eyJvIjoxfQ")),
        ("after: $c", name_cursor.clone()),
    ] {
        let vars = if args.contains("$c") {
            "($c: String)"
        } else {
            ""
        };
        let query = format!(
            "query{vars} {{ customers({args}) {{ nodes {{ id }} }} other: customers(first: 0) {{ totalCount }} }}"
        );
        let r = app.gql(&query, json!({"c": cursor})).await;
        assert_eq!(r.error_codes(), ["BAD_USER_INPUT"], "{args}: {}", r.body);
        assert_eq!(r.data("customers"), &Value::Null, "{}", r.body);
        assert_eq!(r.data("other.totalCount"), 1, "siblings still resolve");
    }
}

#[tokio::test]
async fn total_count_counts_all_pages() {
    let app = TestApp::spawn().await;
    for i in 0..7 {
        app.customer(json!({"name": format!("n{i}")})).await;
    }
    let r = app.gql("{ customers(first: 2) { totalCount nodes { id } pageInfo { hasNextPage hasPreviousPage } } }", json!({})).await;
    assert_eq!(r.data("customers.totalCount"), 7);
    assert_eq!(r.data("customers.nodes").as_array().map(Vec::len), Some(2));
    assert_eq!(
        r.data("customers.pageInfo"),
        &json!({"hasNextPage": true, "hasPreviousPage": false})
    );
}

/// A nested page fetches only the columns its selection needs; whatever way the selection
/// is written (plain fields, `edges.node`, fragments, inline fragments, aliases), each
/// activity shows exactly what a lookup by id shows.
#[tokio::test]
async fn nested_pages_show_every_selected_field_however_it_is_selected() {
    let app = TestApp::spawn().await;
    let customer = app.customer(json!({"name": "Projected"})).await;
    for i in 0..3 {
        app.activity(json!({"customerId": customer, "kind": "TASK", "subject": format!("s{i}"), "body": format!("b{i}"), "occurredAt": format!("2026-0{}-01T00:00:00Z", i + 1), "dueAt": "2026-09-01T00:00:00Z", "source": "erp", "externalId": format!("x{i}")}))
            .await;
    }
    let all = "id kind subject body occurredAt dueAt completedAt source externalId version createdAt updatedAt author { subject } customer { id }";
    let by_id = |id: String| {
        let app = &app;
        async move {
            let r = app
                .gql(
                    &format!("query($id: ID!) {{ activity(id: $id) {{ {all} }} }}"),
                    json!({"id": id}),
                )
                .await;
            r.assert_ok();
            r.data("activity").clone()
        }
    };
    let shapes = [
        format!("nodes {{ {all} }}"),
        format!("edges {{ node {{ {all} }} }}"),
        "nodes { ...F }".to_owned(),
        format!("nodes {{ ... on Activity {{ {all} }} }}"),
        format!("... on ActivityConnection {{ nodes {{ {all} }} }}"),
    ];
    for shape in shapes {
        let query = format!(
            "query($id: ID!) {{ customer(id: $id) {{ activities(first: 3) {{ {shape} }} other: activities(first: 1) {{ nodes {{ subject }} }} }} }}"
        );
        let query = if shape.contains("...F") {
            format!("{query} fragment F on Activity {{ {all} }}")
        } else {
            query
        };
        let r = app.gql(&query, json!({"id": customer})).await;
        r.assert_ok();
        let page = r.data("customer.activities");
        let nodes: Vec<Value> = match page.get("nodes") {
            Some(nodes) => nodes.as_array().expect("nodes").clone(),
            None => page["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .map(|e| e["node"].clone())
                .collect(),
        };
        assert_eq!(nodes.len(), 3, "{shape}");
        for node in nodes {
            let id = node["id"].as_str().expect("id").to_owned();
            assert_eq!(node, by_id(id).await, "{shape}");
        }
        assert_eq!(r.data("customer.other.nodes.0.subject"), "s2", "{shape}");
    }
}

/// A customer page fetches only the columns its selection needs; each customer shows
/// exactly what a lookup by id shows, however the selection is written.
#[tokio::test]
async fn customer_pages_show_every_selected_field_however_it_is_selected() {
    let app = TestApp::spawn().await;
    for i in 0..3 {
        let id = app
            .customer(json!({"name": format!("Projected {i}"), "email": format!("p{i}@example.com"), "phone": "+12025550143", "company": "Acme", "lifecycleStage": "PROSPECT", "tags": ["vip"], "customFields": {"tier": i}, "externalIds": [{"source": "erp", "externalId": format!("e{i}")}]}))
            .await;
        app.activity(json!({"customerId": id, "kind": "CALL", "subject": "hello", "occurredAt": "2026-02-01T00:00:00Z"}))
            .await;
    }
    let all = "id name email phone company lifecycleStage tags customFields version lastActivityAt createdAt updatedAt deletedAt owner { subject } externalIds { source externalId } activities(first: 1) { nodes { subject } }";
    let shapes = [
        format!("nodes {{ {all} }}"),
        format!("edges {{ cursor node {{ {all} }} }}"),
        format!("nodes {{ ... on Customer {{ {all} }} }}"),
        format!("nodes {{ id ... on Customer {{ name }} }} more: nodes {{ {all} }}"),
    ];
    for shape in shapes {
        let r = app
            .gql(
                &format!("{{ customers(first: 3, orderBy: {{field: NAME}}) {{ {shape} }} }}"),
                json!({}),
            )
            .await;
        r.assert_ok();
        let page = r.data("customers");
        let nodes: Vec<Value> = match (page.get("more"), page.get("nodes")) {
            (Some(more), _) => more.as_array().expect("nodes").clone(),
            (None, Some(nodes)) => nodes.as_array().expect("nodes").clone(),
            (None, None) => page["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .map(|e| e["node"].clone())
                .collect(),
        };
        assert_eq!(nodes.len(), 3, "{shape}");
        for node in nodes {
            let by_id = app
                .gql(
                    &format!("query($id: ID!) {{ customer(id: $id) {{ {all} }} }}"),
                    json!({"id": node["id"]}),
                )
                .await;
            by_id.assert_ok();
            assert_eq!(&node, by_id.data("customer"), "{shape}");
        }
    }
}

/// A page fetches its cursors' columns, and the row past it that tells whether another page
/// follows, only when its selection reads them. However they are selected (alone, aliased,
/// in a fragment) they are right, on a top-level list and on a nested page.
#[tokio::test]
async fn cursors_and_further_pages_are_right_however_they_are_selected() {
    let app = TestApp::spawn().await;
    let customer = app.customer(json!({"name": "Paged 0"})).await;
    for i in 1..3 {
        app.customer(json!({"name": format!("Paged {i}")})).await;
    }
    for i in 0..3 {
        app.activity(json!({"customerId": customer, "kind": "NOTE", "subject": format!("s{i}"), "occurredAt": format!("2026-0{}-01T00:00:00Z", i + 1)}))
            .await;
    }
    // (query with `{A}` for the page arguments and `{S}` for the selection, where the page
    // is in the answer, its type, the field that names a row, the rows in order)
    let nested = format!("{{ customer(id: \"{customer}\") {{ activities({{A}}) {{ {{S}} }} }} }}");
    let connections = [
        (
            "{ customers({A}, orderBy: {field: NAME}) { {S} } }".to_owned(),
            "customers",
            "CustomerConnection",
            "name",
            ["Paged 0", "Paged 1", "Paged 2"],
        ),
        (
            "{ activities({A}) { {S} } }".to_owned(),
            "activities",
            "ActivityConnection",
            "subject",
            ["s2", "s1", "s0"],
        ),
        (
            nested,
            "customer.activities",
            "ActivityConnection",
            "subject",
            ["s2", "s1", "s0"],
        ),
    ];
    for (query, path, ty, field, rows) in connections {
        let page = |args: String, selection: String| {
            let query = query.replace("{A}", &args).replace("{S}", &selection);
            let app = &app;
            async move {
                let r = app.gql(&query, json!({})).await;
                r.assert_ok();
                r.data(path).clone()
            }
        };
        let names = |page: &Value| -> Vec<String> {
            page["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .map(|n| n[field].as_str().unwrap_or_default().to_owned())
                .collect()
        };
        let after = |cursor: &Value| format!("first: 5, after: {cursor}");
        let before = |cursor: &Value| format!("last: 5, before: {cursor}");
        let nodes = format!("nodes {{ {field} }}");

        for (args, more) in [("first: 2", true), ("first: 3", false)] {
            let p = page(args.into(), "pageInfo { hasNextPage }".into()).await;
            assert_eq!(p["pageInfo"]["hasNextPage"], more, "{query} {args}");
        }
        for (args, more) in [("last: 2", true), ("last: 3", false)] {
            let p = page(args.into(), "i: pageInfo { p: hasPreviousPage }".into()).await;
            assert_eq!(p["i"]["p"], more, "{query} {args}");
        }

        let p = page("first: 1".into(), "edges { cursor }".into()).await;
        let next = page(after(&p["edges"][0]["cursor"]), nodes.clone()).await;
        assert_eq!(names(&next), rows[1..], "{query}");

        let p = page("first: 2".into(), "p: pageInfo { e: endCursor }".into()).await;
        let next = page(after(&p["p"]["e"]), nodes.clone()).await;
        assert_eq!(names(&next), rows[2..], "{query}");

        let selection = format!("... on {ty} {{ pageInfo {{ startCursor hasPreviousPage }} }}");
        let p = page("last: 1".into(), selection).await;
        assert_eq!(p["pageInfo"]["hasPreviousPage"], true, "{query}");
        let earlier = page(before(&p["pageInfo"]["startCursor"]), nodes.clone()).await;
        assert_eq!(names(&earlier), rows[..2], "{query}");
    }
}
