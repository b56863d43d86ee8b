//! A minimal graphql-transport-ws client for tests that need a live subscription.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::helpers::TestApp;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn connect(app: &TestApp) -> (Socket, ()) {
    let mut request = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (socket, _) = connect_async(request).await.expect("connected");
    (socket, ())
}

async fn send(socket: &mut Socket, msg: Value) {
    socket
        .send(Message::Text(msg.to_string().into()))
        .await
        .expect("sent");
}

async fn recv(socket: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), socket.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = msg {
            let v: Value = serde_json::from_str(text.as_str()).expect("JSON");
            if v["type"] != "ping" {
                return v;
            }
        }
    }
}

/// Initialises with `token` and starts `query` as operation "1".
pub async fn subscribe(socket: &mut Socket, token: &str, query: &str) {
    send(
        socket,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(recv(socket).await["type"], "connection_ack");
    send(
        socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": query}}),
    )
    .await;
    // Give the subscription time to attach to the event stream before the test writes.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// The `data` of the next result.
pub async fn next(socket: &mut Socket) -> Value {
    let msg = recv(socket).await;
    assert_eq!(msg["type"], "next", "{msg}");
    msg["payload"]["data"].clone()
}
