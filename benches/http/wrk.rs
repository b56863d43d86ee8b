//! Running wrk and reading its report.

use std::path::Path;

/// What one wrk run measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Measure {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Responses with a status of 400 and up, and socket errors (connect, read, write,
    /// timeout).
    pub errors: u64,
    /// The CPU time the answering process spent per request during the run, in µs: what a
    /// request costs it, steadier than the rate on a machine whose speed varies.
    pub cpu_us_per_request: f64,
}

impl Measure {
    /// Runs of equal duration taken as one: the mean rate and median, the worst p99, the
    /// errors and CPU time summed.
    pub fn combine(parts: &[Measure]) -> Measure {
        let n = parts.len().max(1) as f64;
        let rate: f64 = parts.iter().map(|m| m.requests_per_sec).sum();
        let cpu: f64 = parts
            .iter()
            .map(|m| m.cpu_us_per_request * m.requests_per_sec)
            .sum();
        Measure {
            requests_per_sec: rate / n,
            p50_ms: parts.iter().map(|m| m.p50_ms).sum::<f64>() / n,
            p99_ms: parts.iter().map(|m| m.p99_ms).fold(0.0, f64::max),
            errors: parts.iter().map(|m| m.errors).sum(),
            cpu_us_per_request: if rate > 0.0 { cpu / rate } else { 0.0 },
        }
    }
}

pub struct Load {
    pub duration_secs: u64,
    pub connections: usize,
}

impl Load {
    /// wrk's threads: two, as the machine has two cores and the server needs them too.
    fn threads(&self) -> usize {
        self.connections.clamp(1, 2)
    }

    /// The command line, as printed for reproducing a run.
    pub fn command(&self, script: &str, url: &str) -> String {
        format!(
            "wrk -t{} -c{} -d{}s --latency -s {script} {url}",
            self.threads(),
            self.connections,
            self.duration_secs
        )
    }
}

/// Stops at once, before anything is seeded, when wrk is not installed.
pub fn require() {
    if let Err(err) = std::process::Command::new("wrk").arg("--version").output() {
        panic!("wrk is needed ({err}); install it with: apt-get install -y wrk");
    }
}

/// Drives `url` and measures it; `pid` is the process answering, whose CPU time is read
/// before and after.
pub async fn run(load: &Load, script: &Path, url: &str, pid: u32) -> Measure {
    let cpu_before = super::process::cpu_secs(pid);
    let out = tokio::process::Command::new("wrk")
        .arg(format!("-t{}", load.threads()))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.duration_secs))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(url)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed ({}): {text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let cpu = super::process::cpu_secs(pid) - cpu_before;
    let mut measure =
        parse(&text).unwrap_or_else(|| panic!("could not read wrk's report:\n{text}"));
    let requests = measure.requests_per_sec * load.duration_secs as f64;
    if requests > 0.0 {
        measure.cpu_us_per_request = cpu * 1e6 / requests;
    }
    measure
}

/// Reads `Requests/sec`, the 50% and 99% lines of the latency distribution, and the error
/// lines (present only when there were errors).
fn parse(report: &str) -> Option<Measure> {
    let mut measure = Measure::default();
    let (mut rate, mut p50, mut p99) = (None, None, None);
    for line in report.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rate = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("50%") {
            p50 = millis(v.trim());
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = millis(v.trim());
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            measure.errors += v.trim().parse::<u64>().ok()?;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            for part in v.split(',') {
                measure.errors += part.split_whitespace().nth(1)?.parse::<u64>().ok()?;
            }
        }
    }
    measure.requests_per_sec = rate?;
    measure.p50_ms = p50?;
    measure.p99_ms = p99?;
    Some(measure)
}

/// wrk's durations: `812.00us`, `1.25ms`, `2.01s`, `1.50m`.
fn millis(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    Some(number * scale)
}
