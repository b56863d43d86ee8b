//! The `crm` command line, run as a user runs it.

use std::process::Command;

fn crm(args: &[&str], envs: &[(&str, &str)]) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    crm_in(dir.path(), args, envs)
}

fn crm_in(dir: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crm"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("CRM_JWT_SECRET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("crm runs");
    // A command expected to stop (a refused `serve`, say) that keeps running fails the test
    // instead of hanging it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn token_refuses_unknown_scopes_and_short_secrets_naming_them() {
    let secret = ("CRM_JWT_SECRET", crate::helpers::SECRET);
    let (ok, out, _) = crm(&["token", "--scope", "customers:read"], &[secret]);
    assert!(ok);
    assert_eq!(out.trim().split('.').count(), 3, "a JWT on stdout: {out}");

    let (ok, out, err) = crm(&["token", "--scope", "customers:reed"], &[secret]);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.contains("customers:reed") && err.contains("customers:read"),
        "{err}"
    );

    let (ok, _, err) = crm(&["token"], &[("CRM_JWT_SECRET", "too-short")]);
    assert!(!ok);
    assert!(
        err.contains("CRM_JWT_SECRET") && err.contains("32"),
        "{err}"
    );
}

/// `crm token` signs with the secret of the server on the given database, or says where it
/// looked; it never makes a second secret the server would not know.
#[test]
fn token_finds_the_servers_secret_and_never_makes_one() {
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let (ok, out, err) = crm_in(elsewhere.path(), &["token"], &[]);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.contains("crm-dev-secret") && err.contains("CRM_JWT_SECRET"),
        "{err}"
    );
    assert!(!elsewhere.path().join("crm-dev-secret").exists());

    let server = tempfile::tempdir().expect("temp dir");
    std::fs::write(server.path().join("crm-dev-secret"), "ab".repeat(32)).expect("secret");
    let url = format!(
        "sqlite://{}?mode=rwc",
        server.path().join("crm.db").display()
    );
    let (ok, out, err) = crm_in(elsewhere.path(), &["token", "--database-url", &url], &[]);
    assert!(ok, "{err}");
    assert_eq!(out.trim().split('.').count(), 3, "a JWT on stdout: {out}");

    // A lifetime out of range, and a secret file too short to be one, are refused by name.
    let (ok, _, err) = crm(&["token", "--ttl", "9223372036854775807"], &[]);
    assert!(
        !ok && err.contains("--ttl") && !err.contains("panicked"),
        "{err}"
    );
    let short = tempfile::tempdir().expect("temp dir");
    std::fs::write(short.path().join("crm-dev-secret"), "short").expect("secret");
    let (ok, _, err) = crm_in(short.path(), &["token"], &[]);
    assert!(
        !ok && err.contains("crm-dev-secret") && err.contains("32"),
        "{err}"
    );

    // Its help lists its own flags, not the server's.
    let (ok, help, _) = crm(&["token", "--help"], &[]);
    assert!(ok && help.contains("--database-url") && help.contains("--scope"));
    for foreign in [
        "--jwks-url",
        "--leeway-secs",
        "--max-connections",
        "--listen",
    ] {
        assert!(!help.contains(foreign), "{foreign} in {help}");
    }
}

#[test]
fn logs_go_to_stderr_without_colour_when_not_on_a_terminal() {
    // `migrate` logs as it applies migrations; stdout keeps only the command's own output.
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("crm.db").display());
    let (ok, out, err) = crm(
        &["migrate", "--database-url", &url],
        &[("RUST_LOG", "info")],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "migrations applied");
    assert!(err.contains("Applying"), "{err}");
    assert!(!err.contains('\u{1b}'), "no colour codes: {err:?}");
}

/// What cannot start says what failed and which setting to change.
#[test]
fn start_up_failures_name_the_culprit_and_the_setting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no/such/dir/crm.db");
    let url = format!("sqlite://{}?mode=rwc", missing.display());
    let (ok, _, err) = crm(&["serve", "--database-url", &url], &[]);
    assert!(!ok);
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("DATABASE_URL"),
        "{err}"
    );

    let not_a_database = dir.path().join("notes.txt");
    std::fs::write(&not_a_database, "not a database, just text").expect("file");
    let url = format!("sqlite://{}", not_a_database.display());
    let (ok, _, err) = crm(&["serve", "--database-url", &url], &[]);
    assert!(!ok);
    assert!(err.contains("not a SQLite database"), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("address").to_string();
    let (ok, _, err) = crm(&["serve", "--listen", &addr], &[]);
    assert!(!ok);
    assert!(err.contains(&addr) && err.contains("CRM_LISTEN"), "{err}");

    // An unreachable PostgreSQL: named, without its password, with the setting.
    let (ok, _, err) = crm(
        &[
            "serve",
            "--database-url",
            "postgres://crm:hunter2@127.0.0.1:1/crm",
        ],
        &[],
    );
    assert!(!ok);
    assert!(
        err.contains("127.0.0.1:1") && err.contains("DATABASE_URL") && !err.contains("hunter2"),
        "{err}"
    );

    let (ok, _, err) = crm(&["serve", "--listen", "localhost:8080"], &[]);
    assert!(!ok);
    assert!(
        err.contains("localhost:8080") && err.contains("CRM_LISTEN") && err.contains("host names"),
        "{err}"
    );
}

/// A SQLite file damaged half-way opens, but the server refuses it before serving from it.
#[tokio::test]
async fn a_damaged_sqlite_file_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("crm.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let (ok, _, err) = crm(&["seed", "--database-url", &url, "--customers", "300"], &[]);
    assert!(ok, "{err}");
    // Move what the seed wrote from the write-ahead log into the file itself.
    {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(&url).await.expect("open");
        db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .expect("checkpoint");
        db.close().await.expect("close");
    }
    let mut bytes = std::fs::read(&file).expect("the database file");
    assert!(bytes.len() > 64 * 1024, "{} bytes", bytes.len());
    // Past the header page: the file still opens as SQLite.
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 8192] {
        *byte = 0xA5;
    }
    std::fs::write(&file, bytes).expect("write back");
    let (ok, _, err) = crm(
        &["serve", "--database-url", &url, "--listen", "127.0.0.1:0"],
        &[("CRM_JWT_SECRET", crate::helpers::SECRET)],
    );
    assert!(!ok, "a damaged file must not be served");
    assert!(
        err.contains("damaged") && err.contains(&file.display().to_string()),
        "{err}"
    );
}
