//! GraphiQL, served to browsers on `GET /graphql`, wired to the same endpoint for
//! queries and (over WebSocket) subscriptions.

use async_graphql::http::GraphiQLSource;
use axum::http::{HeaderMap, header};
use axum::response::Html;

pub fn page(headers: &HeaderMap) -> Html<String> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'))
        })
        .unwrap_or("localhost");
    let ws = format!("ws://{host}/graphql");
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint(&ws)
            .title("CRM GraphQL API")
            .finish(),
    )
}
