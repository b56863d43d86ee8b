//! `/graphql` over HTTP, to the GraphQL-over-HTTP spec: the stock integration answers
//! `application/graphql-response+json` to everyone, keeps `"data": null` on request errors,
//! takes any body as JSON and runs mutations over GET; this handler does none of that.

use std::time::Instant;

use async_graphql::parser::types::OperationType;
use async_graphql::{Request as GqlRequest, Variables};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tracing::Instrument;

use super::auth::Caller;
use super::error::HttpError;
use super::negotiate::{ResponseFormat, is_json_body, response_format, wants_html};
use super::{AppState, playground, ws};
use crate::graphql::{Loaders, RequestAuth, codes, is_request_error, operation_type};

/// The body of a POST, or the parameters of a GET.
#[derive(Deserialize, Default)]
struct RawRequest {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<serde_json::Value>,
    #[allow(dead_code, reason = "accepted per the spec; no extension reads it yet")]
    extensions: Option<serde_json::Value>,
}

fn not_acceptable() -> HttpError {
    HttpError::new(
        StatusCode::NOT_ACCEPTABLE,
        codes::NOT_ACCEPTABLE,
        "this endpoint answers application/graphql-response+json or application/json",
    )
}

pub async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Result<Caller, HttpError>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HttpError> {
    let format = response_format(&headers).ok_or_else(not_acceptable)?;
    if !is_json_body(&headers) {
        return Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_MEDIA_TYPE,
            "the request body must be application/json",
        ));
    }
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::PAYLOAD_TOO_LARGE,
                "the request body is too large",
            )
        } else {
            HttpError::bad_request("the request body could not be read")
        }
    })?;
    let raw: RawRequest = serde_json::from_slice(&body).map_err(|_| {
        HttpError::bad_request("the body must be a JSON object with a `query` string")
    })?;
    execute(state, caller, format, raw, false).await
}

#[derive(Deserialize)]
struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Result<Caller, HttpError>,
    RawQuery(raw_query): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, HttpError> {
    if let Ok(upgrade) = upgrade {
        return websocket(state, caller?, upgrade).await;
    }
    let params = query_params(raw_query.as_deref().unwrap_or_default())
        .ok_or_else(|| HttpError::bad_request("the query string is malformed"))?;
    if params.query.is_none() && wants_html(&headers) {
        return Ok(playground::page(&headers).into_response());
    }
    let format = response_format(&headers).ok_or_else(not_acceptable)?;
    let parse_json =
        |raw: Option<String>, name: &str| -> Result<Option<serde_json::Value>, HttpError> {
            raw.map(|s| {
                serde_json::from_str(&s)
                    .map_err(|_| HttpError::bad_request(format!("`{name}` must be JSON")))
            })
            .transpose()
        };
    let raw = RawRequest {
        variables: parse_json(params.variables, "variables")?,
        extensions: parse_json(params.extensions, "extensions")?,
        query: params.query,
        operation_name: params.operation_name,
    };
    execute(state, caller, format, raw, true).await
}

/// Upgrades to GraphQL over WebSocket. A token on the upgrade request is checked here (a bad
/// one is refused before the upgrade); one in `connection_init` is checked by the protocol.
async fn websocket(
    state: AppState,
    caller: Caller,
    upgrade: WebSocketUpgrade,
) -> Result<Response, HttpError> {
    let header_auth = caller.0;
    let upgrade = upgrade.protocols(ws::PROTOCOLS);
    let protocol = upgrade
        .selected_protocol()
        .and_then(|p| p.to_str().ok())
        .and_then(ws::Protocol::from_name)
        .ok_or_else(|| {
            HttpError::bad_request("request the graphql-transport-ws (or graphql-ws) subprotocol")
        })?;
    let init_timeout = state.ws_init_timeout;
    let sockets = state.sockets.clone();
    // Small buffers: an idle subscriber should cost kilobytes, not tungstenite's default
    // 128 KiB each way. Events are written out as they come (no write batching).
    Ok(upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(state.max_body_bytes)
        .on_upgrade(move |socket| {
            sockets.track_future(ws::serve(
                socket,
                state,
                protocol,
                header_auth,
                init_timeout,
            ))
        }))
}

/// The GET parameters; a parameter given twice makes the request malformed.
fn query_params(query: &str) -> Option<GetParams> {
    let mut params = GetParams {
        query: None,
        operation_name: None,
        variables: None,
        extensions: None,
    };
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "query" => &mut params.query,
            "operationName" => &mut params.operation_name,
            "variables" => &mut params.variables,
            "extensions" => &mut params.extensions,
            _ => continue,
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(value.into_owned());
    }
    Some(params)
}

async fn execute(
    state: AppState,
    caller: Result<Caller, HttpError>,
    format: ResponseFormat,
    raw: RawRequest,
    via_get: bool,
) -> Result<Response, HttpError> {
    let query = raw
        .query
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| HttpError::bad_request("the request has no `query`"))?;
    let variables = match raw.variables {
        None | Some(serde_json::Value::Null) => Variables::default(),
        Some(v @ serde_json::Value::Object(_)) => Variables::from_json(v),
        Some(_) => return Err(HttpError::bad_request("`variables` must be a JSON object")),
    };
    let principal = caller?.principal();
    // GraphQL-over-HTTP §6.1: GET must not be used for mutations (a link must not write).
    if via_get
        && let Some(ty) = operation_type(&query, raw.operation_name.as_deref())
        && ty != OperationType::Query
    {
        return Err(HttpError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::METHOD_NOT_ALLOWED,
            "only queries may be sent with GET; use POST",
        ));
    }

    let operation = raw.operation_name.clone().unwrap_or_default();
    let mut request = GqlRequest::new(query).variables(variables);
    if let Some(name) = raw.operation_name {
        request = request.operation_name(name);
    }
    if let Some(who) = &principal {
        let tenant = state.store.tenant(who);
        request = request
            .data(Loaders::new(&tenant, state.batch_window))
            .data(tenant);
    }
    request = request.data(RequestAuth(principal));

    let started = Instant::now();
    let span = tracing::info_span!("graphql", operation = ?operation);
    let response = state.executor.execute(request).instrument(span).await;
    let elapsed = started.elapsed();
    state.metrics.graphql_seconds.observe(elapsed.as_secs_f64());
    tracing::info!(
        operation = ?operation,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        errors = response.errors.len(),
        "graphql executed"
    );
    Ok(render(format, response))
}

/// A response body, serialised straight from the executed response: keys stay in the order
/// of the query (GraphQL spec §7.2.2), and no intermediate JSON tree is built.
#[derive(serde::Serialize)]
struct Body<'a> {
    /// Absent for a request that failed before execution (GraphQL spec §7.1.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a async_graphql::Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [async_graphql::ServerError],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
}

fn render(format: ResponseFormat, response: async_graphql::Response) -> Response {
    let request_error = is_request_error(&response);
    let body = Body {
        data: (!request_error).then_some(&response.data),
        errors: &response.errors,
        extensions: &response.extensions,
    };
    let status = if request_error && format == ResponseFormat::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        )],
        serde_json::to_vec(&body).unwrap_or_default(),
    )
        .into_response()
}
