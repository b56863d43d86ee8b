//! One typed configuration, from flags and `CRM_*` environment variables, validated at start.
//! `crm serve --help` is the reference; the README repeats it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// A listen address, or why not: host names are not resolved, so say so.
fn listen_address(value: &str) -> Result<SocketAddr, String> {
    value.parse().map_err(|_| {
        format!(
            "`{value}` is not an IP address and port (CRM_LISTEN / --listen): use e.g. \
             127.0.0.1:8080, 0.0.0.0:8080 or [::]:8080; host names such as `localhost` are \
             not resolved"
        )
    })
}

/// Settings of the server. Every flag has an environment variable.
#[derive(Args, Clone)]
pub struct ServeConfig {
    /// Address to listen on: an IP address and a port (`0.0.0.0:8080` for every interface).
    #[arg(long, env = "CRM_LISTEN", default_value = "127.0.0.1:8080", value_parser = listen_address)]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub db: DbConfig,

    #[command(flatten)]
    pub auth: AuthConfig,

    /// Largest accepted request body, in bytes (larger bodies get 413).
    #[arg(long, env = "CRM_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Deepest accepted query nesting.
    #[arg(long, env = "CRM_MAX_QUERY_DEPTH", default_value_t = 12)]
    pub max_query_depth: usize,

    /// Largest accepted query complexity (each field counts 1, connections count their page size).
    #[arg(long, env = "CRM_MAX_QUERY_COMPLEXITY", default_value_t = 50_000)]
    pub max_query_complexity: usize,

    /// How long a dataloader collects keys before it queries, in milliseconds. Longer windows
    /// batch more reliably under load at the cost of latency per nesting level.
    #[arg(long, env = "CRM_BATCH_WINDOW_MS", default_value_t = 2)]
    pub batch_window_ms: u64,

    /// Seconds a WebSocket client has to send `connection_init` before it is closed (4408).
    #[arg(long, env = "CRM_WS_INIT_TIMEOUT_SECS", default_value_t = 10)]
    pub ws_init_timeout_secs: u64,

    /// Seconds the event tailer waits for a missing event `seq` (a transaction still in
    /// flight) before treating it as rolled back.
    #[arg(long, env = "CRM_EVENT_GAP_TIMEOUT_SECS", default_value_t = 10)]
    pub event_gap_timeout_secs: u64,

    /// Days events are kept; a `changes` cursor older than that must resync.
    #[arg(long, env = "CRM_EVENT_RETENTION_DAYS", default_value_t = 30)]
    pub event_retention_days: u32,

    #[command(flatten)]
    pub edge: EdgeConfig,

    #[command(flatten)]
    pub webhooks: WebhookConfig,
}

/// How outbound webhooks are delivered.
#[derive(Args, Clone, Debug)]
pub struct WebhookConfig {
    /// Allow webhook endpoints on loopback, private and link-local addresses (tests,
    /// private deployments). Off: such URLs are refused at registration and at connect time.
    #[arg(
        long = "webhook-allow-private",
        env = "CRM_WEBHOOK_ALLOW_PRIVATE",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_private: bool,

    /// Waits before each retry of a failed delivery, comma-separated (`5s,5m,2h`); after
    /// the last the delivery fails. Each wait varies by ±20%.
    #[arg(long = "webhook-retry-schedule", env = "CRM_WEBHOOK_RETRY_SCHEDULE", default_value = crate::webhooks::DEFAULT_SCHEDULE)]
    pub retry_schedule: String,

    /// Deliveries in flight at once, per instance.
    #[arg(
        long = "webhook-concurrency",
        env = "CRM_WEBHOOK_CONCURRENCY",
        default_value_t = 32
    )]
    pub concurrency: usize,

    /// Seconds a receiver has to answer.
    #[arg(
        long = "webhook-timeout-secs",
        env = "CRM_WEBHOOK_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub timeout_secs: u64,

    /// Hours an endpoint may fail every attempt before it is disabled.
    #[arg(
        long = "webhook-disable-after-hours",
        env = "CRM_WEBHOOK_DISABLE_AFTER_HOURS",
        default_value_t = 120
    )]
    pub disable_after_hours: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            retry_schedule: crate::webhooks::DEFAULT_SCHEDULE.to_owned(),
            concurrency: 32,
            timeout_secs: 10,
            disable_after_hours: 120,
        }
    }
}

impl WebhookConfig {
    pub fn settings(&self) -> Result<crate::webhooks::Settings, ConfigError> {
        let schedule = crate::webhooks::parse_schedule(&self.retry_schedule)
            .map_err(ConfigError::WebhookSchedule)?;
        if !(1..=1_000).contains(&self.concurrency) {
            return Err(ConfigError::WebhookConcurrency);
        }
        if !(1..=300).contains(&self.timeout_secs) {
            return Err(ConfigError::WebhookTimeout);
        }
        Ok(crate::webhooks::Settings {
            allow_private: self.allow_private,
            schedule,
            concurrency: self.concurrency,
            timeout: std::time::Duration::from_secs(self.timeout_secs),
            disable_after: std::time::Duration::from_secs(
                self.disable_after_hours.saturating_mul(3600),
            ),
        })
    }
}

/// Who may introspect the schema.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntrospectionMode {
    /// Everyone, with or without a token.
    #[value(alias = "true")]
    On,
    /// Callers with a valid token.
    Authenticated,
    /// Nobody; error messages suggest no field names either.
    #[value(alias = "false")]
    Off,
}

/// Which documents the server runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TrustedDocuments {
    /// Any document; clients may also register documents by hash (automatic persisted
    /// queries).
    #[default]
    Off,
    /// Only documents added with `crm documents add`, sent by hash or in full.
    Only,
}

/// What the edge lets through: who may introspect, from which origins browsers may call,
/// which documents run, how many operations a batch holds, how much each caller may spend.
#[derive(Args, Clone, Debug)]
pub struct EdgeConfig {
    /// Who may introspect: `on`, `authenticated` or `off`. Default: `on` in dev mode,
    /// `authenticated` otherwise.
    #[arg(long, env = "CRM_INTROSPECTION", value_enum)]
    pub introspection: Option<IntrospectionMode>,

    /// Origins browsers may call the API from (CORS), comma-separated, e.g.
    /// `https://app.example.com,http://localhost:5173`; `*` for any origin (never with
    /// credentials: tokens travel in the Authorization header). None by default.
    #[arg(long = "cors-origin", env = "CRM_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// `off`: any document runs, and clients may register them by hash (automatic persisted
    /// queries); `only`: only documents added with `crm documents add` run.
    #[arg(long, env = "CRM_TRUSTED_DOCUMENTS", value_enum, default_value_t = TrustedDocuments::Off)]
    pub trusted_documents: TrustedDocuments,

    /// Most operations one POST may batch as a JSON array (0: no batching).
    #[arg(long, env = "CRM_MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,

    /// Cost (the `@cost` units of the schema) each caller regains per second; 0 turns rate
    /// limiting off.
    #[arg(long, env = "CRM_RATE_LIMIT_COST_PER_SEC", default_value_t = 20_000)]
    pub rate_limit_cost_per_sec: u32,

    /// Cost a caller may spend at once (the bucket's size); at least the largest query
    /// complexity, so that every admitted query can run.
    #[arg(long, env = "CRM_RATE_LIMIT_BURST", default_value_t = 100_000)]
    pub rate_limit_burst: u32,

    /// Redis URL (`redis://127.0.0.1:6379`): rate-limit budgets shared by every instance.
    /// Unset: each instance keeps its own.
    #[arg(long, env = "CRM_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Seconds a request may execute before it is abandoned (its statements are cancelled).
    #[arg(long, env = "CRM_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Seconds a client may take to send a request body.
    #[arg(long, env = "CRM_BODY_TIMEOUT_SECS", default_value_t = 10)]
    pub body_timeout_secs: u64,

    /// Seconds between writes of usage counts (per client and day) to the database.
    #[arg(long, env = "CRM_USAGE_FLUSH_SECS", default_value_t = 10)]
    pub usage_flush_secs: u64,

    /// Connections open at once (0: as many as the open-file limit allows, less 128).
    #[arg(long, env = "CRM_MAX_OPEN_CONNECTIONS", default_value_t = 0)]
    pub max_open_connections: usize,

    /// Connections open at once from one IP address (0: no bound). Behind a proxy every
    /// client has the proxy's address: raise it or turn it off there.
    #[arg(long, env = "CRM_MAX_CONNECTIONS_PER_IP", default_value_t = 1_000)]
    pub max_connections_per_ip: usize,

    /// Seconds a connection may go without the server writing to it (an idle keep-alive
    /// connection, a request sent half); more than the request timeout.
    #[arg(long, env = "CRM_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            introspection: None,
            cors_origins: Vec::new(),
            trusted_documents: TrustedDocuments::Off,
            max_batch: 10,
            rate_limit_cost_per_sec: 20_000,
            rate_limit_burst: 100_000,
            redis_url: None,
            request_timeout_secs: 30,
            body_timeout_secs: 10,
            usage_flush_secs: 10,
            max_open_connections: 0,
            max_connections_per_ip: 1_000,
            idle_timeout_secs: 60,
        }
    }
}

#[derive(Args, Clone, Debug)]
pub struct DbConfig {
    /// Database URL: `sqlite://crm.db?mode=rwc` (the default) or `postgres://user@host/db`.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "sqlite://crm.db?mode=rwc"
    )]
    pub url: String,

    /// Largest number of pooled database connections. Unset: 16 on PostgreSQL; on SQLite
    /// twice the CPU cores, at least 4 (see `pool_size`).
    #[arg(long, env = "CRM_DB_MAX_CONNECTIONS")]
    pub max_connections: Option<u32>,

    /// Milliseconds one SQL statement may run before PostgreSQL cancels it (0: no limit).
    /// SQLite statements are bounded by the request timeout alone.
    #[arg(long, env = "CRM_STATEMENT_TIMEOUT_MS", default_value_t = 10_000)]
    pub statement_timeout_ms: u64,
}

#[derive(Args, Clone)]
pub struct AuthConfig {
    /// HS256 secret for bearer tokens, at least 32 bytes. Unset: dev mode (a secret is
    /// generated and kept in a file beside the database).
    #[arg(long, env = "CRM_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Required `iss` claim of tokens, and the issuer of minted ones.
    #[arg(long, env = "CRM_JWT_ISSUER", default_value = "crm")]
    pub issuer: String,

    /// Required `aud` claim of tokens, and the audience of minted ones.
    #[arg(long, env = "CRM_JWT_AUDIENCE", default_value = "crm-api")]
    pub audience: String,

    /// Clock skew allowed when checking `exp` and `nbf`, in seconds (at most 300).
    #[arg(long, env = "CRM_JWT_LEEWAY_SECS", default_value_t = 30)]
    pub leeway_secs: u64,

    /// PEM public keys of an identity provider (RSA: RS256, EC P-256: ES256, Ed25519:
    /// EdDSA); the file name without extension is the key's `kid`. Repeatable; the variable
    /// takes a comma-separated list.
    #[arg(
        long = "jwt-public-key-file",
        env = "CRM_JWT_PUBLIC_KEY_FILES",
        value_delimiter = ','
    )]
    pub public_key_files: Vec<std::path::PathBuf>,

    /// A JSON Web Key Set file of an identity provider.
    #[arg(long, env = "CRM_JWKS_FILE")]
    pub jwks_file: Option<std::path::PathBuf>,

    /// A JSON Web Key Set URL of an identity provider, fetched at start and refreshed.
    #[arg(long, env = "CRM_JWKS_URL")]
    pub jwks_url: Option<String>,

    /// How often the JWKS URL is fetched again (picks up rotated keys), in seconds.
    #[arg(long, env = "CRM_JWKS_REFRESH_SECS", default_value_t = 300)]
    pub jwks_refresh_secs: u64,

    /// Lifetime of access tokens issued by `POST /oauth/token`, in seconds.
    #[arg(long, env = "CRM_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .field("public_key_files", &self.public_key_files)
            .field("jwks_file", &self.jwks_file)
            .field("jwks_url", &self.jwks_url)
            .finish_non_exhaustive()
    }
}

impl DbConfig {
    /// The request pool's size. A SQLite connection is a thread of this process with a page
    /// cache of its own: on 2 cores, 16 of them held 61 MB after the http bench where 4 held
    /// 37 MB, and served no more (SQLite writes one at a time; reads are CPU-bound here).
    pub fn pool_size(&self) -> u32 {
        match self.max_connections {
            Some(n) => n,
            None if self.is_sqlite() => {
                let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
                u32::try_from(cores.saturating_mul(2))
                    .unwrap_or(16)
                    .clamp(4, 16)
            }
            None => 16,
        }
    }

    pub fn is_sqlite(&self) -> bool {
        self.url.starts_with("sqlite:")
    }

    /// The file of a SQLite URL.
    pub fn sqlite_path(&self) -> &str {
        self.url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:")
            .split('?')
            .next()
            .unwrap_or_default()
    }

    /// Where dev-mode files (the generated secret) live: beside the SQLite file, or in the
    /// working directory for other databases.
    pub fn state_dir(&self) -> PathBuf {
        if self.is_sqlite() {
            let path = self.sqlite_path();
            if let Some(parent) = PathBuf::from(path).parent()
                && !parent.as_os_str().is_empty()
            {
                return parent.to_path_buf();
            }
        }
        PathBuf::from(".")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--jwt-secret / CRM_JWT_SECRET must be at least 32 bytes (got {0})")]
    ShortSecret(usize),
    #[error("--max-body-bytes / CRM_MAX_BODY_BYTES must be at least 1024")]
    TinyBody,
    #[error("--database-url / DATABASE_URL must start with sqlite: or postgres:")]
    UnknownDatabase,
    #[error("--max-connections / CRM_DB_MAX_CONNECTIONS must be at least 1")]
    NoConnections,
    #[error("--leeway-secs / CRM_JWT_LEEWAY_SECS must be at most 300")]
    LongLeeway,
    #[error("--access-token-ttl-secs / CRM_ACCESS_TOKEN_TTL_SECS must be between 60 and 86400")]
    TokenTtl,
    #[error("--jwks-refresh-secs / CRM_JWKS_REFRESH_SECS must be at least 1")]
    JwksRefresh,
    #[error(
        "--cors-origin / CRM_CORS_ORIGINS: `{0}` is not an origin (scheme://host[:port], no path) or `*`"
    )]
    CorsOrigin(String),
    #[error(
        "--rate-limit-burst / CRM_RATE_LIMIT_BURST ({burst}) must be at least the largest query complexity ({complexity}), or no such query could ever run"
    )]
    SmallBurst { burst: u32, complexity: usize },
    #[error(
        "--rate-limit-cost-per-sec / CRM_RATE_LIMIT_COST_PER_SEC must be at most {MAX_COST_PER_SEC} (0 turns rate limiting off)"
    )]
    RateTooHigh,
    #[error("--redis-url / CRM_REDIS_URL must start with redis:// or rediss://")]
    RedisUrl,
    #[error("{0} must be at least 1 second")]
    ZeroSeconds(&'static str),
    #[error("--webhook-retry-schedule / CRM_WEBHOOK_RETRY_SCHEDULE: {0}")]
    WebhookSchedule(String),
    #[error("--webhook-concurrency / CRM_WEBHOOK_CONCURRENCY must be between 1 and 1000")]
    WebhookConcurrency,
    #[error("--webhook-timeout-secs / CRM_WEBHOOK_TIMEOUT_SECS must be between 1 and 300")]
    WebhookTimeout,
    #[error(
        "--idle-timeout-secs / CRM_IDLE_TIMEOUT_SECS must be more than the request timeout, or answers to slow requests would be cut off"
    )]
    IdleBelowRequest,
}

impl ServeConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(secret) = &self.auth.jwt_secret
            && secret.len() < 32
        {
            return Err(ConfigError::ShortSecret(secret.len()));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::TinyBody);
        }
        if self.auth.leeway_secs > crate::auth::MAX_LEEWAY_SECS {
            return Err(ConfigError::LongLeeway);
        }
        if !(60..=86_400).contains(&self.auth.access_token_ttl_secs) {
            return Err(ConfigError::TokenTtl);
        }
        if self.auth.jwks_refresh_secs < 1 {
            return Err(ConfigError::JwksRefresh);
        }
        self.edge.validate(self.max_query_complexity)?;
        self.webhooks.settings()?;
        self.db.validate()
    }
}

impl DbConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == Some(0) {
            return Err(ConfigError::NoConnections);
        }
        if self.is_sqlite()
            || self.url.starts_with("postgres:")
            || self.url.starts_with("postgresql:")
        {
            Ok(())
        } else {
            Err(ConfigError::UnknownDatabase)
        }
    }
}

impl ServeConfig {
    /// The configuration from environment variables and defaults alone (for `crm` with no
    /// subcommand).
    pub fn from_env() -> Self {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            config: ServeConfig,
        }
        <Only as clap::Parser>::parse_from(["crm"]).config
    }
}

/// The fastest refill a bucket can have: one unit a nanosecond.
pub const MAX_COST_PER_SEC: u32 = 1_000_000_000;

impl EdgeConfig {
    pub fn validate(&self, max_complexity: usize) -> Result<(), ConfigError> {
        for origin in &self.cors_origins {
            if origin != "*" && !is_origin(origin) {
                return Err(ConfigError::CorsOrigin(origin.clone()));
            }
        }
        if self.rate_limit_cost_per_sec > 0 && (self.rate_limit_burst as usize) < max_complexity {
            return Err(ConfigError::SmallBurst {
                burst: self.rate_limit_burst,
                complexity: max_complexity,
            });
        }
        if let Some(url) = &self.redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(ConfigError::RedisUrl);
        }
        for (value, name) in [
            (
                self.request_timeout_secs,
                "--request-timeout-secs / CRM_REQUEST_TIMEOUT_SECS",
            ),
            (
                self.body_timeout_secs,
                "--body-timeout-secs / CRM_BODY_TIMEOUT_SECS",
            ),
            (
                self.usage_flush_secs,
                "--usage-flush-secs / CRM_USAGE_FLUSH_SECS",
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroSeconds(name));
            }
        }
        if self.idle_timeout_secs <= self.request_timeout_secs {
            return Err(ConfigError::IdleBelowRequest);
        }
        Ok(())
    }
}

/// Whether `value` is an origin as browsers send it: `scheme://host[:port]`, nothing after.
fn is_origin(value: &str) -> bool {
    url::Url::parse(value).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some()
            && url.origin().ascii_serialization() == value
    })
}
