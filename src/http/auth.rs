//! The bearer token of a request: absent (anonymous), valid (a Principal), or refused with
//! 401 and `WWW-Authenticate` as RFC 6750 §3 asks. Tokens issued to API clients are also
//! checked against revocation, of the token or of its client.

use axum::http::{HeaderMap, StatusCode, header};

use super::error::HttpError;
use crate::auth::{Principal, TokenError, TokenVerifier};
use crate::domain::{Store, clients};
use crate::graphql::codes;

pub async fn principal(
    headers: &HeaderMap,
    verifier: &TokenVerifier,
    store: &Store,
) -> Result<Option<Principal>, HttpError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(unauthorized(
            "the Authorization header must be `Bearer <token>`",
        ));
    };
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
    Ok(Some(verified.principal))
}

fn unauthorized(message: &str) -> HttpError {
    HttpError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHENTICATED, message)
}
