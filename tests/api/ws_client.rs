//! A graphql-transport-ws client for the tests: raw messages for the protocol tests, and
//! a subscribe-and-wait shortcut for tests that need a live subscription.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::helpers::TestApp;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn open_with(
    app: &TestApp,
    protocol: Option<&str>,
    bearer: Option<&str>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .expect("request");
    if let Some(protocol) = protocol {
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().expect("header"));
    }
    if let Some(token) = bearer {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    connect_async(request).await.map(|(socket, _)| socket)
}

pub async fn open(app: &TestApp) -> Socket {
    open_with(app, Some("graphql-transport-ws"), None)
        .await
        .expect("connected")
}

pub async fn send(socket: &mut Socket, msg: Value) {
    socket
        .send(Message::Text(msg.to_string().into()))
        .await
        .expect("sent");
}

/// The next protocol message (pings from the server are answered and skipped).
pub async fn recv(socket: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("frame");
        match msg {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
            Message::Close(frame) => return json!({"closed": frame.map(|f| u16::from(f.code))}),
            _ => {}
        }
    }
}

pub async fn close_code(socket: &mut Socket) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("closed within 10 s")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            _ => return None,
        }
    }
}

pub async fn init(socket: &mut Socket, token: &str) {
    send(
        socket,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(recv(socket).await, json!({"type": "connection_ack"}));
}

/// Initialises with `token` and starts `query` as operation "1".
pub async fn subscribe(socket: &mut Socket, token: &str, query: &str) {
    init(socket, token).await;
    send(
        socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": query}}),
    )
    .await;
    // Give the subscription time to attach to the event stream before the test writes.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// The `data` of the next result (pings from the server are skipped).
pub async fn next(socket: &mut Socket) -> Value {
    loop {
        let msg = recv(socket).await;
        if msg["type"] != "ping" {
            assert_eq!(msg["type"], "next", "{msg}");
            return msg["payload"]["data"].clone();
        }
    }
}
