//! Assembling one server instance from its configuration: database, migrations, keys,
//! schema, router and listener. Tests build it on port 0 and read back the bound address.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::auth::keys::{self, KeySet};
use crate::auth::{Scope, TokenIssuer, TokenVerifier, dev};
use crate::config::{AuthConfig, DbConfig, IntrospectionMode, ServeConfig};
use crate::db;
use crate::domain::Store;
use crate::domain::usage::Meter;
use crate::events::EventHub;
use crate::graphql::{Executor, Limits, LiveOperations, WebhookRules};
use crate::http::{
    self, AppState, Documents, RateLimits, RatePolicy, RevocationWatch, Shared, Throttle,
};
use crate::metrics::Metrics;

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    stopping: tokio::sync::watch::Sender<bool>,
    sockets: tokio_util::task::TaskTracker,
    /// Usage counted since the last flush is written at shutdown.
    meter: Meter,
    /// How many connections may be open, and how long one may be silent.
    bounds: http::ConnectionBounds,
    /// In dev mode (no secret configured): a token with every scope, to paste into GraphiQL.
    pub dev_token: Option<String>,
}

/// The signing secret: configured, or in dev mode generated and kept beside the database.
pub fn resolve_secret(auth: &AuthConfig, db: &DbConfig) -> anyhow::Result<(Vec<u8>, bool)> {
    match &auth.jwt_secret {
        Some(secret) => Ok((secret.as_bytes().to_vec(), false)),
        None => Ok((dev::load_or_create_secret(&db.state_dir())?, true)),
    }
}

/// The secret of the server that runs on `db`, for minting tokens outside it: never created
/// here, since a second secret would sign tokens that server refuses.
pub fn server_secret(jwt_secret: Option<&str>, db: &DbConfig) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = jwt_secret {
        return Ok(secret.as_bytes().to_vec());
    }
    let dir = db.state_dir();
    dev::load_secret(&dir)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no dev secret at {} (`crm serve` creates it beside its database on its first \
             start without CRM_JWT_SECRET): run `crm token` where the server runs, pass the \
             server's --database-url, or set CRM_JWT_SECRET to the server's secret",
            dev::secret_path(&dir).display()
        )
    })
}

pub const DEV_ORG: &str = "dev-org";
pub const DEV_SUBJECT: &str = "dev-user";

impl Application {
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let metrics = Metrics::new();
        let conn = db::connect(&config.db, Some((&metrics, "requests"))).await?;
        db::check_integrity(&conn, &config.db).await?;
        if config.db.is_sqlite() && !db::sqlite_keeps_plans(&conn).await.unwrap_or(true) {
            tracing::warn!(
                "this SQLite was built without SQLITE_ENABLE_QPSG: every paged read is planned anew on each execution (build with the repository's .cargo/config.toml)"
            );
        }
        db::migrate(&conn).await?;

        let (secret, dev_mode) = resolve_secret(&config.auth, &config.db)?;
        let keys = key_set(&config.auth, &secret).await?;
        let verifier = TokenVerifier::new(
            keys,
            &config.auth.issuer,
            &config.auth.audience,
            config.auth.leeway_secs,
        );
        let issuer = TokenIssuer::hs256(&secret, &config.auth.issuer, &config.auth.audience);
        let dev_mode = dev_mode
            && config.auth.public_key_files.is_empty()
            && config.auth.jwks_file.is_none()
            && config.auth.jwks_url.is_none();
        let dev_token = if dev_mode {
            let issuer = TokenIssuer::hs256(&secret, &config.auth.issuer, &config.auth.audience);
            Some(issuer.mint(
                DEV_SUBJECT,
                DEV_ORG,
                &Scope::all_joined(),
                chrono::Duration::days(30),
            )?)
        } else {
            None
        };

        // Background readers get a pool of their own: they never queue behind requests, and
        // their statements are counted apart (`pool="background"`).
        let background = DbConfig {
            max_connections: Some(2),
            ..config.db.clone()
        };
        let background = db::connect(&background, Some((&metrics, "background"))).await?;
        let events = EventHub::new(1024);
        events
            .start(
                background.clone(),
                std::time::Duration::from_secs(config.event_gap_timeout_secs),
            )
            .await?;
        let revocations = RevocationWatch::spawn(background.clone());
        spawn_housekeeping(
            background,
            chrono::Duration::days(i64::from(config.event_retention_days)),
        );
        let store = Store::with_events(conn, events);
        let (stopping, stopping_rx) = tokio::sync::watch::channel(false);
        let sockets = tokio_util::task::TaskTracker::new();
        // Webhook delivery has a pool of its own: it never queues behind requests, and its
        // statements are counted apart (`pool="webhooks"`).
        let webhook_pool = DbConfig {
            max_connections: Some(4),
            ..config.db.clone()
        };
        let webhook_pool = db::connect(&webhook_pool, Some((&metrics, "webhooks"))).await?;
        crate::webhooks::spawn(store.on_pool(webhook_pool), config.webhooks.settings()?)?;
        let meter = Meter::new(store.clone());
        meter.spawn_flusher(std::time::Duration::from_secs(config.edge.usage_flush_secs));
        let rate_limits = match (
            NonZeroU32::new(config.edge.rate_limit_cost_per_sec),
            NonZeroU32::new(config.edge.rate_limit_burst),
        ) {
            (Some(per_sec), Some(burst)) => {
                let limits = Arc::new(
                    RateLimits::new(
                        RatePolicy { per_sec, burst },
                        config.edge.redis_url.as_deref(),
                    )
                    .await?,
                );
                limits.spawn_sweeper();
                Some(limits)
            }
            _ => None,
        };
        let executor = Executor::new(
            store.clone(),
            meter.clone(),
            WebhookRules {
                allow_private: config.webhooks.allow_private,
            },
            Limits {
                max_depth: config.max_query_depth,
                max_complexity: config.max_query_complexity,
                // Dev mode is one developer's machine: its GraphiQL works before a token is pasted.
                introspection: config.edge.introspection.unwrap_or(if dev_mode {
                    IntrospectionMode::On
                } else {
                    IntrospectionMode::Authenticated
                }),
            },
        );
        let batch_window = std::time::Duration::from_millis(config.batch_window_ms);
        let state = AppState::from(Shared {
            live: LiveOperations::new(
                executor.clone(),
                store.clone(),
                batch_window,
                metrics.live.clone(),
            ),
            executor,
            store: store.clone(),
            verifier: Arc::new(verifier),
            metrics,
            batch_window,
            issuer,
            access_token_ttl: std::time::Duration::from_secs(config.auth.access_token_ttl_secs),
            // Five failed client authentications a minute per client id or peer, then a pause.
            throttle: Arc::new(Throttle::new(5, std::time::Duration::from_secs(60))),
            ws_init_timeout: std::time::Duration::from_secs(config.ws_init_timeout_secs),
            max_body_bytes: config.max_body_bytes,
            shutdown: stopping_rx,
            sockets: sockets.clone(),
            revocations,
            documents: Documents::new(store.clone(), config.edge.trusted_documents),
            rate_limits,
            meter: meter.clone(),
            max_batch: config.edge.max_batch,
            request_timeout: std::time::Duration::from_secs(config.edge.request_timeout_secs),
        });
        let router = http::router(state, &config.edge, config.max_body_bytes);
        let listener = TcpListener::bind(config.listen).await.map_err(|err| {
            anyhow::anyhow!(
                "cannot listen on {}: {err}\n  is another process using it? Choose a free address with CRM_LISTEN (--listen)",
                config.listen
            )
        })?;
        Ok(Self {
            listener,
            router,
            stopping,
            sockets,
            meter,
            bounds: http::ConnectionBounds {
                total: match config.edge.max_open_connections {
                    0 => http::ConnectionBounds::total_from_open_file_limit(),
                    n => n,
                },
                per_peer: config.edge.max_connections_per_ip,
                idle: std::time::Duration::from_secs(config.edge.idle_timeout_secs),
            },
            dev_token,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish and closes
    /// WebSocket connections (1001) once what they had queued is sent.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let stopping = self.stopping;
        let signal = async move {
            shutdown.await;
            let _ = stopping.send(true);
        };
        // Without TCP_NODELAY a small reply (every WebSocket frame) waits for the client's
        // delayed ACK, ~40 ms on Linux.
        let listener = http::Bounded::new(self.listener, self.bounds).tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "TCP_NODELAY not set");
            }
        });
        let served = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(signal)
        .await;
        self.sockets.close();
        if tokio::time::timeout(std::time::Duration::from_secs(10), self.sockets.wait())
            .await
            .is_err()
        {
            tracing::warn!("some WebSocket connections did not close in time");
        }
        if let Err(err) = self.meter.flush().await {
            tracing::warn!(error = %err, "usage counted since the last flush was not written");
        }
        served
    }
}

/// The keys tokens are verified with: the service's own HS256 secret, PEM public keys, and
/// JWKS keys (a URL is refreshed in the background, so rotated keys are picked up).
async fn key_set(auth: &AuthConfig, secret: &[u8]) -> anyhow::Result<KeySet> {
    let mut static_keys = vec![KeySet::hs256(secret)];
    for path in &auth.public_key_files {
        static_keys.push(keys::from_pem_file(path)?);
    }
    let set = KeySet::new(static_keys);
    let mut jwks = Vec::new();
    if let Some(path) = &auth.jwks_file {
        jwks.extend(keys::from_jwks_file(path)?);
    }
    set.set_jwks(jwks.clone());
    if let Some(url) = auth.jwks_url.clone() {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        match keys::fetch_jwks(&client, &url).await {
            Ok(fetched) => set.set_jwks(jwks.iter().cloned().chain(fetched).collect()),
            Err(err) => {
                tracing::warn!(error = %err, "JWKS not loaded yet; retrying in the background")
            }
        }
        let refresh = std::time::Duration::from_secs(auth.jwks_refresh_secs);
        let shared = set.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(refresh).await;
                match keys::fetch_jwks(&client, &url).await {
                    Ok(fetched) => shared.set_jwks(jwks.iter().cloned().chain(fetched).collect()),
                    // Keep the keys we have: an outage of the provider must not lock everyone out.
                    Err(err) => tracing::warn!(error = %err, "JWKS refresh failed"),
                }
            }
        });
    }
    Ok(set)
}

/// Hourly housekeeping: prunes the event log past its retention, forgets persisted
/// documents clients registered long ago, revocations of tokens that have expired and
/// expired idempotency keys. Several instances may all do it: the deletes are idempotent.
fn spawn_housekeeping(db: sea_orm::DatabaseConnection, keep: chrono::Duration) {
    tokio::spawn(async move {
        loop {
            match crate::events::prune(&db, keep).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "pruned events past retention"),
                Err(err) => tracing::warn!(error = %err, "pruning events failed"),
            }
            match crate::domain::webhooks::deliveries::prune(&db, keep).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    deliveries = n,
                    "forgot settled webhook deliveries past retention"
                ),
                Err(err) => tracing::warn!(error = %err, "pruning webhook deliveries failed"),
            }
            match crate::domain::social::inbound::prune(&db, keep).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    messages = n,
                    "forgot inbound social messages past retention"
                ),
                Err(err) => tracing::warn!(error = %err, "pruning inbound social messages failed"),
            }
            match crate::domain::documents::prune_registered(&db).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(documents = n, "forgot persisted documents past retention"),
                Err(err) => tracing::warn!(error = %err, "pruning persisted documents failed"),
            }
            match crate::domain::clients::prune_revoked_tokens(&db).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(tokens = n, "forgot revocations of expired tokens"),
                Err(err) => tracing::warn!(error = %err, "pruning revoked tokens failed"),
            }
            match crate::domain::idempotency::prune(&db).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(keys = n, "forgot expired idempotency keys"),
                Err(err) => tracing::warn!(error = %err, "pruning idempotency keys failed"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    });
}
