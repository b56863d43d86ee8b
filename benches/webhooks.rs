//! Webhook delivery throughput: a `crm serve` child, one endpoint on a local receiver, then
//! `crm seed` writes N customers (N `customer.created` events) while the server dispatches
//! and delivers them. Prints deliveries/s from the first delivery to the last, and from the
//! seed's start (the end-to-end rate), beside the target (over 1,000 deliveries/s).
//!
//!   cargo bench --bench webhooks -- [--deliveries 5000] [--pg postgres://…/postgres]

#![expect(
    clippy::expect_used,
    reason = "a benchmark stops loudly on what it did not expect"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[path = "shared/child.rs"]
#[allow(
    dead_code,
    reason = "shared with the other benches; not every part is used here"
)]
mod child;
#[path = "http/database.rs"]
#[allow(
    dead_code,
    reason = "shared with the http bench; not every part is used here"
)]
mod database;
#[path = "http/process.rs"]
#[allow(
    dead_code,
    reason = "shared with the http bench; not every part is used here"
)]
mod process;

use database::{Backend, BenchDatabase};

const TARGET_PER_SEC: f64 = 1_000.0;

struct Args {
    deliveries: usize,
    pg: Option<String>,
}

fn args() -> Args {
    let mut args = Args {
        deliveries: 5_000,
        pg: std::env::var("BENCH_DATABASE_URL").ok(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--deliveries" => {
                args.deliveries = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--deliveries N")
            }
            "--pg" => args.pg = it.next(),
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    args
}

/// Counts POSTs and notes when the first and the last arrived.
#[derive(Default)]
struct Tally {
    count: AtomicUsize,
    first: std::sync::Mutex<Option<Instant>>,
    last: std::sync::Mutex<Option<Instant>>,
}

async fn receiver(tally: Arc<Tally>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |_body: axum::body::Bytes| {
            let tally = tally.clone();
            async move {
                let now = Instant::now();
                tally.first.lock().expect("lock").get_or_insert(now);
                *tally.last.lock().expect("lock") = Some(now);
                tally.count.fetch_add(1, Ordering::Relaxed);
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/hook")
}

async fn run(backend: Backend, admin: Option<&str>, n: usize) -> (f64, f64, f64) {
    let db = BenchDatabase::create(backend, admin).await;
    let tally = Arc::new(Tally::default());
    let url = receiver(tally.clone()).await;
    let server = process::start_crm_with(&db.url, &[("CRM_WEBHOOK_ALLOW_PRIVATE", "1")]).await;
    let token = process::token(&db.url).await;
    let created: serde_json::Value = reqwest::Client::new()
        .post(server.url("/graphql"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "query": "mutation($url: String!) { createWebhookEndpoint(input: {url: $url, eventTypes: [\"customer.created\"]}) { endpoint { id } userErrors { message } } }",
            "variables": {"url": url},
        }))
        .send()
        .await
        .expect("create the endpoint")
        .json()
        .await
        .expect("JSON");
    assert!(
        created["data"]["createWebhookEndpoint"]["endpoint"]["id"].is_string(),
        "{created}"
    );
    let started = Instant::now();
    process::seed(&db.url, n, 0).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    while tally.count.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} deliveries in 5 minutes",
            tally.count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = tally.first.lock().expect("lock").unwrap_or(started);
    let last = tally.last.lock().expect("lock").unwrap_or(started);
    drop(server);
    let span = (last - first).as_secs_f64().max(0.001);
    let end_to_end = (last - started).as_secs_f64().max(0.001);
    (n as f64 / span, n as f64 / end_to_end, end_to_end)
}

#[tokio::main]
async fn main() {
    let args = args();
    let mut backends = vec![Backend::Sqlite];
    if args.pg.is_some() {
        backends.push(Backend::Postgres);
    }
    println!("backend   deliveries  deliveries/s (first→last)  end to end /s  seconds  target");
    for backend in backends {
        let (rate, end_to_end, secs) = run(backend, args.pg.as_deref(), args.deliveries).await;
        println!(
            "{:<9} {:>10}  {:>25.0}  {:>13.0}  {:>7.1}  > {TARGET_PER_SEC:.0}/s: {}",
            backend.name(),
            args.deliveries,
            rate,
            end_to_end,
            secs,
            if rate > TARGET_PER_SEC {
                "met"
            } else {
                "MISSED"
            }
        );
    }
}
