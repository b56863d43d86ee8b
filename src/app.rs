//! Assembling one server instance from its configuration: database, migrations, keys,
//! schema, router and listener. Tests build it on port 0 and read back the bound address.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::auth::{Scope, TokenIssuer, TokenVerifier, dev};
use crate::config::{AuthConfig, DbConfig, ServeConfig};
use crate::db;
use crate::domain::Store;
use crate::graphql::{Limits, build_schema};
use crate::http::{self, AppState};
use crate::metrics::Metrics;

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
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

pub const DEV_ORG: &str = "dev-org";
pub const DEV_SUBJECT: &str = "dev-user";

impl Application {
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let metrics = Metrics::new();
        let conn = db::connect(&config.db, Some(&metrics)).await?;
        db::migrate(&conn).await?;

        let (secret, dev_mode) = resolve_secret(&config.auth, &config.db)?;
        let verifier = TokenVerifier::hs256(
            &secret,
            &config.auth.issuer,
            &config.auth.audience,
            config.auth.leeway_secs,
        );
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

        let store = Store::new(conn);
        let schema = build_schema(
            store.clone(),
            Limits {
                max_depth: config.max_query_depth,
                max_complexity: config.max_query_complexity,
                introspection: config.introspection,
            },
        );
        let state = AppState {
            schema,
            store,
            verifier: Arc::new(verifier),
            metrics,
            batch_window: std::time::Duration::from_millis(config.batch_window_ms),
        };
        let router = http::router(state, config.max_body_bytes);
        let listener = TcpListener::bind(config.listen).await?;
        Ok(Self {
            listener,
            router,
            dev_token,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
