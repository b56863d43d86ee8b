//! The production edge as browsers, schema tools and log collectors meet it: CORS, who may
//! introspect, request ids, JSON logs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crm::config::IntrospectionMode;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{SECRET, TestApp, reply};

const APP: &str = "http://localhost:5173";

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("sent")
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn browsers_on_configured_origins_may_call_and_others_may_not() {
    let app = TestApp::spawn_with(|c| c.edge.cors_origins = vec![APP.to_owned()]).await;

    let allowed = preflight(&app, APP).await;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(header(&allowed, "access-control-allow-origin"), APP);
    assert!(header(&allowed, "access-control-allow-methods").contains("POST"));
    let headers = header(&allowed, "access-control-allow-headers").to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    assert!(
        header(&allowed, "vary")
            .to_ascii_lowercase()
            .contains("origin")
    );
    assert_eq!(header(&allowed, "access-control-allow-credentials"), "");

    let refused = preflight(&app, "https://evil.example").await;
    assert_eq!(header(&refused, "access-control-allow-origin"), "");

    // The call itself carries the grant, and exposes what a client reads from headers.
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("origin", APP)
        .header("content-type", "application/json")
        .bearer_auth(app.admin())
        .body(json!({"query": "{ customers { totalCount } }"}).to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(header(&res, "access-control-allow-origin"), APP);
    let exposed = header(&res, "access-control-expose-headers").to_ascii_lowercase();
    assert!(
        exposed.contains("ratelimit") && exposed.contains("x-request-id"),
        "{exposed}"
    );
    reply(res).await.assert_ok();
}

#[tokio::test]
async fn without_configured_origins_no_browser_is_let_in() {
    let app = TestApp::spawn().await;
    let res = preflight(&app, APP).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&res, "access-control-allow-origin"), "");
}

const INTROSPECT: &str = "{ __schema { queryType { name } } }";

#[tokio::test]
async fn introspection_authenticated_answers_only_callers_with_a_token() {
    let app = TestApp::spawn_with(|c| c.edge.introspection = None).await;
    // Not dev mode (a secret is configured): `authenticated` is the default.
    let anonymous = app.gql_as(None, INTROSPECT, json!({})).await;
    assert!(anonymous.body["errors"].is_array(), "{}", anonymous.body);
    assert_eq!(anonymous.data("__schema"), &Value::Null);
    let typename = app.gql_as(None, "{ __typename }", json!({})).await;
    typename.assert_ok();

    let with_token = app.gql(INTROSPECT, json!({})).await;
    with_token.assert_ok();
    assert_eq!(with_token.data("__schema.queryType.name"), "Query");
    // Misspelled fields name no real ones.
    let typo = app
        .gql_as(None, "{ customerz { totalCount } }", json!({}))
        .await;
    let text = typo.body["errors"].to_string();
    assert!(!text.contains("Did you mean"), "{text}");
}

#[tokio::test]
async fn introspection_off_answers_nobody_and_suggests_nothing() {
    let app = TestApp::spawn_with(|c| c.edge.introspection = Some(IntrospectionMode::Off)).await;
    let r = app.gql(INTROSPECT, json!({})).await;
    assert!(r.body["errors"].is_array(), "{}", r.body);
    let r = app
        .gql("{ __type(name: \"Customer\") { name } }", json!({}))
        .await;
    assert!(r.body["errors"].is_array(), "{}", r.body);
    let typo = app.gql("{ customerz { totalCount } }", json!({})).await;
    let text = typo.body["errors"].to_string();
    assert!(!text.contains("Did you mean"), "{text}");
    assert!(!text.contains("\"customers\""), "{text}");
}

#[tokio::test]
async fn introspection_on_answers_everyone_and_suggests_fields() {
    let app = TestApp::spawn().await;
    app.gql_as(None, INTROSPECT, json!({})).await.assert_ok();
    let typo = app.gql("{ customerz { totalCount } }", json!({})).await;
    let text = typo.body["errors"].to_string();
    assert!(text.contains("Did you mean"), "{text}");
}

#[tokio::test]
async fn request_ids_are_echoed_and_unusable_ones_replaced() {
    let app = TestApp::spawn().await;
    let send = |id: Option<String>| {
        let mut req = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(json!({"query": "{ __typename }"}).to_string());
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        req.send()
    };
    let res = send(Some("trace-42.a:b_c-d".into())).await.expect("sent");
    assert_eq!(header(&res, "x-request-id"), "trace-42.a:b_c-d");
    let generated = send(None).await.expect("sent");
    assert_eq!(header(&generated, "x-request-id").len(), 36);
    for unusable in ["x".repeat(129), "a b".into(), "<script>".into()] {
        let res = send(Some(unusable.clone())).await.expect("sent");
        let id = header(&res, "x-request-id");
        assert!(id.len() == 36 && id != unusable, "{unusable} → {id}");
    }
}

/// `CRM_LOG_FORMAT=json`: every line a JSON object, the request's id in its lines.
#[tokio::test]
async fn json_logs_parse_and_carry_the_request_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("crm.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
        .env("CRM_LOG_FORMAT", "json")
        .env("CRM_JWT_SECRET", SECRET)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("crm runs");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = loop {
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix("CRM GraphQL API listening on http://") {
                    break rest.trim_end_matches("/graphql").to_owned();
                }
            }
            Err(err) => {
                let _ = child.kill();
                panic!("the server did not start: {err}");
            }
        }
    };
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .header("content-type", "application/json")
        .header("x-request-id", "json-log-check-7")
        .body(json!({"query": "{ __typename }"}).to_string())
        .send()
        .await;
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    assert!(res.is_ok_and(|r| r.status().is_success()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let answered = lines
        .iter()
        .find(|l| l["message"] == "answered" && l.to_string().contains("json-log-check-7"))
        .unwrap_or_else(|| panic!("no `answered` line with the request id: {stderr}"));
    assert_eq!(answered["status"], 200, "{answered}");
    assert_eq!(
        answered["span"]["request.id"], "json-log-check-7",
        "{answered}"
    );
}

#[test]
fn an_unknown_log_format_is_refused_naming_the_setting() {
    let out = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["--help"])
        .env("CRM_LOG_FORMAT", "xml")
        .output()
        .expect("crm runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CRM_LOG_FORMAT") && err.contains("xml"),
        "{err}"
    );
}

#[tokio::test]
async fn edge_errors_take_the_media_type_the_client_prefers() {
    let app = TestApp::spawn().await;
    for (accept, expected) in [
        (
            "application/graphql-response+json",
            "application/graphql-response+json",
        ),
        ("application/json", "application/json"),
    ] {
        let res = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .header("accept", accept)
            .bearer_auth("not-a-token")
            .body(json!({"query": "{ __typename }"}).to_string())
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header(&res, "content-type"), expected, "{accept}");
        assert_eq!(reply(res).await.error_codes(), ["UNAUTHENTICATED"]);
    }
}

#[tokio::test]
async fn api_clients_are_nodes_for_those_who_manage_them() {
    let app = TestApp::spawn().await;
    let created = app
        .gql(
            "mutation { createApiClient(input: {name: \"ERP\", scopes: [\"customers:read\"]}) { apiClient { id } } }",
            json!({}),
        )
        .await;
    let id = created.data("createApiClient.apiClient.id").clone();
    let query = "query($id: ID!) { node(id: $id) { id ... on ApiClient { name } } }";
    let r = app.gql(query, json!({"id": id})).await;
    r.assert_ok();
    assert_eq!(r.data("node.name"), "ERP");
    let reader = app.token("customers:read");
    let r = app.gql_as(Some(&reader), query, json!({"id": id})).await;
    assert_eq!(r.error_codes(), ["FORBIDDEN"]);
    let other = app.token_for("another-org", "user-1", crate::helpers::ALL_SCOPES);
    let r = app.gql_as(Some(&other), query, json!({"id": id})).await;
    r.assert_ok();
    assert_eq!(r.data("node"), &Value::Null);
}

#[tokio::test]
async fn scalars_say_what_they_hold_and_where_they_are_specified() {
    let app = TestApp::spawn().await;
    let r = app
        .gql(
            "{ dt: __type(name: \"DateTime\") { description specifiedByURL } d: __type(name: \"Date\") { specifiedByURL } }",
            json!({}),
        )
        .await;
    r.assert_ok();
    assert!(
        r.data("dt.specifiedByURL")
            .as_str()
            .is_some_and(|u| u.starts_with("https://"))
    );
    let description = r.data("dt.description").as_str().unwrap_or_default();
    assert!(
        description.contains("RFC 3339") && !description.contains("Utc>"),
        "{description}"
    );
    assert!(r.data("d.specifiedByURL").is_string());
}

/// Keys follow the query over WebSocket too, in every event.
#[tokio::test]
async fn websocket_results_keep_the_query_order() {
    use futures_util::StreamExt;
    let app = TestApp::spawn().await;
    let mut socket = crate::ws_client::open(&app).await;
    crate::ws_client::subscribe(
        &mut socket,
        &app.admin(),
        "subscription { customerChanged { seq op customer { name id } zulu: op alpha: seq } }",
    )
    .await;
    app.customer(json!({"name": "Ordered"})).await;
    let text = loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = msg
            && text.contains("\"next\"")
        {
            break text.to_string();
        }
    };
    let at = |key: &str| text.find(key).unwrap_or_else(|| panic!("{key} in {text}"));
    assert!(at("\"seq\"") < at("\"op\""), "{text}");
    assert!(at("\"name\"") < at("\"id\":\"cus_"), "{text}");
    assert!(at("\"zulu\"") < at("\"alpha\""), "{text}");
}

mod connections {
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use crate::helpers::TestApp;

    /// Reads until the server closes the connection, or `within` passes (`false` then).
    async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }

    async fn healthz(app: &TestApp) -> bool {
        let Ok(mut stream) = TcpStream::connect(app.addr).await else {
            return false;
        };
        let request = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        if stream.write_all(request.as_bytes()).await.is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer)).await;
        answer.starts_with("HTTP/1.1 200")
    }

    #[tokio::test]
    async fn one_address_holds_at_most_its_share_of_connections() {
        let app = TestApp::spawn_with(|c| c.edge.max_connections_per_ip = 2).await;
        let first = TcpStream::connect(app.addr).await.expect("connect");
        let mut second = TcpStream::connect(app.addr).await.expect("connect");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut third = TcpStream::connect(app.addr).await.expect("connect");
        assert!(
            closed_within(&mut third, Duration::from_secs(2)).await,
            "a third connection from one address is closed at once"
        );
        assert!(!healthz(&app).await, "nor is a request let in");
        drop(first);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(healthz(&app).await, "a freed place is taken again");
        assert!(!closed_within(&mut second, Duration::from_millis(200)).await);
    }

    #[tokio::test]
    async fn silent_and_half_sent_connections_are_closed() {
        let app = TestApp::spawn_with(|c| {
            c.edge.idle_timeout_secs = 2;
            c.edge.request_timeout_secs = 1;
        })
        .await;
        // Half a request, trickled a header at a time.
        let mut slow = TcpStream::connect(app.addr).await.expect("connect");
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let started = Instant::now();
        let trickle = async {
            for i in 0..20 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if slow
                    .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        };
        trickle.await;
        let mut slow = slow;
        assert!(closed_within(&mut slow, Duration::from_secs(1)).await);
        assert!(started.elapsed() < Duration::from_secs(7));

        // A keep-alive connection that answered once, then sat idle.
        let mut idle = TcpStream::connect(app.addr).await.expect("connect");
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 1024];
        let n = idle.read(&mut buf).await.expect("answer");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        let started = Instant::now();
        assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
        let after = started.elapsed();
        assert!(after >= Duration::from_millis(1_500), "{after:?}");
    }
}
