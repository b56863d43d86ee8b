//! What every handler shares: the schema, the store, the token verifier and the process's
//! live machinery.

use std::sync::Arc;
use std::time::Duration;

use super::documents::Documents;
use super::rate_limit::RateLimits;
use super::{RevocationWatch, Throttle};
use crate::auth::{TokenIssuer, TokenVerifier};
use crate::domain::Store;
use crate::domain::usage::Meter;
use crate::graphql::{Executor, LiveOperations};
use crate::metrics::Metrics;

/// Cloned by every extractor and middleware of every request: one reference count, not one
/// per field (a profile of `{ __typename }` found the field-by-field clone and drop at 8%).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl From<Shared> for AppState {
    fn from(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub executor: Executor,
    /// Subscriptions and other operations over WebSocket, shared where identical.
    pub live: LiveOperations,
    pub store: Store,
    pub verifier: Arc<TokenVerifier>,
    pub metrics: Metrics,
    /// The dataloaders' batching window.
    pub batch_window: Duration,
    /// Mints this service's own tokens (OAuth access tokens).
    pub issuer: TokenIssuer,
    pub access_token_ttl: Duration,
    pub throttle: Arc<Throttle>,
    /// How long a WebSocket client has to send `connection_init`.
    pub ws_init_timeout: Duration,
    pub max_body_bytes: usize,
    /// Flips to `true` when the server shuts down; WebSocket connections then close (1001).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Upgraded connections, which the HTTP server's graceful shutdown does not wait for.
    pub sockets: tokio_util::task::TaskTracker,
    /// Recent revocations, which close the WebSockets of revoked tokens.
    pub revocations: RevocationWatch,
    /// Persisted documents (APQ, trusted documents).
    pub documents: Documents,
    /// Cost budgets per caller; `None` when rate limiting is off.
    pub rate_limits: Option<Arc<RateLimits>>,
    /// Usage counts per caller and day.
    pub meter: Meter,
    /// Most operations one batch may hold (0: no batching).
    pub max_batch: usize,
    /// How long one operation may execute.
    pub request_timeout: Duration,
}
