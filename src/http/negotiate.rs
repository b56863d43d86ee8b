//! Content negotiation of the GraphQL-over-HTTP spec: `application/graphql-response+json`
//! for clients that accept it, `application/json` for clients that accept only that.

use axum::http::{HeaderMap, header};

pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
pub const JSON: &str = "application/json";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFormat {
    /// `application/graphql-response+json`: request errors get 400.
    GraphqlResponse,
    /// `application/json`: the legacy format, 200 for every well-formed request.
    Json,
}

impl ResponseFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ResponseFormat::GraphqlResponse => GRAPHQL_RESPONSE_JSON,
            ResponseFormat::Json => JSON,
        }
    }
}

/// The quality a media range list gives to `ty/subtype`: the most specific matching range
/// wins, as RFC 9110 §12.5.1 says.
fn quality(accept: &str, ty: &str, subtype: &str) -> f32 {
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let Some(media) = parts.next() else { continue };
        let Some((rt, rs)) = media.split_once('/') else {
            continue;
        };
        let specificity = match (rt, rs) {
            ("*", "*") => 1,
            (t, "*") if t.eq_ignore_ascii_case(ty) => 2,
            (t, s) if t.eq_ignore_ascii_case(ty) && s.eq_ignore_ascii_case(subtype) => 3,
            _ => continue,
        };
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map(|(_, q)| q).unwrap_or(0.0)
}

/// The response format, or `None` when the client accepts neither (406).
pub fn response_format(headers: &HeaderMap) -> Option<ResponseFormat> {
    let accept: String = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    if accept.trim().is_empty() {
        return Some(ResponseFormat::GraphqlResponse);
    }
    let gql = quality(&accept, "application", "graphql-response+json");
    let json = quality(&accept, "application", "json");
    if gql > 0.0 && gql >= json {
        Some(ResponseFormat::GraphqlResponse)
    } else if json > 0.0 {
        Some(ResponseFormat::Json)
    } else {
        None
    }
}

/// Whether a browser asks for a page (GraphiQL) rather than data.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            quality(a, "text", "html") > 0.0
                && quality(a, "text", "html") >= quality(a, "application", "json")
        })
}

/// Whether the body is declared JSON (`application/json`, any parameters).
pub fn is_json_body(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(JSON))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")),
        );
        h
    }

    #[test]
    fn picks_the_format_the_client_prefers() {
        assert_eq!(
            response_format(&with_accept("application/json")),
            Some(ResponseFormat::Json)
        );
        assert_eq!(
            response_format(&with_accept(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Some(ResponseFormat::GraphqlResponse)
        );
        assert_eq!(
            response_format(&with_accept("*/*")),
            Some(ResponseFormat::GraphqlResponse)
        );
        assert_eq!(
            response_format(&with_accept(
                "application/graphql-response+json;q=0.5, application/json"
            )),
            Some(ResponseFormat::Json)
        );
        assert_eq!(response_format(&with_accept("text/plain")), None);
        assert_eq!(response_format(&with_accept("application/json;q=0")), None);
    }
}
