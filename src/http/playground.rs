//! GraphiQL, served to browsers on `GET /graphql`, wired to the same endpoint for
//! queries and (over WebSocket) subscriptions.
//!
//! Everything the page loads is served by this binary: GraphiQL and React, pinned and
//! embedded from `assets/graphiql/` (see its README), under `/graphql/assets/<file>`, each
//! with its Subresource Integrity hash. The page works offline and makes no request to any
//! other host; its Content-Security-Policy allows nothing else.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;

/// Where the page's files are served; the page refers to them by these absolute paths.
pub const ASSETS_PATH: &str = "/graphql/assets";

/// A file the page loads. Its name carries the package's version, so a release that
/// changes it changes the URL, and browsers may keep each URL forever.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    /// `sha384-<base64>` of `body`, for the page's `integrity` attributes (checked by a
    /// unit test; `assets/graphiql/update.sh` prints new ones).
    integrity: &'static str,
    body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

const REACT: Asset = Asset {
    name: "react-18.3.1.production.min.js",
    content_type: JS,
    integrity: "sha384-DGyLxAyjq0f9SPpVevD6IgztCFlnMF6oW/XQGmfe+IsZ8TqEiDrcHkMLKI6fiB/Z",
    body: include_bytes!("../../assets/graphiql/react-18.3.1.production.min.js"),
};

const REACT_DOM: Asset = Asset {
    name: "react-dom-18.3.1.production.min.js",
    content_type: JS,
    integrity: "sha384-gTGxhz21lVGYNMcdJOyq01Edg0jhn/c22nsx0kyqP0TxaV5WVdsSH1fSDUf5YJj1",
    body: include_bytes!("../../assets/graphiql/react-dom-18.3.1.production.min.js"),
};

const GRAPHIQL_JS: Asset = Asset {
    name: "graphiql-4.1.2.min.js",
    content_type: JS,
    integrity: "sha384-9XdHu7ajgGJziD4J1zNBKQ842Q/+zZfDv+ib1eMhZWBH6hPAs806x+Jbcf0yNO6B",
    body: include_bytes!("../../assets/graphiql/graphiql-4.1.2.min.js"),
};

const GRAPHIQL_CSS: Asset = Asset {
    name: "graphiql-4.1.2.min.css",
    content_type: CSS,
    integrity: "sha384-1el1QShFBnnXTx9x/Cprg82hZWKt0ry29OAYIXt05swbi0KcZDFoj0CWguMpopJr",
    body: include_bytes!("../../assets/graphiql/graphiql-4.1.2.min.css"),
};

static ASSETS: [&Asset; 4] = [&REACT, &REACT_DOM, &GRAPHIQL_JS, &GRAPHIQL_CSS];

/// The page's one inline script: it builds the fetcher from `window.location`, so the
/// subscription URL is `wss://` whenever the page is https, behind any proxy.
const INIT_JS: &str = include_str!("playground/init.js");
/// The CSP source that allows `INIT_JS` (checked by a unit test).
const INIT_JS_HASH: &str = "'sha256-uzR6fgP2gz9yKcKBTlQlR4Oongft16dQk+5epFQbee0='";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NOSNIFF: &str = "nosniff";

/// The page's static files.
pub fn routes() -> Router<AppState> {
    Router::new().route(&format!("{ASSETS_PATH}/{{file}}"), get(asset))
}

async fn asset(file: Result<Path<String>, PathRejection>) -> Response {
    let found = file
        .ok()
        .and_then(|Path(file)| ASSETS.iter().find(|a| a.name == file));
    match found {
        Some(asset) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(asset.content_type),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static(NOSNIFF),
                ),
            ],
            asset.body,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                ),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static(NOSNIFF),
                ),
            ],
            "no such asset\n",
        )
            .into_response(),
    }
}

fn script(asset: &Asset) -> String {
    format!(
        r#"<script src="{ASSETS_PATH}/{}" integrity="{}"></script>"#,
        asset.name, asset.integrity
    )
}

/// The page up to GraphiQL's element, and from there on: the same for every request.
static HEAD: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CRM GraphQL API · GraphiQL</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{ASSETS_PATH}/{css}" integrity="{css_integrity}">
<style>body {{ margin: 0; height: 100%; width: 100%; overflow: hidden; }} #graphiql {{ height: 100vh; }}</style>
</head>
<body>
"#,
        css = GRAPHIQL_CSS.name,
        css_integrity = GRAPHIQL_CSS.integrity,
    )
});

static TAIL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}\n{}\n{}\n<script>{INIT_JS}</script>\n</body>\n</html>\n",
        script(&REACT),
        script(&REACT_DOM),
        script(&GRAPHIQL_JS),
    )
});

/// GraphiQL's page, with a Content-Security-Policy that allows only this server.
pub fn page(headers: &HeaderMap) -> Response {
    let seen = Seen::from(headers);
    let csp = format!(
        "default-src 'none'; script-src 'self' {INIT_JS_HASH}; \
         style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; \
         connect-src 'self'{}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        seen.socket_sources()
    );
    let html = format!(
        "{}<div id=\"graphiql\">Loading GraphiQL…<noscript> GraphiQL needs JavaScript. {}</noscript></div>\n{}",
        HEAD.as_str(),
        seen.endpoints(),
        TAIL.as_str()
    );
    let mut res = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static(NOSNIFF),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                header::VARY,
                HeaderValue::from_static("Accept, X-Forwarded-Host, X-Forwarded-Proto"),
            ),
        ],
        html,
    )
        .into_response();
    // Built only of vetted characters; a value that still fails is dropped, never a panic.
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        res.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    res
}

/// Where the browser reached us, as far as the request tells: the host it asked for
/// (`X-Forwarded-Host`, else `Host`; `None` unless it holds only host characters, so it
/// can go into HTML and a CSP header as it is) and whether it used TLS
/// (`X-Forwarded-Proto`; `None` when unsaid). The page's script does not need this: it
/// takes both from `window.location`.
struct Seen<'a> {
    host: Option<&'a str>,
    secure: Option<bool>,
}

impl<'a> Seen<'a> {
    fn from(headers: &'a HeaderMap) -> Self {
        let first = |name: &HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let host = first(&HeaderName::from_static("x-forwarded-host"))
            .or_else(|| first(&header::HOST))
            .filter(|h| is_host(h));
        let secure = match first(&HeaderName::from_static("x-forwarded-proto")) {
            Some(p) if p.eq_ignore_ascii_case("https") => Some(true),
            Some(p) if p.eq_ignore_ascii_case("http") => Some(false),
            _ => None,
        };
        Self { host, secure }
    }

    /// The WebSocket origins the page may connect to besides `'self'` (which CSP Level 3
    /// extends to ws/wss, but not every browser does): `wss:` behind
    /// `X-Forwarded-Proto: https`, `ws:` behind `http`, and both when unsaid (a proxy may
    /// terminate TLS without saying so). Empty without a usable host.
    fn socket_sources(&self) -> String {
        match (self.host, self.secure) {
            (None, _) => String::new(),
            (Some(host), Some(true)) => format!(" wss://{host}"),
            (Some(host), Some(false)) => format!(" ws://{host}"),
            (Some(host), None) => format!(" ws://{host} wss://{host}"),
        }
    }

    /// The endpoints in words, for browsers without JavaScript and readers of the HTML.
    fn endpoints(&self) -> String {
        let Some(host) = self.host else {
            return "The API answers GraphQL over HTTP on this URL, and subscriptions \
                    (graphql-transport-ws) over a WebSocket on it."
                .to_owned();
        };
        let (http, ws) = if self.secure == Some(true) {
            ("https", "wss")
        } else {
            ("http", "ws")
        };
        format!(
            "The API answers GraphQL over HTTP at {http}://{host}/graphql, and subscriptions \
             (graphql-transport-ws) at {ws}://{host}/graphql."
        )
    }
}

/// A host name or address with an optional port: nothing that could end a CSP source.
fn is_host(h: &str) -> bool {
    h.len() <= 255
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'))
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use sha2::{Digest, Sha256, Sha384};

    use super::*;

    #[test]
    fn integrity_constants_match_the_embedded_files() {
        for asset in ASSETS {
            let actual = format!("sha384-{}", STANDARD.encode(Sha384::digest(asset.body)));
            assert_eq!(
                asset.integrity, actual,
                "{}: run assets/graphiql/update.sh and paste its hash",
                asset.name
            );
        }
    }

    #[test]
    fn the_inline_script_hash_matches_it() {
        let actual = format!("'sha256-{}'", STANDARD.encode(Sha256::digest(INIT_JS)));
        assert_eq!(INIT_JS_HASH, actual);
        assert!(TAIL.contains(&format!("<script>{INIT_JS}</script>")));
        assert!(!INIT_JS.to_ascii_lowercase().contains("</script"));
    }

    #[test]
    fn the_page_follows_the_forwarded_headers_and_refuses_junk() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        let direct = headers(&[("host", "api.example.com:8080")]);
        let seen = Seen::from(&direct);
        assert_eq!(
            seen.socket_sources(),
            " ws://api.example.com:8080 wss://api.example.com:8080"
        );
        assert!(
            seen.endpoints()
                .contains("ws://api.example.com:8080/graphql")
        );

        let proxied = headers(&[
            ("host", "10.0.0.5:8080"),
            ("x-forwarded-host", "crm.example.com, inner"),
            ("x-forwarded-proto", "HTTPS"),
        ]);
        let seen = Seen::from(&proxied);
        assert_eq!(seen.socket_sources(), " wss://crm.example.com");
        assert!(seen.endpoints().contains("wss://crm.example.com/graphql"));

        let plain = headers(&[("host", "h"), ("x-forwarded-proto", "http")]);
        assert_eq!(Seen::from(&plain).socket_sources(), " ws://h");

        for junk in [
            headers(&[("host", "evil; script-src *")]),
            headers(&[("host", "ok"), ("x-forwarded-host", "<script>x</script>")]),
            HeaderMap::new(),
        ] {
            let seen = Seen::from(&junk);
            assert_eq!(seen.socket_sources(), "");
            assert!(!seen.endpoints().contains('<'));
            let res = page(&junk);
            let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap_or_default();
            assert!(csp.contains("connect-src 'self';"), "{csp}");
        }
    }
}
