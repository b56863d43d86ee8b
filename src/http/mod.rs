//! The HTTP surface: `/graphql` (POST, GET, GraphiQL), `/oauth/*`, `/webhooks/inbound/*`,
//! `/healthz`, `/readyz`, `/metrics`.
//! This layer chooses statuses and content types; it knows nothing of the database.

mod auth;
mod connections;
mod cors;
mod documents;
mod error;
mod graphql;
mod idempotency;
mod inbound;
mod negotiate;
mod oauth;
mod ops;
mod playground;
mod rate_limit;
mod revocations;
mod state;
mod throttle;
mod ws;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutBody};
use tower_http::trace::TraceLayer;

use crate::config::EdgeConfig;
use crate::metrics::StatusLabel;
pub use connections::{Bounded, Bounds as ConnectionBounds};
pub use documents::Documents;
pub use rate_limit::{Policy as RatePolicy, RateLimits};
pub use revocations::RevocationWatch;
pub use state::{AppState, Shared};
pub use throttle::Throttle;

pub fn router(state: AppState, edge: &EdgeConfig, max_body_bytes: usize) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID);
    let router = Router::new()
        .route(
            "/graphql",
            get(graphql::get)
                .post(graphql::post)
                .layer(middleware::from_fn(error::negotiate_type)),
        )
        .merge(playground::routes())
        .merge(inbound::routes())
        .route("/oauth/token", post(oauth::token))
        .route("/oauth/revoke", post(oauth::revoke))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics));
    // One `layer` call for the whole stack: axum boxes a route's service once per call, and
    // clones the boxed service for every request, which with a call per layer was nine
    // allocations and 5% of a point read's instructions. The first layer listed is the
    // outermost.
    let layers = ServiceBuilder::new()
        // Outermost: a preflight is answered before anything else looks at the request.
        .option_layer(cors::layer(&edge.cors_origins))
        .layer(middleware::from_fn(drop_unusable_request_id))
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(RequestBodyTimeoutLayer::new(Duration::from_secs(
            edge.body_timeout_secs,
        )))
        // The layers within take axum's body, as the handlers do.
        .map_request(|req: Request<TimeoutBody<Body>>| req.map(Body::new))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let path = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_else(|| req.uri().path().to_owned());
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    tracing::info_span!("request", method = %req.method(), path, request.id = id)
                })
                .on_response(|res: &Response, latency: Duration, _span: &tracing::Span| {
                    tracing::info!(
                        status = res.status().as_u16(),
                        duration_ms = latency.as_millis() as u64,
                        "answered"
                    );
                }),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panicked,
        ))
        .layer(DefaultBodyLimit::max(max_body_bytes));
    router.layer(layers).with_state(state)
}

const REQUEST_ID: &str = "x-request-id";

/// A client's `X-Request-Id` is kept (so its logs and ours join up) when it is a sane token;
/// one too long or with other characters is replaced by a generated id, since it goes into
/// every log line of the request.
async fn drop_unusable_request_id(mut req: Request, next: Next) -> Response {
    let usable = |value: &axum::http::HeaderValue| {
        let bytes = value.as_bytes();
        (1..=128).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    };
    let headers = req.headers_mut();
    let ids = headers.get_all(REQUEST_ID).iter().collect::<Vec<_>>();
    if !(ids.len() == 1 && usable(ids[0])) {
        headers.remove(REQUEST_ID);
    }
    next.run(req).await
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    state
        .metrics
        .http_requests
        .get_or_create(&StatusLabel {
            status: res.status().as_u16(),
        })
        .inc();
    res
}
