//! A fresh database per backend: SQLite in a temp dir, or a PostgreSQL database created
//! through the admin URL and dropped again when the guard goes (also on a panic).

use sqlx::{AssertSqlSafe, Connection};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

pub struct BenchDatabase {
    pub backend: Backend,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    _postgres: Option<PgDatabase>,
}

impl BenchDatabase {
    pub async fn create(backend: Backend, admin_url: Option<&str>) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("crm.db").display());
                Self {
                    backend,
                    url,
                    _dir: Some(dir),
                    _postgres: None,
                }
            }
            Backend::Postgres => {
                let admin = admin_url.expect("a PostgreSQL admin URL (--pg or BENCH_DATABASE_URL)");
                let pg = PgDatabase::create(admin).await;
                Self {
                    backend,
                    url: pg.url.clone(),
                    _dir: None,
                    _postgres: Some(pg),
                }
            }
        }
    }

    /// Fresh statistics after the bulk load. PostgreSQL's autovacuum would gather them a
    /// minute or so later, in the middle of a scenario, and change its plans there.
    /// The server never runs ANALYZE on SQLite, so neither does the bench.
    pub async fn analyze(&self) {
        if self.backend == Backend::Postgres {
            let mut conn = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect to the bench database");
            // VACUUM as well: a freshly written table has no visibility map and no hint
            // bits, so its first readers write them, and autovacuum would do it in the
            // middle of some scenario; a database in service has been vacuumed.
            sqlx::raw_sql("VACUUM ANALYZE")
                .execute(&mut conn)
                .await
                .expect("VACUUM ANALYZE");
        }
    }
}

/// The names are `crm_bench_<pid>`: no quoting needed, nothing from outside in them.
fn drop_database(name: &str) -> AssertSqlSafe<String> {
    // FORCE ends sessions still open (a server child that was slow to go).
    AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
}

/// `crm_bench_<pid>` on the admin URL's server.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> Self {
        let name = format!("crm_bench_{}", std::process::id());
        let mut url = url::Url::parse(admin_url).expect("a postgres:// URL");
        url.set_path(&name);
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .expect("connect to PostgreSQL with the admin URL");
        // A database left by an earlier run of this pid that was killed (no Drop ran).
        sqlx::raw_sql(drop_database(&name))
            .execute(&mut admin)
            .await
            .expect("drop a stale bench database");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE");
        Self {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop may run inside the bench's runtime, which cannot block on a future: a thread
        // of its own with a runtime of its own does the async work.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                sqlx::raw_sql(drop_database(&name))
                    .execute(&mut admin)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop the bench database {}", self.name);
        }
    }
}
