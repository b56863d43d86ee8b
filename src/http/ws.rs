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
//! | the client reads too slowly to keep up (a full outbox, or a write stuck for 10 s) | 1013 |
//! | the server shuts down (after sending what was queued) | 1001 |

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::{Instant, sleep_until, timeout};

use super::AppState;
use super::auth;
use crate::auth::Verified;
use crate::graphql::{LiveRequest, LiveResult, Membership, Recipient};

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

    fn next(self) -> &'static str {
        match self {
            Self::TransportWs => "next",
            Self::Legacy => "data",
        }
    }
}

/// Messages a connection may queue for its client before it counts as too slow.
const OUTBOX: usize = 256;
const PING_EVERY: Duration = Duration::from_secs(30);
/// How long a closing connection waits for its client to take what was queued.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// What the writer sends. Results of shared executions arrive as the same rendered bytes for
/// every subscriber; the frame around them (which names the operation) is built here.
enum Outgoing {
    Text(Utf8Bytes),
    Result {
        /// The operation's id as a JSON string.
        id: Arc<str>,
        kind: &'static str,
        payload: Option<Arc<str>>,
    },
}

impl Outgoing {
    fn into_message(self) -> Message {
        match self {
            Self::Text(text) => Message::Text(text),
            Self::Result { id, kind, payload } => {
                // Sized up front: this runs once per subscriber per event.
                let size = id.len() + kind.len() + payload.as_ref().map_or(0, |p| p.len());
                let mut text = String::with_capacity(size + 32);
                text.push_str(r#"{"id":"#);
                text.push_str(&id);
                text.push_str(r#","type":""#);
                text.push_str(kind);
                text.push('"');
                if let Some(payload) = payload {
                    text.push_str(r#","payload":"#);
                    text.push_str(&payload);
                }
                text.push('}');
                Message::Text(Utf8Bytes::from(text))
            }
        }
    }
}

/// What an operation tells its connection.
enum Control {
    /// The operation with this id and serial ended; its id may be used again.
    Done(Arc<str>, u64),
    /// The client does not read fast enough to take what it subscribed to.
    TooSlow,
}

/// One operation of this connection, as its live execution sees it.
struct OperationSink {
    id: Arc<str>,
    /// `id` encoded once as a JSON string, for every frame of this operation.
    id_json: Arc<str>,
    serial: u64,
    protocol: Protocol,
    out: mpsc::Sender<Outgoing>,
    control: mpsc::UnboundedSender<Control>,
}

impl Recipient for OperationSink {
    fn deliver(&self, result: &LiveResult) -> bool {
        let (kind, payload, last) = match result {
            LiveResult::Next(payload) => (self.protocol.next(), Some(payload.clone()), false),
            LiveResult::Refused(errors) => ("error", Some(errors.clone()), true),
            LiveResult::Complete => ("complete", None, true),
        };
        let id = self.id_json.clone();
        match self.out.try_send(Outgoing::Result { id, kind, payload }) {
            Ok(()) if last => {
                let _ = self
                    .control
                    .send(Control::Done(self.id.clone(), self.serial));
                false
            }
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                let _ = self.control.send(Control::TooSlow);
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

struct Operation {
    serial: u64,
    _membership: Membership,
}

struct Connection {
    state: AppState,
    protocol: Protocol,
    out: mpsc::Sender<Outgoing>,
    control_tx: mpsc::UnboundedSender<Control>,
    auth: Option<Verified>,
    acked: bool,
    operations: HashMap<Arc<str>, Operation>,
    next_serial: u64,
}

pub async fn serve(
    mut socket: WebSocket,
    state: AppState,
    protocol: Protocol,
    header_auth: Option<Verified>,
    init_timeout: Duration,
) {
    let (out, mut outbox) = mpsc::channel::<Outgoing>(OUTBOX);
    let (control_tx, mut control) = mpsc::unbounded_channel();
    let mut conn = Connection {
        state,
        protocol,
        out,
        control_tx,
        auth: header_auth,
        acked: false,
        operations: HashMap::new(),
        next_serial: 0,
    };
    let mut shutdown = conn.state.shutdown.clone();
    let stopping = async move {
        // The sender gone means the server is going too.
        let _ = shutdown.wait_for(|stopping| *stopping).await;
    };
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    // Timers live across iterations: an event costs each connection one pass of this loop,
    // and re-arming three timers on every pass would cost more than the write.
    let init_timer = sleep_until(Instant::now() + init_timeout);
    let expiry_timer = sleep_until(conn.expiry().unwrap_or(far));
    let ping_timer = sleep_until(Instant::now() + PING_EVERY);
    tokio::pin!(stopping, init_timer, expiry_timer, ping_timer);
    // Sends in a row since the loop last looked at anything else.
    let mut streak = 0;
    // One task per connection reads, writes and keeps time: while a write waits on a slow
    // client, its outbox fills, and a full outbox is what closes it.
    let close = loop {
        // Biased: a pass woken by an outgoing message polls nothing else (no read attempt,
        // no timer), but after a few sends in a row the client's messages get their turn.
        tokio::select! {
            biased;
            Some(outgoing) = outbox.recv(), if streak < 16 => {
                streak += 1;
                match timeout(CLOSE_GRACE, socket.send(outgoing.into_message())).await {
                    Ok(Ok(())) => continue,
                    Ok(Err(_)) => break None,
                    Err(_) => break Some((1013, "the client reads too slowly")),
                }
            }
            Some(ctl) = control.recv() => match ctl {
                Control::TooSlow => break Some((1013, "the client reads too slowly")),
                Control::Done(id, serial) => {
                    if conn.operations.get(&id).is_some_and(|op| op.serial == serial) {
                        conn.operations.remove(&id);
                    }
                }
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Some(close) = conn.handle(text.as_str()).await {
                        break Some(close);
                    }
                    // `connection_init` may have brought a token, and with it an expiry.
                    expiry_timer.as_mut().reset(conn.expiry().unwrap_or(far));
                }
                Some(Ok(Message::Binary(_))) => break Some((4400, "binary messages are not part of the protocol")),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                Some(Ok(_)) => {}
            },
            () = &mut stopping => break Some((1001, "the server is shutting down")),
            () = &mut init_timer, if !conn.acked => break Some((4408, "Connection initialisation timeout")),
            () = &mut expiry_timer, if conn.acked && conn.auth.is_some() => break Some((4403, "the token expired")),
            () = &mut ping_timer, if conn.acked => {
                ping_timer.as_mut().reset(Instant::now() + PING_EVERY);
                let ping = match conn.protocol {
                    Protocol::TransportWs => json!({"type": "ping"}),
                    Protocol::Legacy => json!({"type": "ka"}),
                };
                conn.send(ping);
            }
            // After a streak of sends, everything else was polled once; back to sending.
            () = std::future::ready(()), if streak >= 16 => {}
        }
        streak = 0;
    };
    // Leaving the operations stops results for this client; a shared execution goes on for
    // its other subscribers.
    conn.operations.clear();
    drop(conn);
    let Some((code, reason)) = close else {
        return;
    };
    let goodbye = async {
        if code != 1013 {
            // What was queued before the close goes out first (a slow client gets no more).
            outbox.close();
            while let Some(outgoing) = outbox.recv().await {
                socket.send(outgoing.into_message()).await?;
            }
        }
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        socket.send(Message::Close(Some(frame))).await
    };
    // A client that stopped reading would hold the connection forever.
    let _ = timeout(CLOSE_GRACE, goodbye).await;
}

impl Connection {
    fn expiry(&self) -> Option<Instant> {
        let exp = self.auth.as_ref()?.exp;
        let left = exp - chrono::Utc::now().timestamp();
        Some(Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }

    fn send(&self, msg: Value) {
        let text = Outgoing::Text(Utf8Bytes::from(msg.to_string()));
        if let Err(TrySendError::Full(_)) = self.out.try_send(text) {
            let _ = self.control_tx.send(Control::TooSlow);
        }
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
                if let Some(id) = msg.get("id").and_then(Value::as_str) {
                    self.operations.remove(id);
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
        let payload = msg.get("payload").unwrap_or(&Value::Null);
        let Some(query) = payload.get("query").and_then(Value::as_str) else {
            return Some((4400, "the operation has no query"));
        };
        if self.operations.contains_key(id) {
            // The reason must name the id, and a static reason cannot; the code is what counts.
            return Some((4409, "Subscriber for this id already exists"));
        }
        let variables = match payload.get("variables") {
            None | Some(Value::Null) => Value::Null,
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => return Some((4400, "variables must be an object")),
        };
        let request = LiveRequest {
            query: query.to_owned(),
            operation_name: payload
                .get("operationName")
                .and_then(Value::as_str)
                .map(str::to_owned),
            variables,
        };
        let id: Arc<str> = Arc::from(id);
        self.next_serial += 1;
        let serial = self.next_serial;
        let sink = OperationSink {
            id_json: Arc::from(Value::from(&*id).to_string()),
            id: id.clone(),
            serial,
            protocol: self.protocol,
            out: self.out.clone(),
            control: self.control_tx.clone(),
        };
        let caller = self.auth.as_ref().map(|v| &v.principal);
        let membership = self.state.live.start(request, caller, Box::new(sink));
        self.operations.insert(
            id,
            Operation {
                serial,
                _membership: membership,
            },
        );
        None
    }
}
