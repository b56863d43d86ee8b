//! GraphQL over WebSocket with a real client: every `graphql-transport-ws` rule, the legacy
//! protocol, and live changes filtered by tenant, scope and argument.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{ALL_SCOPES, TestApp};

use crate::ws_client::{Socket, close_code, init, open, open_with, recv, send};

#[tokio::test]
async fn changes_reach_subscribers_of_the_same_tenant_with_their_scopes() {
    let app = TestApp::spawn().await;
    let mut full = open(&app).await;
    init(&mut full, &app.admin()).await;
    let mut no_pii = open(&app).await;
    init(&mut no_pii, &app.token("customers:read")).await;
    let mut other_org = open(&app).await;
    init(
        &mut other_org,
        &app.token_for("org_elsewhere", "spy", ALL_SCOPES),
    )
    .await;
    let query = "subscription { customerChanged { op seq changedFields customer { id name email version } } }";
    for socket in [&mut full, &mut no_pii, &mut other_org] {
        send(
            socket,
            json!({"id": "1", "type": "subscribe", "payload": {"query": query}}),
        )
        .await;
    }
    // Let the subscriptions register before the write.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let id = app
        .customer(json!({"name": "Live", "email": "live@example.com"}))
        .await;
    let msg = recv(&mut full).await;
    assert_eq!(msg["type"], "next");
    assert_eq!(msg["id"], "1");
    let change = &msg["payload"]["data"]["customerChanged"];
    assert_eq!(change["op"], "CREATED");
    assert_eq!(
        change["customer"],
        json!({"id": id, "name": "Live", "email": "live@example.com", "version": 1})
    );
    assert!(
        change["changedFields"]
            .as_array()
            .expect("fields")
            .contains(&json!("name"))
    );

    let msg = recv(&mut no_pii).await;
    assert_eq!(
        msg["payload"]["data"]["customerChanged"]["customer"]["email"],
        Value::Null
    );
    assert_eq!(
        msg["payload"]["data"]["customerChanged"]["customer"]["name"],
        "Live"
    );
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"],
        "FORBIDDEN"
    );

    app.gql("mutation($id: ID!) { updateCustomer(input: {id: $id, name: \"Renamed\"}) { customer { id } } }", json!({"id": id}))
        .await
        .assert_ok();
    let msg = recv(&mut full).await;
    let change = &msg["payload"]["data"]["customerChanged"];
    assert_eq!(change["op"], "UPDATED");
    assert_eq!(change["changedFields"], json!(["name"]));
    assert_eq!(change["customer"]["version"], 2);

    // The other tenant heard nothing: its next message is the answer to a ping.
    send(&mut other_org, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut other_org).await, json!({"type": "pong"}));

    // Completing stops the stream.
    send(&mut full, json!({"id": "1", "type": "complete"})).await;
    app.customer(json!({"name": "Unheard"})).await;
    send(&mut full, json!({"type": "ping", "payload": {"n": 1}})).await;
    assert_eq!(
        recv(&mut full).await,
        json!({"type": "pong", "payload": {"n": 1}})
    );
}

/// Waits until the two live gauges read as expected (joins and leaves settle asynchronously).
async fn await_live(app: &TestApp, executions: f64, operations: f64) {
    let mut seen = (0.0, 0.0);
    for _ in 0..100 {
        seen = (
            app.metric("crm_live_executions").await,
            app.metric("crm_live_operations").await,
        );
        if seen == (executions, operations) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("live (executions, operations) = {seen:?}, expected ({executions}, {operations})");
}

#[tokio::test]
async fn identical_subscriptions_share_one_execution_and_leave_it_independently() {
    let app = TestApp::spawn().await;
    let query = "subscription { customerChanged { op customer { name email } } }";
    let subscribe = json!({"id": "s", "type": "subscribe", "payload": {"query": query}});
    let mut same = Vec::new();
    for _ in 0..12 {
        let mut socket = open(&app).await;
        init(&mut socket, &app.admin()).await;
        send(&mut socket, subscribe.clone()).await;
        same.push(socket);
    }
    // Same document, fewer scopes; and the same document and scopes in another tenant.
    let mut narrower = open(&app).await;
    init(&mut narrower, &app.token("customers:read")).await;
    send(&mut narrower, subscribe.clone()).await;
    let mut elsewhere = open(&app).await;
    init(
        &mut elsewhere,
        &app.token_for("org_elsewhere", "spy", ALL_SCOPES),
    )
    .await;
    send(&mut elsewhere, subscribe.clone()).await;
    // Different variables make a different execution too.
    let mut filtered = open(&app).await;
    init(&mut filtered, &app.admin()).await;
    send(&mut filtered, json!({"id": "s", "type": "subscribe", "payload": {
        "query": "subscription($ops: [ChangeOp!]) { customerChanged(filter: {ops: $ops}) { op customer { name email } } }",
        "variables": {"ops": ["UPDATED"]}}})).await;
    await_live(&app, 4.0, 15.0).await;

    app.customer(json!({"name": "Shared", "email": "shared@example.com"}))
        .await;
    for socket in &mut same {
        let msg = recv(socket).await;
        assert_eq!(msg["id"], "s");
        assert_eq!(
            msg["payload"],
            json!({"data": {"customerChanged": {"op": "CREATED", "customer": {"name": "Shared", "email": "shared@example.com"}}}})
        );
    }
    let msg = recv(&mut narrower).await;
    assert_eq!(
        msg["payload"]["data"]["customerChanged"]["customer"],
        json!({"name": "Shared", "email": null})
    );

    // One member completes, one vanishes without a word: the rest keep receiving.
    send(&mut same[0], json!({"id": "s", "type": "complete"})).await;
    drop(same.remove(1));
    await_live(&app, 4.0, 13.0).await;
    app.customer(json!({"name": "Second"})).await;
    for socket in &mut same[1..] {
        let msg = recv(socket).await;
        assert_eq!(
            msg["payload"]["data"]["customerChanged"]["customer"]["name"],
            "Second"
        );
    }
    // The one that completed heard nothing more, and may use its id again.
    send(&mut same[0], json!({"type": "ping"})).await;
    assert_eq!(recv(&mut same[0]).await, json!({"type": "pong"}));
    send(&mut same[0], subscribe.clone()).await;
    await_live(&app, 4.0, 14.0).await;

    // The filtered and the other tenant's executions heard none of it.
    for socket in [&mut filtered, &mut elsewhere] {
        send(socket, json!({"type": "ping"})).await;
        assert_eq!(recv(socket).await, json!({"type": "pong"}));
    }

    // When its last member leaves, the shared execution stops.
    drop(same);
    await_live(&app, 3.0, 3.0).await;
}

#[tokio::test]
async fn a_large_group_gets_every_event_in_order_on_every_operation() {
    // More members than one delivery task writes to (512), so each event goes out from
    // several tasks at once; none may miss an event or see it after the next one.
    let app = TestApp::spawn().await;
    let (sockets, per_socket) = (3, 250);
    let query = "subscription { customerChanged { customer { name } } }";
    let mut clients = Vec::new();
    for _ in 0..sockets {
        let mut socket = open(&app).await;
        init(&mut socket, &app.admin()).await;
        for id in 0..per_socket {
            let subscribe =
                json!({"id": id.to_string(), "type": "subscribe", "payload": {"query": query}});
            send(&mut socket, subscribe).await;
        }
        clients.push(socket);
    }
    await_live(&app, 1.0, f64::from(sockets * per_socket)).await;

    let names = ["First", "Second", "Third"];
    for name in names {
        app.customer(json!({"name": name})).await;
    }
    for socket in &mut clients {
        let mut seen: HashMap<String, Vec<String>> = HashMap::new();
        for _ in 0..per_socket * names.len() as u32 {
            let msg = recv(socket).await;
            assert_eq!(msg["type"], "next", "{msg}");
            let name = &msg["payload"]["data"]["customerChanged"]["customer"]["name"];
            seen.entry(msg["id"].as_str().unwrap_or_default().to_owned())
                .or_default()
                .push(name.as_str().unwrap_or_default().to_owned());
        }
        assert_eq!(seen.len(), per_socket as usize);
        for (id, got) in &seen {
            assert_eq!(got, &names, "operation {id}");
        }
    }
}

#[tokio::test]
async fn a_large_fan_out_is_written_to_the_sockets_by_the_delivering_threads() {
    // One subscription on each of more sockets than one delivery task writes to: the event
    // should reach nearly every socket straight from a delivery task, not wait for a wake of
    // the connection's own task (which is what a delivery task under tokio's cooperative
    // budget would cause for three in four).
    let app = TestApp::spawn().await;
    let sockets = 600;
    let query = "subscription { customerChanged { customer { name } } }";
    let subscribe = json!({"id": "s", "type": "subscribe", "payload": {"query": query}});
    let mut clients = Vec::new();
    for _ in 0..sockets {
        let mut socket = open(&app).await;
        init(&mut socket, &app.admin()).await;
        send(&mut socket, subscribe.clone()).await;
        clients.push(socket);
    }
    await_live(&app, 1.0, f64::from(sockets)).await;
    let at_once = r#"crm_ws_messages_total{sent="at_once"}"#;
    let after_wait = r#"crm_ws_messages_total{sent="after_wait"}"#;
    let before = (app.metric(at_once).await, app.metric(after_wait).await);

    app.customer(json!({"name": "Everyone"})).await;
    for socket in &mut clients {
        let msg = recv(socket).await;
        assert_eq!(
            msg["payload"]["data"]["customerChanged"]["customer"]["name"],
            "Everyone"
        );
    }
    let sent_at_once = app.metric(at_once).await - before.0;
    let waited = app.metric(after_wait).await - before.1;
    assert_eq!(sent_at_once + waited, f64::from(sockets));
    assert!(
        sent_at_once >= 0.9 * f64::from(sockets),
        "{sent_at_once} written at once, {waited} after a wait"
    );
}

#[tokio::test]
async fn subscription_filters_select_events() {
    let app = TestApp::spawn().await;
    let watched = app.customer(json!({"name": "Watched"})).await;
    let mut socket = open(&app).await;
    init(&mut socket, &app.admin()).await;
    send(
        &mut socket,
        json!({"id": "a", "type": "subscribe", "payload": {
            "query": "subscription($c: ID!) { activityChanged(filter: {customerIds: [$c], kinds: [CALL]}) { op activity { subject kind } } }",
            "variables": {"c": watched}
        }}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let other = app.customer(json!({"name": "Other"})).await;
    app.activity(json!({"customerId": other, "kind": "CALL", "subject": "not this customer"}))
        .await;
    app.activity(json!({"customerId": watched, "kind": "NOTE", "subject": "not this kind"}))
        .await;
    app.activity(json!({"customerId": watched, "kind": "CALL", "subject": "this one"}))
        .await;
    let msg = recv(&mut socket).await;
    assert_eq!(
        msg["payload"]["data"]["activityChanged"],
        json!({"op": "CREATED", "activity": {"subject": "this one", "kind": "CALL"}})
    );
}

#[tokio::test]
async fn related_objects_in_later_events_are_read_fresh() {
    let app = TestApp::spawn().await;
    let customer = app.customer(json!({"name": "Before"})).await;
    let mut socket = open(&app).await;
    init(&mut socket, &app.admin()).await;
    send(
        &mut socket,
        json!({"id": "a", "type": "subscribe", "payload": {
            "query": "subscription { activityChanged { activity { subject customer { name } } } }"
        }}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.activity(json!({"customerId": customer, "kind": "NOTE", "subject": "first"}))
        .await;
    let msg = recv(&mut socket).await;
    assert_eq!(
        msg["payload"]["data"]["activityChanged"]["activity"]["customer"]["name"],
        "Before"
    );
    app.gql(
        "mutation($id: ID!) { updateCustomer(input: {id: $id, name: \"After\"}) { customer { id } } }",
        json!({"id": customer}),
    )
    .await
    .assert_ok();
    app.activity(json!({"customerId": customer, "kind": "NOTE", "subject": "second"}))
        .await;
    let msg = recv(&mut socket).await;
    assert_eq!(
        msg["payload"]["data"]["activityChanged"]["activity"],
        json!({"subject": "second", "customer": {"name": "After"}}),
        "a subscription lasting hours must not answer from what it loaded at its first event"
    );
}

#[tokio::test]
async fn protocol_violations_close_with_the_codes_the_protocol_names() {
    let app = TestApp::spawn_with(|c| c.ws_init_timeout_secs = 1).await;

    // No connection_init in time.
    let mut socket = open(&app).await;
    assert_eq!(close_code(&mut socket).await, Some(4408));

    // A token refused at init.
    let mut socket = open(&app).await;
    send(&mut socket, json!({"type": "connection_init", "payload": {"Authorization": "Bearer forged.token.here"}})).await;
    assert_eq!(close_code(&mut socket).await, Some(4403));

    // Subscribe before the ack.
    let mut socket = open(&app).await;
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }"}}),
    )
    .await;
    assert_eq!(close_code(&mut socket).await, Some(4401));

    // A second init.
    let mut socket = open(&app).await;
    init(&mut socket, &app.admin()).await;
    send(&mut socket, json!({"type": "connection_init"})).await;
    assert_eq!(close_code(&mut socket).await, Some(4429));

    // A duplicate operation id.
    let mut socket = open(&app).await;
    init(&mut socket, &app.admin()).await;
    let sub = json!({"id": "dup", "type": "subscribe", "payload": {"query": "subscription { customerChanged { op } }"}});
    send(&mut socket, sub.clone()).await;
    send(&mut socket, sub).await;
    assert_eq!(close_code(&mut socket).await, Some(4409));

    // Invalid messages.
    for bad in [
        json!("not an object"),
        json!({"type": "nonsense"}),
        json!({"id": "1", "type": "subscribe"}),
    ] {
        let mut socket = open(&app).await;
        init(&mut socket, &app.admin()).await;
        send(&mut socket, bad.clone()).await;
        assert_eq!(close_code(&mut socket).await, Some(4400), "{bad}");
    }
    let mut socket = open(&app).await;
    socket
        .send(Message::Text("{not json".into()))
        .await
        .expect("sent");
    assert_eq!(close_code(&mut socket).await, Some(4400));
}

#[tokio::test]
async fn operations_get_results_errors_and_complete() {
    let app = TestApp::spawn().await;
    let mut socket = open(&app).await;
    init(&mut socket, &app.admin()).await;
    // A query over the socket: one result, then complete.
    send(
        &mut socket,
        json!({"id": "q", "type": "subscribe", "payload": {"query": "{ viewer { org } }"}}),
    )
    .await;
    assert_eq!(
        recv(&mut socket).await,
        json!({"id": "q", "type": "next", "payload": {"data": {"viewer": {"org": app.org}}}})
    );
    assert_eq!(
        recv(&mut socket).await,
        json!({"id": "q", "type": "complete"})
    );
    // A subscription that fails validation: an `error` message, and the connection lives on.
    send(&mut socket, json!({"id": "v", "type": "subscribe", "payload": {"query": "subscription { noSuchThing }"}})).await;
    let msg = recv(&mut socket).await;
    assert_eq!(
        (msg["id"].as_str(), msg["type"].as_str()),
        (Some("v"), Some("error"))
    );
    assert_eq!(
        msg["payload"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    // The id is free again once an operation ended.
    send(
        &mut socket,
        json!({"id": "q", "type": "subscribe", "payload": {"query": "{ __typename }"}}),
    )
    .await;
    assert_eq!(recv(&mut socket).await["type"], "next");
    // Without the scope, a subscription is refused.
    let mut reader = open(&app).await;
    init(&mut reader, &app.token("activities:read")).await;
    send(&mut reader, json!({"id": "s", "type": "subscribe", "payload": {"query": "subscription { customerChanged { op } }"}})).await;
    let msg = recv(&mut reader).await;
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{msg}"
    );
}

#[tokio::test]
async fn a_subscription_ends_when_its_token_expires() {
    let app = TestApp::spawn().await;
    let short = crm::auth::TokenIssuer::hs256(
        crate::helpers::SECRET.as_bytes(),
        crate::helpers::ISSUER,
        crate::helpers::AUDIENCE,
    )
    .mint("brief", &app.org, ALL_SCOPES, chrono::Duration::seconds(2))
    .expect("mint");
    let mut socket = open(&app).await;
    init(&mut socket, &short).await;
    send(&mut socket, json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { customerChanged { op } }"}})).await;
    assert_eq!(close_code(&mut socket).await, Some(4403));
}

#[tokio::test]
async fn the_upgrade_checks_subprotocol_and_header_token() {
    let app = TestApp::spawn().await;
    assert!(
        open_with(&app, None, None).await.is_err(),
        "no subprotocol: refused"
    );
    assert!(
        open_with(&app, Some("graphql-transport-ws"), Some("forged"))
            .await
            .is_err(),
        "bad header token: refused"
    );
    // A good header token stands in for the init payload's.
    let mut socket = open_with(&app, Some("graphql-transport-ws"), Some(&app.admin()))
        .await
        .expect("connected");
    send(&mut socket, json!({"type": "connection_init"})).await;
    assert_eq!(recv(&mut socket).await, json!({"type": "connection_ack"}));
    send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "{ viewer { subject } }"}}),
    )
    .await;
    assert_eq!(
        recv(&mut socket).await["payload"]["data"]["viewer"]["subject"],
        "user-1"
    );
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_still_works() {
    let app = TestApp::spawn().await;
    let mut socket = open_with(&app, Some("graphql-ws"), None)
        .await
        .expect("connected");
    send(&mut socket, json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", app.admin())}})).await;
    assert_eq!(recv(&mut socket).await, json!({"type": "connection_ack"}));
    send(&mut socket, json!({"id": "1", "type": "start", "payload": {"query": "subscription { customerChanged { op customer { name } } }"}})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.customer(json!({"name": "Old school"})).await;
    let msg = recv(&mut socket).await;
    assert_eq!(msg["type"], "data");
    assert_eq!(
        msg["payload"]["data"]["customerChanged"],
        json!({"op": "CREATED", "customer": {"name": "Old school"}})
    );
    send(&mut socket, json!({"id": "1", "type": "stop"})).await;
    send(&mut socket, json!({"type": "connection_terminate"})).await;
    assert_eq!(close_code(&mut socket).await, Some(1000));
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001_after_queued_events() {
    let mut app = TestApp::spawn().await;
    let mut socket = open(&app).await;
    init(&mut socket, &app.admin()).await;
    send(&mut socket, json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { customerChanged { customer { name } } }"}})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.customer(json!({"name": "Last words"})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.stop();
    let msg = recv(&mut socket).await;
    assert_eq!(
        msg["payload"]["data"]["customerChanged"]["customer"]["name"],
        "Last words"
    );
    assert_eq!(close_code(&mut socket).await, Some(1001));
}

#[tokio::test]
async fn a_slow_subscriber_is_closed_while_others_keep_receiving() {
    let app = TestApp::spawn().await;
    let query = "subscription { customerChanged { customer { name customFields } } }";
    // A client with a tiny receive window, so the kernel does not buffer for it.
    let tcp = tokio::net::TcpSocket::new_v4().expect("socket");
    tcp.set_recv_buffer_size(4096).expect("buffer size");
    let stream = tcp.connect(app.addr).await.expect("connected");
    let mut request = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (slow, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
        .await
        .expect("upgraded");
    let mut slow: Socket = slow;
    init(&mut slow, &app.admin()).await;
    send(
        &mut slow,
        json!({"id": "1", "type": "subscribe", "payload": {"query": query}}),
    )
    .await;
    let mut fast = open(&app).await;
    init(&mut fast, &app.admin()).await;
    send(
        &mut fast,
        json!({"id": "1", "type": "subscribe", "payload": {"query": query}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Large events, and a slow client that reads none of them: the server buffers a bounded
    // amount for it, then closes it; the fast client gets every event.
    let padding = "x".repeat(15 * 1024);
    let writes = 700;
    let reader = tokio::spawn(async move {
        let mut got = 0;
        while got < writes {
            let msg = recv(&mut fast).await;
            assert_eq!(msg["type"], "next", "{msg}");
            got += 1;
        }
        got
    });
    for i in 0..writes {
        app.customer(json!({"name": format!("bulk {i}"), "customFields": {"padding": padding}}))
            .await;
    }
    assert_eq!(reader.await.expect("reader"), writes);

    let mut received = 0;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Text(_))) => received += 1,
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            _ => break None,
        }
    };
    assert_eq!(code, Some(1013), "after {received} buffered messages");
    assert!(
        received < writes,
        "the slow client was cut off, not buffered without bound"
    );
}

/// Sends a close frame with `code` and returns the close frame the server answers with, or
/// why there was none.
async fn close_and_read_answer(socket: &mut Socket, code: u16) -> Result<Option<u16>, String> {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    socket
        .close(Some(CloseFrame {
            code: code.into(),
            reason: "bye".into(),
        }))
        .await
        .map_err(|e| format!("sending the close failed: {e}"))?;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .map_err(|_| "no answer within 10 s".to_owned())?
        {
            Some(Ok(Message::Close(frame))) => return Ok(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("the connection ended without a close: {e}")),
            None => return Err("the connection ended without a close".to_owned()),
        }
    }
}

#[tokio::test]
async fn a_close_from_the_client_is_echoed() {
    let app = TestApp::spawn().await;
    let query = "subscription { customerChanged { op } }";

    // Before `connection_init`, after it, and with a subscription running.
    let mut socket = open(&app).await;
    assert_eq!(
        close_and_read_answer(&mut socket, 1000).await,
        Ok(Some(1000))
    );

    let mut socket = open(&app).await;
    init(&mut socket, &app.admin()).await;
    assert_eq!(
        close_and_read_answer(&mut socket, 1000).await,
        Ok(Some(1000))
    );

    let mut socket = open(&app).await;
    crate::ws_client::subscribe(&mut socket, &app.admin(), query).await;
    assert_eq!(
        close_and_read_answer(&mut socket, 1001).await,
        Ok(Some(1001))
    );

    // An application's own code comes back as well, and on the legacy protocol too.
    let mut socket = open_with(&app, Some("graphql-ws"), None)
        .await
        .expect("connected");
    assert_eq!(
        close_and_read_answer(&mut socket, 4000).await,
        Ok(Some(4000))
    );

    // The subscription's operation ended with its socket.
    await_live(&app, 0.0, 0.0).await;
}

/// A query over the socket is answered at once: without TCP_NODELAY the server's second
/// small frame (`complete` after `next`) waits for the client's delayed ACK, ~40 ms on
/// Linux, on every round trip. The fastest of ten shows it whatever else the host is doing.
#[tokio::test]
async fn answers_over_the_socket_do_not_wait_for_delayed_acks() {
    let app = TestApp::spawn().await;
    let mut socket = open(&app).await;
    init(&mut socket, &app.admin()).await;
    let mut fastest = Duration::MAX;
    for i in 0..10 {
        let id = format!("q{i}");
        let started = std::time::Instant::now();
        send(
            &mut socket,
            json!({"id": id, "type": "subscribe", "payload": {"query": "{ __typename }"}}),
        )
        .await;
        loop {
            let msg = recv(&mut socket).await;
            if msg["type"] == "complete" && msg["id"] == id.as_str() {
                break;
            }
        }
        fastest = fastest.min(started.elapsed());
    }
    assert!(
        fastest < Duration::from_millis(30),
        "the fastest round trip took {fastest:?}"
    );
}

/// One socket cannot multiply everyone's work without bound: past 256 operations at once, a
/// new one is refused with an `error` for its id, and the connection and its other
/// operations go on.
#[tokio::test]
async fn a_connection_runs_at_most_256_operations() {
    let app = TestApp::spawn().await;
    let mut socket = open(&app).await;
    init(&mut socket, &app.admin()).await;
    for i in 0..257 {
        send(
            &mut socket,
            json!({"id": format!("s{i}"), "type": "subscribe",
                   "payload": {"query": format!("subscription {{ a{i}: customerChanged {{ op }} }}")}}),
        )
        .await;
    }
    let refused = recv(&mut socket).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "s256");
    assert!(
        refused["payload"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("256")),
        "{refused}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.customer(json!({"name": "Heard by all the others"}))
        .await;
    let mut heard = std::collections::HashSet::new();
    while heard.len() < 256 {
        let msg = recv(&mut socket).await;
        if msg["type"] == "next" {
            heard.insert(msg["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert!(!heard.contains("s256"));
}

/// An organization's distinct live operations are bounded on an instance, across all its
/// connections: past 256, a new one is refused with an `error`; identical subscriptions share
/// one execution and do not count again.
#[tokio::test]
async fn an_organization_runs_at_most_256_distinct_live_operations() {
    let app = TestApp::spawn().await;
    let mut first = open(&app).await;
    init(&mut first, &app.admin()).await;
    for i in 0..200 {
        send(
            &mut first,
            json!({"id": format!("a{i}"), "type": "subscribe",
            "payload": {"query": format!("subscription {{ a{i}: customerChanged {{ op }} }}")}}),
        )
        .await;
    }
    let mut second = open(&app).await;
    init(
        &mut second,
        &app.token_for(&app.org, "someone-else", ALL_SCOPES),
    )
    .await;
    for i in 200..256 {
        send(
            &mut second,
            json!({"id": format!("b{i}"), "type": "subscribe",
            "payload": {"query": format!("subscription {{ a{i}: customerChanged {{ op }} }}")}}),
        )
        .await;
    }
    // The same document as one already running joins its execution.
    send(
        &mut second,
        json!({"id": "joins", "type": "subscribe",
        "payload": {"query": "subscription { a0: customerChanged { op } }"}}),
    )
    .await;
    send(
        &mut second,
        json!({"id": "over", "type": "subscribe",
        "payload": {"query": "subscription { over: customerChanged { op } }"}}),
    )
    .await;
    let refused = recv(&mut second).await;
    assert_eq!(
        (refused["type"].as_str(), refused["id"].as_str()),
        (Some("error"), Some("over")),
        "{refused}"
    );
    assert!(
        refused["payload"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("256")),
        "{refused}"
    );
    // Another organization is not held back.
    let mut other = open(&app).await;
    init(&mut other, &app.token_for("another-org", "x", ALL_SCOPES)).await;
    send(
        &mut other,
        json!({"id": "1", "type": "subscribe",
        "payload": {"query": "subscription { elsewhere: customerChanged { op } }"}}),
    )
    .await;
    send(&mut other, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut other).await, json!({"type": "pong"}));
    // Ending some frees their places.
    for i in 0..10 {
        send(
            &mut first,
            json!({"id": format!("a{i}"), "type": "complete"}),
        )
        .await;
    }
    let mut admitted = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(
            &mut second,
            json!({"id": "retry", "type": "subscribe",
            "payload": {"query": "subscription { later: customerChanged { op } }"}}),
        )
        .await;
        send(&mut second, json!({"type": "ping"})).await;
        let msg = recv(&mut second).await;
        if msg["type"] == "pong" {
            admitted = true;
            break;
        }
        assert_eq!(msg["type"], "error", "{msg}");
        let _ = recv(&mut second).await; // the pong
    }
    assert!(admitted, "a freed place is taken again");
}
