//! Failures answered before GraphQL runs (bad body, media type, method, token): each with
//! its status, and a GraphQL-shaped body so clients can read every failure the same way.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::negotiate::JSON;
use crate::graphql::codes;

#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra fields of the answer (rate-limit state, `Retry-After`); boxed, as most errors
    /// have none.
    pub headers: Option<Box<axum::http::HeaderMap>>,
}

impl HttpError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }
}

/// Marks an answer as the edge's own error, so `/graphql` can give it the media type its
/// client asked for.
#[derive(Clone, Copy)]
pub struct EdgeError;

/// On `/graphql`, an edge error (401, 400, 429…) is typed `application/graphql-response+json`
/// for a client that prefers it, like the GraphQL answers beside it.
pub async fn negotiate_type(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let format = super::negotiate::response_format(req.headers());
    let mut res = next.run(req).await;
    if res.extensions().get::<EdgeError>().is_some()
        && let Some(format) = format
    {
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
    }
    res
}

/// A GraphQL-shaped error body.
pub fn error_body(message: &str, code: &str) -> String {
    serde_json::json!({ "errors": crate::graphql::error_list(message, code) }).to_string()
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(JSON))],
            error_body(&self.message, self.code),
        )
            .into_response();
        res.extensions_mut().insert(EdgeError);
        let headers = res.headers_mut();
        if let Some(extra) = self.headers {
            headers.extend(*extra);
        }
        match self.status {
            // RFC 6750 §3: a refused bearer token is answered with a challenge.
            StatusCode::UNAUTHORIZED => {
                let challenge = format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    self.message.replace(['"', '\\'], "'")
                );
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            _ => {}
        }
        res
    }
}

/// The answer to a request whose handler panicked: a bug of ours, logged, never shown (the
/// panic's text could hold anything), and the process goes on serving everyone else.
pub fn panicked(cause: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = cause
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| cause.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = ?detail, "a request handler panicked");
    HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        codes::INTERNAL,
        "internal error",
    )
    .into_response()
}
