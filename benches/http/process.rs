//! The child processes: `crm seed`, `crm token`, `crm serve` and the floor server (this bench
//! binary again, with `--floor-server`), and what /proc says about a server's memory.

use std::process::{Command, Stdio};

/// The `crm` binary cargo built beside this bench, in the bench profile (optimised like
/// release) under `cargo bench`.
pub const CRM: &str = env!("CARGO_BIN_EXE_crm");
/// At least 32 bytes, as the server requires.
const SECRET: &str = "bench-secret-bench-secret-bench-secret";
/// The tenant the seed fills and the token names.
pub const ORG: &str = "bench-org";

pub use super::child::Server;
use super::child::free_addr;

/// Fills the tenant with `customers` customers and `activities` activities each (and their
/// events), through the migrations the server would run.
pub async fn seed(database_url: &str, customers: usize, activities: usize) {
    let out = tokio::process::Command::new(CRM)
        .args(["seed", "--org", ORG])
        .args(["--customers", &customers.to_string()])
        .args(["--activities-per-customer", &activities.to_string()])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run crm seed");
    assert!(out.status.success(), "crm seed failed: {}", out.status);
    print!("  {}", String::from_utf8_lossy(&out.stdout));
}

/// A token of the tenant with every scope, signed with the server's secret.
pub async fn token(database_url: &str) -> String {
    let out = tokio::process::Command::new(CRM)
        .args(["token", "--org", ORG, "--sub", "bench", "--ttl", "86400"])
        .env("CRM_JWT_SECRET", SECRET)
        .env("DATABASE_URL", database_url)
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run crm token");
    assert!(out.status.success(), "crm token failed: {}", out.status);
    String::from_utf8(out.stdout)
        .expect("a token in UTF-8")
        .trim()
        .to_owned()
}

pub async fn start_crm(database_url: &str) -> Server {
    start_crm_with(database_url, &[]).await
}

/// `crm serve` with settings of its own on top of the bench's.
pub async fn start_crm_with(database_url: &str, settings: &[(&str, &str)]) -> Server {
    let addr = free_addr();
    let child = Command::new(CRM)
        .arg("serve")
        .envs(settings.iter().copied())
        .env("CRM_LISTEN", &addr)
        .env("DATABASE_URL", database_url)
        .env("CRM_JWT_SECRET", SECRET)
        // One token drives the whole load: its rate limit is charged (that work is
        // measured) but never reached.
        .env("CRM_RATE_LIMIT_COST_PER_SEC", "1000000000")
        .env("CRM_RATE_LIMIT_BURST", "1000000000")
        .env("CRM_MAX_CONNECTIONS_PER_IP", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start crm serve");
    Server::healthy(child, addr).await
}

/// The floor: this bench binary again, serving the hand-written answers.
pub async fn start_floor(database_url: &str) -> Server {
    let addr = free_addr();
    let child = Command::new(std::env::current_exe().expect("the bench binary's path"))
        .args(["--floor-server", &addr, database_url, ORG])
        .stdout(Stdio::null())
        .spawn()
        .expect("start the floor server");
    Server::healthy(child, addr).await
}

/// A `Vm*` line of `/proc/<pid>/status`, in MiB: `VmRSS` (resident now) or `VmHWM` (the
/// most it has been resident).
/// The CPU time (user and system) process `pid` has used, in seconds: fields 14 and 15 of
/// `/proc/<pid>/stat`, in clock ticks of 1/100 s (Linux's USER_HZ).
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after it are counted from ')'.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

pub fn memory_mib(pid: u32, key: &str) -> f64 {
    let kib: u64 = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    kib as f64 / 1024.0
}
