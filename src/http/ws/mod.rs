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
//! | the token or its client is revoked (on any instance) | 4403 |
//! | the client reads too slowly to keep up (a full outbox, or a write stuck for 10 s) | 1013 |
//! | the server shuts down (after sending what was queued) | 1001 |
//!
//! A close frame from the client is answered with one echoing its code (RFC 6455 §5.5.1), and
//! nothing more is sent.

mod outbox;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};

use super::AppState;
use super::auth::{self, Account};
use super::documents::Named;
use super::error::HttpError;
use crate::auth::Verified;
use crate::domain::usage::Counts;
use crate::graphql::{LiveRequest, LiveResult, Membership, Recipient};
use crate::graphql::{RequestAuth, codes};
use outbox::{Live, Outbox, Refused};

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

const PING_EVERY: Duration = Duration::from_secs(30);
/// How long a connection waits for its client to take what was queued.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// One frame of an operation's results. Results of shared executions arrive as the same
/// rendered bytes for every subscriber; the frame around them (which names the operation)
/// is built here, sized up front: this runs once per subscriber per event.
fn result_frame(id: &str, kind: &str, payload: Option<&str>) -> Message {
    let size = id.len() + kind.len() + payload.map_or(0, str::len);
    let mut text = String::with_capacity(size + 32);
    text.push_str(r#"{"id":"#);
    text.push_str(id);
    text.push_str(r#","type":""#);
    text.push_str(kind);
    text.push('"');
    if let Some(payload) = payload {
        text.push_str(r#","payload":"#);
        text.push_str(payload);
    }
    text.push('}');
    Message::Text(Utf8Bytes::from(text))
}

/// An operation that ended on its own (its last frame sent); its id may be used again.
struct Done(Arc<str>, u64);

/// One operation of this connection, as its live execution sees it.
struct OperationSink {
    id: Arc<str>,
    /// `id` encoded once as a JSON string, for every frame of this operation.
    id_json: Arc<str>,
    serial: u64,
    protocol: Protocol,
    outbox: Arc<Outbox>,
    live: Live,
    done: mpsc::UnboundedSender<Done>,
}

impl Recipient for OperationSink {
    fn deliver(&self, result: &LiveResult) -> bool {
        let (kind, payload, last) = match result {
            LiveResult::Next(payload) => (self.protocol.next(), Some(&**payload), false),
            LiveResult::Refused(errors) => ("error", Some(&**errors), true),
            LiveResult::Complete => ("complete", None, true),
        };
        let frame = result_frame(&self.id_json, kind, payload);
        match self.outbox.send_if(Some(&self.live), frame) {
            Ok(()) if last => {
                let _ = self.done.send(Done(self.id.clone(), self.serial));
                false
            }
            Ok(()) => true,
            Err(Refused::TooSlow | Refused::Closed) => false,
        }
    }
}

struct Operation {
    serial: u64,
    live: Live,
    outbox: Arc<Outbox>,
    _membership: Membership,
}

impl Drop for Operation {
    fn drop(&mut self) {
        // Not one frame after the operation ends, even from a delivery under way; then the
        // membership (dropped next) leaves the execution.
        self.outbox.end(&self.live);
    }
}

struct Connection {
    state: AppState,
    protocol: Protocol,
    outbox: Arc<Outbox>,
    done_tx: mpsc::UnboundedSender<Done>,
    auth: Option<Verified>,
    /// The peer's address: what an anonymous caller is rate-limited by.
    peer: std::net::IpAddr,
    acked: bool,
    operations: HashMap<Arc<str>, Operation>,
    next_serial: u64,
}

const TOO_SLOW: (u16, &str) = (1013, "the client reads too slowly");

/// Operations one connection may run at once.
pub const MAX_OPERATIONS: usize = 256;

pub async fn serve(
    socket: WebSocket,
    state: AppState,
    protocol: Protocol,
    header_auth: Option<Verified>,
    peer: std::net::IpAddr,
    init_timeout: Duration,
) {
    let (sink, mut incoming) = socket.split();
    let outbox = Outbox::new(sink, &state.metrics.ws_messages);
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let mut conn = Connection {
        state,
        protocol,
        outbox: outbox.clone(),
        done_tx,
        auth: header_auth,
        peer,
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
    // Timers live across iterations rather than being re-armed on every pass.
    let init_timer = sleep_until(Instant::now() + init_timeout);
    let expiry_timer = sleep_until(conn.expiry().unwrap_or(far));
    let ping_timer = sleep_until(Instant::now() + PING_EVERY);
    let mut revocations = conn.state.revocations.subscribe();
    tokio::pin!(stopping, init_timer, expiry_timer, ping_timer);
    // This task reads, keeps time, and sends what the socket did not take at once. While it
    // waits on a slow client, what is delivered to it queues, and a full queue closes it.
    let close: Option<Close> = loop {
        tokio::select! {
            biased;
            () = outbox.pending() => {
                if outbox.too_slow() {
                    break Some(Close::Server(TOO_SLOW.0, TOO_SLOW.1));
                }
                match timeout(CLOSE_GRACE, outbox.drain()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break None,
                    Err(_) => break Some(Close::Server(TOO_SLOW.0, TOO_SLOW.1)),
                }
            }
            Some(Done(id, serial)) = done.recv() => {
                if conn.operations.get(&id).is_some_and(|op| op.serial == serial) {
                    conn.operations.remove(&id);
                }
            }
            msg = incoming.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Some(close) = conn.handle(text.as_str()).await {
                        break Some(Close::Server(close.0, close.1));
                    }
                    // `connection_init` may have brought a token, and with it an expiry.
                    expiry_timer.as_mut().reset(conn.expiry().unwrap_or(far));
                }
                Some(Ok(Message::Binary(_))) => break Some(Close::Server(4400, "binary messages are not part of the protocol")),
                Some(Ok(Message::Close(_))) => break Some(Close::Echo),
                None | Some(Err(_)) => break None,
                Some(Ok(_)) => {}
            },
            () = &mut stopping => break Some(Close::Server(1001, "the server is shutting down")),
            () = &mut init_timer, if !conn.acked => break Some(Close::Server(4408, "Connection initialisation timeout")),
            () = &mut expiry_timer, if conn.acked && conn.auth.is_some() => break Some(Close::Server(4403, "the token expired")),
            Ok(revoked) = revocations.recv(), if conn.revocable() => {
                if conn.is_revoked(&revoked) {
                    break Some(Close::Server(4403, "the token was revoked"));
                }
            }
            () = &mut ping_timer, if conn.acked => {
                ping_timer.as_mut().reset(Instant::now() + PING_EVERY);
                let ping = match conn.protocol {
                    Protocol::TransportWs => json!({"type": "ping"}),
                    Protocol::Legacy => json!({"type": "ka"}),
                };
                conn.send(ping);
            }
        }
    };
    // Ending the operations stops results for this client; a shared execution goes on for
    // its other subscribers.
    conn.operations.clear();
    drop(conn);
    let (code, reason) = match close {
        None => {
            outbox.close(true);
            return;
        }
        // RFC 6455 §5.5.1: the client closed, and its close is answered with its own code
        // (a code not allowed on the wire gets 1002); nothing else goes out after it, so what
        // waits is dropped. tungstenite queued that answer when it read the close, and refuses
        // to send another: flushing the socket sends it.
        Some(Close::Echo) => {
            outbox.close(true);
            let _ = timeout(CLOSE_GRACE, outbox.drain()).await;
            return;
        }
        Some(Close::Server(code, reason)) => (code, reason),
    };
    // What was queued before the close goes out first (a slow client gets no more).
    outbox.close(code == TOO_SLOW.0);
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    // A client that stopped reading would hold the connection forever.
    let _ = timeout(CLOSE_GRACE, outbox.send_last(Message::Close(Some(frame)))).await;
}

/// How a connection ends, when it ends with a close frame.
enum Close {
    /// The server closes with this code and reason.
    Server(u16, &'static str),
    /// The client closed; its close frame is echoed.
    Echo,
}

impl Connection {
    /// Whether the connection's token is one that can be revoked (issued to an API client).
    fn revocable(&self) -> bool {
        self.auth
            .as_ref()
            .is_some_and(|a| a.jti.is_some() && a.client_id.is_some())
    }

    fn is_revoked(&self, revoked: &crate::domain::clients::Revoked) -> bool {
        self.auth
            .as_ref()
            .is_some_and(|a| match (&a.jti, &a.client_id) {
                (Some(jti), Some(client_id)) => revoked.covers(jti, client_id),
                _ => false,
            })
    }

    fn expiry(&self) -> Option<Instant> {
        let exp = self.auth.as_ref()?.exp;
        let left = exp - chrono::Utc::now().timestamp();
        Some(Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }

    /// Sends a protocol message; one refused means the connection is closing already.
    fn send(&self, msg: Value) {
        let _ = self
            .outbox
            .send(Message::Text(Utf8Bytes::from(msg.to_string())));
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
                self.subscribe(&msg).await
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

    /// Answers one operation with an error and no results; the connection goes on.
    fn refuse(&self, id: &str, message: &str, code: &str) {
        let errors = crate::graphql::error_list(message, code);
        let id_json = Value::from(id).to_string();
        let _ = self
            .outbox
            .send(result_frame(&id_json, "error", Some(&errors.to_string())));
    }

    /// Charges an operation's cost to the connection's caller (once, when it starts), and
    /// counts it; the refusal's message when the budget cannot pay.
    async fn charge(&self, request: &LiveRequest) -> Option<String> {
        let account = Account::of(self.auth.as_ref(), self.peer);
        let principal = self.auth.as_ref().map(|v| v.principal.clone());
        let mut gql = async_graphql::Request::new(request.query.clone()).variables(
            async_graphql::Variables::from_json(request.variables.clone()),
        );
        if let Some(name) = &request.operation_name {
            gql = gql.operation_name(name.clone());
        }
        let cost = self
            .state
            .executor
            .cost_of(gql.data(RequestAuth(principal)))
            .unwrap_or(0);
        let mut counts = Counts {
            requests: 1,
            cost: i64::try_from(cost).unwrap_or(i64::MAX),
            ..Counts::default()
        };
        let mut refusal = None;
        if let Some(limits) = &self.state.rate_limits {
            let decision = limits.charge(&account.rate_key, cost).await;
            if !decision.allowed {
                counts = Counts {
                    rejections: 1,
                    ..Counts::default()
                };
                refusal = Some(decision.refusal(cost));
            }
        }
        if let Some((org, caller)) = &account.usage {
            self.state.meter.record(org, caller, counts);
        }
        refusal
    }

    async fn subscribe(&mut self, msg: &Value) -> Option<(u16, &'static str)> {
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
        let query = payload.get("query").and_then(Value::as_str);
        let document_id = payload.get("documentId").and_then(Value::as_str);
        let extensions = payload.get("extensions");
        if query.is_none()
            && document_id.is_none()
            && extensions.and_then(|e| e.get("persistedQuery")).is_none()
        {
            return Some((4400, "the operation has no query"));
        }
        if self.operations.contains_key(id) {
            // The reason must name the id, and a static reason cannot; the code is what counts.
            return Some((4409, "Subscriber for this id already exists"));
        }
        if self.operations.len() >= MAX_OPERATIONS {
            // Each operation runs on every event: one socket must not multiply everyone's
            // writes. The operation is refused; the connection and its others go on.
            self.refuse(
                id,
                &format!("a connection runs at most {MAX_OPERATIONS} operations at once"),
                codes::VALIDATION_FAILED,
            );
            return None;
        }
        let variables = match payload.get("variables") {
            None | Some(Value::Null) => Value::Null,
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => return Some((4400, "variables must be an object")),
        };
        let tenant = self
            .auth
            .as_ref()
            .map(|v| self.state.store.tenant(&v.principal));
        let resolved = self
            .state
            .documents
            .resolve(
                Named {
                    query: query.map(str::to_owned),
                    extensions,
                    document_id,
                },
                tenant.as_ref(),
            )
            .await;
        let query = match resolved {
            // Documents are not registered over WebSocket: a client registers over HTTP.
            Ok(resolved) => resolved.query,
            Err(err) => {
                let refused = HttpError::from(err);
                self.refuse(id, &refused.message, refused.code);
                return None;
            }
        };
        let operation_name = payload.get("operationName").and_then(Value::as_str);
        if operation_name.is_some_and(|name| name.len() > 256) {
            self.refuse(
                id,
                "`operationName` is longer than 256 characters",
                codes::BAD_REQUEST,
            );
            return None;
        }
        let request = LiveRequest {
            query,
            operation_name: operation_name.map(str::to_owned),
            variables,
        };
        if let Some(refusal) = self.charge(&request).await {
            self.refuse(id, &refusal, codes::RATE_LIMITED);
            return None;
        }
        let id: Arc<str> = Arc::from(id);
        self.next_serial += 1;
        let serial = self.next_serial;
        let live = Live::default();
        let sink = OperationSink {
            id_json: Arc::from(Value::from(&*id).to_string()),
            id: id.clone(),
            serial,
            protocol: self.protocol,
            outbox: self.outbox.clone(),
            live: live.clone(),
            done: self.done_tx.clone(),
        };
        let caller = self.auth.as_ref().map(|v| &v.principal);
        let membership = self.state.live.start(request, caller, Box::new(sink));
        self.operations.insert(
            id,
            Operation {
                serial,
                live,
                outbox: self.outbox.clone(),
                _membership: membership,
            },
        );
        None
    }
}
