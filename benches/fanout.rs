//! Fan-out benchmark: N subscribers on one server (a `crm serve` child process on SQLite),
//! one mutation fanned out to all of them. Reports how many connected, the latency from the
//! change's commit (its `occurredAt`) to each receipt (p50/p99/max), and the server's
//! resident memory per idle subscriber, with the targets beside them.
//!
//! cargo bench --bench fanout -- --subscribers 19950
//! cargo bench --bench fanout -- --subscribers 20000 --per-connection 2
//!
//! Run on demand, not in CI, on a quiet machine. Every subscriber is a socket in the server
//! and one in this process, so each needs an open-file limit above the subscriber count (the
//! bench raises its own soft limit to the hard one, and the server inherits it). Where the
//! hard limit is too low, `--per-connection K` runs K subscriptions on each socket, as
//! graphql-transport-ws allows.

#![expect(
    clippy::expect_used,
    reason = "a benchmark stops loudly on what it did not expect"
)]

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

#[path = "shared/child.rs"]
mod child;

use child::{Server, free_addr};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, connect_async_with_config};

const SECRET: &str = "bench-secret-bench-secret-bench-secret";
const TARGET_SUBSCRIBERS: usize = 20_000;
const TARGET_P99_MS: f64 = 250.0;
const TARGET_KIB_PER_SUBSCRIBER: f64 = 20.0;

struct Args {
    subscribers: usize,
    per_connection: usize,
    concurrency: usize,
}

fn args() -> Args {
    let mut args = Args {
        subscribers: TARGET_SUBSCRIBERS,
        per_connection: 1,
        concurrency: 256,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse().ok());
        match arg.as_str() {
            "--subscribers" => args.subscribers = value().unwrap_or(args.subscribers),
            "--per-connection" => args.per_connection = value().unwrap_or(1).max(1),
            "--connect-concurrency" => args.concurrency = value().unwrap_or(args.concurrency),
            _ => {} // `cargo bench` passes `--bench`; ignore what is not ours.
        }
    }
    args
}

/// The server and the directory of its database, removed after it.
struct Started {
    server: Server,
    _dir: tempfile::TempDir,
}

async fn start_server() -> Started {
    let dir = tempfile::tempdir().expect("temp dir");
    let addr = free_addr();
    let child = Command::new(env!("CARGO_BIN_EXE_crm"))
        .arg("serve")
        .env("CRM_LISTEN", &addr)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("crm.db").display()),
        )
        .env("CRM_JWT_SECRET", SECRET)
        .env("CRM_WS_INIT_TIMEOUT_SECS", "120")
        // Every subscriber uses one token: its rate limit is charged, never reached.
        .env("CRM_RATE_LIMIT_COST_PER_SEC", "1000000000")
        .env("CRM_RATE_LIMIT_BURST", "1000000000")
        // Every subscriber connects from this host, as many as the open-file limit allows:
        // the bench measures the server at that limit, not the bounds that keep it from it.
        .env("CRM_MAX_CONNECTIONS_PER_IP", "0")
        .env("CRM_MAX_OPEN_CONNECTIONS", "1000000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start crm serve");
    Started {
        server: Server::healthy(child, addr).await,
        _dir: dir,
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Sockets in TIME_WAIT on this host, from `/proc/net/sockstat`.
fn time_wait_sockets() -> u64 {
    std::fs::read_to_string("/proc/net/sockstat")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("TCP:"))?;
            let mut words = line.split_whitespace();
            words.find(|w| *w == "tw")?;
            words.next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// Tens of thousands of TIME_WAIT sockets left by an earlier run lengthen the kernel's
/// connection lookups and slow every send; wait for them to expire (a minute on Linux).
async fn await_quiet_network() {
    let started = Instant::now();
    let mut told = false;
    while time_wait_sockets() > 1000 && started.elapsed() < Duration::from_secs(90) {
        if !told {
            println!(
                "waiting for {} TIME_WAIT sockets of an earlier run to expire",
                time_wait_sockets()
            );
            told = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// CPU time (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_ms(pid: &str) -> f64 {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = s.rsplit_once(')')?.1.to_owned();
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .unwrap_or(f64::NAN);
    // The kernel counts in clock ticks of 10 ms on Linux.
    ticks * 10.0
}

#[derive(serde::Deserialize)]
struct NextMessage<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    payload: Option<NextPayload<'a>>,
}

#[derive(serde::Deserialize)]
struct NextPayload<'a> {
    #[serde(borrow)]
    data: NextData<'a>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct NextData<'a> {
    #[serde(borrow)]
    customer_changed: Change<'a>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Change<'a> {
    occurred_at: &'a str,
}

/// One client socket: connects, starts `operations` subscriptions, reports ready, then
/// waits for one event on each and reports the latency from the event's commit to receipt.
async fn subscriber(
    addr: String,
    token: String,
    operations: usize,
    ready: mpsc::UnboundedSender<bool>,
    done: Arc<Mutex<Vec<Duration>>>,
) {
    let Ok(mut request) = format!("ws://{addr}/graphql").into_client_request() else {
        let _ = ready.send(false);
        return;
    };
    if let Ok(protocol) = "graphql-transport-ws".parse() {
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol);
    }
    // A small read buffer: 20,000 clients with tungstenite's default 128 KiB each would
    // take 2.5 GiB from the machine the server runs on.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let Ok((mut socket, _)) = connect_async_with_config(request, Some(config), false).await else {
        let _ = ready.send(false);
        return;
    };
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    if socket
        .send(Message::Text(init.to_string().into()))
        .await
        .is_err()
    {
        let _ = ready.send(false);
        return;
    }
    // Wait for the ack before subscribing, as the protocol requires.
    while let Some(Ok(msg)) = socket.next().await {
        if let Message::Text(text) = msg
            && text.as_str().contains("connection_ack")
        {
            break;
        }
    }
    for id in 1..=operations {
        let subscribe = json!({"id": id.to_string(), "type": "subscribe", "payload": {"query": "subscription { customerChanged { occurredAt customer { id name } } }"}});
        if socket
            .send(Message::Text(subscribe.to_string().into()))
            .await
            .is_err()
        {
            let _ = ready.send(false);
            return;
        }
    }
    let _ = ready.send(true);
    // The server sends nothing between the ack and the event, so tungstenite holds no bytes
    // of it yet: from here the socket is read bare, which costs the shared cores about half
    // of what a full WebSocket client does (the clients stand in for ones on other machines).
    let MaybeTlsStream::Plain(tcp) = socket.get_mut() else {
        return;
    };
    let mut frames = FrameReader::default();
    let mut received_all = 0;
    while received_all < operations {
        let Ok(Some(text)) = frames.next_text(tcp).await else {
            break;
        };
        let received = SystemTime::now();
        // Only what the latency needs, borrowed.
        let Ok(next) = serde_json::from_slice::<NextMessage<'_>>(text) else {
            continue;
        };
        if next.kind != "next" {
            continue;
        }
        let occurred = next
            .payload
            .and_then(|p| {
                chrono::DateTime::parse_from_rfc3339(p.data.customer_changed.occurred_at).ok()
            })
            .map(SystemTime::from);
        if let Some(occurred) = occurred {
            let latency = received.duration_since(occurred).unwrap_or_default();
            done.lock().unwrap_or_else(|e| e.into_inner()).push(latency);
        }
        received_all += 1;
    }
    // Keep the socket open until the run ends.
    std::future::pending::<()>().await;
}

/// Server-to-client WebSocket frames (never masked) read off a bare socket: only what the
/// bench needs, text frames whole, everything else skipped.
#[derive(Default)]
struct FrameReader {
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out as a frame.
    consumed: usize,
}

impl FrameReader {
    async fn next_text(&mut self, tcp: &mut TcpStream) -> std::io::Result<Option<&[u8]>> {
        self.buf.drain(..self.consumed);
        self.consumed = 0;
        loop {
            if let Some((opcode, start, end)) = parse_frame(&self.buf) {
                if opcode == 1 {
                    self.consumed = end;
                    return Ok(self.buf.get(start..end));
                }
                self.buf.drain(..end);
                continue;
            }
            self.buf.reserve(1024);
            if tcp.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }
}

/// The opcode and the payload's range of the first whole frame in `buf`.
fn parse_frame(buf: &[u8]) -> Option<(u8, usize, usize)> {
    let (&first, &second) = (buf.first()?, buf.get(1)?);
    let (len, start) = match second & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => (
            usize::try_from(u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)).ok()?,
            10,
        ),
        n => (usize::from(n), 2),
    };
    let end = start + len;
    (buf.len() >= end).then_some((first & 0x0f, start, end))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args = args();
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    let sockets = args.subscribers.div_ceil(args.per_connection);
    println!(
        "fan-out benchmark: {} subscribers on {sockets} sockets (open-file limit {limit})",
        args.subscribers
    );
    await_quiet_network().await;
    let running = start_server().await;
    let server = &running.server;
    let pid = server.pid();
    let token = crm::auth::TokenIssuer::hs256(SECRET.as_bytes(), "crm", "crm-api")
        .mint(
            "bench",
            "bench-org",
            &crm::auth::Scope::all_joined(),
            chrono::Duration::hours(2),
        )
        .expect("token");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib(pid);

    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    // Receipts go into one list that this task looks at now and then: a channel would wake
    // it for each of them, on the cores the server needs.
    let receipts = Arc::new(Mutex::new(Vec::with_capacity(args.subscribers)));
    let gate = Arc::new(Semaphore::new(args.concurrency));
    let connected = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut to_place = args.subscribers;
    for _ in 0..sockets {
        let operations = args.per_connection.min(to_place);
        to_place -= operations;
        let permit = gate.clone().acquire_owned().await.expect("semaphore");
        let (addr, token, ready, done) = (
            server.addr.clone(),
            token.clone(),
            ready_tx.clone(),
            receipts.clone(),
        );
        let (inner_ready, mut inner_rx) = mpsc::unbounded_channel();
        let connected = connected.clone();
        tokio::spawn(subscriber(addr, token, operations, inner_ready, done));
        tokio::spawn(async move {
            let ok = inner_rx.recv().await.unwrap_or(false);
            if ok {
                connected.fetch_add(operations, Ordering::Relaxed);
            }
            let _ = ready.send(ok);
            drop(permit);
        });
    }
    drop(ready_tx);
    let mut failed = 0;
    for _ in 0..sockets {
        match ready_rx.recv().await {
            Some(true) => {}
            _ => failed += 1,
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let ok = connected.load(Ordering::Relaxed);
    // Let subscriptions attach and the server settle before measuring idle memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    if let Ok(secs) = std::env::var("FANOUT_PAUSE_SECS").map(|s| s.parse().unwrap_or(0)) {
        // Time to attach a profiler to the server before the event: `perf record -p <pid>`.
        println!("server pid {pid}: all subscribed; the mutation follows in {secs} s");
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
    let rss_idle = rss_kib(pid);

    let server_pid = pid.to_string();
    let cpu_before = (cpu_ms(&server_pid), cpu_ms("self"));
    let client = reqwest::Client::new();
    let res = client
        .post(server.url("/graphql"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"query":"mutation { createCustomer(input: {name: \"Fan-out\"}) { customer { id } } }"}"#)
        .send()
        .await
        .expect("mutation sent");
    assert!(
        res.status().is_success(),
        "mutation failed: {}",
        res.status()
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    let received = || receipts.lock().unwrap_or_else(|e| e.into_inner()).len();
    while received() < ok && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut latencies = std::mem::take(&mut *receipts.lock().unwrap_or_else(|e| e.into_inner()));
    let cpu_after = (cpu_ms(&server_pid), cpu_ms("self"));
    latencies.sort();
    let per_subscriber = (rss_idle.saturating_sub(rss_before)) as f64 / ok.max(1) as f64;

    println!(
        "subscribed:         {ok} (sockets failed: {failed}) in {connect_secs:.1} s      target {TARGET_SUBSCRIBERS}"
    );
    println!("received the event: {}", latencies.len());
    println!(
        "fan-out latency min: {:.1} ms (the first receipt: commit, log read, resolve)",
        percentile(&latencies, 0.0)
    );
    println!(
        "fan-out latency p50: {:.1} ms",
        percentile(&latencies, 0.50)
    );
    println!(
        "fan-out latency p99: {:.1} ms                 target < {TARGET_P99_MS} ms",
        percentile(&latencies, 0.99)
    );
    println!("fan-out latency max: {:.1} ms", percentile(&latencies, 1.0));
    println!(
        "CPU during fan-out: server {:.0} ms, benchmark's own clients {:.0} ms (2 cores shared)",
        cpu_after.0 - cpu_before.0,
        cpu_after.1 - cpu_before.1
    );
    println!("server RSS: {rss_before} KiB before, {rss_idle} KiB with subscribers");
    println!(
        "server RSS per idle subscriber: {per_subscriber:.1} KiB      target < {TARGET_KIB_PER_SUBSCRIBER} KiB"
    );
    drop(running);
}
