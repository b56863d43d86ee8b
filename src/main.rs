//! The `crm` binary: the process's allocator, logging and exit code around `crm::cli`.

use std::process::ExitCode;

use clap::Parser;

/// glibc's malloc keeps what a burst of large requests allocated in per-thread arenas long
/// after it is freed; mimalloc returns freed pages to the system and contends less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match crm::telemetry::format_from_env() {
        Ok(format) => crm::telemetry::init(format),
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    }
    let cli = crm::cli::Cli::parse();
    match crm::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
