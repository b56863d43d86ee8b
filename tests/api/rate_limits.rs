//! Cost-based rate limits and usage metering, as a client sees them: the `RateLimit-Policy`
//! and `RateLimit` fields, 429 with `Retry-After` once a caller's budget is spent, budgets
//! per caller (and shared by instances through Redis), batches and WebSocket operations
//! charged like the rest, and the `usage` figures an organization's administrators read.
//!
//! Costs are never written down here: each is read back from the server (what a fresh
//! bucket has left after one operation), so the tests follow the schema's `@cost` model.
//! Most tests refill one unit a second, so that what a test sees in the headers is what it
//! spent; what a slow machine may have regained meanwhile is allowed for, never more.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{NaiveDate, Utc};
use crm::config::{ConfigError, EdgeConfig, ServeConfig};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::helpers::{ALL_SCOPES, TestApp, reply};
use crate::ws_client::{init, open, recv, send};

/// The bucket of most tests: what one caller may spend at once.
const BURST: u32 = 1_000;

/// A query of a few statements.
const COUNT: &str = "{ customers(first: 1) { totalCount } }";
/// A query whose answer holds an error for a caller without `activities:read`.
const FORBIDDEN_COUNT: &str = "{ activities(first: 1) { totalCount } }";
/// A write: the costliest kind of operation.
const CREATE: &str = r#"mutation { createCustomer(input: {name: "Budget"}) { customer { id } } }"#;
const USAGE: &str = "query($from: Date!, $to: Date!, $caller: String) { usage(from: $from, to: $to, caller: $caller) { day caller apiClientId requests cost errors rejections } }";

/// Rate limits on: `per_sec` units regained a second, `BURST` at most (queries may cost as
/// much). Usage is written when read or at shutdown, never behind a test's back.
fn limited(per_sec: u32) -> impl FnOnce(&mut ServeConfig) {
    move |c| {
        c.max_query_complexity = BURST as usize;
        c.edge.rate_limit_cost_per_sec = per_sec;
        c.edge.rate_limit_burst = BURST;
        c.edge.usage_flush_secs = 3_600;
    }
}

/// An answer with the fields a client reads.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The parameters of a `"cost";k=v;…` field.
    fn params(&self, name: &str) -> HashMap<String, u64> {
        let value = self
            .header(name)
            .unwrap_or_else(|| panic!("no {name} field in {:?}: {}", self.headers, self.body));
        let mut items = value.split(';');
        assert_eq!(items.next(), Some("\"cost\""), "{name}: {value}");
        items
            .map(|item| {
                let (k, v) = item
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{name}: {value}"));
                (
                    k.to_owned(),
                    v.parse()
                        .unwrap_or_else(|_| panic!("{name}: `{v}` is not a number")),
                )
            })
            .collect()
    }

    /// `r` of the `RateLimit` field: what the caller has left.
    fn remaining(&self) -> u64 {
        self.params("ratelimit")["r"]
    }

    fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }

    fn retry_after(&self) -> u64 {
        self.header("retry-after")
            .unwrap_or_else(|| panic!("no Retry-After: {:?}", self.headers))
            .parse()
            .expect("Retry-After is a number of seconds")
    }

    #[track_caller]
    fn assert_ok(&self) -> &Self {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert!(self.body.get("errors").is_none(), "{}", self.body);
        self
    }

    /// A refusal by the rate limit: 429, a GraphQL-shaped error, nothing executed.
    #[track_caller]
    fn assert_rate_limited(&self) -> &Self {
        assert_eq!(self.status, StatusCode::TOO_MANY_REQUESTS, "{}", self.body);
        assert_eq!(self.code(), Some("RATE_LIMITED"), "{}", self.body);
        assert!(self.body.get("data").is_none(), "{}", self.body);
        assert!(self.retry_after() >= 1);
        self
    }
}

async fn post(app: &TestApp, token: Option<&str>, body: &Value) -> Answer {
    let mut req = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .body(body.to_string());
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.expect("request sent");
    let headers = res.headers().clone();
    let r = reply(res).await;
    Answer {
        status: r.status,
        headers,
        body: r.body,
    }
}

async fn gql(app: &TestApp, token: &str, query: &str) -> Answer {
    post(app, Some(token), &json!({ "query": query })).await
}

/// What `query` costs: what a caller no one has charged yet has left after it, subtracted
/// from the bucket. The caller is of an org of its own, so that nothing it writes shows.
async fn measure(app: &TestApp, query: &str) -> u64 {
    let org = format!("org_probe_{}", ulid::Ulid::new());
    let answer = gql(app, &app.token_for(&org, "probe", ALL_SCOPES), query).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    u64::from(BURST) - answer.remaining()
}

/// What `query` costs, which must be more than the least anything costs.
async fn cost_of(app: &TestApp, query: &str) -> u64 {
    let cost = measure(app, query).await;
    assert!(cost > 1, "{query} costs {cost}: not a useful measure");
    cost
}

/// That a caller's budget went from `before` to `after` by paying `cost`, with what it may
/// have regained at `per_sec` since `since` (and nothing more).
#[track_caller]
fn assert_paid(before: u64, after: u64, cost: u64, since: Instant, per_sec: u64) {
    let regained = (since.elapsed().as_secs_f64() * per_sec as f64).floor() as u64;
    let floor = before.checked_sub(cost).expect("the budget could pay");
    assert!(
        (floor..=floor + regained).contains(&after),
        "left {after} after paying {cost} of {before} (regaining at most {regained})"
    );
}

/// The customers of `app.org`, counted by a caller with a budget of its own.
async fn customer_count(app: &TestApp) -> u64 {
    let counter = app.token_for(
        &app.org,
        &format!("counter-{}", ulid::Ulid::new()),
        "customers:read",
    );
    let answer = gql(app, &counter, "{ customers { totalCount } }").await;
    answer.assert_ok();
    answer.body["data"]["customers"]["totalCount"]
        .as_u64()
        .expect("count")
}

/// An API client of `app.org` (created by a caller of its own budget): its id, its secret,
/// and an access token issued to it with the client credentials grant.
async fn api_client(app: &TestApp, scopes: &[&str]) -> (String, String, String) {
    let admin = app.token_for(&app.org, "client-admin", ALL_SCOPES);
    let created = post(
        app,
        Some(&admin),
        &json!({
            "query": "mutation($i: CreateApiClientInput!) { createApiClient(input: $i) { apiClient { id } clientSecret userErrors { message } } }",
            "variables": {"i": {"name": "Metered sync", "scopes": scopes}},
        }),
    )
    .await;
    created.assert_ok();
    let payload = &created.body["data"]["createApiClient"];
    assert_eq!(payload["userErrors"], json!([]), "{}", created.body);
    let id = payload["apiClient"]["id"].as_str().expect("id").to_owned();
    let secret = payload["clientSecret"].as_str().expect("secret").to_owned();
    let token = client_token(app, &id, &secret).await;
    (id, secret, token)
}

async fn client_token(app: &TestApp, id: &str, secret: &str) -> String {
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
        )
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("sent");
    let r = reply(res).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

/// The `usage` query as `token`.
async fn usage(
    app: &TestApp,
    token: &str,
    from: NaiveDate,
    to: NaiveDate,
    caller: Option<&str>,
) -> Answer {
    post(
        app,
        Some(token),
        &json!({
            "query": USAGE,
            "variables": {"from": from.to_string(), "to": to.to_string(), "caller": caller},
        }),
    )
    .await
}

/// A caller's figures summed over the rows of `answer` (traffic around midnight UTC spreads
/// over two days).
#[derive(Debug, Default, PartialEq, Eq)]
struct Figures {
    requests: i64,
    cost: i64,
    errors: i64,
    rejections: i64,
}

fn figures(answer: &Answer, caller: &str) -> Option<Figures> {
    let rows = answer.body["data"]["usage"].as_array().expect("usage rows");
    let mut seen = None;
    for row in rows.iter().filter(|row| row["caller"] == caller) {
        let sum: &mut Figures = seen.get_or_insert_with(Figures::default);
        let n = |k: &str| row[k].as_i64().unwrap_or_else(|| panic!("{k} of {row}"));
        sum.requests += n("requests");
        sum.cost += n("cost");
        sum.errors += n("errors");
        sum.rejections += n("rejections");
    }
    seen
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// The days around today: a test that runs across midnight UTC counts on two days.
fn around_today() -> (NaiveDate, NaiveDate) {
    (
        today().pred_opt().expect("a day before"),
        today().succ_opt().expect("a day after"),
    )
}

/// A token with `clients:manage` of a caller no one has charged (reading usage is costly).
fn auditor(app: &TestApp, org: &str) -> String {
    app.token_for(
        org,
        &format!("auditor-{}", ulid::Ulid::new()),
        "clients:manage",
    )
}

#[tokio::test]
async fn allowed_requests_carry_the_policy_and_what_is_left() {
    let app = TestApp::spawn_with(limited(1)).await;
    let token = app.token("customers:read");
    let cost = cost_of(&app, COUNT).await;

    let started = Instant::now();
    let first = gql(&app, &token, COUNT).await;
    first.assert_ok();
    let policy = first.params("ratelimit-policy");
    assert_eq!(policy["q"], u64::from(BURST), "{policy:?}");
    // An empty bucket takes BURST seconds to fill at one unit a second.
    assert_eq!(policy["w"], u64::from(BURST), "{policy:?}");
    let state = first.params("ratelimit");
    assert_eq!(state["r"], u64::from(BURST) - cost, "{state:?}");
    // Seconds until the bucket is full: what was spent, at one unit a second.
    assert_eq!(state["t"], cost, "{state:?}");

    let second = gql(&app, &token, COUNT).await;
    second.assert_ok();
    assert_eq!(second.params("ratelimit-policy"), policy);
    assert_paid(first.remaining(), second.remaining(), cost, started, 1);

    // A query over GET is charged the same, and says so.
    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", COUNT)])
        .header("accept", "application/graphql-response+json")
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    let headers = res.headers().clone();
    let third = Answer {
        status: res.status(),
        headers,
        body: reply(res).await.body,
    };
    third.assert_ok();
    assert_paid(second.remaining(), third.remaining(), cost, started, 1);

    // A costlier query costs more.
    let page = "{ customers(first: 50) { nodes { id name } } }";
    let page_cost = cost_of(&app, page).await;
    assert!(page_cost > cost, "{page_cost} <= {cost}");
    let fourth = gql(&app, &token, page).await;
    fourth.assert_ok();
    assert_paid(third.remaining(), fourth.remaining(), page_cost, started, 1);
}

#[tokio::test]
async fn a_spent_budget_is_refused_with_429_until_retry_after() {
    // 250 a second: a refused write can run again within ~2 s.
    let per_sec = 250;
    let app = TestApp::spawn_with(limited(per_sec)).await;
    let token = app.token_for(&app.org, "spender", "customers:read customers:write");
    let cost = cost_of(&app, CREATE).await;
    assert!(cost * 2 > u64::from(BURST), "a write must be costly");

    let mut created = 0;
    let refused = loop {
        let answer = gql(&app, &token, CREATE).await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            break answer;
        }
        answer.assert_ok();
        created += 1;
        assert!(
            created < 5,
            "{created} writes of {cost} fit a bucket of {BURST}"
        );
    };
    refused.assert_rate_limited();
    assert_eq!(
        refused.params("ratelimit-policy")["q"],
        u64::from(BURST),
        "a refusal carries the policy"
    );
    // What is left (the refused write took nothing) cannot pay for it.
    assert!(refused.remaining() < cost, "{}", refused.remaining());
    let retry_after = refused.retry_after();
    assert!(
        retry_after <= cost.div_ceil(u64::from(per_sec)),
        "Retry-After {retry_after}, but {cost} comes back in {} s at most",
        cost.div_ceil(u64::from(per_sec))
    );
    let message = refused.body["errors"][0]["message"]
        .as_str()
        .expect("message");
    assert!(message.contains("rate limit"), "{message}");
    // The refused write did not run.
    assert_eq!(customer_count(&app).await, created);

    // Once Retry-After has passed, the same write runs.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    gql(&app, &token, CREATE).await.assert_ok();
    assert_eq!(customer_count(&app).await, created + 1);
}

#[tokio::test]
async fn budgets_are_per_caller() {
    let app = TestApp::spawn_with(limited(1)).await;
    let (client_id, secret, client_token_1) = api_client(&app, &["customers:read"]).await;
    let cost = cost_of(&app, COUNT).await;
    let write_cost = cost_of(&app, CREATE).await;
    let fresh = u64::from(BURST) - cost;

    // One user spends its budget, with two tokens of its own: they share it.
    let scopes = "customers:read customers:write";
    let spender = app.token_for(&app.org, "spender", scopes);
    let same_user = app.token_for(&app.org, "spender", "customers:write customers:read");
    assert_ne!(spender, same_user, "two different tokens");
    let mut spent = 0;
    while spent + write_cost <= u64::from(BURST) {
        gql(&app, &spender, CREATE).await.assert_ok();
        spent += write_cost;
    }
    let refused = gql(&app, &same_user, CREATE).await;
    refused.assert_rate_limited();

    // Another subject of the org, the same subject of another org, an API client and an
    // anonymous caller each have their own full bucket.
    let other_sub = app.token_for(&app.org, "someone-else", scopes);
    let other_org = app.token_for(
        &format!("org_other_{}", ulid::Ulid::new()),
        "spender",
        scopes,
    );
    for (who, token) in [
        ("another subject", other_sub.as_str()),
        ("another org", other_org.as_str()),
        ("an API client", client_token_1.as_str()),
    ] {
        let answer = gql(&app, token, COUNT).await;
        answer.assert_ok();
        assert_eq!(answer.remaining(), fresh, "{who} has its own budget");
    }
    let typename_cost = measure(&app, "{ __typename }").await;
    let anonymous = post(&app, None, &json!({"query": "{ __typename }"})).await;
    anonymous.assert_ok();
    assert_eq!(
        anonymous.remaining(),
        u64::from(BURST) - typename_cost,
        "by address"
    );
    // The spender is still refused.
    gql(&app, &spender, CREATE).await.assert_rate_limited();

    // A second token of the same API client draws on the client's budget.
    let started = Instant::now();
    let client_token_2 = client_token(&app, &client_id, &secret).await;
    assert_ne!(client_token_1, client_token_2);
    let answer = gql(&app, &client_token_2, COUNT).await;
    answer.assert_ok();
    assert_paid(fresh, answer.remaining(), cost, started, 1);
}

#[tokio::test]
async fn a_batch_is_charged_the_sum_of_its_operations() {
    let app = TestApp::spawn_with(limited(1)).await;
    let who = "{ viewer { subject } }";
    let (count_cost, who_cost) = (cost_of(&app, COUNT).await, cost_of(&app, who).await);
    let token = app.token_for(&app.org, "batcher", "customers:read customers:write");

    let started = Instant::now();
    let batch = json!([{ "query": COUNT }, { "query": who }, { "query": COUNT }]);
    let answer = post(&app, Some(&token), &batch).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let results = answer.body.as_array().expect("an array of results");
    assert_eq!(results.len(), 3);
    for result in results {
        assert!(result.get("errors").is_none(), "{result}");
    }
    let total = 2 * count_cost + who_cost;
    assert_paid(u64::from(BURST), answer.remaining(), total, started, 1);

    // A batch the rest of the budget cannot pay (though a full bucket could) is refused
    // whole, and charged nothing: a write that fits what was left still runs.
    let create_cost = cost_of(&app, CREATE).await;
    let left = answer.remaining();
    let reads = left / count_cost + 1;
    assert!(
        reads * count_cost <= u64::from(BURST) && create_cost < left,
        "test design"
    );
    let operations = (0..reads).map(|_| json!({ "query": COUNT })).collect();
    let refused = post(&app, Some(&token), &Value::Array(operations)).await;
    refused.assert_rate_limited();
    assert!(refused.remaining() < reads * count_cost);
    gql(&app, &token, CREATE).await.assert_ok();
    assert_eq!(customer_count(&app).await, 1);
}

#[tokio::test]
async fn a_batch_costing_more_than_the_whole_budget_is_refused() {
    let app = TestApp::spawn_with(limited(1)).await;
    let create_cost = cost_of(&app, CREATE).await;
    let n = u64::from(BURST) / create_cost + 1;
    let batch = Value::Array(
        (0..n)
            .map(|_| json!({ "query": CREATE }))
            .collect::<Vec<_>>(),
    );
    let token = app.token_for(&app.org, "big-batcher", "customers:read customers:write");
    let answer = post(&app, Some(&token), &batch).await;
    // Refused whole, and not as a rate limit (a retry would never be paid).
    assert_eq!(
        answer.status,
        StatusCode::BAD_REQUEST,
        "{n} writes of {create_cost} each on a budget of {BURST}: {}",
        answer.body
    );
    assert_eq!(
        answer.body["errors"][0]["extensions"]["code"],
        "BATCH_TOO_LARGE"
    );
    assert_eq!(customer_count(&app).await, 0);
}

#[tokio::test]
async fn a_refused_websocket_operation_gets_an_error_and_the_connection_lives_on() {
    let app = TestApp::spawn_with(limited(1)).await;
    // Two pages of 100 cost more than half the bucket: the second is refused.
    let costly =
        "{ a: customers(first: 100) { nodes { id } } b: customers(first: 100) { nodes { id } } }";
    let cost = cost_of(&app, costly).await;
    assert!(cost <= u64::from(BURST) && cost * 2 > u64::from(BURST) + 60);
    let typename_cost = measure(&app, "{ __typename }").await;

    let started = Instant::now();
    let mut socket = open(&app).await;
    init(
        &mut socket,
        &app.token_for(&app.org, "ws-user", "customers:read"),
    )
    .await;
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": costly}}),
    )
    .await;
    let msg = recv(&mut socket).await;
    assert_eq!(
        (&msg["id"], &msg["type"]),
        (&json!("1"), &json!("next")),
        "{msg}"
    );
    assert_eq!(
        recv(&mut socket).await,
        json!({"id": "1", "type": "complete"})
    );

    send(
        &mut socket,
        json!({"id": "2", "type": "subscribe", "payload": {"query": costly}}),
    )
    .await;
    let msg = recv(&mut socket).await;
    assert_eq!(
        (&msg["id"], &msg["type"]),
        (&json!("2"), &json!("error")),
        "{msg}"
    );
    assert_eq!(
        msg["payload"][0]["extensions"]["code"], "RATE_LIMITED",
        "{msg}"
    );
    assert!(
        msg["payload"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("retry after")),
        "{msg}"
    );

    // The connection is open, and an operation the rest of the budget pays for runs.
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut socket).await, json!({"type": "pong"}));
    send(
        &mut socket,
        json!({"id": "2", "type": "subscribe", "payload": {"query": "{ __typename }"}}),
    )
    .await;
    assert_eq!(
        recv(&mut socket).await,
        json!({"id": "2", "type": "next", "payload": {"data": {"__typename": "Query"}}})
    );
    assert_eq!(
        recv(&mut socket).await,
        json!({"id": "2", "type": "complete"})
    );

    // The same caller over HTTP draws on the same budget.
    let answer = gql(
        &app,
        &app.token_for(&app.org, "ws-user", "customers:read"),
        "{ __typename }",
    )
    .await;
    answer.assert_ok();
    assert_paid(
        u64::from(BURST) - cost - typename_cost,
        answer.remaining(),
        typename_cost,
        started,
        1,
    );

    // Metered: two operations ran (what they cost), one was refused.
    let (from, to) = around_today();
    let read = usage(
        &app,
        &auditor(&app, &app.org),
        from,
        to,
        Some("user:ws-user"),
    )
    .await;
    read.assert_ok();
    assert_eq!(
        figures(&read, "user:ws-user"),
        Some(Figures {
            requests: 3,
            cost: i64::try_from(cost + 2 * typename_cost).expect("cost"),
            errors: 0,
            rejections: 1,
        }),
        "{}",
        read.body
    );
}

#[tokio::test]
async fn usage_counts_requests_cost_errors_and_rejections_per_caller() {
    let app = TestApp::spawn_with(limited(1)).await;
    let (client_id, _, client) = api_client(&app, &["customers:read"]).await;
    let (count_cost, forbidden_cost, create_cost) = (
        cost_of(&app, COUNT).await,
        cost_of(&app, FORBIDDEN_COUNT).await,
        cost_of(&app, CREATE).await,
    );

    // A user: a query, a query answered with an error, a write; then a write and a batch of
    // two that the rest of the budget cannot pay.
    let started = Instant::now();
    let user = app.token_for(&app.org, "metered", "customers:read customers:write");
    gql(&app, &user, COUNT).await.assert_ok();
    let forbidden = gql(&app, &user, FORBIDDEN_COUNT).await;
    assert_eq!(forbidden.code(), Some("FORBIDDEN"), "{}", forbidden.body);
    let last = gql(&app, &user, CREATE).await;
    last.assert_ok();
    let spent = count_cost + forbidden_cost + create_cost;
    assert_paid(u64::from(BURST), last.remaining(), spent, started, 1);
    gql(&app, &user, CREATE).await.assert_rate_limited();
    post(
        &app,
        Some(&user),
        &json!([{ "query": CREATE }, { "query": COUNT }]),
    )
    .await
    .assert_rate_limited();

    // The API client: two queries and one with an error.
    gql(&app, &client, COUNT).await.assert_ok();
    gql(&app, &client, COUNT).await.assert_ok();
    let forbidden = gql(&app, &client, FORBIDDEN_COUNT).await;
    assert_eq!(forbidden.code(), Some("FORBIDDEN"), "{}", forbidden.body);
    // Anonymous traffic is not metered.
    post(&app, None, &json!({"query": "{ __typename }"}))
        .await
        .assert_ok();

    let (from, to) = around_today();
    let read = usage(&app, &auditor(&app, &app.org), from, to, None).await;
    read.assert_ok();
    let i = |n: u64| i64::try_from(n).expect("cost");
    assert_eq!(
        figures(&read, "user:metered"),
        Some(Figures {
            requests: 3,
            cost: i(spent),
            errors: 1,
            rejections: 3,
        }),
        "{}",
        read.body
    );
    let client_caller = format!("client:{client_id}");
    assert_eq!(
        figures(&read, &client_caller),
        Some(Figures {
            requests: 3,
            cost: i(2 * count_cost + forbidden_cost),
            errors: 1,
            rejections: 0,
        }),
        "{}",
        read.body
    );
    let rows = read.body["data"]["usage"].as_array().expect("rows");
    for row in rows {
        let day = row["day"].as_str().expect("day");
        assert!(
            [today().to_string(), from.to_string()].contains(&day.to_owned()),
            "{row}"
        );
        let expected = row["caller"]
            .as_str()
            .and_then(|c| c.strip_prefix("client:"))
            .map_or(Value::Null, |id| json!(id));
        assert_eq!(row["apiClientId"], expected, "{row}");
        assert!(
            row["caller"]
                .as_str()
                .is_some_and(|c| c.starts_with("user:") || c.starts_with("client:")),
            "anonymous calls have no row: {row}"
        );
    }
    assert!(
        rows.iter()
            .any(|row| row["caller"] == client_caller && row["apiClientId"] == json!(client_id)),
        "{}",
        read.body
    );

    // One caller's rows.
    let one = usage(
        &app,
        &auditor(&app, &app.org),
        from,
        to,
        Some(&client_caller),
    )
    .await;
    one.assert_ok();
    let rows = one.body["data"]["usage"].as_array().expect("rows");
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|row| row["caller"] == client_caller),
        "{}",
        one.body
    );

    // Another org's administrator sees none of it.
    let elsewhere = format!("org_else_{}", ulid::Ulid::new());
    let theirs = usage(&app, &auditor(&app, &elsewhere), from, to, None).await;
    theirs.assert_ok();
    assert_eq!(theirs.body["data"]["usage"], json!([]), "{}", theirs.body);
}

#[tokio::test]
async fn usage_is_for_administrators_and_bounded_ranges() {
    let app = TestApp::spawn_with(limited(1)).await;
    let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");

    let nosy = app.token_for(&app.org, "nosy", "customers:read customers:write");
    let refused = usage(&app, &nosy, today(), today(), None).await;
    assert_eq!(refused.code(), Some("FORBIDDEN"), "{}", refused.body);
    assert_eq!(
        refused.body["data"]["usage"],
        Value::Null,
        "{}",
        refused.body
    );

    for (from, to, ok) in [
        // 366 days (a leap year), the most.
        ("2024-01-01", "2024-12-31", true),
        ("2024-01-01", "2025-01-01", false),
        ("2020-01-01", "2025-01-01", false),
        // One day.
        ("2025-03-01", "2025-03-01", true),
        ("2025-03-02", "2025-03-01", false),
    ] {
        let answer = usage(&app, &auditor(&app, &app.org), day(from), day(to), None).await;
        if ok {
            answer.assert_ok();
            assert_eq!(answer.body["data"]["usage"], json!([]), "{from}..{to}");
        } else {
            assert_eq!(
                answer.code(),
                Some("BAD_USER_INPUT"),
                "{from}..{to}: {}",
                answer.body
            );
        }
    }
    // Not a date.
    let answer = post(
        &app,
        Some(&auditor(&app, &app.org)),
        &json!({"query": USAGE, "variables": {"from": "yesterday", "to": "2025-01-01"}}),
    )
    .await;
    assert_eq!(answer.code(), Some("BAD_USER_INPUT"), "{}", answer.body);
    assert_eq!(answer.body["data"]["usage"], Value::Null, "{}", answer.body);
}

#[tokio::test]
async fn a_stopping_server_writes_the_usage_it_counted() {
    let mut first = TestApp::spawn_with(limited(1)).await;
    let cost = cost_of(&first, COUNT).await;
    let forbidden_cost = cost_of(&first, FORBIDDEN_COUNT).await;
    let user = first.token_for(&first.org, "leaving", "customers:read");
    gql(&first, &user, COUNT).await.assert_ok();
    gql(&first, &user, COUNT).await.assert_ok();
    let forbidden = gql(&first, &user, FORBIDDEN_COUNT).await;
    assert_eq!(forbidden.code(), Some("FORBIDDEN"), "{}", forbidden.body);
    first.stop();

    // Another instance on the same database (the first one's files stay until it drops).
    let second = TestApp::spawn_with(|c| c.db.url = first.db_url.clone()).await;
    let (from, to) = around_today();
    let expected = Figures {
        requests: 3,
        cost: i64::try_from(2 * cost + forbidden_cost).expect("cost"),
        errors: 1,
        rejections: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let read = usage(
            &second,
            &auditor(&second, &first.org),
            from,
            to,
            Some("user:leaving"),
        )
        .await;
        read.assert_ok();
        let seen = figures(&read, "user:leaving");
        if seen.as_ref() == Some(&expected) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the first server stopped, its usage reads {seen:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn the_burst_must_pay_for_the_costliest_query_and_redis_is_a_redis_url() {
    assert!(EdgeConfig::default().validate(50_000).is_ok());
    let small = EdgeConfig {
        rate_limit_cost_per_sec: 10,
        rate_limit_burst: 999,
        ..EdgeConfig::default()
    };
    assert!(matches!(
        small.validate(1_000),
        Err(ConfigError::SmallBurst {
            burst: 999,
            complexity: 1_000
        })
    ));
    assert!(small.validate(999).is_ok());
    // With rate limits off, the burst does not matter.
    let off = EdgeConfig {
        rate_limit_cost_per_sec: 0,
        rate_limit_burst: 1,
        ..EdgeConfig::default()
    };
    assert!(off.validate(50_000).is_ok());

    for (url, ok) in [
        ("redis://127.0.0.1:6379", true),
        ("rediss://cache.example.com:6380/0", true),
        ("http://127.0.0.1:6379", false),
        ("127.0.0.1:6379", false),
        ("", false),
    ] {
        let config = EdgeConfig {
            redis_url: Some(url.to_owned()),
            ..EdgeConfig::default()
        };
        let result = config.validate(50_000);
        assert_eq!(result.is_ok(), ok, "{url}: {result:?}");
        if !ok {
            assert!(matches!(result, Err(ConfigError::RedisUrl)), "{url}");
        }
    }
    let config = EdgeConfig {
        usage_flush_secs: 0,
        ..EdgeConfig::default()
    };
    assert!(matches!(
        config.validate(50_000),
        Err(ConfigError::ZeroSeconds(_))
    ));
}

/// Budgets shared through Redis: run by `.ci/run`, which starts a Redis when none answers.
mod needs_redis {
    use std::time::{Duration, Instant};

    use crm::config::ServeConfig;
    use reqwest::StatusCode;

    use super::*;
    use crate::helpers::TestApp;

    /// Where the Redis of these tests is: `TEST_REDIS_URL`, else the local default. A test that
    /// needs it fails (never passes quietly) when it is not there.
    async fn redis_url() -> String {
        let url = std::env::var("TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
        let reachable = async {
            let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(Duration::from_secs(5), reachable).await {
            Ok(Ok(_)) => url,
            Ok(Err(err)) => panic!(
                "Redis at {url} is unreachable ({err}): the shared rate limit tests need it; \
                 start one (redis-server) or point TEST_REDIS_URL at one"
            ),
            Err(_) => panic!(
                "Redis at {url} did not answer in 5 s: the shared rate limit tests need it; \
                 start one (redis-server) or point TEST_REDIS_URL at one"
            ),
        }
    }

    #[tokio::test]
    #[ignore = "needs Redis: TEST_REDIS_URL=redis://… cargo test -- --ignored needs_redis:: (.ci/run starts one)"]
    async fn instances_sharing_redis_draw_on_one_budget() {
        let url = redis_url().await;
        let shared = |c: &mut ServeConfig| {
            limited(1)(c);
            c.edge.redis_url = Some(url.clone());
        };
        let a = TestApp::spawn_with(shared).await;
        let b = TestApp::spawn_with(shared).await;
        // A tenant of this run alone: budgets in Redis outlive the test.
        let org = format!("org_redis_{}", ulid::Ulid::new());
        let scopes = "customers:read customers:write";
        let token = a.token_for(&org, "shared", scopes);

        let started = Instant::now();
        let on_a = gql(&a, &token, COUNT).await;
        on_a.assert_ok();
        assert_eq!(on_a.params("ratelimit-policy")["q"], u64::from(BURST));
        let cost = u64::from(BURST) - on_a.remaining();
        assert!(cost > 1, "{cost}");
        // B sees what A spent.
        let on_b = gql(&b, &token, COUNT).await;
        on_b.assert_ok();
        assert_paid(on_a.remaining(), on_b.remaining(), cost, started, 1);

        // Spent on A until a write no longer fits; then B refuses it too.
        let mut left = on_b.remaining();
        loop {
            let answer = gql(&a, &token, CREATE).await;
            if answer.status == StatusCode::TOO_MANY_REQUESTS {
                answer.assert_rate_limited();
                break;
            }
            answer.assert_ok();
            assert!(answer.remaining() < left, "writes are charged");
            left = answer.remaining();
        }
        let refused = gql(&b, &token, CREATE).await;
        refused.assert_rate_limited();
        assert!(refused.remaining() <= left + started.elapsed().as_secs() + 1);
        assert!(refused.retry_after() >= 1);

        // Another caller on B is not affected.
        let other = gql(&b, &b.token_for(&org, "other", scopes), COUNT).await;
        other.assert_ok();
        assert_eq!(other.remaining(), u64::from(BURST) - cost);
    }
}
