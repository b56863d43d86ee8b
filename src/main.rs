//! The `crm` binary: the process's allocator, logging and exit code around `crm::cli`.

use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use clap::Parser;

/// glibc's malloc keeps what a burst of large requests allocated in per-thread arenas long
/// after it is freed; mimalloc returns freed pages to the system and contends less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc reads its options once, when it starts, before `main`.
const EAGER_COMMIT: &str = "MIMALLOC_ARENA_EAGER_COMMIT";

fn main() -> ExitCode {
    settle_allocator();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run())
}

/// Where the system overcommits, mimalloc commits its first arena whole and then only
/// resets, never decommits, the pages freed in it, so what start-up and every burst touched
/// stays in the process's RSS (idle after start-up on SQLite: 43 MB, 27 MB without eager
/// commit). The option is read before `main` runs, so the process starts itself once more
/// with it off; an operator's own setting is kept, and if the restart fails it runs as is.
fn settle_allocator() {
    if std::env::var_os(EAGER_COMMIT).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut again = std::process::Command::new(exe);
    // The name it was called by, which usage messages show.
    if let Some(name) = args.next() {
        again.arg0(name);
    }
    // `exec` returns only when it failed.
    let _failed = again.args(args).env(EAGER_COMMIT, "0").exec();
}

async fn run() -> ExitCode {
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
