//! The bearer token of a request: absent (anonymous), valid (a Principal), or refused with
//! 401 and `WWW-Authenticate` as RFC 6750 §3 asks.

use axum::http::{HeaderMap, StatusCode, header};

use super::error::HttpError;
use crate::auth::{Principal, TokenVerifier};
use crate::graphql::codes;

pub fn principal(
    headers: &HeaderMap,
    verifier: &TokenVerifier,
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
    verifier
        .verify(token)
        .map(Some)
        .map_err(|err| unauthorized(&err.to_string()))
}

fn unauthorized(message: &str) -> HttpError {
    HttpError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHENTICATED, message)
}
