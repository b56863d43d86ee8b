//! Opening the database: SQLite (WAL, foreign keys, a busy timeout) or PostgreSQL, with a
//! statement counter on every connection, and migrations applied.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

use crate::config::DbConfig;
use crate::metrics::{Metrics, PoolLabel};

/// A database that cannot be opened, named (without its password) with what to try.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the database {url}: {cause}\n  {hint}")]
pub struct OpenError {
    url: String,
    cause: String,
    hint: String,
}

impl OpenError {
    fn new(config: &DbConfig, err: &DbErr) -> Self {
        let cause = match err {
            DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e)) => e.to_string(),
            other => other.to_string(),
        };
        // The driver may quote the URL it was given.
        let cause = cause.replace(&config.url, &redacted(&config.url));
        let hint = if config.is_sqlite() {
            let path = config.sqlite_path();
            if cause.contains("not a database") {
                format!(
                    "{path} is not a SQLite database: move it away, or point DATABASE_URL (--database-url) at another file"
                )
            } else {
                format!(
                    "the directory of {path} must exist and be writable; set DATABASE_URL (--database-url) to change the file"
                )
            }
        } else if cause.contains("cannot be parsed") {
            "the URL is malformed: postgres://user:password@host:port/database; set DATABASE_URL (--database-url)".to_owned()
        } else {
            "is PostgreSQL running there, and do the role and the database exist? Set DATABASE_URL (--database-url) to change it".to_owned()
        };
        Self {
            url: redacted(&config.url),
            cause,
            hint,
        }
    }
}

/// The URL without its password, for messages.
/// Works on the text, so a URL that does not parse is masked too: the userinfo's password
/// and any `password=` parameter.
fn redacted(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@').map(|i| rest + i)
            && let Some(colon) = out[rest..at].find(':').map(|i| rest + i)
        {
            out.replace_range(colon + 1..at, "***");
        }
    }
    let mut masked = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find("password=") {
        let value = i + "password=".len();
        masked.push_str(&rest[..value]);
        masked.push_str("***");
        rest = &rest[value..];
        rest = &rest[rest.find('&').unwrap_or(rest.len())..];
    }
    masked.push_str(rest);
    masked
}

/// Opens a pool; with `metrics`, its statements are counted under the given pool name.
pub async fn connect(
    config: &DbConfig,
    metrics: Option<(&Metrics, &'static str)>,
) -> Result<DatabaseConnection, OpenError> {
    open(config, metrics)
        .await
        .map_err(|err| OpenError::new(config, &err))
}

async fn open(
    config: &DbConfig,
    metrics: Option<(&Metrics, &'static str)>,
) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(config.url.clone());
    options
        .max_connections(config.pool_size())
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        // A ping before every statement doubled the round trips of a point read; a
        // connection idle for a while is still checked before it is used.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false);
    if config.is_sqlite() {
        options.map_sqlx_sqlite_opts(|opts| {
            opts.create_if_missing(true)
                .foreign_keys(true)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                // Each pooled connection keeps a page cache of its own (2 MiB by default),
                // filled under load and kept while the connection lives; halving it took
                // 4 MB off the 65 MB held after the http bench (the pool's size did the
                // rest: `DbConfig::pool_size`). The operating system caches the file as
                // well, so a smaller cache costs a copy, not a read.
                .pragma("cache_size", "-1024")
                // A checkpoint rewinds the write-ahead log but keeps the file as large as
                // the biggest transaction made it (a bulk load: hundreds of MB) unless told
                // otherwise.
                .pragma("journal_size_limit", "67108864")
        });
    }
    if config.url.starts_with("postgres") {
        // One closure: SeaORM keeps only the last one given.
        let timeout =
            (config.statement_timeout_ms > 0).then(|| config.statement_timeout_ms.to_string());
        let choose_tls = !config.url.contains("sslmode=");
        options.map_sqlx_postgres_opts(move |mut opts| {
            // Every statement is prepared once per connection; PostgreSQL would still plan
            // one anew on each execution ("custom plans") whenever a bound value such as
            // `LIMIT $2` makes its generic plan look costlier, which every paged read does:
            // planning was 0.2 of the 0.3 ms a list cost the database (measured with
            // log_min_duration_statement; 259 -> 167 µs of PostgreSQL CPU per list read).
            opts = opts.options([("plan_cache_mode", "force_generic_plan")]);
            if let Some(timeout) = &timeout {
                opts = opts.options([("statement_timeout", timeout.as_str())]);
            }
            // TLS to a server on this host protects nothing and costs a third of the CPU of
            // a read (measured: 145 → 212 nested reads/s); `sslmode=` in the URL decides
            // otherwise, and TLS stays preferred for any other host.
            if choose_tls && matches!(opts.get_host(), "localhost" | "127.0.0.1" | "::1") {
                opts = opts.ssl_mode(sea_orm::sqlx::postgres::PgSslMode::Disable);
            }
            opts
        });
    }
    let mut db = Database::connect(options).await?;
    if let Some((metrics, pool)) = metrics {
        let counter = metrics
            .db_statements
            .get_or_create(&PoolLabel { pool })
            .clone();
        db.set_metric_callback(move |info| {
            counter.inc();
            // The SQL text only: bound values may be personal data.
            tracing::debug!(sql = %info.statement.sql, elapsed_us = info.elapsed.as_micros() as u64, failed = info.failed, "statement");
        });
    }
    // Fail at start, not at the first request, when the database is unreachable.
    db.execute_unprepared("SELECT 1").await?;
    Ok(db)
}

/// A SQLite file that opens but is damaged.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database {path} is damaged ({report}); restore it from a backup, or move it away to start afresh"
)]
pub struct Damaged {
    path: String,
    report: String,
}

/// On SQLite, refuses a damaged file before anything is served from it (`PRAGMA
/// quick_check`: every page and index entry, without the slower cross-checks). A file that
/// is damaged half-way opens, and would otherwise answer queries wrongly or fail one at a time.
pub async fn check_integrity(db: &DatabaseConnection, config: &DbConfig) -> anyhow::Result<()> {
    if !config.is_sqlite() {
        return Ok(());
    }
    let damaged = |report: String| Damaged {
        path: config.sqlite_path().to_owned(),
        report,
    };
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "PRAGMA quick_check(5)",
        ))
        .await
        .map_err(|err| damaged(err.to_string()))?;
    let findings: Vec<String> = rows
        .iter()
        .filter_map(|row| row.try_get_by_index::<String>(0).ok())
        .collect();
    if findings == ["ok"] {
        Ok(())
    } else {
        Err(damaged(findings.join("; ")).into())
    }
}

/// Whether the SQLite linked in keeps a prepared statement's plan when its parameters are
/// rebound (built with `SQLITE_ENABLE_QPSG`, as `.cargo/config.toml` asks). Without it every
/// paged read (`LIMIT ?`) is parsed and planned again on each execution.
pub async fn sqlite_keeps_plans(db: &DatabaseConnection) -> Result<bool, DbErr> {
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "PRAGMA compile_options",
        ))
        .await?;
    Ok(rows
        .iter()
        .filter_map(|row| row.try_get_by_index::<String>(0).ok())
        .any(|option| option == "ENABLE_QPSG"))
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[tokio::test]
    async fn the_bundled_sqlite_keeps_its_plans() -> Result<(), super::DbErr> {
        let config = crate::config::DbConfig {
            url: "sqlite::memory:".to_owned(),
            max_connections: Some(1),
            statement_timeout_ms: 0,
        };
        let db = super::open(&config, None).await?;
        assert!(
            super::sqlite_keeps_plans(&db).await?,
            "SQLite was built without SQLITE_ENABLE_QPSG (see .cargo/config.toml)"
        );
        Ok(())
    }

    #[test]
    fn passwords_are_masked_even_in_urls_that_do_not_parse() {
        for (url, shown) in [
            ("postgres://u:s3cret@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u@h/db?password=s3cret&x=1",
                "postgres://u@h/db?password=***&x=1",
            ),
            (
                "postgres://u:s3cret@127.0.0.1:99999/db",
                "postgres://u:***@127.0.0.1:99999/db",
            ),
            (
                "postgres://u:p:a@ss@h/db?sslmode=disable&password=o",
                "postgres://u:***@h/db?sslmode=disable&password=***",
            ),
            ("sqlite://crm.db?mode=rwc", "sqlite://crm.db?mode=rwc"),
        ] {
            assert_eq!(redacted(url), shown);
        }
    }
}
