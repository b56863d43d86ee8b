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
///
/// The same restart gives glibc's malloc, which only C code uses (SQLite), one arena: it
/// otherwise makes one per thread that allocates, up to eight per core, and each SQLite
/// connection's worker thread kept an arena of 1.5–2 MB after load (idle RSS on SQLite:
/// 39 MB after start-up and 47 MB after the http bench's reads, 25 and 35 MB with one). An
/// operator who sets `MIMALLOC_ARENA_EAGER_COMMIT` themselves gets no restart, so neither.
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
    again.args(args).env(EAGER_COMMIT, "0");
    // A value that is not UTF-8 is the operator's own business: left as it is.
    let tunables = match std::env::var_os(GLIBC_TUNABLES) {
        None => glibc_tunables(None),
        Some(theirs) => theirs
            .into_string()
            .ok()
            .and_then(|t| glibc_tunables(Some(t))),
    };
    if let Some(tunables) = tunables {
        again.env(GLIBC_TUNABLES, tunables);
    }
    // `exec` returns only when it failed.
    let _failed = again.exec();
}

const GLIBC_TUNABLES: &str = "GLIBC_TUNABLES";
const ARENA_MAX: &str = "glibc.malloc.arena_max";

/// The tunables to restart with: the operator's, with one malloc arena unless they chose
/// a number themselves (`None`: leave them as they are).
fn glibc_tunables(operator: Option<String>) -> Option<String> {
    match operator.filter(|theirs| !theirs.is_empty()) {
        None => Some(format!("{ARENA_MAX}=1")),
        Some(theirs) if theirs.contains(ARENA_MAX) => None,
        Some(theirs) => Some(format!("{theirs}:{ARENA_MAX}=1")),
    }
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

#[cfg(test)]
mod tests {
    use super::glibc_tunables;

    #[test]
    fn one_malloc_arena_unless_the_operator_chose() {
        assert_eq!(
            glibc_tunables(None).as_deref(),
            Some("glibc.malloc.arena_max=1")
        );
        assert_eq!(
            glibc_tunables(Some("glibc.malloc.trim_threshold=4096".into())).as_deref(),
            Some("glibc.malloc.trim_threshold=4096:glibc.malloc.arena_max=1")
        );
        assert_eq!(
            glibc_tunables(Some("glibc.malloc.arena_max=4".into())),
            None
        );
    }
}
