//! The bearer token of a request: absent (anonymous), valid (a Principal), or refused with
//! 401 and `WWW-Authenticate` as RFC 6750 §3 asks. Tokens issued to API clients are also
//! checked against revocation, of the token or of its client.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use super::AppState;
use super::error::HttpError;
use crate::auth::{TokenError, TokenVerifier, Verified};
use crate::domain::{Store, clients};
use crate::graphql::codes;

/// The caller of a request, resolved once from its headers (for HTTP and for the WebSocket
/// upgrade alike): anonymous, or a verified token. Taken as `Result<Caller, HttpError>` so a
/// handler decides where in its checks a refused token answers.
pub struct Caller(pub Option<Verified>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = HttpError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        verified(&parts.headers, &state.verifier, &state.store)
            .await
            .map(Caller)
    }
}

/// The verified token of the `Authorization` header, if there is one. Two or more
/// `Authorization` headers are refused with 400 before any is read (RFC 6750 §3.1: a request
/// that repeats a credential is `invalid_request`): picking one would let a proxy that
/// checked another and this service disagree on who is calling.
pub async fn verified(
    headers: &HeaderMap,
    verifier: &TokenVerifier,
    store: &Store,
) -> Result<Option<Verified>, HttpError> {
    let Some(value) = authorization(headers).map_err(HttpError::bad_request)? else {
        return Ok(None);
    };
    bearer(value.to_str().unwrap_or_default(), verifier, store)
        .await
        .map(Some)
}

/// The request's one `Authorization` header, if it has one; more than one is refused (the
/// error is the message for the client), wherever credentials are read.
pub fn authorization(headers: &HeaderMap) -> Result<Option<&HeaderValue>, &'static str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err("the request has more than one Authorization header; send exactly one");
    }
    Ok(first)
}

/// Verifies an `Authorization` value (`Bearer <token>`): the token's signature and claims,
/// and for tokens issued to API clients, that neither the token nor the client is revoked.
pub async fn bearer(
    value: &str,
    verifier: &TokenVerifier,
    store: &Store,
) -> Result<Verified, HttpError> {
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
    let verified = verifier
        .verify(token)
        .map_err(|err| unauthorized(&err.to_string()))?;
    if let (Some(jti), Some(client_id)) = (&verified.jti, &verified.client_id) {
        let live = clients::token_is_live(store, jti, client_id)
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "revocation check failed");
                HttpError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    codes::INTERNAL,
                    "try again later",
                )
            })?;
        if !live {
            return Err(unauthorized(&TokenError::Revoked.to_string()));
        }
    }
    Ok(verified)
}

/// Who a request is charged to (rate limits) and counted for (usage): an API client by its
/// id, a user by tenant and subject, an anonymous caller by peer address.
pub struct Account {
    pub rate_key: String,
    /// The tenant and the caller's name in its usage figures; anonymous calls have none.
    pub usage: Option<(String, String)>,
}

impl Account {
    pub fn of(verified: Option<&Verified>, peer: std::net::IpAddr) -> Self {
        match verified {
            Some(v) => {
                let caller = match &v.client_id {
                    Some(client) => format!("client:{client}"),
                    None => format!("user:{}", v.principal.sub),
                };
                Self {
                    // The unit separator keeps ("a:b", "c") and ("a", "b:c") apart.
                    rate_key: format!("{}\u{1f}{caller}", v.principal.org),
                    usage: Some((v.principal.org.clone(), caller)),
                }
            }
            None => Self {
                rate_key: format!("ip:{peer}"),
                usage: None,
            },
        }
    }
}

fn unauthorized(message: &str) -> HttpError {
    HttpError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHENTICATED, message)
}
