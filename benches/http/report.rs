//! The table of one backend's results, with the targets beside them.

use super::database::Backend;
use super::scenarios::Scenario;
use super::wrk::Measure;

/// The server must answer at least this share of the floor's rate.
fn floor_share_target(scenario: Scenario) -> Option<f64> {
    match scenario {
        Scenario::Point => Some(0.80),
        Scenario::List | Scenario::Nested => Some(0.70),
        _ => None,
    }
}

const NESTED_P99_MS_ON_POSTGRES: f64 = 50.0;
const IDLE_RSS_MIB: f64 = 40.0;

pub struct Row {
    pub scenario: Scenario,
    pub server: Measure,
    pub peak_rss_mib: f64,
    pub floor: Option<Measure>,
    /// Whether the floor's answer to the check request was the server's, field for field.
    pub same_answer: Option<bool>,
}

pub struct Report {
    pub backend: Backend,
    pub rows: Vec<Row>,
    pub idle_rss_start_mib: f64,
    pub idle_rss_end_mib: f64,
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

impl Row {
    /// The targets of this row and whether each is met, e.g. `>= 70% of floor: met`.
    fn targets(&self, backend: Backend) -> String {
        let mut out = Vec::new();
        if let (Some(share), Some(floor)) = (floor_share_target(self.scenario), self.floor) {
            let ratio = self.server.requests_per_sec / floor.requests_per_sec;
            out.push(format!(
                ">= {:.0}% of floor: {}",
                share * 100.0,
                verdict(ratio >= share)
            ));
        }
        if self.scenario == Scenario::Nested && backend == Backend::Postgres {
            out.push(format!(
                "p99 < {NESTED_P99_MS_ON_POSTGRES:.0} ms: {}",
                verdict(self.server.p99_ms < NESTED_P99_MS_ON_POSTGRES)
            ));
        }
        if self.server.errors > 0 {
            out.push("errors: MISSED".to_owned());
        }
        if self.same_answer == Some(false) {
            out.push("(floor answered differently)".to_owned());
        }
        if out.is_empty() {
            "-".to_owned()
        } else {
            out.join(", ")
        }
    }
}

pub fn print(report: &Report) {
    println!();
    println!(
        "{:<9} {:<9} {:>9} {:>7} {:>7} {:>6} {:>11} {:>10} | {:>11} {:>9} {:>10} {:>12}  target",
        "backend",
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "peak RSS MB",
        "CPU µs/req",
        "floor req/s",
        "floor p50",
        "CPU µs/req",
        "server/floor"
    );
    for row in &report.rows {
        let s = &row.server;
        let (floor_rate, floor_p50, floor_cpu, ratio) = match row.floor {
            Some(f) => (
                format!("{:.0}", f.requests_per_sec),
                format!("{:.2}", f.p50_ms),
                format!("{:.0}", f.cpu_us_per_request),
                format!("{:.0}%", 100.0 * s.requests_per_sec / f.requests_per_sec),
            ),
            None => (
                "-".to_owned(),
                "-".to_owned(),
                "-".to_owned(),
                "-".to_owned(),
            ),
        };
        println!(
            "{:<9} {:<9} {:>9.0} {:>7.2} {:>7.2} {:>6} {:>11.1} {:>10.0} | {:>11} {:>9} {:>10} {:>12}  {}",
            report.backend.name(),
            row.scenario.name(),
            s.requests_per_sec,
            s.p50_ms,
            s.p99_ms,
            s.errors,
            row.peak_rss_mib,
            s.cpu_us_per_request,
            floor_rate,
            floor_p50,
            floor_cpu,
            ratio,
            row.targets(report.backend)
        );
    }
    println!(
        "{:<9} idle RSS {:.1} MB after start-up, {:.1} MB after the scenarios   target < {IDLE_RSS_MIB:.0} MB: {}",
        report.backend.name(),
        report.idle_rss_start_mib,
        report.idle_rss_end_mib,
        verdict(report.idle_rss_start_mib.max(report.idle_rss_end_mib) < IDLE_RSS_MIB)
    );
}
