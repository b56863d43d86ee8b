//! `/webhooks/inbound/{network}/{connectionId}`: where social networks deliver. GET answers
//! a network's handshake (Meta's verify token, X's CRC); POST verifies the signature over the
//! raw body before anything is read, then writes what it carries. A bad or missing signature
//! is 401 and stores nothing; a verified delivery is acknowledged with 200 whatever its
//! items turned out to be (a network retries anything else, for days).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::AppState;
use crate::domain::social::Network;
use crate::domain::social::inbound::{self, InboundConnection};
use crate::domain::social::networks::{Incoming, MAX_ITEMS, Refusal, generic, meta, x};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/webhooks/inbound/{network}/{connection}",
        get(handshake).post(deliver),
    )
}

fn refused(status: StatusCode, message: impl Into<String>) -> Response {
    let mut res = (status, axum::Json(json!({ "error": message.into() }))).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn not_found() -> Response {
    refused(StatusCode::NOT_FOUND, "no such connection")
}

fn unauthorized(why: &Refusal) -> Response {
    refused(StatusCode::UNAUTHORIZED, why.to_string())
}

/// The connection a URL names, or the answer to give instead.
async fn connection(
    state: &AppState,
    network: &str,
    id: &str,
) -> Result<InboundConnection, Response> {
    let Some(network) = Network::from_segment(network) else {
        return Err(not_found());
    };
    match inbound::connection(&state.store, network, id).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(not_found()),
        Err(err) => Err(internal(&err)),
    }
}

fn internal(err: &crate::domain::Error) -> Response {
    tracing::error!(error = %err, "an inbound webhook could not be handled");
    refused(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the delivery could not be stored; send it again",
    )
}

async fn handshake(
    State(state): State<AppState>,
    Path((network, id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let connection = match connection(&state, &network, &id).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let param = |name: &str| params.get(name).map(String::as_str);
    match connection.network {
        Network::Meta => match meta::handshake(
            connection.verify_token.as_deref(),
            param("hub.mode"),
            param("hub.verify_token"),
            param("hub.challenge"),
        ) {
            // Plain text, never sniffed: the challenge is the caller's own text.
            Ok(challenge) => (
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                challenge,
            )
                .into_response(),
            Err(why) => refused(StatusCode::FORBIDDEN, why.to_string()),
        },
        Network::X => match x::crc_response(&connection.secret, param("crc_token")) {
            Ok(answer) => axum::Json(answer).into_response(),
            Err(why) => refused(StatusCode::BAD_REQUEST, why.to_string()),
        },
        Network::Generic => refused(
            StatusCode::METHOD_NOT_ALLOWED,
            "a generic connection takes POSTed Standard Webhooks only",
        ),
    }
}

/// One header's value, when sent once and readable.
fn single(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok().map(str::to_owned)
}

async fn deliver(
    State(state): State<AppState>,
    Path((network, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return refused(rejection.status(), rejection.body_text()),
    };
    let connection = match connection(&state, &network, &id).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let secret = connection.secret.as_str();
    let account = connection.account_id.as_str();
    let items = match connection.network {
        Network::Meta => meta::verify(
            secret,
            single(&headers, "x-hub-signature-256").as_deref(),
            &body,
        )
        .map(|()| meta::read(account, &body)),
        Network::X => x::verify(
            secret,
            single(&headers, "x-twitter-webhooks-signature").as_deref(),
            &body,
        )
        .map(|()| x::read(account, &body)),
        Network::Generic => {
            let webhook_id = single(&headers, "webhook-id");
            generic::verify(
                secret,
                webhook_id.as_deref(),
                single(&headers, "webhook-timestamp").as_deref(),
                single(&headers, "webhook-signature").as_deref(),
                &body,
                chrono::Utc::now(),
            )
            .map(|()| generic::read(webhook_id.as_deref().unwrap_or_default(), &body))
        }
    };
    let items: Vec<Incoming> = match items {
        Ok(items) => items,
        Err(why) => return unauthorized(&why),
    };
    if items.len() > MAX_ITEMS {
        return refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a delivery may hold at most {MAX_ITEMS} items"),
        );
    }
    match inbound::receive(&state.store, &connection, items).await {
        Ok(receipt) => axum::Json(receipt).into_response(),
        // Deleted while the delivery was written.
        Err(crate::domain::Error::NotFound) => not_found(),
        Err(err) => internal(&err),
    }
}
