//! `/graphql` over HTTP, to the GraphQL-over-HTTP spec: the stock integration answers
//! `application/graphql-response+json` to everyone, keeps `"data": null` on request errors,
//! takes any body as JSON and runs mutations over GET; this handler does none of that.

use std::net::SocketAddr;
use std::time::Instant;

use async_graphql::parser::types::OperationType;
use async_graphql::{Request as GqlRequest, Response as GqlResponse, Variables};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tracing::Instrument;

use super::auth::{Account, Caller};
use super::documents::{DocumentError, Named};
use super::error::{HttpError, error_body};
use super::idempotency::{self, Begun, Requested};
use super::negotiate::{ResponseFormat, is_json_body, response_format, wants_html};
use super::rate_limit::Decision;
use super::{AppState, playground, ws};
use crate::auth::Principal;
use crate::domain::Tenant;
use crate::domain::usage::Counts;
use crate::graphql::{Admitted, Loaders, RequestAuth, codes, is_request_error, operation_type};

/// The body of a POST (or one operation of a batch), or the parameters of a GET.
#[derive(Deserialize, Default)]
struct RawRequest {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<serde_json::Value>,
    /// `persistedQuery` (automatic persisted queries) is read; anything else is ignored.
    extensions: Option<serde_json::Value>,
    /// A persisted document's id (the GraphQL-over-HTTP persisted documents draft).
    #[serde(rename = "documentId")]
    document_id: Option<String>,
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
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
    let key = idempotency::key_of(&headers)?;
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        if key.is_some() {
            return Err(HttpError::bad_request(
                "an Idempotency-Key applies to one operation: send the mutation on its own",
            ));
        }
        return batch(state, peer, caller, format, &body).await;
    }
    let malformed =
        |_| HttpError::bad_request("the body must be a JSON object with a `query` string");
    let (raw, requested) = match key {
        None => (serde_json::from_slice(&body).map_err(malformed)?, None),
        // Read as JSON first: the key's fingerprint is of the JSON, not of its spelling.
        Some(key) => {
            let json: serde_json::Value = serde_json::from_slice(&body).map_err(malformed)?;
            let raw = RawRequest::deserialize(&json).map_err(malformed)?;
            (raw, Some(Requested::new(key, &json)))
        }
    };
    single(state, peer, caller, format, raw, false, requested).await
}

#[derive(Deserialize)]
struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
    document_id: Option<String>,
}

pub async fn get(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    caller: Result<Caller, HttpError>,
    RawQuery(raw_query): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, HttpError> {
    if let Ok(upgrade) = upgrade {
        return websocket(state, caller?, peer.ip(), upgrade).await;
    }
    let params = query_params(raw_query.as_deref().unwrap_or_default())
        .ok_or_else(|| HttpError::bad_request("the query string is malformed"))?;
    if params.query.is_none()
        && params.extensions.is_none()
        && params.document_id.is_none()
        && wants_html(&headers)
    {
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
        document_id: params.document_id,
    };
    single(state, peer, caller, format, raw, true, None).await
}

/// Upgrades to GraphQL over WebSocket. A token on the upgrade request is checked here (a bad
/// one is refused before the upgrade); one in `connection_init` is checked by the protocol.
async fn websocket(
    state: AppState,
    caller: Caller,
    peer: std::net::IpAddr,
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
                peer,
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
        document_id: None,
    };
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "query" => &mut params.query,
            "operationName" => &mut params.operation_name,
            "variables" => &mut params.variables,
            "extensions" => &mut params.extensions,
            "documentId" => &mut params.document_id,
            _ => continue,
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(value.into_owned());
    }
    Some(params)
}

/// One operation of a request, ready to be charged and run.
struct Prepared<'e> {
    admitted: Result<Admitted<'e>, Box<GqlResponse>>,
    /// A document to keep for the tenant under its checked hash once it has run well.
    register: Option<(Tenant, String, String)>,
    operation: String,
}

impl Prepared<'_> {
    /// What the operation is charged: what it runs, plus a write when it asks for its
    /// document to be kept (storing is work, and what a client may store must cost it).
    fn cost(&self) -> usize {
        let runs = self.admitted.as_ref().map_or(0, |admitted| admitted.cost);
        let keeps = if self.register.is_some() {
            usize::try_from(crate::graphql::WRITE).unwrap_or(0)
        } else {
            0
        };
        runs.saturating_add(keeps)
    }
}

/// The operations of a batch, read one at a time: reading stops past `max`, so a huge array
/// is refused without being built.
fn read_batch(body: &[u8], max: usize) -> Result<Vec<RawRequest>, HttpError> {
    use serde::de::{DeserializeSeed, SeqAccess, Visitor};

    struct Bounded<'a> {
        max: usize,
        exceeded: &'a std::cell::Cell<bool>,
    }

    impl<'de> Visitor<'de> for Bounded<'_> {
        type Value = Vec<RawRequest>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of operations")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut operations = Vec::new();
            while let Some(operation) = seq.next_element::<RawRequest>()? {
                if operations.len() == self.max {
                    self.exceeded.set(true);
                    return Err(serde::de::Error::custom("too many operations"));
                }
                operations.push(operation);
            }
            Ok(operations)
        }
    }

    impl<'de> DeserializeSeed<'de> for Bounded<'_> {
        type Value = Vec<RawRequest>;

        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }
    }

    let exceeded = std::cell::Cell::new(false);
    let mut reader = serde_json::Deserializer::from_slice(body);
    let read = Bounded {
        max,
        exceeded: &exceeded,
    }
    .deserialize(&mut reader)
    .and_then(|operations| reader.end().map(|()| operations));
    match read {
        Ok(operations) if operations.is_empty() => {
            Err(HttpError::bad_request("the batch is empty"))
        }
        Ok(operations) => Ok(operations),
        Err(_) if exceeded.get() => Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            codes::BATCH_TOO_LARGE,
            format!("the batch holds more than {max} operations, the most that may be batched"),
        )),
        Err(_) => Err(HttpError::bad_request(
            "a batch must be a JSON array of objects with a `query` string",
        )),
    }
}

/// The longest `operationName` taken: names are identifiers, and this one goes into logs.
const MAX_OPERATION_NAME: usize = 256;

/// Turns what a client sent into an operation past the limits, or the edge's refusal.
async fn prepare<'e>(
    state: &'e AppState,
    principal: Option<&Principal>,
    raw: RawRequest,
    via_get: bool,
) -> Result<Prepared<'e>, HttpError> {
    if raw
        .operation_name
        .as_ref()
        .is_some_and(|name| name.len() > MAX_OPERATION_NAME)
    {
        return Err(HttpError::bad_request(format!(
            "`operationName` is longer than {MAX_OPERATION_NAME} characters"
        )));
    }
    let tenant = principal.map(|who| state.store.tenant(who));
    let resolved = state
        .documents
        .resolve(
            Named {
                query: raw.query,
                extensions: raw.extensions.as_ref(),
                document_id: raw.document_id.as_deref(),
            },
            tenant.as_ref(),
        )
        .await?;
    let variables = match raw.variables {
        None | Some(serde_json::Value::Null) => Variables::default(),
        Some(v @ serde_json::Value::Object(_)) => Variables::from_json(v),
        Some(_) => return Err(HttpError::bad_request("`variables` must be a JSON object")),
    };
    // GraphQL-over-HTTP §6.1: GET must not be used for mutations (a link must not write).
    if via_get
        && let Some(ty) = operation_type(&resolved.query, raw.operation_name.as_deref())
        && ty != OperationType::Query
    {
        return Err(HttpError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::METHOD_NOT_ALLOWED,
            "only queries may be sent with GET; use POST",
        ));
    }
    let register = match (resolved.register, &tenant) {
        (Some(id), Some(tenant)) => Some((tenant.clone(), id, resolved.query.clone())),
        _ => None,
    };
    let operation = raw.operation_name.clone().unwrap_or_default();
    let mut request = GqlRequest::new(resolved.query).variables(variables);
    if let Some(name) = raw.operation_name {
        request = request.operation_name(name);
    }
    if let Some(tenant) = tenant {
        request = request
            .data(Loaders::new(&tenant, state.batch_window))
            .data(tenant);
    }
    request = request.data(RequestAuth(principal.cloned()));
    Ok(Prepared {
        admitted: state.executor.admit(request),
        register,
        operation,
    })
}

/// Runs a charged operation within the request deadline, keeps its document if asked, and
/// counts it.
async fn run(
    state: &AppState,
    account: &Account,
    prepared: Prepared<'_>,
    deadline: tokio::time::Instant,
) -> GqlResponse {
    // What it was charged: every operation is some work, one refused before it ran too.
    let cost = prepared.cost().max(1);
    let response = match prepared.admitted {
        Err(refused) => *refused,
        Ok(admitted) => {
            let started = Instant::now();
            let span = tracing::info_span!("graphql", operation = ?prepared.operation);
            let response =
                match tokio::time::timeout_at(deadline, admitted.run().instrument(span)).await {
                    Ok(response) => response,
                    // Dropping the execution cancels its statements and frees its connections.
                    Err(_) => timed_out(state.request_timeout),
                };
            let elapsed = started.elapsed();
            state.metrics.graphql_seconds.observe(elapsed.as_secs_f64());
            tracing::info!(
                operation = ?prepared.operation,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                errors = response.errors.len(),
                cost,
                "graphql executed"
            );
            response
        }
    };
    if let Some((tenant, id, body)) = prepared.register
        && !is_request_error(&response)
    {
        state.documents.register(&tenant, id, &body).await;
    }
    if let Some((org, caller)) = &account.usage {
        state.meter.record(
            org,
            caller,
            Counts {
                requests: 1,
                cost: i64::try_from(cost).unwrap_or(i64::MAX),
                errors: i64::from(!response.errors.is_empty()),
                rejections: 0,
            },
        );
    }
    response
}

fn timed_out(deadline: std::time::Duration) -> GqlResponse {
    let mut err = async_graphql::ServerError::new(
        format!(
            "the request ran longer than {} s and was stopped",
            deadline.as_secs()
        ),
        None,
    );
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", codes::TIMEOUT);
    GqlResponse::from_errors(vec![err])
}

/// Charges `cost` to the account; a refusal is the whole answer (429), counted as such.
async fn charge(
    state: &AppState,
    account: &Account,
    cost: usize,
    operations: usize,
) -> Result<Option<Decision>, HttpError> {
    let Some(limits) = &state.rate_limits else {
        return Ok(None);
    };
    let decision = limits.charge(&account.rate_key, cost).await;
    if decision.allowed {
        return Ok(Some(decision));
    }
    if let Some((org, caller)) = &account.usage {
        state.meter.record(
            org,
            caller,
            Counts {
                rejections: i64::try_from(operations).unwrap_or(i64::MAX),
                ..Counts::default()
            },
        );
    }
    let mut refused = HttpError::new(
        StatusCode::TOO_MANY_REQUESTS,
        codes::RATE_LIMITED,
        decision.refusal(cost),
    );
    let mut headers = HeaderMap::new();
    limits.headers(&decision, &mut headers);
    refused.headers = Some(Box::new(headers));
    Err(refused)
}

fn with_rate_headers(state: &AppState, decision: Option<Decision>, mut res: Response) -> Response {
    if let (Some(limits), Some(decision)) = (&state.rate_limits, decision) {
        limits.headers(&decision, res.headers_mut());
    }
    res
}

async fn single(
    state: AppState,
    peer: SocketAddr,
    caller: Result<Caller, HttpError>,
    format: ResponseFormat,
    raw: RawRequest,
    via_get: bool,
    requested: Option<Requested>,
) -> Result<Response, HttpError> {
    // A request without a document is malformed whoever sends it: 400 before 401.
    if raw.query.as_deref().is_none_or(|q| q.trim().is_empty())
        && raw
            .extensions
            .as_ref()
            .and_then(|e| e.get("persistedQuery"))
            .is_none()
        && raw.document_id.is_none()
    {
        return Err(DocumentError::NoQuery.into());
    }
    let verified = caller?.0;
    let account = Account::of(verified.as_ref(), peer.ip());
    let principal = verified.map(|v| v.principal);
    let mut prepared = prepare(&state, principal.as_ref(), raw, via_get).await?;
    // Charged first: a replay costs what the first run did, and a caller out of budget
    // makes no claim (a write) at all.
    let decision = charge(&state, &account, prepared.cost(), 1).await?;
    // A mutation with an `Idempotency-Key` runs once for its tenant, caller and scopes: a
    // token with other scopes (fewer, say without `pii:read`) is another owner, never
    // answered with what a stronger token was shown.
    let held = match (requested, &principal, &account.usage) {
        (Some(requested), Some(who), Some((_, caller)))
            if prepared
                .admitted
                .as_mut()
                .is_ok_and(|admitted| admitted.is_mutation()) =>
        {
            let scopes: Vec<&str> = who.scopes.iter().map(|s| s.as_str()).collect();
            let scopes = crate::domain::documents::id_of(&scopes.join(" "));
            let owner = crate::domain::idempotency::KeyOwner(format!("{caller} {}", &scopes[..16]));
            // The claim outlives any run of the request it holds for.
            let lease = state.request_timeout + std::time::Duration::from_secs(60);
            match idempotency::begin(state.store.tenant(who), owner, requested, lease).await? {
                Begun::Replay(body) => {
                    return Ok(with_rate_headers(
                        &state,
                        decision,
                        idempotency::replay(format, body),
                    ));
                }
                Begun::Run(held) => Some(held),
            }
        }
        _ => None,
    };
    let deadline = tokio::time::Instant::now() + state.request_timeout;
    let response = run(&state, &account, prepared, deadline).await;
    if let Some(held) = held {
        held.settle(&response, &body_bytes(&response)).await;
    }
    Ok(with_rate_headers(
        &state,
        decision,
        render(format, response),
    ))
}

/// A JSON array of operations (Apollo's `BatchHttpLink`): each prepared, the batch charged
/// its total cost at once, then each run; the answer is the array of their results, where
/// an operation refused at the edge has its error in its place.
async fn batch(
    state: AppState,
    peer: SocketAddr,
    caller: Result<Caller, HttpError>,
    format: ResponseFormat,
    body: &[u8],
) -> Result<Response, HttpError> {
    if state.max_batch == 0 {
        return Err(HttpError::bad_request(
            "batching is off on this server: send one operation per request",
        ));
    }
    // Who calls is settled before a large body is read any further.
    let verified = caller?.0;
    let raws = read_batch(body, state.max_batch)?;
    let account = Account::of(verified.as_ref(), peer.ip());
    let principal = verified.map(|v| v.principal);
    let mut prepared = Vec::with_capacity(raws.len());
    for raw in raws {
        prepared.push(prepare(&state, principal.as_ref(), raw, false).await);
    }
    let cost = prepared
        .iter()
        .map(|p| p.as_ref().map_or(0, |p| p.cost().max(1)))
        .sum::<usize>();
    // A bucket never holds more than its size: a batch costing more could never be paid,
    // and must not be paid in part.
    if let Some(limits) = &state.rate_limits
        && cost > limits.burst()
    {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            codes::BATCH_TOO_LARGE,
            format!(
                "the batch costs {cost}, more than a caller's whole budget of {}: send its operations in smaller batches",
                limits.burst()
            ),
        ));
    }
    let decision = charge(&state, &account, cost, prepared.len()).await?;
    // One deadline for the whole request, however many operations it holds.
    let deadline = tokio::time::Instant::now() + state.request_timeout;
    let mut out = Vec::with_capacity(prepared.len());
    for operation in prepared {
        match operation {
            Ok(operation) => {
                let response = run(&state, &account, operation, deadline).await;
                out.push(body_bytes(&response));
            }
            Err(refused) => out.push(error_body(&refused.message, refused.code).into_bytes()),
        }
    }
    let mut json = Vec::with_capacity(out.iter().map(Vec::len).sum::<usize>() + out.len() + 2);
    json.push(b'[');
    for (i, item) in out.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        json.extend_from_slice(item);
    }
    json.push(b']');
    let res = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        )],
        json,
    )
        .into_response();
    Ok(with_rate_headers(&state, decision, res))
}

/// A response body, written straight from the executed response: keys stay in the order
/// of the query (GraphQL spec §7.2.2), and no intermediate JSON tree is built.
fn body_bytes(response: &GqlResponse) -> Vec<u8> {
    crate::graphql::response_json(response, !is_request_error(response))
}

fn render(format: ResponseFormat, response: GqlResponse) -> Response {
    let request_error = is_request_error(&response);
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
        body_bytes(&response),
    )
        .into_response()
}
