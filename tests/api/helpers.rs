//! `TestApp`: one server instance on its own database, and a client that talks to it the
//! way any GraphQL client would.

use std::net::SocketAddr;

use crm::app::Application;
use crm::auth::TokenIssuer;
use crm::config::{
    AuthConfig, DbConfig, EdgeConfig, IntrospectionMode, ServeConfig, WebhookConfig,
};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

pub const SECRET: &str = "test-secret-that-is-long-enough-for-hs256";
pub const ISSUER: &str = "crm-test";
pub const AUDIENCE: &str = "crm-test-api";
pub const ALL_SCOPES: &str = "customers:read customers:write activities:read activities:write pii:read webhooks:manage clients:manage";

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// A fresh tenant for this test.
    pub org: String,
    /// The server's database, for tests of what is stored rather than served.
    pub db_url: String,
    /// Dropping (or sending on) this shuts the server down gracefully.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: Option<tempfile::TempDir>,
    /// Declared last: dropped after the server is told to stop.
    _owned_db: Option<OwnedDatabase>,
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// `data` at a dotted path (`createCustomer.customer.id`).
    pub fn data(&self, path: &str) -> &Value {
        let mut v = &self.body["data"];
        for part in path.split('.') {
            v = match part.parse::<usize>() {
                Ok(i) => &v[i],
                Err(_) => &v[part],
            };
        }
        v
    }

    pub fn error_codes(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errs| {
                errs.iter()
                    .map(|e| {
                        e["extensions"]["code"]
                            .as_str()
                            .unwrap_or("<none>")
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {}",
            self.body
        );
        self
    }
}

/// A PostgreSQL database a test created, dropped with its `TestApp` (also when the test
/// fails), so `TEST_DATABASE_URL=… cargo test` leaves nothing behind.
struct OwnedDatabase {
    admin_url: String,
    name: String,
}

impl Drop for OwnedDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot block on a future: the drop gets
        // a thread and a runtime of its own. FORCE closes the stopped server's connections.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = connect_admin(&admin_url).await.ok()?;
                let done = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
                admin.close().await.ok();
                done.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// The test server's connection, fast to fail: an unreachable PostgreSQL is reported in
/// seconds, naming the URL, not after a pool's 30-second wait in every test.
async fn connect_admin(admin_url: &str) -> Result<sea_orm::DatabaseConnection, sea_orm::DbErr> {
    let mut options = sea_orm::ConnectOptions::new(admin_url.to_owned());
    options
        .connect_timeout(std::time::Duration::from_secs(2))
        .acquire_timeout(std::time::Duration::from_secs(2))
        .max_connections(1)
        .sqlx_logging(false);
    Database::connect(options).await
}

async fn database(dir: &tempfile::TempDir) -> (String, Option<OwnedDatabase>) {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            // Once one test found the server unreachable, the others fail at once.
            static UNREACHABLE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            if let Some(why) = UNREACHABLE.get() {
                panic!("{why}");
            }
            let name = format!("crm_t_{}", ulid::Ulid::new().to_string().to_lowercase());
            let admin = connect_admin(&admin_url).await.unwrap_or_else(|err| {
                let why = format!(
                    "PostgreSQL at TEST_DATABASE_URL={admin_url} is unreachable ({err}); \
                     start it, point TEST_DATABASE_URL at one that is running, or unset it \
                     to test on SQLite"
                );
                panic!("{}", UNREACHABLE.get_or_init(|| why));
            });
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap_or_else(|err| {
                    panic!("cannot create a test database at {admin_url}: {err}")
                });
            admin.close().await.ok();
            let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
            url.set_path(&name);
            let owned = OwnedDatabase { admin_url, name };
            (url.to_string(), Some(owned))
        }
        _ => (
            format!("sqlite://{}?mode=rwc", dir.path().join("crm.db").display()),
            None,
        ),
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut ServeConfig)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let (db_url, owned_db) = database(&dir).await;
        let mut config = ServeConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            db: DbConfig {
                url: db_url.clone(),
                max_connections: Some(5),
                statement_timeout_ms: 10_000,
            },
            auth: AuthConfig {
                jwt_secret: Some(SECRET.to_owned()),
                issuer: ISSUER.to_owned(),
                audience: AUDIENCE.to_owned(),
                leeway_secs: 0,
                public_key_files: Vec::new(),
                jwks_file: None,
                jwks_url: None,
                jwks_refresh_secs: 300,
                access_token_ttl_secs: 900,
            },
            max_body_bytes: 256 * 1024,
            max_query_depth: 12,
            max_query_complexity: 50_000,
            batch_window_ms: 2,
            ws_init_timeout_secs: 10,
            event_gap_timeout_secs: 10,
            event_retention_days: 30,
            edge: EdgeConfig {
                introspection: Some(IntrospectionMode::On),
                // Tests send requests far faster than any budget allows; the tests of rate
                // limits turn them on.
                rate_limit_cost_per_sec: 0,
                ..EdgeConfig::default()
            },
            webhooks: WebhookConfig {
                // The tests' receivers listen on loopback.
                allow_private: true,
                retry_schedule: "300ms,300ms,300ms".into(),
                timeout_secs: 2,
                ..WebhookConfig::default()
            },
        };
        adjust(&mut config);
        let db_url = config.db.url.clone();
        let app = Application::build(config).await.expect("server builds");
        let addr = app.local_addr().expect("bound address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        TestApp {
            addr,
            client: reqwest::Client::new(),
            org: format!("org_{}", ulid::Ulid::new()),
            db_url,
            stop: Some(stop),
            _dir: Some(dir),
            _owned_db: owned_db,
        }
    }

    /// Shuts the server down, as SIGTERM would.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A token for this test's org with the given scopes.
    pub fn token(&self, scopes: &str) -> String {
        self.token_for(&self.org, "user-1", scopes)
    }

    pub fn token_for(&self, org: &str, sub: &str, scopes: &str) -> String {
        TokenIssuer::hs256(SECRET.as_bytes(), ISSUER, AUDIENCE)
            .mint(sub, org, scopes, chrono::Duration::minutes(10))
            .expect("mint")
    }

    pub fn admin(&self) -> String {
        self.token(ALL_SCOPES)
    }

    /// POSTs a GraphQL request as `token` (or anonymously).
    pub async fn gql_as(&self, token: Option<&str>, query: &str, variables: Value) -> Reply {
        let mut req = self
            .client
            .post(self.url("/graphql"))
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .body(json!({ "query": query, "variables": variables }).to_string());
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        reply(req.send().await.expect("request sent")).await
    }

    /// POSTs a GraphQL request with every scope in this test's org.
    pub async fn gql(&self, query: &str, variables: Value) -> Reply {
        self.gql_as(Some(&self.admin()), query, variables).await
    }

    /// Creates a customer and returns its id.
    pub async fn customer(&self, input: Value) -> String {
        let r = self
            .gql(
                "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } userErrors { field message } } }",
                json!({ "input": input }),
            )
            .await;
        r.assert_ok();
        assert_eq!(
            r.data("createCustomer.userErrors"),
            &json!([]),
            "{}",
            r.body
        );
        r.data("createCustomer.customer.id")
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// Logs an activity and returns its id.
    pub async fn activity(&self, input: Value) -> String {
        let r = self
            .gql(
                "mutation($input: LogActivityInput!) { logActivity(input: $input) { activity { id } userErrors { field message } } }",
                json!({ "input": input }),
            )
            .await;
        r.assert_ok();
        assert_eq!(r.data("logActivity.userErrors"), &json!([]), "{}", r.body);
        r.data("logActivity.activity.id")
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// The server's count of SQL statements sent for API requests so far, from `/metrics`.
    pub async fn statements(&self) -> u64 {
        self.metric("crm_db_statements_total{pool=\"requests\"}")
            .await as u64
    }

    /// One sample of `/metrics`, by its name and labels as printed.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{sample} in /metrics"))
    }
}

pub async fn reply(res: reqwest::Response) -> Reply {
    let status = res.status();
    let text = res.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    assert_no_leak(&body);
    Reply { status, body }
}

/// No response may carry SQL, driver or panic text.
#[track_caller]
pub fn assert_no_leak(body: &Value) {
    let text = body.to_string().to_lowercase();
    for needle in [
        "select ",
        "insert into",
        "sqlx",
        "sqlite",
        "postgres",
        "panicked",
        "stack backtrace",
        "dberr",
    ] {
        assert!(
            !text.contains(needle),
            "response leaks internals ({needle}): {body}"
        );
    }
}
