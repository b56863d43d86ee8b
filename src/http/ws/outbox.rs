//! The sending half of one WebSocket connection, shared by the connection's own task and the
//! live executions delivering to it. A result is written straight from the thread that
//! delivers it when the socket takes it at once, which is nearly always: waking one task per
//! subscriber per event would cost more than the write itself. What the socket does not take
//! waits here, in order, for the connection's task to send when the socket is writable; a
//! client that lets too much wait is too slow and gets closed.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};

use axum::extract::ws::{Message, WebSocket};
use futures_util::Sink;
use futures_util::stream::SplitSink;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::Notify;

use crate::metrics::SentLabel;

/// Messages that may wait for a client before it counts as too slow.
pub const LIMIT: usize = 256;

/// Why a message was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The connection is closing or closed; nothing more goes out.
    Closed,
    /// The client let [`LIMIT`] messages wait: the connection closes as too slow.
    TooSlow,
}

struct State {
    sink: SplitSink<WebSocket, Message>,
    waiting: VecDeque<Message>,
    /// The socket did not take everything: the connection's task sends the rest with its own
    /// waker, and nobody else polls the sink until it has (a poll without a waker would
    /// replace the task's and leave it waiting for ever).
    draining: bool,
    closed: bool,
    too_slow: bool,
}

pub struct Outbox {
    state: Mutex<State>,
    sent_at_once: Counter,
    sent_after_wait: Counter,
    /// Tells the connection's task that messages wait or that the client is too slow.
    pending: Notify,
}

/// Where an operation's frames may go: cleared (under the outbox's lock) when the operation
/// ends, so not one frame of it follows, even from a delivery already under way.
#[derive(Clone)]
pub struct Live(Arc<AtomicBool>);

impl Default for Live {
    /// A live operation: frames go out until it is ended.
    fn default() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }
}

impl Outbox {
    pub fn new(
        sink: SplitSink<WebSocket, Message>,
        sent: &Family<SentLabel, Counter>,
    ) -> Arc<Self> {
        let counter = |label: &'static str| sent.get_or_create(&SentLabel { sent: label }).clone();
        Arc::new(Self {
            sent_at_once: counter("at_once"),
            sent_after_wait: counter("after_wait"),
            state: Mutex::new(State {
                sink,
                waiting: VecDeque::new(),
                draining: false,
                closed: false,
                too_slow: false,
            }),
            pending: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a write panicked; the queue is intact.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `message` now if the socket takes it, or queues it for the connection's task.
    pub fn send(&self, message: Message) -> Result<(), Refused> {
        self.send_if(None, message)
    }

    /// Like [`Outbox::send`], for an operation's frame: refused once `live` was ended.
    pub fn send_if(&self, live: Option<&Live>, message: Message) -> Result<(), Refused> {
        let mut state = self.state();
        if state.closed || live.is_some_and(|l| !l.0.load(Ordering::Acquire)) {
            return Err(Refused::Closed);
        }
        if state.too_slow {
            return Err(Refused::TooSlow);
        }
        if state.waiting.len() >= LIMIT {
            state.too_slow = true;
            drop(state);
            self.pending.notify_one();
            return Err(Refused::TooSlow);
        }
        state.waiting.push_back(message);
        if state.draining {
            // The connection's task sends it after the rest.
            self.sent_after_wait.inc();
            return Ok(());
        }
        // No waker: what does not go now is the connection task's to send.
        match state.poll_drain(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => {
                self.sent_at_once.inc();
            }
            // The socket failed: the connection's reader sees it too and ends the connection.
            Poll::Ready(Err(_)) => state.closed = true,
            Poll::Pending => {
                drop(state);
                self.sent_after_wait.inc();
                self.pending.notify_one();
            }
        }
        Ok(())
    }

    /// Ends `live`: from now on no frame of its operation is sent.
    pub fn end(&self, live: &Live) {
        let _state = self.state();
        live.0.store(false, Ordering::Release);
    }

    /// Resolves when messages wait for the socket, or the client was found too slow.
    pub async fn pending(&self) {
        self.pending.notified().await;
    }

    pub fn too_slow(&self) -> bool {
        self.state().too_slow
    }

    /// Sends what waits, as the socket takes it.
    pub async fn drain(&self) -> Result<(), axum::Error> {
        std::future::poll_fn(|cx| self.state().poll_drain(cx)).await
    }

    /// Stops all sending but a last close frame; `discard` drops what still waits.
    pub fn close(&self, discard: bool) {
        let mut state = self.state();
        state.closed = true;
        if discard {
            state.waiting.clear();
        }
    }

    /// Sends `message` after everything that waits, whether or not the outbox is closed.
    pub async fn send_last(&self, message: Message) -> Result<(), axum::Error> {
        self.state().waiting.push_back(message);
        self.drain().await
    }
}

impl State {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), axum::Error>> {
        let sent = self.poll_send_waiting(cx);
        self.draining = sent.is_pending();
        sent
    }

    fn poll_send_waiting(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), axum::Error>> {
        let mut sink = Pin::new(&mut self.sink);
        while !self.waiting.is_empty() {
            if let Err(e) = ready!(sink.as_mut().poll_ready(cx)) {
                return Poll::Ready(Err(e));
            }
            let Some(message) = self.waiting.pop_front() else {
                break;
            };
            sink.as_mut().start_send(message)?;
        }
        sink.poll_flush(cx)
    }
}
