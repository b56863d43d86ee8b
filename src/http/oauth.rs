//! OAuth2 client credentials (RFC 6749 §4.4) at `POST /oauth/token`, and token revocation
//! (RFC 7009) at `POST /oauth/revoke`. Clients authenticate with HTTP Basic
//! (`client_secret_basic`) or form fields (`client_secret_post`), never both (§2.3).

use std::collections::BTreeSet;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::AppState;
use crate::auth::Scope;
use crate::domain::clients::{self, ApiClient};

/// An error response of RFC 6749 §5.2.
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    retry_after: Option<u64>,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            retry_after: None,
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )
    }
}

fn no_store(mut res: Response) -> Response {
    let headers = res.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut res = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"crm\""),
            );
        }
        if let Some(secs) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, value);
        }
        no_store(res)
    }
}

/// The form parameters; a parameter sent twice makes the request invalid (§3.2).
fn form(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<std::collections::HashMap<String, String>, OAuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let mut params = std::collections::HashMap::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        if params
            .insert(key.clone().into_owned(), value.into_owned())
            .is_some()
        {
            return Err(OAuthError::invalid_request(format!(
                "`{key}` is given more than once"
            )));
        }
    }
    Ok(params)
}

/// The client credentials of a request, from Basic auth or the form, never both.
fn credentials(
    headers: &HeaderMap,
    params: &std::collections::HashMap<String, String>,
) -> Result<(String, String), OAuthError> {
    let basic = super::auth::authorization(headers)
        .map_err(OAuthError::invalid_request)?
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    let in_form = params.contains_key("client_id") || params.contains_key("client_secret");
    match (basic, in_form) {
        (Some(_), true) => Err(OAuthError::invalid_request(
            "authenticate with HTTP Basic or with form fields, not both",
        )),
        (Some(encoded), false) => {
            let decoded = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(OAuthError::invalid_client)?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(OAuthError::invalid_client)?;
            // §2.3.1: both parts are form-urlencoded before Basic encoding.
            let unescape = |s: &str| {
                url::form_urlencoded::parse(format!("v={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            Ok((unescape(id), unescape(secret)))
        }
        (None, true) => match (params.get("client_id"), params.get("client_secret")) {
            (Some(id), Some(secret)) => Ok((id.clone(), secret.clone())),
            _ => Err(OAuthError::invalid_client()),
        },
        (None, false) => Err(OAuthError::invalid_client()),
    }
}

/// Authenticates the client, throttling repeated failures per client id (tightly) and per
/// peer address (loosely: clients behind one proxy share it).
async fn authenticate(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    params: &std::collections::HashMap<String, String>,
) -> Result<ApiClient, OAuthError> {
    let (client_id, secret) = credentials(headers, params)?;
    if let Some(wait) = state.throttle.blocked(&client_id, peer.ip()) {
        let mut err = OAuthError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            "too many failed attempts; try again later",
        );
        err.retry_after = Some(wait.as_secs().max(1));
        return Err(err);
    }
    let found = clients::authenticate(&state.store, &client_id, &secret)
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "client authentication failed to run");
            OAuthError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "try again later",
            )
        })?;
    match found {
        Some(client) => {
            state.throttle.succeeded(&client_id);
            Ok(client)
        }
        None => {
            // Debug-formatted: the id is the caller's own text, and must not forge log lines.
            tracing::warn!(client.id = ?client_id, "client authentication failed");
            state.throttle.failed(&client_id, peer.ip());
            Err(OAuthError::invalid_client())
        }
    }
}

pub async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match issue(&state, peer, &headers, &body).await {
        Ok(res) => res,
        Err(err) => err.into_response(),
    }
}

async fn issue(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let params = form(headers, body)?;
    match params.get("grant_type").map(String::as_str) {
        None => return Err(OAuthError::invalid_request("`grant_type` is required")),
        Some("client_credentials") => {}
        Some(_) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only client_credentials is supported",
            ));
        }
    }
    let client = authenticate(state, peer, headers, &params).await?;
    let granted: BTreeSet<Scope> = match params.get("scope") {
        None => client.scopes.clone(),
        Some(requested) => {
            let mut granted = BTreeSet::new();
            for name in requested.split_ascii_whitespace() {
                let scope = name
                    .parse::<Scope>()
                    .ok()
                    .filter(|s| client.scopes.contains(s))
                    .ok_or_else(|| {
                        OAuthError::new(
                            StatusCode::BAD_REQUEST,
                            "invalid_scope",
                            format!("`{name}` is not a scope this client may request"),
                        )
                    })?;
                granted.insert(scope);
            }
            granted
        }
    };
    let scope = granted
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let ttl = Duration::seconds(i64::try_from(state.access_token_ttl.as_secs()).unwrap_or(900));
    let jti = ulid::Ulid::new().to_string();
    let token = state
        .issuer
        .mint_access_token(&client.id, &client.org_id, &scope, ttl, &jti)
        .map_err(|err| {
            tracing::error!(error = %err, "minting an access token failed");
            OAuthError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "try again later",
            )
        })?;
    tracing::info!(client.id = %client.id, org.id = %client.org_id, "access token issued");
    let body = json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl.num_seconds(),
        "scope": scope,
    });
    Ok(no_store((StatusCode::OK, axum::Json(body)).into_response()))
}

pub async fn revoke(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match revoke_token(&state, peer, &headers, &body).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(err) => err.into_response(),
    }
}

async fn revoke_token(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), OAuthError> {
    let params = form(headers, body)?;
    let client = authenticate(state, peer, headers, &params).await?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("`token` is required"))?;
    // RFC 7009 §2.2: an invalid or expired token needs no revocation, and gets 200.
    let Ok(verified) = state.verifier.verify(token) else {
        return Ok(());
    };
    let (Some(jti), Some(owner)) = (verified.jti, verified.client_id) else {
        return Ok(());
    };
    if owner != client.id {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "the token was issued to another client",
        ));
    }
    let expires_at = DateTime::<Utc>::from_timestamp(verified.exp, 0).unwrap_or_else(Utc::now);
    clients::revoke_token(&state.store, &jti, &client.id, expires_at)
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "revoking a token failed");
            OAuthError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "try again later",
            )
        })?;
    tracing::info!(client.id = %client.id, "access token revoked");
    Ok(())
}
