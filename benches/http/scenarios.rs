//! The requests: their GraphQL, the wrk script that sends them, and the check that a
//! scenario answers real data before it is timed (a broken query answers fast).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    Point,
    List,
    Nested,
    Filtered,
    Write,
    Typename,
}

const POINT: &str = "query($id: ID!) { customer(id: $id) { id name email phone company lifecycleStage createdAt updatedAt } }";
const LIST: &str = "{ customers(first: 50) { nodes { id name } } }";
const NESTED: &str =
    "{ customers(first: 50) { nodes { name activities(first: 10) { nodes { subject } } } } }";
const WRITE: &str = "mutation($input: LogActivityInput!) { logActivity(input: $input) { activity { id } userErrors { code } } }";
const TYPENAME: &str = "{ __typename }";

fn filtered(search: &str) -> String {
    format!(
        "{{ customers(first: 20, filter: {{ search: {} }}, orderBy: {{ field: NAME }}) {{ nodes {{ id name company }} }} }}",
        Value::from(search)
    )
}

impl Scenario {
    pub const ALL: [Self; 6] = [
        Self::Point,
        Self::List,
        Self::Nested,
        Self::Filtered,
        // After the reads: its new activities would change what `nested` reads.
        Self::Write,
        Self::Typename,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Point => "point",
            Self::List => "list",
            Self::Nested => "nested",
            Self::Filtered => "filtered",
            Self::Write => "write",
            Self::Typename => "typename",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The reads have a floor to compare with; a write's cost is the database's commit, and
    /// `__typename` is the HTTP and GraphQL overhead alone.
    pub fn has_floor(self) -> bool {
        matches!(
            self,
            Self::Point | Self::List | Self::Nested | Self::Filtered
        )
    }

    /// The request bodies, sent in turn: one for a fixed query, one per customer id where
    /// the scenario rotates over them.
    pub fn bodies(self, ids: &[String], search: &str) -> Vec<String> {
        let one = |query: &str| vec![json!({ "query": query }).to_string()];
        match self {
            Self::Point => ids
                .iter()
                .map(|id| json!({ "query": POINT, "variables": { "id": id } }).to_string())
                .collect(),
            Self::List => one(LIST),
            Self::Nested => one(NESTED),
            Self::Filtered => one(&filtered(search)),
            Self::Write => ids
                .iter()
                .map(|id| {
                    let input = json!({ "customerId": id, "kind": "NOTE", "subject": "bench" });
                    json!({ "query": WRITE, "variables": { "input": input } }).to_string()
                })
                .collect(),
            Self::Typename => one(TYPENAME),
        }
    }

    /// A JSON pointer into the response that must hold a value: the data the scenario is
    /// about, so an empty page or a null field fails the check.
    fn must_hold(self) -> &'static str {
        match self {
            Self::Point => "/data/customer/id",
            Self::List | Self::Filtered => "/data/customers/nodes/0/name",
            Self::Nested => "/data/customers/nodes/0/activities/nodes/0/subject",
            Self::Write => "/data/logActivity/activity/id",
            Self::Typename => "/data/__typename",
        }
    }

    /// Writes the wrk script for these bodies; the path is returned.
    pub fn write_script(self, dir: &Path, token: &str, bodies: &[String]) -> PathBuf {
        let path = dir.join(format!("{}.lua", self.name()));
        std::fs::write(&path, lua_script(token, bodies)).expect("write the wrk script");
        path
    }
}

/// Lua for wrk: POSTs with the bearer token; one body is wrk's static request, several are
/// taken in turn (each thread starting at a different one).
fn lua_script(token: &str, bodies: &[String]) -> String {
    // Long brackets need no escaping; JSON never holds `]==]`.
    let quoted: Vec<String> = bodies.iter().map(|b| format!("[==[{b}]==]")).collect();
    let mut lua = format!(
        "wrk.method = \"POST\"\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n"
    );
    if let [body] = quoted.as_slice() {
        lua.push_str(&format!("wrk.body = {body}\n"));
    } else {
        lua.push_str(&format!(
            "local bodies = {{\n{}\n}}\n\
             local threads, i = 0, 0\n\
             function setup(thread)\n  thread:set(\"first\", threads * 37)\n  threads = threads + 1\nend\n\
             function init(args)\n  i = first or 0\nend\n\
             function request()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend\n",
            quoted.join(",\n")
        ));
    }
    lua
}

/// Sends `body` once and returns the response's JSON after checking that it is data: a
/// success status, no `errors`, the scenario's value present and, for a write, no user
/// errors.
pub async fn check(scenario: Scenario, url: &str, token: &str, body: &str) -> Value {
    let res = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("the check request");
    let status = res.status();
    let text = res.text().await.expect("the check response");
    let short: String = text.chars().take(500).collect();
    assert!(status.is_success(), "{}: {status} {short}", scenario.name());
    let value: Value = serde_json::from_str(&text).expect("a JSON response");
    assert!(
        value.get("errors").is_none(),
        "{}: errors in {short}",
        scenario.name()
    );
    assert!(
        value
            .pointer(scenario.must_hold())
            .is_some_and(|v| !v.is_null()),
        "{}: no {} in {short}",
        scenario.name(),
        scenario.must_hold()
    );
    assert!(
        value.pointer("/data/logActivity/userErrors/0").is_none(),
        "{}: user errors in {short}",
        scenario.name()
    );
    value
}
