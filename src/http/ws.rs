//! GraphQL over WebSocket on `/graphql`: the `graphql-transport-ws` protocol to the letter of
//! its PROTOCOL.md, and the legacy `graphql-ws` (subscriptions-transport-ws) for old clients.
//! The stock async-graphql handler has no init timeout, closes with the wrong codes and
//! silently replaces a duplicate operation id; this one does what the protocol says:
//!
//! | situation | close code |
//! | --- | --- |
//! | no `connection_init` within the timeout | 4408 |
//! | token refused at init | 4403 |
//! | `subscribe` before `connection_ack` | 4401 |
//! | a second `connection_init` | 4429 |
//! | an operation id already in use | 4409 |
//! | a message that is not valid | 4400 |
//! | the token expires | 4403 |
//! | the client reads too slowly to keep up | 1013 |
//! | the server shuts down (after sending what was queued) | 1001 |

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::{Request as GqlRequest, Variables};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::AppState;
use super::auth;
use crate::auth::Verified;
use crate::graphql::{Loaders, RequestAuth, is_request_error};

pub const PROTOCOLS: [&str; 2] = ["graphql-transport-ws", "graphql-ws"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Protocol {
    TransportWs,
    Legacy,
}

impl Protocol {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "graphql-transport-ws" => Some(Self::TransportWs),
            "graphql-ws" => Some(Self::Legacy),
            _ => None,
        }
    }
}

/// Messages a connection may queue for its client before it counts as too slow.
const OUTBOX: usize = 256;
const PING_EVERY: Duration = Duration::from_secs(30);

/// What the connection's tasks tell its loop.
enum Control {
    Send(Value),
    Done(String),
}

struct Connection {
    state: AppState,
    protocol: Protocol,
    out: mpsc::Sender<Message>,
    control_tx: mpsc::UnboundedSender<Control>,
    auth: Option<Verified>,
    acked: bool,
    operations: HashMap<String, JoinHandle<()>>,
}

pub async fn serve(
    socket: WebSocket,
    state: AppState,
    protocol: Protocol,
    header_auth: Option<Verified>,
    init_timeout: Duration,
) {
    let (mut sink, mut incoming) = socket.split();
    let (out, mut out_rx) = mpsc::channel::<Message>(OUTBOX);
    let writer = tokio::spawn(async move {
        while let Some(msg) = out_rx.recv().await {
            let closing = matches!(msg, Message::Close(_));
            if sink.send(msg).await.is_err() || closing {
                break;
            }
        }
    });
    let (control_tx, mut control) = mpsc::unbounded_channel();
    let mut conn = Connection {
        state,
        protocol,
        out,
        control_tx,
        auth: header_auth,
        acked: false,
        operations: HashMap::new(),
    };
    let mut shutdown = conn.state.shutdown.clone();
    let init_deadline = Instant::now() + init_timeout;
    let mut next_ping = Instant::now() + PING_EVERY;
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let close = loop {
        let expiry = conn.expiry().unwrap_or(far);
        tokio::select! {
            msg = incoming.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Some(close) = conn.handle(text.as_str()).await {
                        break Some(close);
                    }
                }
                Some(Ok(Message::Binary(_))) => break Some((4400, "binary messages are not part of the protocol")),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                Some(Ok(_)) => {}
            },
            Some(ctl) = control.recv() => match ctl {
                Control::Send(msg) => {
                    if conn.out.try_send(Message::Text(Utf8Bytes::from(msg.to_string()))).is_err() {
                        break Some((1013, "the client reads too slowly"));
                    }
                }
                Control::Done(id) => {
                    conn.operations.remove(&id);
                }
            },
            changed = shutdown.changed() => {
                let stopping = changed.is_err() || *shutdown.borrow_and_update();
                if !stopping {
                    continue;
                }
                // Send what is already on its way, then say goodbye.
                while let Ok(Control::Send(msg)) = control.try_recv() {
                    if conn.out.try_send(Message::Text(Utf8Bytes::from(msg.to_string()))).is_err() {
                        break;
                    }
                }
                break Some((1001, "the server is shutting down"));
            }
            () = sleep_until(init_deadline), if !conn.acked => break Some((4408, "Connection initialisation timeout")),
            () = sleep_until(expiry), if conn.acked && conn.auth.is_some() => break Some((4403, "the token expired")),
            () = sleep_until(next_ping), if conn.acked => {
                next_ping = Instant::now() + PING_EVERY;
                let ping = match conn.protocol {
                    Protocol::TransportWs => json!({"type": "ping"}),
                    Protocol::Legacy => json!({"type": "ka"}),
                };
                conn.send(ping);
            }
        }
    };
    for (_, op) in conn.operations.drain() {
        op.abort();
    }
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = conn.out.send(Message::Close(Some(frame))).await;
    }
    drop(conn);
    let _ = writer.await;
}

impl Connection {
    fn expiry(&self) -> Option<Instant> {
        let exp = self.auth.as_ref()?.exp;
        let left = exp - chrono::Utc::now().timestamp();
        Some(Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }

    fn send(&self, msg: Value) {
        let _ = self.control_tx.send(Control::Send(msg));
    }

    /// Handles one client message; `Some` closes the connection with that code.
    async fn handle(&mut self, text: &str) -> Option<(u16, &'static str)> {
        let Ok(msg) = serde_json::from_str::<Value>(text) else {
            return Some((4400, "the message is not JSON"));
        };
        let Some(kind) = msg.get("type").and_then(Value::as_str) else {
            return Some((4400, "the message has no type"));
        };
        match (self.protocol, kind) {
            (_, "connection_init") => self.init(msg.get("payload")).await,
            (Protocol::TransportWs, "ping") => {
                let mut pong = json!({"type": "pong"});
                if let Some(payload) = msg.get("payload") {
                    pong["payload"] = payload.clone();
                }
                self.send(pong);
                None
            }
            (Protocol::TransportWs, "pong") => None,
            (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
                self.subscribe(&msg)
            }
            (Protocol::TransportWs, "complete") | (Protocol::Legacy, "stop") => {
                if let Some(op) = msg
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|id| self.operations.remove(id))
                {
                    op.abort();
                }
                None
            }
            (Protocol::Legacy, "connection_terminate") => Some((1000, "terminated")),
            _ => Some((4400, "unknown message type")),
        }
    }

    async fn init(&mut self, payload: Option<&Value>) -> Option<(u16, &'static str)> {
        if self.acked {
            return Some((4429, "Too many initialisation requests"));
        }
        let token = payload.and_then(|p| {
            ["Authorization", "authorization"]
                .iter()
                .find_map(|k| p.get(*k).and_then(Value::as_str).map(str::to_owned))
                .or_else(|| {
                    p.get("token")
                        .and_then(Value::as_str)
                        .map(|t| format!("Bearer {t}"))
                })
        });
        if let Some(value) = token {
            match auth::bearer(&value, &self.state.verifier, &self.state.store).await {
                Ok(verified) => self.auth = Some(verified),
                Err(_) => return Some((4403, "Forbidden")),
            }
        }
        self.acked = true;
        self.send(json!({"type": "connection_ack"}));
        None
    }

    fn subscribe(&mut self, msg: &Value) -> Option<(u16, &'static str)> {
        if !self.acked {
            return Some((4401, "Unauthorized"));
        }
        let Some(id) = msg
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
        else {
            return Some((4400, "the operation has no id"));
        };
        let payload = msg.get("payload").cloned().unwrap_or(Value::Null);
        let Some(query) = payload.get("query").and_then(Value::as_str) else {
            return Some((4400, "the operation has no query"));
        };
        if self.operations.contains_key(id) {
            // The reason must name the id, and a static reason cannot; the code is what counts.
            return Some((4409, "Subscriber for this id already exists"));
        }
        let variables = match payload.get("variables") {
            None | Some(Value::Null) => Variables::default(),
            Some(v @ Value::Object(_)) => Variables::from_json(v.clone()),
            Some(_) => return Some((4400, "variables must be an object")),
        };
        let mut request = GqlRequest::new(query).variables(variables);
        if let Some(name) = payload.get("operationName").and_then(Value::as_str) {
            request = request.operation_name(name);
        }
        let principal = self.auth.as_ref().map(|v| v.principal.clone());
        if let Some(who) = &principal {
            request = request.data(Loaders::new(
                &self.state.store,
                &who.org,
                self.state.batch_window,
            ));
        }
        request = request.data(RequestAuth(principal));

        let schema = self.state.schema.clone();
        let control = self.control_tx.clone();
        let id = id.to_owned();
        let protocol = self.protocol;
        let task_id = id.clone();
        let task = tokio::spawn(async move {
            let mut stream = schema.execute_stream(request);
            let mut first = true;
            while let Some(response) = stream.next().await {
                if first && is_request_error(&response) {
                    let errors = serde_json::to_value(&response.errors).unwrap_or_default();
                    let _ = control.send(Control::Send(
                        json!({"id": task_id, "type": "error", "payload": errors}),
                    ));
                    let _ = control.send(Control::Done(task_id));
                    return;
                }
                first = false;
                let payload = serde_json::to_value(&response).unwrap_or_default();
                let kind = match protocol {
                    Protocol::TransportWs => "next",
                    Protocol::Legacy => "data",
                };
                if control
                    .send(Control::Send(
                        json!({"id": task_id, "type": kind, "payload": payload}),
                    ))
                    .is_err()
                {
                    return;
                }
            }
            let _ = control.send(Control::Send(json!({"id": task_id, "type": "complete"})));
            let _ = control.send(Control::Done(task_id));
        });
        self.operations.insert(id, task);
        None
    }
}
