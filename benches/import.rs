//! `crm import` throughput: a CSV of N new customers (externalId, name, email, phone,
//! company, lifecycleStage, tags) imported by the release `crm` binary into a fresh
//! database, then the same file again (every row found and unchanged). Prints rows/s for
//! each beside the target (over 20,000 rows/s for the first import on SQLite).
//!
//!   cargo bench --bench import -- [--rows 100000] [--pg postgres://…/postgres]

#![expect(
    clippy::expect_used,
    reason = "a benchmark stops loudly on what it did not expect"
)]

use std::io::Write;
use std::process::Command;
use std::time::Instant;

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

/// The first import of new customers on SQLite.
const TARGET_PER_SEC: f64 = 20_000.0;

struct Args {
    rows: usize,
    pg: Option<String>,
}

fn args() -> Args {
    let mut args = Args {
        rows: 100_000,
        pg: std::env::var("BENCH_DATABASE_URL").ok(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--rows" => args.rows = it.next().and_then(|n| n.parse().ok()).expect("--rows N"),
            "--pg" => args.pg = it.next(),
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    args
}

/// A CSV of `rows` customers, each valid and new.
fn write_csv(path: &std::path::Path, rows: usize) {
    let stages = ["LEAD", "PROSPECT", "CUSTOMER", "CHURNED"];
    let tags = ["vip;newsletter", "smb", "", "enterprise;partner;trial"];
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create the CSV"));
    writeln!(
        out,
        "externalId,name,email,phone,company,lifecycleStage,tags"
    )
    .expect("write");
    for i in 0..rows {
        writeln!(
            out,
            "ext-{i:07},Customer {i},customer{i}@example.com,+1202555{:04},\"Company {}, Inc.\",{},{}",
            i % 10_000,
            i % 997,
            stages[i % stages.len()],
            tags[i % tags.len()],
        )
        .expect("write");
    }
    out.flush().expect("flush the CSV");
}

/// What one run of `crm import` did.
struct Run {
    wall_secs: f64,
    /// The import's own figure (from reading the file to the last commit).
    summary: String,
}

fn crm(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(process::CRM)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run crm")
}

fn import(database_url: &str, csv: &std::path::Path) -> Run {
    let started = Instant::now();
    let out = crm(
        database_url,
        &[
            "import",
            csv.to_str().expect("a UTF-8 path"),
            "--org",
            process::ORG,
            "--source",
            "bench",
            "--quiet",
        ],
    );
    let wall_secs = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "crm import failed: {stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("rows read:"))
        .expect("the summary")
        .to_owned();
    Run { wall_secs, summary }
}

/// A count from the summary line (`created: 100000`).
fn count(summary: &str, what: &str) -> usize {
    summary
        .split([',', ' '])
        .skip_while(|w| *w != format!("{what}:"))
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("`{what}` in {summary}"))
}

#[tokio::main]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("customers.csv");
    write_csv(&csv, args.rows);
    let size = std::fs::metadata(&csv).map(|m| m.len()).unwrap_or(0);
    println!(
        "{} customers, {:.1} MiB of CSV; the release `crm import`, wall clock from start to exit",
        args.rows,
        size as f64 / (1024.0 * 1024.0)
    );
    let mut backends = vec![Backend::Sqlite];
    if args.pg.is_some() {
        backends.push(Backend::Postgres);
    }
    println!("backend   run        rows     seconds  rows/s   target");
    for backend in backends {
        let db = BenchDatabase::create(backend, args.pg.as_deref()).await;
        let migrated = crm(&db.url, &["migrate"]);
        assert!(migrated.status.success(), "crm migrate failed");
        for (run, expect) in [("import", "created"), ("re-import", "unchanged")] {
            let done = import(&db.url, &csv);
            assert_eq!(count(&done.summary, expect), args.rows, "{}", done.summary);
            let rate = args.rows as f64 / done.wall_secs;
            let target = if backend == Backend::Sqlite && run == "import" {
                format!(
                    "> {TARGET_PER_SEC:.0}/s: {}",
                    if rate > TARGET_PER_SEC {
                        "met"
                    } else {
                        "MISSED"
                    }
                )
            } else {
                String::new()
            };
            println!(
                "{:<9} {:<10} {:>7}  {:>7.2}  {:>7.0}  {target}",
                backend.name(),
                run,
                args.rows,
                done.wall_secs,
                rate,
            );
            println!("          ({})", done.summary);
        }
    }
}
