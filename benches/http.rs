//! HTTP load benchmark: the requests clients send most, driven by wrk against a `crm serve`
//! child process, each read beside its floor: a minimal axum server answering the same
//! request with one hand-written sqlx statement and the same JSON, no GraphQL (see
//! `http/floor.rs`). The server's share of the floor's rate is what GraphQL, SeaORM and the
//! dataloaders cost. Prints, per scenario, req/s, p50/p99, errors, the server's peak RSS
//! and the CPU time the server and the floor spent per request (steadier than the rates on a
//! machine whose speed varies); then the server's idle RSS, and the targets beside them.
//!
//! cargo bench --bench http
//! cargo bench --bench http -- --customers 2000 --duration 5 --only nested,point
//! cargo bench --bench http -- --pg postgres://postgres@127.0.0.1:5432/postgres
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench http
//!
//! Options: `--backend sqlite|postgres|both` (both when a PostgreSQL URL is given by `--pg`
//! or `BENCH_DATABASE_URL`, SQLite alone otherwise), `--duration SECS` per scenario (10),
//! `--concurrency N` connections (16), `--customers N` (10000), `--activities-per-customer
//! M` (20), `--only a,b` among point, list, nested, filtered, write, typename (all), and
//! `--search TERM` for `filtered` ("son": "… and Sons", Johnson, Anderson…; about a third of
//! the seeded customers match).
//!
//! Needs wrk (`apt-get install -y wrk`). Each backend gets a fresh database (SQLite: a file
//! in a temp dir; PostgreSQL: `crm_bench_<pid>`, created through the given URL, which must
//! be allowed to, and dropped at the end), seeded by `crm seed`. The floor runs first,
//! then the server; one server at a time, but wrk shares the two cores with it, so compare
//! runs made back to back on a quiet machine. Before each scenario is timed, one request
//! must answer data without `errors`, and the server's answer to a read must equal the
//! floor's (a warning and a mark in the table otherwise). GraphQL errors inside a 200
//! during the run are not counted: reading every body would take the client's CPU.

#![expect(
    clippy::expect_used,
    reason = "a benchmark stops loudly on what it did not expect"
)]

#[path = "shared/child.rs"]
mod child;
#[path = "http/database.rs"]
mod database;
#[path = "http/floor.rs"]
mod floor;
#[path = "http/process.rs"]
mod process;
#[path = "http/report.rs"]
mod report;
#[path = "http/scenarios.rs"]
mod scenarios;
#[path = "http/wrk.rs"]
mod wrk;

use std::time::Duration;

use database::{Backend, BenchDatabase};
use report::{Report, Row};
use scenarios::Scenario;
use serde_json::Value;
use wrk::{Load, Measure};

/// Customers whose ids the point and write scenarios take in turn.
const ROTATING_IDS: i64 = 100;
/// How long the server is left alone before its idle memory is read: time for the
/// allocator to give back what a burst took.
const SETTLE: Duration = Duration::from_secs(3);

struct Args {
    backends: Vec<Backend>,
    pg: Option<String>,
    load: Load,
    customers: usize,
    activities_per_customer: usize,
    scenarios: Vec<Scenario>,
    search: String,
}

fn args() -> Args {
    let mut backend = None;
    let mut pg = std::env::var("BENCH_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let mut load = Load {
        duration_secs: 10,
        connections: 16,
    };
    let (mut customers, mut activities_per_customer) = (10_000, 20);
    let mut scenarios = Scenario::ALL.to_vec();
    let mut search = "son".to_owned();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match arg.as_str() {
            "--backend" => backend = Some(value()),
            "--pg" => pg = Some(value()),
            "--duration" => load.duration_secs = value().parse().unwrap_or(10),
            "--concurrency" => load.connections = value().parse().unwrap_or(16),
            "--customers" => customers = value().parse().unwrap_or(customers),
            "--activities-per-customer" => {
                activities_per_customer = value().parse().unwrap_or(activities_per_customer);
            }
            "--only" => {
                scenarios = value()
                    .split(',')
                    .map(|name| {
                        Scenario::parse(name.trim())
                            .unwrap_or_else(|| panic!("unknown scenario {name:?}"))
                    })
                    .collect();
            }
            "--search" => search = value(),
            _ => {} // `cargo bench` passes `--bench`; ignore what is not ours.
        }
    }
    // Keep the declared order whatever order `--only` named them in: writes after reads.
    let scenarios = Scenario::ALL
        .into_iter()
        .filter(|s| scenarios.contains(s))
        .collect();
    let backends = match (backend.as_deref(), &pg) {
        (Some("sqlite"), _) | (None, None) => vec![Backend::Sqlite],
        (Some("postgres"), Some(_)) => vec![Backend::Postgres],
        (Some("both") | None, Some(_)) => vec![Backend::Sqlite, Backend::Postgres],
        (Some("postgres" | "both"), None) => {
            panic!("PostgreSQL needs a URL: --pg postgres://… or BENCH_DATABASE_URL")
        }
        (Some(other), _) => panic!("--backend is sqlite, postgres or both, not {other:?}"),
    };
    Args {
        backends,
        pg,
        load,
        customers,
        activities_per_customer,
        scenarios,
        search,
    }
}

impl Args {
    /// The command that repeats this run.
    fn command(&self) -> String {
        let backend = match self.backends.as_slice() {
            [Backend::Sqlite] => "sqlite",
            [Backend::Postgres] => "postgres",
            _ => "both",
        };
        let mut command = format!(
            "cargo bench --bench http -- --backend {backend} --duration {} --concurrency {} \
             --customers {} --activities-per-customer {} --search {}",
            self.load.duration_secs,
            self.load.connections,
            self.customers,
            self.activities_per_customer,
            shell_word(&self.search)
        );
        if self.scenarios.len() < Scenario::ALL.len() {
            let only: Vec<&str> = self.scenarios.iter().map(|s| s.name()).collect();
            command.push_str(&format!(" --only {}", only.join(",")));
        }
        if let (Some(pg), true) = (&self.pg, self.backends.contains(&Backend::Postgres)) {
            command.push_str(&format!(" --pg {pg}"));
        }
        command
    }
}

/// `word`, quoted for a shell when it needs to be.
fn shell_word(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.,".contains(c))
        && !word.is_empty()
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[tokio::main]
async fn main() {
    if let Some((addr, database_url, org)) = floor::server_args() {
        floor::serve(&addr, &database_url, &org).await;
        return;
    }
    let args = args();
    wrk::require();
    if process::CRM.contains("/debug/") {
        println!(
            "warning: {} is a debug build; run `cargo bench`",
            process::CRM
        );
    }
    println!(
        "HTTP benchmark: {} customers x {} activities, {} s per scenario, {} connections",
        args.customers,
        args.activities_per_customer,
        args.load.duration_secs,
        args.load.connections
    );
    let run = async {
        for &backend in &args.backends {
            let report = run_backend(backend, &args).await;
            report::print(&report);
        }
    };
    // On Ctrl-C the run is dropped, and with it the guards: the children are killed and the
    // PostgreSQL database is dropped.
    tokio::select! {
        () = run => {}
        _ = tokio::signal::ctrl_c() => {
            println!("interrupted");
            return;
        }
    }
    println!();
    println!("reproduce: {}", args.command());
    println!(
        "each scenario: {}",
        args.load
            .command("<scenario>.lua", "http://<server>/graphql")
    );
    println!("  (the floor on http://<floor>/<scenario>)");
}

async fn run_backend(backend: Backend, args: &Args) -> Report {
    println!("\n{}: seeding", backend.name());
    let db = BenchDatabase::create(backend, args.pg.as_deref()).await;
    process::seed(&db.url, args.customers, args.activities_per_customer).await;
    db.analyze().await;
    let ids = floor::Db::connect(&db.url)
        .await
        .customer_ids(process::ORG, ROTATING_IDS)
        .await;
    assert!(!ids.is_empty(), "the seed wrote no customers");
    let token = process::token(&db.url).await;
    let scripts = tempfile::tempdir().expect("temp dir");
    let plans: Vec<Plan> = args
        .scenarios
        .iter()
        .map(|&scenario| Plan::new(scenario, &ids, &args.search, &token, scripts.path()))
        .collect();

    let (rows, idle_rss_start_mib, idle_rss_end_mib) =
        run_scenarios(&db.url, &plans, &token, &args.load).await;
    Report {
        backend,
        rows,
        idle_rss_start_mib,
        idle_rss_end_mib,
    }
}

/// One scenario ready to run: its bodies and the wrk script sending them.
struct Plan {
    scenario: Scenario,
    first_body: String,
    script: std::path::PathBuf,
}

impl Plan {
    fn new(
        scenario: Scenario,
        ids: &[String],
        search: &str,
        token: &str,
        dir: &std::path::Path,
    ) -> Self {
        let bodies = scenario.bodies(ids, search);
        let script = scenario.write_script(dir, token, &bodies);
        Self {
            scenario,
            first_body: bodies.into_iter().next().expect("a body"),
            script,
        }
    }
}

/// Runs every scenario on the server and, for reads, on the floor, taking turns: each
/// drives the load for half the duration twice, floor-server then server-floor, so that
/// both meet the same machine (whose speed drifts from one minute to the next) and the
/// same database (caches, autovacuum).
async fn run_scenarios(
    database_url: &str,
    plans: &[Plan],
    token: &str,
    load: &Load,
) -> (Vec<Row>, f64, f64) {
    let needs_floor = plans.iter().any(|p| p.scenario.has_floor());
    let floor = match needs_floor {
        true => Some(process::start_floor(database_url).await),
        false => None,
    };
    let server = process::start_crm(database_url).await;
    tokio::time::sleep(SETTLE).await;
    let idle_start = process::memory_mib(server.pid(), "VmRSS");
    let server_url = server.url("/graphql");
    let half = Load {
        duration_secs: (load.duration_secs / 2).max(1),
        connections: load.connections,
    };
    let mut rows = Vec::new();
    for plan in plans {
        let answer = scenarios::check(plan.scenario, &server_url, token, &plan.first_body).await;
        let floor = match (&floor, plan.scenario.has_floor()) {
            (Some(floor), true) => {
                let url = floor.url(&format!("/{}", plan.scenario.name()));
                let floor_answer =
                    scenarios::check(plan.scenario, &url, token, &plan.first_body).await;
                Some((floor, url, floor_answer))
            }
            _ => None,
        };
        let same_answer = floor
            .as_ref()
            .map(|(_, _, floor_answer)| *floor_answer == answer);
        if let (Some(false), Some((_, _, floor_answer))) = (same_answer, &floor) {
            println!(
                "  warning: {} answers differ\n    server: {}\n    floor:  {}",
                plan.scenario.name(),
                clip(&answer),
                clip(floor_answer)
            );
        }
        println!("  {:<9} running", plan.scenario.name());
        let mut server_parts = Vec::new();
        let mut floor_parts = Vec::new();
        for server_first in [false, true] {
            if server_first {
                server_parts.push(wrk::run(&half, &plan.script, &server_url, server.pid()).await);
            }
            if let Some((floor, url, _)) = &floor {
                floor_parts.push(wrk::run(&half, &plan.script, url, floor.pid()).await);
            }
            if !server_first {
                server_parts.push(wrk::run(&half, &plan.script, &server_url, server.pid()).await);
            }
        }
        rows.push(Row {
            scenario: plan.scenario,
            server: Measure::combine(&server_parts),
            peak_rss_mib: process::memory_mib(server.pid(), "VmHWM"),
            floor: floor.is_some().then(|| Measure::combine(&floor_parts)),
            same_answer,
        });
    }
    tokio::time::sleep(SETTLE).await;
    let idle_end = process::memory_mib(server.pid(), "VmRSS");
    (rows, idle_start, idle_end)
}

fn clip(value: &Value) -> String {
    value.to_string().chars().take(300).collect()
}
