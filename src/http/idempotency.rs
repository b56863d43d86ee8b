//! The `Idempotency-Key` header on `POST /graphql` (after the IETF draft
//! `draft-ietf-httpapi-idempotency-key-header`): a mutation sent with a key runs once per
//! tenant and caller; a retry with the same key and the same body gets the first answer
//! back (with `Idempotent-Replayed: true`) and writes nothing; the same key with another
//! body is refused (422, `IDEMPOTENCY_KEY_REUSED`); a retry while the first is still running
//! is told to wait (409, `IDEMPOTENCY_KEY_IN_USE`). Keys are kept 24 hours.
//!
//! The body is compared as JSON (key order and spacing aside), so a client that serialises
//! the same request twice is recognised. Queries run as usual: they write nothing. An answer
//! is kept only when the operation did something: one refused before it ran, or whose every
//! mutation failed, is forgotten, and the key may be sent again. The rules live in
//! `domain::idempotency`; this is the edge's part.

use async_graphql::Response as GqlResponse;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::HttpError;
use super::negotiate::ResponseFormat;
use crate::domain::Tenant;
use crate::domain::idempotency::{self, Claim, IdempotencyKey, KeyOwner};
use crate::graphql::{codes, is_request_error};

pub const HEADER: &str = "idempotency-key";
/// Marks an answer given again from a key.
pub const REPLAYED: &str = "idempotent-replayed";

/// A request that asks to run once: its key and the fingerprint of its body.
pub struct Requested {
    key: IdempotencyKey,
    fingerprint: String,
}

/// The key a request carries, if any; a malformed or repeated one is refused (400).
pub fn key_of(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, HttpError> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(HttpError::bad_request(
            "the request has more than one Idempotency-Key header; send one",
        ));
    }
    IdempotencyKey::parse(value.as_bytes())
        .map(Some)
        .map_err(HttpError::bad_request)
}

impl Requested {
    /// The request's key, with the fingerprint of its body (JSON, already checked).
    pub fn new(key: IdempotencyKey, body: &serde_json::Value) -> Self {
        let mut canonical = Vec::new();
        write_canonical(body, &mut canonical);
        Self {
            key,
            fingerprint: hex::encode(Sha256::digest(&canonical)),
        }
    }
}

/// JSON with object keys in order and no spacing: equal values, equal bytes. The body's
/// nesting is bounded at the edge (128 levels), which bounds the recursion.
fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(&Value::String(key.clone()), out);
                out.push(b':');
                write_canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// A claimed key, to be settled once its request has run.
pub struct Held {
    tenant: Tenant,
    owner: KeyOwner,
    requested: Requested,
}

/// What a request with a key does next.
pub enum Begun {
    /// Run it, then settle the key.
    Run(Box<Held>),
    /// Answer the first response again.
    Replay(String),
}

/// Claims the key for this request, or answers why it may not run.
/// The largest answer kept for replays.
const MAX_KEPT_ANSWER: usize = 1024 * 1024;

pub async fn begin(
    tenant: Tenant,
    owner: KeyOwner,
    requested: Requested,
    lease: std::time::Duration,
) -> Result<Begun, HttpError> {
    let claim = idempotency::claim(
        &tenant,
        &owner,
        &requested.key,
        &requested.fingerprint,
        lease,
    )
    .await
    .map_err(|err| {
        tracing::error!(error = %err, error.debug = ?err, "claiming an idempotency key failed");
        HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::INTERNAL,
            "try again later",
        )
    })?;
    match claim {
        Claim::Run => Ok(Begun::Run(Box::new(Held {
            tenant,
            owner,
            requested,
        }))),
        Claim::Replay(body) => Ok(Begun::Replay(body)),
        Claim::InProgress => Err(HttpError::new(
            StatusCode::CONFLICT,
            codes::IDEMPOTENCY_KEY_IN_USE,
            "a request with this Idempotency-Key is still running; retry once it has answered",
        )),
        Claim::Reused => Err(HttpError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::IDEMPOTENCY_KEY_REUSED,
            "this Idempotency-Key was used for another request; send a new key with a new request",
        )),
    }
}

impl Held {
    /// Keeps the answer for retries, or forgets the key when the operation did nothing.
    pub async fn settle(self, response: &GqlResponse, body: &[u8]) {
        let (t, owner, key, fingerprint) = (
            &self.tenant,
            &self.owner,
            &self.requested.key,
            &self.requested.fingerprint,
        );
        // A large answer is not kept (it would be stored for a day and replayed for free);
        // the key is freed, and a retry runs again (an upsert by external id is idempotent
        // by itself).
        let kept = match std::str::from_utf8(body) {
            Ok(body) if did_something(response) && body.len() <= MAX_KEPT_ANSWER => {
                idempotency::finish(t, owner, key, fingerprint, body.to_owned()).await
            }
            _ => idempotency::release(t, owner, key, fingerprint).await,
        };
        if let Err(err) = kept {
            // The claim lapses with its lease; a retry then runs again.
            tracing::error!(error = %err, error.debug = ?err, "settling an idempotency key failed");
        }
    }
}

/// Whether an executed operation may have written: it ran, and it has no errors or some of
/// its root fields answered. A root field that failed wrote nothing (each write commits
/// last), so an operation whose every field failed can run again.
fn did_something(response: &GqlResponse) -> bool {
    if is_request_error(response) {
        return false;
    }
    if response.errors.is_empty() {
        return true;
    }
    match &response.data {
        async_graphql::Value::Object(fields) => fields
            .values()
            .any(|value| *value != async_graphql::Value::Null),
        _ => false,
    }
}

/// The first answer, given again.
pub fn replay(format: ResponseFormat, body: String) -> Response {
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (
                header::HeaderName::from_static(REPLAYED),
                HeaderValue::from_static("true"),
            ),
        ],
        body,
    )
        .into_response()
}
