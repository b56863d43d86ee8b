//! Prometheus metrics of one server instance, on a registry of its own (so several
//! instances in one process, as in the tests, keep separate counts).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: u16,
}

/// Which connection pool a statement went through: `requests` (API calls) or `background`
/// (the event tailer and other workers).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabel {
    pub pool: &'static str,
}

/// How a WebSocket message went out: `at_once` (the socket took it from the thread that
/// produced it) or `after_wait` (it waited for the connection's task and a writable socket).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SentLabel {
    pub sent: &'static str,
}

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub db_statements: Family<PoolLabel, Counter>,
    pub http_requests: Family<StatusLabel, Counter>,
    pub graphql_seconds: Histogram,
    pub live: LiveGauges,
    pub ws_messages: Family<SentLabel, Counter>,
}

/// Live operations (subscriptions, and operations sent over a socket) of this instance.
#[derive(Clone, Default)]
pub struct LiveGauges {
    /// Executions running; identical subscriptions share one.
    pub executions: Gauge,
    /// Client operations attached to them.
    pub operations: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("crm");
        let db_statements = Family::<PoolLabel, Counter>::default();
        registry.register(
            "db_statements",
            "SQL statements sent to the database, by pool",
            db_statements.clone(),
        );
        let http_requests = Family::<StatusLabel, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by status",
            http_requests.clone(),
        );
        let graphql_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "graphql_request_duration_seconds",
            "Time to execute a GraphQL request",
            graphql_seconds.clone(),
        );
        let live = LiveGauges::default();
        registry.register(
            "live_executions",
            "Live operations executing (identical subscriptions share one)",
            live.executions.clone(),
        );
        registry.register(
            "live_operations",
            "Client operations attached to live executions",
            live.operations.clone(),
        );
        let ws_messages = Family::<SentLabel, Counter>::default();
        registry.register(
            "ws_messages",
            "WebSocket messages sent, by whether the socket took them at once or they waited",
            ws_messages.clone(),
        );
        Self {
            registry: Arc::new(registry),
            ws_messages,
            live,
            db_statements,
            http_requests,
            graphql_seconds,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
