//! The one place errors get their `extensions.code`. Resolvers return domain errors (or
//! `ApiError`) through `?`; `finish`, run on every response, reads each error's `source`, sets the code,
//! logs internal causes once and makes sure no internal text reaches the client.

use std::sync::Arc;

use async_graphql::{Name, PathSegment, Response, ServerError, Value};

use super::limits::Rejection;
use crate::auth::Scope;
use crate::domain;

/// Every `extensions.code` a client can receive, in GraphQL responses and in the edge's own
/// answers alike (the README lists them).
pub mod codes {
    /// No token, or a token that is refused (HTTP 401 at the edge).
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// The token lacks a scope the field (or a filter it uses) needs.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// The target of a mutation does not exist in the caller's organization.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// An argument is wrong: a bad cursor, a filter too large, NUL in a string.
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    /// Ours, not the caller's: logged, never detailed (HTTP 500 or 503 at the edge).
    pub const INTERNAL: &str = "INTERNAL";
    /// The document does not parse.
    pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
    /// The document does not validate, or exceeds a limit (depth, size, cost).
    pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
    /// At the edge: a malformed request (HTTP 400).
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    /// At the edge: a mutation over GET (HTTP 405).
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    /// At the edge: no acceptable response type (HTTP 406).
    pub const NOT_ACCEPTABLE: &str = "NOT_ACCEPTABLE";
    /// At the edge: a body over the limit (HTTP 413).
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    /// At the edge: a body that is not JSON (HTTP 415).
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
    /// At the edge: a persisted query id this server does not know; send the full text with
    /// it (HTTP 200, as Apollo's clients expect).
    pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
    /// At the edge: in trusted-documents mode, a document that is not trusted (HTTP 400).
    pub const PERSISTED_QUERY_NOT_IN_LIST: &str = "PERSISTED_QUERY_NOT_IN_LIST";
    /// At the edge: a batch of more operations than allowed (HTTP 400).
    pub const BATCH_TOO_LARGE: &str = "BATCH_TOO_LARGE";
    /// The caller spent its budget; retry after `Retry-After` seconds (HTTP 429).
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// The request ran out of time: the request deadline or a statement timeout.
    pub const TIMEOUT: &str = "TIMEOUT";
    /// At the edge: an `Idempotency-Key` already used for another request (HTTP 422).
    pub const IDEMPOTENCY_KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
    /// At the edge: the request holding this `Idempotency-Key` has not answered yet; retry
    /// later (HTTP 409).
    pub const IDEMPOTENCY_KEY_IN_USE: &str = "IDEMPOTENCY_KEY_IN_USE";
}

/// Errors of the GraphQL layer itself (who may call what).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required: send a bearer token")]
    Unauthenticated,
    #[error("the token lacks the `{0}` scope")]
    Forbidden(Scope),
    /// An argument uses an input field (a filter on a guarded field) the token may not read.
    #[error("`{input}` needs the `{scope}` scope")]
    ForbiddenInput { input: String, scope: Scope },
}

/// A GraphQL `errors` list of one error with its code, for answers made outside execution
/// (the edge's refusals, a live operation refused before it runs).
pub fn error_list(message: &str, code: &str) -> serde_json::Value {
    serde_json::json!([{ "message": message, "extensions": { "code": code } }])
}

/// Codes every error and puts `null` where fields failed: every response passes here once.
pub fn finish(response: &mut Response) {
    for err in &mut response.errors {
        classify(err);
    }
    if !is_request_error(response) {
        let paths: Vec<Vec<PathSegment>> = response.errors.iter().map(|e| e.path.clone()).collect();
        for path in paths {
            null_at(&mut response.data, &path);
        }
    }
}

fn has_code(err: &ServerError) -> bool {
    err.extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some())
}

fn set_code(err: &mut ServerError, code: &str) {
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

fn domain_error(err: &ServerError) -> Option<&domain::Error> {
    err.source::<domain::Error>()
        .or_else(|| err.source::<Arc<domain::Error>>().map(|e| e.as_ref()))
}

fn classify(err: &mut ServerError) {
    if has_code(err) {
        return;
    }
    if let Some(api) = err.source::<ApiError>() {
        let code = match api {
            ApiError::Unauthenticated => codes::UNAUTHENTICATED,
            ApiError::Forbidden(_) | ApiError::ForbiddenInput { .. } => codes::FORBIDDEN,
        };
        set_code(err, code);
        return;
    }
    if let Some(rejection) = err.source::<Rejection>() {
        let code = if rejection.is_input() {
            codes::BAD_USER_INPUT
        } else {
            codes::VALIDATION_FAILED
        };
        set_code(err, code);
        return;
    }
    if let Some(domain) = domain_error(err) {
        let code = match domain {
            domain::Error::NotFound => codes::NOT_FOUND,
            domain::Error::Invalid(_) | domain::Error::BadArgument(_) => codes::BAD_USER_INPUT,
            domain::Error::Timeout => codes::TIMEOUT,
            domain::Error::Internal(cause) => {
                tracing::error!(error = %cause, error.debug = ?cause, path = ?err.path, "internal error");
                err.message = "internal error".to_owned();
                codes::INTERNAL
            }
        };
        set_code(err, code);
        return;
    }
    if err.source.is_some() {
        // An error from a library we did not classify: its text may be internal.
        tracing::error!(error = %err.message, path = ?err.path, "unclassified error");
        err.message = "internal error".to_owned();
        set_code(err, codes::INTERNAL);
        return;
    }
    // No source: async-graphql's own request errors (validation, limits) have no path;
    // with a path it is an argument that failed to coerce.
    if err.path.is_empty() {
        set_code(err, codes::VALIDATION_FAILED);
    } else {
        set_code(err, codes::BAD_USER_INPUT);
    }
}

/// Whether a response failed before execution (parse, validation, or an input refused
/// before anything ran), which the GraphQL-over-HTTP spec answers with 400 under
/// `application/graphql-response+json`.
pub fn is_request_error(response: &Response) -> bool {
    !response.errors.is_empty()
        && response.data == async_graphql::Value::Null
        && response.errors.iter().all(|e| {
            e.path.is_empty()
                && e.extensions
                    .as_ref()
                    .and_then(|x| x.get("code"))
                    .is_some_and(|c| {
                        [
                            codes::PARSE_FAILED,
                            codes::VALIDATION_FAILED,
                            codes::BAD_USER_INPUT,
                        ]
                        .iter()
                        .any(|code| *c == async_graphql::Value::from(*code))
                    })
        })
}

/// Puts `null` where a field failed. async-graphql drops a failed field from its parent
/// object (and turns an object whose every field failed into `null`); the GraphQL spec wants
/// the field present as `null` with the error beside it, which is what clients' generated
/// types expect. Every field that can fail is nullable in this schema, so `null` is valid.
fn null_at(data: &mut Value, path: &[PathSegment]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = data;
    for segment in parents {
        current = match (segment, current) {
            (PathSegment::Field(name), value) => {
                if *value == Value::Null {
                    *value = Value::Object(Default::default());
                }
                let Value::Object(map) = value else { return };
                map.entry(Name::new(name)).or_insert(Value::Null)
            }
            (PathSegment::Index(i), Value::List(items)) => match items.get_mut(*i) {
                Some(item) => item,
                None => return,
            },
            _ => return,
        };
    }
    if let PathSegment::Field(name) = last {
        if *current == Value::Null {
            *current = Value::Object(Default::default());
        }
        if let Value::Object(map) = current {
            map.entry(Name::new(name)).or_insert(Value::Null);
        }
    }
}
