//! The scope property: for random scope sets and random queries (aliases, inline and named
//! fragments, `node`/`nodes`, nested paths such as activity -> customer -> email), no field
//! the scopes forbid ever carries a value, and each such field has a FORBIDDEN error at its
//! own path. The rules are read from `schema.graphql`, what clients are shown.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// (type, field) -> alternatives of required scopes, from the `@requiresScopes` in the SDL.
fn rules() -> HashMap<(String, String), Vec<Vec<String>>> {
    let sdl = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql");
    let mut rules = HashMap::new();
    let mut current = String::new();
    for line in sdl.lines() {
        let t = line.trim();
        if let Some(rest) = t
            .strip_prefix("type ")
            .or_else(|| t.strip_prefix("interface "))
        {
            current = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            continue;
        }
        let Some((decl, directive)) = t.split_once("@requiresScopes(scopes: ") else {
            continue;
        };
        let field = decl
            .split(['(', ':'])
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        // Other directives (`@cost`, `@listSize`) may follow on the same line.
        let lists = directive
            .find("]])")
            .map_or(directive.trim_end_matches(')'), |end| &directive[..end + 2]);
        let alternatives: Vec<Vec<String>> = lists
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split("], [")
            .map(|alt| {
                alt.split(',')
                    .map(|s| s.trim().trim_matches(['[', ']', '"']).to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .collect();
        rules.insert((current.clone(), field), alternatives);
    }
    rules
}

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

struct Gen {
    rng: Rng,
    aliases: usize,
    fragments: Vec<String>,
}

impl Gen {
    /// `field` under a random alias (`x<n>_field`) half the time.
    fn name(&mut self, field: &str) -> String {
        self.call(field, "")
    }

    /// `field(args)`, under a random alias (`x<n>_field`) half the time.
    fn call(&mut self, field: &str, args: &str) -> String {
        if self.rng.chance(50) {
            self.aliases += 1;
            format!("x{}_{field}: {field}{args}", self.aliases)
        } else {
            format!("{field}{args}")
        }
    }

    fn wrap(&mut self, ty: &str, body: String) -> String {
        match self.rng.next() % 3 {
            0 => body,
            1 => format!("... on {ty} {{ {body} }}"),
            _ => {
                let name = format!("F{}", self.fragments.len());
                self.fragments
                    .push(format!("fragment {name} on {ty} {{ {body} }}"));
                format!("...{name}")
            }
        }
    }

    fn customer(&mut self, depth: usize) -> String {
        let mut parts = vec!["__typename".to_owned()];
        for field in ["id", "name", "email", "phone", "company"] {
            if self.rng.chance(60) {
                let f = self.name(field);
                parts.push(self.wrap("Customer", f));
            }
        }
        if self.rng.chance(50) {
            let f = self.name("socialProfiles");
            parts.push(format!("{f} {{ __typename handle network }}"));
        }
        if self.rng.chance(50) {
            let f = self.name("owner");
            parts.push(format!("{f} {{ __typename id email }}"));
        }
        if depth > 0 && self.rng.chance(60) {
            let f = self.name("activities");
            let inner = self.activity(depth - 1);
            parts.push(format!(
                "{f}(first: 3) {{ __typename nodes {{ {inner} }} }}"
            ));
        }
        parts.join(" ")
    }

    fn activity(&mut self, depth: usize) -> String {
        let mut parts = vec!["__typename".to_owned()];
        for field in ["id", "subject"] {
            if self.rng.chance(60) {
                let f = self.name(field);
                parts.push(self.wrap("Activity", f));
            }
        }
        if self.rng.chance(50) {
            let f = self.name("author");
            parts.push(format!("{f} {{ __typename id email }}"));
        }
        if depth > 0 && self.rng.chance(70) {
            let f = self.name("customer");
            let inner = self.customer(depth - 1);
            parts.push(format!("{f} {{ {inner} }}"));
        }
        parts.join(" ")
    }

    fn query(&mut self) -> String {
        let mut roots = Vec::new();
        for _ in 0..(1 + self.rng.next() % 3) {
            let root = match self.rng.pick(&[
                "customers",
                "customer",
                "activities",
                "activity",
                "node",
                "nodes",
            ]) {
                "customers" => format!(
                    "{} {{ __typename nodes {{ {} }} }}",
                    self.call("customers", "(first: 5)"),
                    self.customer(2)
                ),
                "customer" => format!(
                    "{} {{ {} }}",
                    self.call("customer", "(id: $c)"),
                    self.customer(2)
                ),
                "activities" => format!(
                    "{} {{ __typename nodes {{ {} }} }}",
                    self.call("activities", "(first: 5)"),
                    self.activity(2)
                ),
                "activity" => format!(
                    "{} {{ {} }}",
                    self.call("activity", "(id: $a)"),
                    self.activity(2)
                ),
                "node" => {
                    let c = self.customer(1);
                    let a = self.activity(1);
                    format!(
                        "{} {{ __typename ... on Customer {{ {c} }} ... on Activity {{ {a} }} }}",
                        self.call("node", "(id: $c)")
                    )
                }
                _ => {
                    let a = self.activity(1);
                    let c = self.customer(1);
                    format!(
                        "{} {{ __typename ... on Activity {{ {a} }} ... on Customer {{ {c} }} }}",
                        self.call("nodes", "(ids: [$a, $c])")
                    )
                }
            };
            roots.push(root);
        }
        let uses_c = roots.iter().any(|r| r.contains("$c"));
        let uses_a = roots.iter().any(|r| r.contains("$a"));
        let mut vars = Vec::new();
        if uses_c {
            vars.push("$c: ID!");
        }
        if uses_a {
            vars.push("$a: ID!");
        }
        let vars = if vars.is_empty() {
            String::new()
        } else {
            format!("({})", vars.join(", "))
        };
        format!(
            "query{vars} {{ {} }} {}",
            roots.join(" "),
            self.fragments.join(" ")
        )
    }
}

/// The GraphQL field a response key stands for (aliases are `x<n>_<field>`).
fn field_of(key: &str) -> &str {
    match key.strip_prefix('x').and_then(|rest| rest.split_once('_')) {
        Some((n, field)) if n.chars().all(|c| c.is_ascii_digit()) => field,
        _ => key,
    }
}

fn check(
    value: &Value,
    parent: &str,
    path: &mut Vec<Value>,
    held: &[&str],
    rules: &HashMap<(String, String), Vec<Vec<String>>>,
    forbidden_at: &[Value],
    seen: &mut usize,
) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(json!(i));
                check(item, parent, path, held, rules, forbidden_at, seen);
                path.pop();
            }
        }
        Value::Object(map) => {
            let ty = map
                .get("__typename")
                .and_then(Value::as_str)
                .unwrap_or(parent)
                .to_owned();
            for (key, child) in map {
                path.push(json!(key));
                let field = field_of(key);
                let allowed = rules
                    .get(&(ty.clone(), field.to_owned()))
                    .is_none_or(|alts| {
                        alts.iter()
                            .any(|all| all.iter().all(|s| held.contains(&s.as_str())))
                    });
                let here = Value::Array(path.clone());
                // `node` and `nodes` items are refused by the type they turn out to be, which a
                // null does not show: a refused item must at least leave nothing behind.
                let node_lookup = ty == "Query" && matches!(field, "node" | "nodes");
                if node_lookup {
                    if forbidden_at.contains(&here) {
                        assert_eq!(child, &Value::Null, "refused node leaked at {here}");
                    }
                    for (i, item) in child.as_array().into_iter().flatten().enumerate() {
                        let mut item_path = path.clone();
                        item_path.push(json!(i));
                        if forbidden_at.contains(&Value::Array(item_path)) {
                            *seen += 1;
                            assert_eq!(item, &Value::Null, "refused node leaked at {here}.{i}");
                        }
                    }
                }
                if allowed {
                    assert!(
                        node_lookup || !forbidden_at.contains(&here),
                        "FORBIDDEN on an allowed field {ty}.{field} at {here}"
                    );
                    check(child, &ty, path, held, rules, forbidden_at, seen);
                } else {
                    *seen += 1;
                    assert_eq!(
                        child,
                        &Value::Null,
                        "{ty}.{field} leaked at {here} with scopes {held:?}"
                    );
                    assert!(forbidden_at.contains(&here), "no FORBIDDEN error at {here}");
                }
                path.pop();
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn random_scopes_and_queries_never_return_a_forbidden_field() {
    let app = TestApp::spawn().await;
    let c = app
        .customer(json!({"name": "Secretive", "email": "s@example.com", "phone": "+12025550111", "socialProfiles": [{"network": "x", "handle": "@sec"}]}))
        .await;
    let a = app
        .activity(json!({"customerId": c, "kind": "NOTE", "subject": "hush"}))
        .await;
    let rules = rules();
    assert!(
        rules.contains_key(&("Customer".to_owned(), "email".to_owned())),
        "rules read from the SDL"
    );

    let scopes = ["customers:read", "activities:read", "pii:read"];
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let mut forbidden_seen = 0;
    for round in 0..80 {
        let held: Vec<&str> = scopes.iter().copied().filter(|_| rng.chance(60)).collect();
        let mut generator = Gen {
            rng: Rng(rng.next() | 1),
            aliases: 0,
            fragments: Vec::new(),
        };
        let query = generator.query();
        let token = app.token(&held.join(" "));
        let r = app
            .gql_as(Some(&token), &query, json!({"c": c, "a": a}))
            .await;
        assert_eq!(
            r.status,
            reqwest::StatusCode::OK,
            "round {round}: {query}\n{}",
            r.body
        );
        let forbidden_at: Vec<Value> = r.body["errors"]
            .as_array()
            .map(|errs| {
                errs.iter()
                    .inspect(|e| {
                        let code = e["extensions"]["code"].as_str().unwrap_or_default();
                        assert!(
                            code == "FORBIDDEN",
                            "round {round}: unexpected {code}: {e}\n{query}"
                        );
                    })
                    .map(|e| e["path"].clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut path = Vec::new();
        check(
            &r.body["data"],
            "Query",
            &mut path,
            &held,
            &rules,
            &forbidden_at,
            &mut forbidden_seen,
        );
    }
    assert!(
        forbidden_seen > 50,
        "the rounds exercised forbidden fields ({forbidden_seen})"
    );
}

/// Customers that two tenants share in everything but what `pii:read` guards.
const TWINS: [(&str, &str, &str); 6] = [
    ("Ada Lovelace", "Analytical", "LEAD"),
    ("Alan Turing", "Bletchley", "CUSTOMER"),
    ("Grace Hopper", "Navy", "PROSPECT"),
    ("Edsger Dijkstra", "Eindhoven", "CUSTOMER"),
    ("Barbara Liskov", "MIT", "CHURNED"),
    ("Ken Thompson", "Bell", "LEAD"),
];

/// One random customer filter, drawing its values from both tenants' data, guarded fields
/// included: whatever it compares with, a token without `pii:read` must not see a difference.
fn random_filter(rng: &mut Rng, texts: &[String], depth: usize) -> Value {
    let text = |rng: &mut Rng| {
        let t = &texts[(rng.next() % texts.len() as u64) as usize];
        let cut = (rng.next() % t.len().max(1) as u64) as usize + 1;
        t.chars().take(cut).collect::<String>()
    };
    let mut filter = serde_json::Map::new();
    for _ in 0..=(rng.next() % 2) {
        let field = rng.pick(&[
            "name", "email", "phone", "company", "search", "tag", "stage", "nest",
        ]);
        let op = rng.pick(&["eq", "contains", "startsWith", "in", "isNull"]);
        let ops = |rng: &mut Rng| match op {
            "in" => json!({"in": [text(rng), text(rng)]}),
            "isNull" => json!({"isNull": rng.chance(50)}),
            _ => json!({op: text(rng)}),
        };
        match field {
            "search" => {
                filter.insert("search".into(), json!(text(rng)));
            }
            "tag" => {
                filter.insert("tag".into(), json!(rng.pick(&["vip", "new"])));
            }
            "stage" => {
                filter.insert(
                    "lifecycleStage".into(),
                    json!({"eq": rng.pick(&["LEAD", "CUSTOMER"])}),
                );
            }
            "nest" if depth < 2 => {
                let inner = random_filter(rng, texts, depth + 1);
                let key = rng.pick(&["and", "or", "not"]);
                let value = if key == "not" {
                    inner
                } else {
                    json!([inner, random_filter(rng, texts, depth + 1)])
                };
                filter.insert(key.into(), value);
            }
            "nest" => {}
            field => {
                filter.insert(field.into(), ops(rng));
            }
        }
    }
    Value::Object(filter)
}

#[tokio::test]
async fn results_never_depend_on_values_the_token_may_not_read() {
    let app = TestApp::spawn().await;
    let orgs = [format!("{}-a", app.org), format!("{}-b", app.org)];
    let mut texts: Vec<String> = TWINS.iter().map(|(n, c, _)| format!("{n} {c}")).collect();
    // Twin tenants, created in the same order: the same names, companies, stages and tags,
    // different emails and phones; then the same email change in both.
    for (t, org) in orgs.iter().enumerate() {
        let admin = app.token_for(org, "owner", crate::helpers::ALL_SCOPES);
        let mut first = None;
        for (i, (name, company, stage)) in TWINS.iter().enumerate() {
            let email = format!(
                "{}{}@{}.example",
                ["zed", "amy"][t],
                i * 7 + t,
                ["corp", "mail"][(i + t) % 2]
            );
            let phone = format!("+1202555{:04}", 100 + i * 13 + t * 5000);
            texts.push(email.clone());
            texts.push(phone.clone());
            let r = app
                .gql_as(
                    Some(&admin),
                    "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } userErrors { message } } }",
                    json!({"i": {"name": name, "company": company, "lifecycleStage": stage,
                        "email": email, "phone": phone, "tags": if i % 2 == 0 { vec!["vip"] } else { vec!["new"] }}}),
                )
                .await;
            r.assert_ok();
            first.get_or_insert(
                r.data("createCustomer.customer.id")
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        let r = app
            .gql_as(
                Some(&admin),
                "mutation($id: ID!, $e: String) { updateCustomer(input: {id: $id, email: $e}) { userErrors { message } } }",
                json!({"id": first, "e": format!("changed{t}@x.example")}),
            )
            .await;
        r.assert_ok();
    }
    let scopes = ["customers:read", "activities:read", "pii:read"];
    let mut rng = Rng(0x0dd5_eed5_1234_abcd);
    let mut compared = 0;
    for round in 0..150 {
        let held: Vec<&str> = scopes.iter().copied().filter(|_| rng.chance(70)).collect();
        let filter = random_filter(&mut rng, &texts, 0);
        let order = rng.pick(&["NAME", "CREATED_AT", "UPDATED_AT", "LAST_ACTIVITY_AT"]);
        let direction = rng.pick(&["ASC", "DESC"]);
        let first = 1 + rng.next() % 6;
        let query = "query($f: CustomerFilter, $o: CustomerOrder, $n: Int) { \
            customers(filter: $f, orderBy: $o, first: $n) { totalCount pageInfo { hasNextPage } nodes { name company lifecycleStage email phone } } \
            changes(first: 50) { events { op changedFields customer { name email } } } }";
        let variables =
            json!({"f": filter, "o": {"field": order, "direction": direction}, "n": first});
        let mut answers = Vec::new();
        for org in &orgs {
            let token = app.token_for(org, "reader", &held.join(" "));
            let r = app.gql_as(Some(&token), query, variables.clone()).await;
            assert!(r.status.is_success(), "{}", r.body);
            assert!(
                !r.error_codes().iter().any(|c| c == "INTERNAL"),
                "{}",
                r.body
            );
            // Sibling fields resolve concurrently: their errors come in any order.
            let mut body = r.body;
            if let Some(errors) = body.get_mut("errors").and_then(Value::as_array_mut) {
                errors.sort_by_key(|e| e["path"].to_string());
            }
            answers.push(body);
        }
        if !held.contains(&"pii:read") {
            compared += 1;
            assert_eq!(
                answers[0], answers[1],
                "round {round}: with {held:?}, {variables} answers differently in tenants that differ only in guarded fields"
            );
        }
    }
    assert!(compared > 30, "only {compared} rounds without pii:read");
}

/// A write scope alone writes but does not read: the record in a mutation's payload needs the
/// read scope too, or an empty update would read any record.
#[tokio::test]
async fn a_write_scope_alone_does_not_read_through_the_payload() {
    let app = TestApp::spawn().await;
    let id = app
        .customer(json!({"name": "Private", "email": "p@example.com"}))
        .await;
    let writer = app.token("customers:write activities:write pii:read");
    let r = app
        .gql_as(
            Some(&writer),
            "mutation($id: ID!) { updateCustomer(input: {id: $id}) { customer { name email } userErrors { code } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        r.data("updateCustomer.customer"),
        &Value::Null,
        "{}",
        r.body
    );
    assert_eq!(r.data("updateCustomer.userErrors"), &json!([]));
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
    assert!(!r.body.to_string().contains("Private"), "{}", r.body);

    let r = app
        .gql_as(
            Some(&writer),
            "mutation($id: ID!) { logActivity(input: {customerId: $id, kind: NOTE, subject: \"hi\"}) { activity { subject } userErrors { code } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.data("logActivity.activity"), &Value::Null, "{}", r.body);
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);

    let both = app.token("customers:write customers:read");
    let r = app
        .gql_as(
            Some(&both),
            "mutation($id: ID!) { updateCustomer(input: {id: $id, name: \"Renamed\"}) { customer { name } } }",
            json!({"id": id}),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.data("updateCustomer.customer.name"), "Renamed");
}

/// Documents are kept parsed by their text, and tokens verified: what one caller ran must
/// be checked afresh for the next, whatever it may do.
#[tokio::test]
async fn a_document_one_caller_ran_is_checked_again_for_the_next() {
    let app = TestApp::spawn().await;
    let id = app
        .customer(json!({ "name": "Ada", "email": "ada@example.com" }))
        .await;
    let query = "query($id: ID!) { customer(id: $id) { name email } }";
    let vars = json!({ "id": id });
    let full = app.gql(query, vars.clone()).await;
    full.assert_ok();
    assert_eq!(full.data("customer.email"), "ada@example.com");

    let reader = app.token("customers:read");
    let partial = app.gql_as(Some(&reader), query, vars.clone()).await;
    assert_eq!(partial.data("customer.name"), "Ada");
    assert_eq!(partial.data("customer.email"), &Value::Null);
    assert_eq!(partial.error_codes(), ["FORBIDDEN"]);

    let anonymous = app.gql_as(None, query, vars.clone()).await;
    assert_eq!(anonymous.data("customer"), &Value::Null);
    assert_eq!(anonymous.error_codes(), ["UNAUTHENTICATED"]);

    // And back: the full caller is not served the narrower answer.
    let again = app.gql(query, vars).await;
    again.assert_ok();
    assert_eq!(again.data("customer.email"), "ada@example.com");
}

/// A document refused before parsing (too deep) is refused every time it is sent.
#[tokio::test]
async fn a_refused_document_stays_refused() {
    let app = TestApp::spawn().await;
    let deep = format!("{{ customers {}", "{".repeat(10_000));
    for _ in 0..2 {
        let reply = app.gql(&deep, json!({})).await;
        assert!(reply.body["data"].is_null(), "{}", reply.body);
        assert_eq!(
            reply.error_codes(),
            ["GRAPHQL_VALIDATION_FAILED"],
            "{}",
            reply.body
        );
    }
}
