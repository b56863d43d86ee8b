//! Hostile requests from a client holding a valid token (or none): every recursive input the
//! schema has, nested up to 100,000 deep, megabyte bodies, aliases by the thousand, NUL bytes
//! and out-of-range values. Each gets a client error, and the server stays up.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, reply};

/// The depths every recursive input is tried at.
const DEPTHS: [usize; 5] = [40, 300, 3_000, 30_000, 100_000];

/// A client error: 4xx, or a GraphQL error that is not INTERNAL; never a 5xx.
#[track_caller]
fn assert_refused(r: &Reply, what: &str) {
    assert!(
        r.status.is_client_error() || (r.status == StatusCode::OK && !r.error_codes().is_empty()),
        "{what}: expected a client error, got {} {}",
        r.status,
        short(&r.body)
    );
    assert!(
        !r.error_codes().iter().any(|c| c == "INTERNAL"),
        "{what}: {}",
        short(&r.body)
    );
}

fn short(body: &Value) -> String {
    body.to_string().chars().take(400).collect()
}

async fn post_raw(app: &TestApp, token: Option<&str>, body: String) -> Reply {
    let mut req = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .body(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    reply(req.send().await.expect("sent")).await
}

async fn assert_alive(app: &TestApp) {
    app.gql("{ __typename }", json!({})).await.assert_ok();
}

/// The name of a `__Type` reference, through NON_NULL and LIST wrappers, and whether a
/// value of it is required.
fn named(type_ref: &Value) -> (String, bool) {
    let required = type_ref["kind"] == "NON_NULL";
    let mut t = type_ref;
    while t["name"].is_null() {
        t = &t["ofType"];
    }
    (t["name"].as_str().unwrap_or_default().to_owned(), required)
}

fn is_list(type_ref: &Value) -> bool {
    let mut t = type_ref;
    while t["kind"] == "NON_NULL" {
        t = &t["ofType"];
    }
    t["kind"] == "LIST"
}

/// What introspection says about the schema's inputs.
struct Inputs {
    /// input type -> field -> (type ref)
    objects: BTreeMap<String, BTreeMap<String, Value>>,
    enums: BTreeMap<String, Vec<String>>,
}

const TYPE_REF: &str = "kind name ofType { kind name ofType { kind name ofType { kind name } } }";

async fn introspect(app: &TestApp) -> (Inputs, Value) {
    let r = app
        .gql(
            &format!(
                "{{ __schema {{ queryType {{ name }} mutationType {{ name }} types {{ kind name \
                 enumValues {{ name }} inputFields {{ name type {{ {TYPE_REF} }} }} \
                 fields {{ name args {{ name type {{ {TYPE_REF} }} }} type {{ {TYPE_REF} }} }} }} }} }}"
            ),
            json!({}),
        )
        .await;
    r.assert_ok();
    let schema = r.body["data"]["__schema"].clone();
    let mut inputs = Inputs {
        objects: BTreeMap::new(),
        enums: BTreeMap::new(),
    };
    for t in schema["types"].as_array().expect("types") {
        let name = t["name"].as_str().expect("name").to_owned();
        match t["kind"].as_str() {
            Some("INPUT_OBJECT") => {
                let fields = t["inputFields"]
                    .as_array()
                    .expect("fields")
                    .iter()
                    .map(|f| {
                        (
                            f["name"].as_str().expect("name").to_owned(),
                            f["type"].clone(),
                        )
                    })
                    .collect();
                inputs.objects.insert(name, fields);
            }
            Some("ENUM") => {
                let values = t["enumValues"]
                    .as_array()
                    .expect("values")
                    .iter()
                    .map(|v| v["name"].as_str().expect("name").to_owned())
                    .collect();
                inputs.enums.insert(name, values);
            }
            _ => {}
        }
    }
    (inputs, schema)
}

impl Inputs {
    /// A valid value of a type, with only its required fields.
    fn minimal(&self, type_ref: &Value) -> Value {
        let (name, _) = named(type_ref);
        let one = if let Some(fields) = self.objects.get(&name) {
            let mut object = serde_json::Map::new();
            for (field, ty) in fields {
                if named(ty).1 {
                    object.insert(field.clone(), self.minimal(ty));
                }
            }
            Value::Object(object)
        } else if let Some(values) = self.enums.get(&name) {
            json!(values[0])
        } else {
            match name.as_str() {
                "Int" => json!(1),
                "Float" => json!(1.0),
                "Boolean" => json!(true),
                "DateTime" => json!("2026-01-01T00:00:00Z"),
                "JSON" => json!({}),
                _ => json!("x"),
            }
        };
        if is_list(type_ref) { json!([one]) } else { one }
    }

    /// For a recursive input type: the field through which it contains itself.
    fn self_field(&self, name: &str) -> Option<(String, bool)> {
        self.objects
            .get(name)?
            .iter()
            .find_map(|(field, ty)| (named(ty).0 == name).then(|| (field.clone(), is_list(ty))))
    }

    /// A value of `name` nested `depth` times through `field`: `{not: {not: … {}}}`.
    fn nested(name: &str, field: &str, list: bool, depth: usize) -> String {
        let _ = name;
        let (open, close) = if list {
            (format!("{{{field}: ["), "]}")
        } else {
            (format!("{{{field}: "), "}")
        };
        let mut out = String::with_capacity(depth * (open.len() + close.len()) + 2);
        for _ in 0..depth {
            out.push_str(&open);
        }
        out.push_str("{}");
        for _ in 0..depth {
            out.push_str(close);
        }
        out
    }
}

/// Renders a JSON value as a GraphQL literal (object keys unquoted).
fn literal(v: &Value) -> String {
    match v {
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}: {}", literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(literal).collect::<Vec<_>>().join(", ")
        ),
        Value::String(s) if s.chars().all(|c| c.is_ascii_uppercase() || c == '_') => s.clone(),
        other => other.to_string(),
    }
}

/// The hostile places of the schema: (root operation, field, argument, path inside the
/// argument's value, what to put there), for every recursive input type and every JSON
/// input, found by introspection.
struct Target {
    operation: &'static str,
    field: String,
    argument: String,
    argument_type: Value,
    /// Input object fields from the argument down to the hostile value.
    path: Vec<String>,
    kind: Hostile,
}

#[derive(Clone)]
enum Hostile {
    /// A recursive input object nested through its own field.
    Recursive {
        type_name: String,
        field: String,
        list: bool,
    },
    /// A JSON scalar.
    Json,
}

fn targets(inputs: &Inputs, schema: &Value) -> Vec<Target> {
    let mut found = Vec::new();
    for (operation, root) in [("query", "queryType"), ("mutation", "mutationType")] {
        let root_name = schema[root]["name"].as_str().expect("root").to_owned();
        let root_type = schema["types"]
            .as_array()
            .expect("types")
            .iter()
            .find(|t| t["name"] == root_name.as_str())
            .expect("root type");
        for field in root_type["fields"].as_array().expect("fields") {
            for arg in field["args"].as_array().expect("args") {
                // Walk the argument's input types (three levels) for hostile places.
                let mut stack = vec![(arg["type"].clone(), Vec::<String>::new())];
                let mut seen = BTreeSet::new();
                while let Some((ty, path)) = stack.pop() {
                    let (name, _) = named(&ty);
                    let mut push = |kind: Hostile, path: Vec<String>| {
                        found.push(Target {
                            operation,
                            field: field["name"].as_str().expect("name").to_owned(),
                            argument: arg["name"].as_str().expect("name").to_owned(),
                            argument_type: arg["type"].clone(),
                            path,
                            kind,
                        })
                    };
                    if name == "JSON" {
                        push(Hostile::Json, path);
                        continue;
                    }
                    if !seen.insert(name.clone()) || path.len() > 3 {
                        continue;
                    }
                    if let Some((self_field, list)) = inputs.self_field(&name) {
                        push(
                            Hostile::Recursive {
                                type_name: name.clone(),
                                field: self_field,
                                list,
                            },
                            path.clone(),
                        );
                    }
                    for (f, fty) in inputs.objects.get(&name).into_iter().flatten() {
                        let mut p = path.clone();
                        p.push(f.clone());
                        stack.push((fty.clone(), p));
                    }
                }
            }
        }
    }
    found
}

impl Target {
    /// The document and variables that put a hostile value of `depth` here, as a literal
    /// (`inline`) or through a variable.
    fn request(&self, inputs: &Inputs, depth: usize, inline: bool) -> (String, Value) {
        let base = inputs.minimal(&self.argument_type);
        let hostile_literal = match &self.kind {
            Hostile::Recursive {
                type_name,
                field,
                list,
            } => Inputs::nested(type_name, field, *list, depth),
            Hostile::Json => format!("{}1{}", "{a: ".repeat(depth), "}".repeat(depth)),
        };
        let marker = "\"hostile-marker\"";
        let mut value = base;
        if let Some((last, parents)) = self.path.split_last() {
            let mut at = &mut value;
            for p in parents {
                if at.get(p).is_none() || at[p].is_array() {
                    at[p] = json!({});
                }
                at = &mut at[p];
            }
            at[last] = json!("hostile-marker");
        } else {
            value = json!("hostile-marker");
        }
        let selection = "{ __typename }";
        let arguments_literal = literal(&value).replace(marker, &hostile_literal);
        if inline {
            (
                format!(
                    "{} {{ {}({}: {}) {selection} }}",
                    self.operation, self.field, self.argument, arguments_literal
                ),
                json!({}),
            )
        } else {
            // The same value as a variable: JSON text nested `depth` deep.
            let json_text = match &self.kind {
                Hostile::Recursive { field, list, .. } => {
                    let (open, close) = if *list {
                        (format!("{{\"{field}\": ["), "]}")
                    } else {
                        (format!("{{\"{field}\": "), "}")
                    };
                    format!("{}{{}}{}", open.repeat(depth), close.repeat(depth))
                }
                Hostile::Json => format!("{}1{}", "{\"a\": ".repeat(depth), "}".repeat(depth)),
            };
            let type_text = type_text(&self.argument_type);
            let whole = value.to_string().replace(marker, &json_text);
            (
                format!(
                    "{}($v: {type_text}) {{ {}({}: $v) {selection} }}",
                    self.operation, self.field, self.argument
                ),
                Value::String(whole),
            )
        }
    }
}

fn type_text(type_ref: &Value) -> String {
    match type_ref["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", type_text(&type_ref["ofType"])),
        Some("LIST") => format!("[{}]", type_text(&type_ref["ofType"])),
        _ => type_ref["name"].as_str().unwrap_or_default().to_owned(),
    }
}

#[tokio::test]
async fn every_recursive_input_is_bounded_at_any_depth() {
    let app = TestApp::spawn_with(|c| c.max_body_bytes = 4 * 1024 * 1024).await;
    let (inputs, schema) = introspect(&app).await;
    let targets = targets(&inputs, &schema);
    // The schema's own recursive inputs must be found, or this test tests nothing.
    for must in ["CustomerFilter", "ActivityFilter"] {
        assert!(
            targets.iter().any(
                |t| matches!(&t.kind, Hostile::Recursive { type_name, .. } if type_name == must)
            ),
            "{must} not found by introspection"
        );
    }
    assert!(targets.iter().any(|t| matches!(t.kind, Hostile::Json)));
    let token = app.admin();
    for target in &targets {
        for depth in DEPTHS {
            for inline in [true, false] {
                let (query, variables) = target.request(&inputs, depth, inline);
                let what = format!(
                    "{}.{}({}{}) at depth {depth}, {}",
                    target.operation,
                    target.field,
                    target.argument,
                    target
                        .path
                        .iter()
                        .map(|p| format!(".{p}"))
                        .collect::<String>(),
                    if inline { "literal" } else { "variable" }
                );
                // Variables go in as raw JSON text, so the body nests as deep as the value.
                let body = match variables {
                    Value::String(raw) => format!(
                        "{{\"query\": {}, \"variables\": {{\"v\": {raw}}}}}",
                        Value::String(query)
                    ),
                    _ => json!({"query": query}).to_string(),
                };
                let started = Instant::now();
                let r = post_raw(&app, Some(&token), body).await;
                assert_refused(&r, &what);
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "{what}: took {:?}",
                    started.elapsed()
                );
            }
        }
        assert_alive(&app).await;
    }
}

#[tokio::test]
async fn hostile_bodies_get_client_errors() {
    let app = TestApp::spawn_with(|c| c.max_body_bytes = 4 * 1024 * 1024).await;
    let token = app.admin();
    let deep = |open: &str, close: &str, n: usize| format!("{}{}", open.repeat(n), close.repeat(n));
    let bodies = [
        ("array nested 100,000 deep", deep("[", "]", 100_000)),
        ("object nested 100,000 deep", format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000))),
        (
            "variables nested 100,000 deep",
            format!("{{\"query\": \"{{ __typename }}\", \"variables\": {{\"v\": {}}}}}", deep("[", "]", 100_000)),
        ),
        (
            "a document of 100,000 brackets",
            json!({"query": format!("{{ __typename {} }}", deep("(", ")", 100_000))}).to_string(),
        ),
        (
            "a document of 100,000 nested selections",
            json!({"query": format!("{} __typename {}", "{ a ".repeat(100_000), "}".repeat(100_000))}).to_string(),
        ),
        ("NUL bytes", "{\"query\": \"{ __typename }\u{0}\"}".to_owned()),
        ("not JSON", "\u{0}\u{1}\u{2}".to_owned()),
        ("a megabyte string", json!({"query": "x".repeat(1 << 20)}).to_string()),
        ("over the body limit", json!({"query": "x".repeat(5 << 20)}).to_string()),
    ];
    for (what, body) in bodies {
        for token in [Some(token.as_str()), None] {
            let r = post_raw(&app, token, body.clone()).await;
            assert_refused(&r, what);
        }
        assert_alive(&app).await;
    }
}

/// graphql-js `getIntrospectionQuery()` with the deeper `TypeRef` of newer releases.
const STANDARD_INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType {
    kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
  } } } } } } } } }
}
"#;

#[tokio::test]
async fn the_standard_introspection_query_answers_with_and_without_a_token() {
    let app = TestApp::spawn().await;
    for token in [Some(app.admin()), None] {
        let r = app
            .gql_as(token.as_deref(), STANDARD_INTROSPECTION, json!({}))
            .await;
        r.assert_ok();
        assert!(
            r.data("__schema.types")
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["name"] == "Customer"))
        );
    }
    // Depth is still limited outside introspection.
    let deep = format!(
        "{{ customers {{ nodes {{ {} id {} }} }} }}",
        "activities { nodes { customer { ".repeat(4),
        "} } }".repeat(4)
    );
    let r = app.gql(&deep, json!({})).await;
    assert_eq!(r.error_codes(), ["GRAPHQL_VALIDATION_FAILED"], "{}", r.body);
}

#[tokio::test]
async fn aliases_and_introspection_pay_for_their_work_before_anything_runs() {
    let app = TestApp::spawn_with(|c| c.max_body_bytes = 4 * 1024 * 1024).await;
    let id = app.customer(json!({"name": "Ada"})).await;
    let aliased = |n: usize, field: &str| {
        let fields: String = (0..n).map(|i| format!(" a{i}: {field}")).collect();
        format!("{{{fields} }}")
    };
    let cases = [
        (
            None,
            aliased(1_500, "__schema { types { name fields { name } } }"),
        ),
        (None, aliased(3, "__schema { types { name } }")),
        (
            Some(app.admin()),
            aliased(1_500, "__schema { types { name fields { name } } }"),
        ),
        (
            Some(app.admin()),
            aliased(5_000, &format!("customer(id: \"{id}\") {{ id name }}")),
        ),
        (
            Some(app.admin()),
            aliased(3_000, "customers(first: 1) { totalCount }"),
        ),
        // Introspection lists nested in one another multiply the answer (x3 a level here).
        (
            None,
            "{ __type(name: \"Node\") { possibleTypes { name interfaces { name possibleTypes { name interfaces { name } } } } } }".to_owned(),
        ),
        // Page sizes given as variable defaults cost what they will fetch.
        (
            Some(app.admin()),
            format!(
                "query($n: Int = 100) {{ {} }}",
                (0..5)
                    .map(|i| format!("c{i}: customers(first: $n) {{ nodes {{ activities(first: $n) {{ nodes {{ id subject }} }} }} }}"))
                    .collect::<String>()
            ),
        ),
        // Statements are counted once per place in the document, whatever the parents.
        (
            Some(app.admin()),
            format!(
                "{{ customer(id: \"{id}\") {{ {} }} }}",
                (0..400)
                    .map(|i| format!("a{i}: activities {{ totalCount }} "))
                    .collect::<String>()
            ),
        ),
        // Under the selection cap, over the cost: each is two statements.
        (
            Some(app.admin()),
            aliased(400, "customers(first: 1) { totalCount }"),
        ),
        (
            Some(app.admin()),
            aliased(
                200,
                "createCustomer(input: {name: \"x\"}) { customer { id } }",
            )
            .replacen('{', "mutation {", 1),
        ),
        // Fragments that each spread the next twice: 2^30 fields once expanded.
        (
            Some(app.admin()),
            format!(
                "{{ ...F0 }} {} fragment F30 on Query {{ __typename }}",
                (0..30)
                    .map(|i| format!(
                        "fragment F{i} on Query {{ ...F{n} a: __typename ...F{n} }}",
                        n = i + 1
                    ))
                    .collect::<String>()
            ),
        ),
    ];
    for (token, query) in cases {
        let before = app.statements().await;
        let started = Instant::now();
        let r = app.gql_as(token.as_deref(), &query, json!({})).await;
        let took = started.elapsed();
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", short(&r.body));
        assert_eq!(
            r.error_codes(),
            ["GRAPHQL_VALIDATION_FAILED"],
            "{}",
            short(&r.body)
        );
        assert!(r.body.get("data").is_none());
        assert_eq!(
            app.statements().await,
            before,
            "nothing ran: {}",
            short(&r.body)
        );
        assert!(took < Duration::from_secs(3), "refused in {took:?}");
    }
    // What the budget admits runs about the statements its cost says (100 a statement).
    let distinct_filters: String = (0..200)
        .map(|i| format!("a{i}: activities(filter: {{subject: {{contains: \"x{i}\"}}}}) {{ nodes {{ id }} }} "))
        .collect();
    let before = app.statements().await;
    app.gql(
        &format!("{{ customer(id: \"{id}\") {{ {distinct_filters} }} }}"),
        json!({}),
    )
    .await
    .assert_ok();
    let ran = app.statements().await - before;
    assert!(
        ran <= 2 * 200 + 5,
        "{ran} statements for a cost of about 20,000"
    );
    // Within the budget, aliases work.
    app.gql(
        &aliased(50, &format!("customer(id: \"{id}\") {{ id }}")),
        json!({}),
    )
    .await
    .assert_ok();
    let r = app
        .gql_as(None, &aliased(1, "__schema { types { name } }"), json!({}))
        .await;
    r.assert_ok();
    assert_alive(&app).await;
}

#[tokio::test]
async fn a_failed_first_write_does_not_wedge_its_user() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&app.org, "newcomer", "customers:write customers:read");
    let create = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id owner { subject } } userErrors { code field } } }";
    // The first write of this subject fails: its owner does not exist.
    let r = app
        .gql_as(
            Some(&token),
            create,
            json!({"i": {"name": "A", "ownerId": "usr_nobody"}}),
        )
        .await;
    assert!(r.data("createCustomer.customer").is_null(), "{}", r.body);
    assert!(
        !r.error_codes().contains(&"INTERNAL".to_owned()),
        "{}",
        r.body
    );
    // Every later write of the subject works.
    for name in ["B", "C"] {
        let r = app
            .gql_as(Some(&token), create, json!({"i": {"name": name}}))
            .await;
        r.assert_ok();
        assert_eq!(
            r.data("createCustomer.userErrors"),
            &json!([]),
            "{}",
            r.body
        );
        assert_eq!(r.data("createCustomer.customer.owner.subject"), "newcomer");
    }
}

#[tokio::test]
async fn text_the_database_would_refuse_is_refused_at_the_edge() {
    let app = TestApp::spawn().await;
    let id = app
        .customer(json!({"name": "Ada", "email": "ada@example.com"}))
        .await;
    let nul = "a\u{0}b";
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "query($v: String) { customers(filter: {name: {eq: $v}}) { totalCount } }",
            json!({"v": nul}),
            "$v",
        ),
        (
            "query($v: String) { customers(filter: {search: $v}) { totalCount } }",
            json!({"v": nul}),
            "$v",
        ),
        (
            "query($v: ID!) { customer(id: $v) { id } }",
            json!({"v": nul}),
            "$v",
        ),
        (
            "query($v: String) { customers(after: $v) { totalCount } }",
            json!({"v": nul}),
            "$v",
        ),
        (
            "query($v: [ID!]!) { nodes(ids: $v) { id } }",
            json!({"v": [nul]}),
            "$v",
        ),
        (
            "mutation($v: JSON) { createCustomer(input: {name: \"x\", customFields: $v}) { customer { id } } }",
            json!({"v": {"k": nul}}),
            "$v",
        ),
        (
            "mutation($v: JSON) { createCustomer(input: {name: \"x\", customFields: $v}) { customer { id } } }",
            json!({"v": {nul: 1}}),
            "$v",
        ),
        (
            "{ customers(filter: {name: {eq: \"a\\u0000b\"}}) { totalCount } }",
            json!({}),
            "filter",
        ),
        // The same in the defaults of variables.
        (
            "query($i: ID! = \"cus_\\u0000\") { customer(id: $i) { id } }",
            json!({}),
            "$i",
        ),
        (
            "mutation($c: JSON = {k: \"v\\u0000\"}) { createCustomer(input: {name: \"x\", customFields: $c}) { customer { id } } }",
            json!({}),
            "$c",
        ),
        (
            "mutation { updateCustomer(input: {id: \"ID\", name: \"a\\u0000\"}) { customer { id } } }",
            json!({}),
            "input",
        ),
        // Longer than any filter needs, and than SQLite's LIKE patterns allow.
        (
            "query($v: String) { customers(filter: {search: $v}) { totalCount } }",
            json!({"v": "%_".repeat(30_000)}),
            "search",
        ),
        (
            "query($v: String) { customers(filter: {company: {startsWith: $v}}) { totalCount } }",
            json!({"v": "x".repeat(60_000)}),
            "company",
        ),
        (
            "query($v: String) { activities(filter: {subject: {contains: $v}}) { totalCount } }",
            json!({"v": "é".repeat(10_000)}),
            "subject",
        ),
        (
            "query($v: DateTime) { customers(filter: {createdAt: {gt: $v}}) { totalCount } }",
            json!({"v": "+275760-09-13T00:00:00Z"}),
            "",
        ),
        (
            "query($v: DateTime) { activities(filter: {occurredAt: {lt: $v}}) { totalCount } }",
            json!({"v": "-100000-01-01T00:00:00Z"}),
            "",
        ),
    ];
    // Forged cursors: a timestamp no database holds, NUL bytes inside the decoded cursor, and
    // the largest position of the changes feed.
    use base64::Engine;
    let forge =
        |json: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string());
    let mut cases = cases;
    for cursor in [
        forge(json!({"o": "createdAt", "v": 8_000_000_000_000_000_i64, "i": "cus_x"})),
        forge(json!({"o": "name", "v": "a\u{0}", "i": "cus_x"})),
        forge(json!({"o": "createdAt", "v": 0, "i": "cus_\u{0}"})),
    ] {
        let query = "query($v: String) { customers(after: $v, orderBy: {field: CREATED_AT}) { totalCount } x: customers(before: $v, orderBy: {field: NAME}) { totalCount } }";
        cases.push((query, json!({"v": cursor}), "cursor"));
    }
    cases.push((
        "{ changes(after: \"c2VxOjkyMjMzNzIwMzY4NTQ3NzU4MDc\") { endCursor } }",
        json!({}),
        "cursor",
    ));
    for (query, variables, names) in cases {
        let query = query.replace("\"ID\"", &format!("\"{id}\""));
        let r = app.gql(&query, variables.clone()).await;
        assert_refused(&r, &query);
        let codes = r.error_codes();
        assert!(
            codes
                .iter()
                .all(|c| c == "BAD_USER_INPUT" || c == "GRAPHQL_VALIDATION_FAILED"),
            "{query}: {}",
            short(&r.body)
        );
        let message = r.body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(names),
            "{query}: the error names `{names}`: {message}"
        );
    }
    // A filter's size is bounded as a whole, not only per list: 400 `in` lists (of 100
    // values, they bound 40,000, past both databases' parameter limits; 10 here, to fit the
    // test's body limit), and `search` terms, which each scan the long text columns.
    let ids: Vec<String> = (0..10).map(|i| format!("cus_{i}")).collect();
    let wide = json!({"or": (0..20).map(|_| json!({"or": (0..20).map(|_| json!({"id": {"in": ids}})).collect::<Vec<_>>()})).collect::<Vec<_>>()});
    let searches = json!({"or": (0..20).map(|_| json!({"search": "zzqq"})).collect::<Vec<_>>()});
    for (filter, on) in [
        (
            wide,
            "customers(filter: $f, first: 100) { totalCount nodes { id } }",
        ),
        (searches, "activities(filter: $f) { totalCount }"),
    ] {
        let ty = if on.starts_with("customers") {
            "CustomerFilter"
        } else {
            "ActivityFilter"
        };
        let query = format!("query($f: {ty}) {{ {on} }}");
        let r = app.gql(&query, json!({"f": filter})).await;
        assert_eq!(r.error_codes(), ["BAD_USER_INPUT"], "{}", short(&r.body));
        let message = r.body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("at most"), "{message}");
    }
    // What the limits allow still works, LIKE metacharacters matching literally.
    let r = app
        .gql(
            "query($v: String) { customers(filter: {search: $v}) { totalCount } }",
            json!({"v": "%_".repeat(200)}),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.data("customers.totalCount"), 0);
    let r = app
        .gql(
            "query($v: DateTime) { customers(filter: {createdAt: {lt: $v}}) { totalCount } }",
            json!({"v": "9999-12-31T23:59:59Z"}),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.data("customers.totalCount"), 1);
    // Nothing was written by the refused mutations.
    let r = app.gql("{ customers { totalCount } }", json!({})).await;
    assert_eq!(r.data("customers.totalCount"), 1);
}

#[tokio::test]
async fn guarded_fields_cannot_be_filtered_or_searched_without_their_scope() {
    let app = TestApp::spawn().await;
    app.customer(json!({"name": "Ada", "email": "ada@secret.example", "phone": "+442079460958"}))
        .await;
    let reader = app.token("customers:read");
    let pii = app.token("customers:read pii:read");
    let filters = [
        json!({"email": {"startsWith": "ada"}}),
        json!({"phone": {"eq": "+442079460958"}}),
        json!({"email": {"isNull": false}}),
        json!({"not": {"not": {"email": {"contains": "secret"}}}}),
        json!({"and": [{"name": {"eq": "Ada"}}, {"or": [{"phone": {"startsWith": "+44"}}]}]}),
    ];
    let query = "query($f: CustomerFilter) { customers(filter: $f) { totalCount nodes { name } } }";
    for filter in &filters {
        let r = app.gql_as(Some(&reader), query, json!({"f": filter})).await;
        assert_eq!(r.error_codes(), ["FORBIDDEN"], "{filter}: {}", r.body);
        assert!(r.data("customers").is_null(), "{}", r.body);
        assert!(
            r.body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("pii:read")),
            "{}",
            r.body
        );
        assert_eq!(r.body["errors"][0]["path"], json!(["customers"]));
        // The same filter written inline.
        let inline = format!(
            "{{ customers(filter: {}) {{ totalCount }} }}",
            literal(filter)
        );
        let r = app.gql_as(Some(&reader), &inline, json!({})).await;
        assert_eq!(r.error_codes(), ["FORBIDDEN"], "{inline}: {}", r.body);
        // With the scope, it runs.
        let r = app.gql_as(Some(&pii), query, json!({"f": filter})).await;
        r.assert_ok();
        assert_eq!(r.data("customers.totalCount"), 1, "{filter}");
    }
    // Variables left out, or given only a default in the document, are checked as well.
    for (query, label) in [
        (
            "query($x: String) { customers(filter: {email: {startsWith: \"ada\"}, name: {contains: $x}}) { totalCount } }",
            "a variable left out",
        ),
        (
            "query($f: CustomerFilter = {email: {startsWith: \"ada\"}}) { customers(filter: $f) { totalCount } }",
            "a filter as a variable's default",
        ),
        (
            "query($p: String = \"+442079460958\") { customers(filter: {phone: {eq: $p}}) { totalCount } }",
            "a value as a variable's default",
        ),
    ] {
        let r = app.gql_as(Some(&reader), query, json!({})).await;
        assert_eq!(r.error_codes(), ["FORBIDDEN"], "{label}: {}", r.body);
        assert!(r.data("customers").is_null(), "{label}: {}", r.body);
    }
    // `search` matches email and phone only for a token that may read them.
    for text in ["secret.example", "2079460958"] {
        let r = app
            .gql_as(Some(&reader), query, json!({"f": {"search": text}}))
            .await;
        r.assert_ok();
        assert_eq!(r.data("customers.totalCount"), 0, "{text}");
        let r = app
            .gql_as(Some(&pii), query, json!({"f": {"search": text}}))
            .await;
        assert_eq!(r.data("customers.totalCount"), 1, "{text}");
    }
    let r = app
        .gql_as(Some(&reader), query, json!({"f": {"search": "ada"}}))
        .await;
    assert_eq!(r.data("customers.totalCount"), 1, "name still matches");
    // Siblings of the refused field still resolve.
    let r = app
        .gql_as(
            Some(&reader),
            "{ a: customers(filter: {email: {eq: \"x\"}}) { totalCount } b: customers { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
    assert_eq!(r.data("b.totalCount"), 1);
}

#[tokio::test]
async fn the_permission_of_a_filter_is_shown_in_the_sdl() {
    let sdl = crm::graphql::sdl();
    let filter = sdl
        .split("input CustomerFilter")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("CustomerFilter in the SDL");
    for field in ["email", "phone"] {
        let line = filter
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{field}:")))
            .expect("field");
        assert!(
            line.contains("@requiresScopes(scopes: [[\"pii:read\"]])"),
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_mutation_selecting_a_field_twice_under_one_key_is_refused_and_writes_nothing() {
    let app = crate::helpers::TestApp::spawn().await;
    let documents = [
        r#"mutation { createCustomer(input: {name: "Twice"}) { customer { id } } createCustomer(input: {name: "Twice"}) { customer { name } } }"#,
        r#"mutation { a: createCustomer(input: {name: "Twice"}) { customer { id } } ...F } fragment F on Mutation { a: createCustomer(input: {name: "Twice"}) { customer { name } } }"#,
    ];
    for document in documents {
        let r = app.gql(document, serde_json::json!({})).await;
        assert_eq!(
            r.body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
            "{}",
            r.body
        );
        assert!(
            r.body.get("data").is_none_or(serde_json::Value::is_null),
            "{}",
            r.body
        );
    }
    let r = app
        .gql(
            r#"{ customers(filter: {name: {eq: "Twice"}}) { totalCount } }"#,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.data("customers.totalCount"), 0);
    // Two different fields, or one under two keys, still run.
    let r = app
        .gql(
            r#"mutation { a: createCustomer(input: {name: "Once"}) { customer { id } } b: createCustomer(input: {name: "Once"}) { customer { id } } }"#,
            serde_json::json!({}),
        )
        .await;
    r.assert_ok();
}
