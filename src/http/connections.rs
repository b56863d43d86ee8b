//! Connections, bounded: how many may be open at once (in all, and from one address), and
//! how long one may stay silent. Without these, a client that opens connections and sends
//! nothing, or half a request, or one request and then nothing, holds a file descriptor each
//! until the process can accept no one (its open-file limit), and nothing ever frees them.
//!
//! "Silent" is counted from the server's side: a connection the server has written nothing
//! to for `idle` is closed, whatever the client trickles in. A request is answered well
//! within it (the request deadline is shorter), and a WebSocket is pinged every 30 s.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// What may be open.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Connections open at once, in all.
    pub total: usize,
    /// Connections open at once from one address (0: no bound).
    pub per_peer: usize,
    /// How long a connection may go without the server writing to it.
    pub idle: Duration,
}

/// Descriptors kept for everything but connections (database pools, files, Redis).
const RESERVED_DESCRIPTORS: u64 = 128;

impl Bounds {
    /// The most connections this process can hold: its open-file limit, less what it
    /// needs for everything else.
    pub fn total_from_open_file_limit() -> usize {
        let limit = rlimit::getrlimit(rlimit::Resource::NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024);
        usize::try_from(limit.saturating_sub(RESERVED_DESCRIPTORS).max(16)).unwrap_or(usize::MAX)
    }
}

#[derive(Default)]
struct Open {
    total: usize,
    per_peer: HashMap<IpAddr, usize>,
}

/// A listener that refuses connections past its bounds (closing them at once) and closes
/// silent ones.
pub struct Bounded {
    inner: TcpListener,
    bounds: Bounds,
    open: Arc<Mutex<Open>>,
}

impl Bounded {
    pub fn new(inner: TcpListener, bounds: Bounds) -> Self {
        Self {
            inner,
            bounds,
            open: Arc::default(),
        }
    }

    /// A slot for a connection from `ip`, if the bounds allow one more.
    fn take(&self, ip: IpAddr) -> Option<Slot> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if open.total >= self.bounds.total {
            return None;
        }
        let from_peer = open.per_peer.entry(ip).or_default();
        if self.bounds.per_peer > 0 && *from_peer >= self.bounds.per_peer {
            return None;
        }
        *from_peer += 1;
        open.total += 1;
        Some(Slot {
            open: self.open.clone(),
            ip,
        })
    }
}

impl Listener for Bounded {
    type Io = Guarded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Guarded, SocketAddr) {
        loop {
            let (stream, peer) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors (or a connection reset before it was taken): wait
                    // a little rather than spin, as axum's own listener does.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match self.take(peer.ip()) {
                Some(slot) => return (Guarded::new(stream, slot, self.bounds.idle), peer),
                None => {
                    tracing::debug!(peer = %peer, "connection refused: too many open");
                    drop(stream);
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// One open connection's place in the count, given back when the connection closes.
struct Slot {
    open: Arc<Mutex<Open>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(from_peer) = open.per_peer.get_mut(&self.ip) {
            *from_peer = from_peer.saturating_sub(1);
            if *from_peer == 0 {
                open.per_peer.remove(&self.ip);
            }
        }
    }
}

/// A connection that fails its reads once the server has written nothing to it for `idle`
/// (hyper and tungstenite then close it).
pub struct Guarded {
    stream: TcpStream,
    _slot: Slot,
    idle: Duration,
    silence: Pin<Box<Sleep>>,
}

impl Guarded {
    fn new(stream: TcpStream, slot: Slot, idle: Duration) -> Self {
        Self {
            stream,
            _slot: slot,
            idle,
            silence: Box::pin(tokio::time::sleep(idle)),
        }
    }

    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.stream.set_nodelay(nodelay)
    }

    fn wrote(&mut self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            self.silence.as_mut().reset(Instant::now() + self.idle);
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.silence.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection was silent too long",
            )));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.wrote(&written);
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.wrote(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
