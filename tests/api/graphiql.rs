//! GraphiQL as a browser gets it: a page that loads only this server's own pinned files,
//! each checked by its Subresource Integrity hash, under a Content-Security-Policy that
//! allows nothing else.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use sha2::{Digest, Sha256, Sha384};

use crate::helpers::TestApp;

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// A start tag's name and attributes (names lowercased, values as written).
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every start tag of `html`; enough of HTML for a page we wrote.
fn tags(html: &str) -> Vec<Tag> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        if !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue;
        }
        let end = rest.find('>').expect("a tag ends");
        let inner = rest[..end].trim_end_matches('/');
        rest = &rest[end + 1..];
        let name_end = inner
            .find(|c: char| c.is_whitespace())
            .unwrap_or(inner.len());
        let name = inner[..name_end].to_ascii_lowercase();
        let mut attrs = Vec::new();
        let mut a = inner[name_end..].trim_start();
        while !a.is_empty() {
            let key_end = a
                .find(|c: char| c == '=' || c.is_whitespace())
                .unwrap_or(a.len());
            let key = a[..key_end].to_ascii_lowercase();
            a = a[key_end..].trim_start();
            let value = match a.strip_prefix('=') {
                Some(v) => {
                    let v = v.trim_start();
                    let (value, after) = match v.chars().next() {
                        Some(q @ ('"' | '\'')) => {
                            let close = v[1..].find(q).expect("a closing quote") + 1;
                            (&v[1..close], &v[close + 1..])
                        }
                        _ => {
                            let end = v.find(char::is_whitespace).unwrap_or(v.len());
                            (&v[..end], &v[end..])
                        }
                    };
                    a = after.trim_start();
                    value.to_owned()
                }
                None => String::new(),
            };
            attrs.push((key, value));
        }
        found.push(Tag { name, attrs });
    }
    found
}

/// The text of the page's inline scripts.
fn inline_scripts(html: &str) -> Vec<&str> {
    html.split("<script>")
        .skip(1)
        .filter_map(|s| s.split_once("</script>").map(|(body, _)| body))
        .collect()
}

async fn graphiql(app: &TestApp, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app
        .client
        .get(app.url("/graphql"))
        .header("accept", BROWSER_ACCEPT);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.expect("sent");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html"),
        "{:?}",
        res.headers()
    );
    res
}

fn csp(res: &reqwest::Response) -> String {
    res.headers()
        .get("content-security-policy")
        .expect("a Content-Security-Policy")
        .to_str()
        .expect("ASCII")
        .to_owned()
}

/// One directive's sources, e.g. `connect-src` → `["'self'", "ws://…"]`.
fn directive(csp: &str, name: &str) -> Vec<String> {
    csp.split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {csp}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_page_loads_only_its_own_pinned_assets_each_with_its_integrity() {
    let app = TestApp::spawn().await;
    let res = graphiql(&app, &[]).await;
    let policy = csp(&res);
    let html = res.text().await.expect("html");
    assert!(!html.contains("unpkg"), "a CDN in the page:\n{html}");

    let tags = tags(&html);
    let mut assets = Vec::new();
    for tag in &tags {
        for key in ["src", "href", "action", "poster", "srcset", "data"] {
            let Some(url) = tag.attr(key) else { continue };
            let own = url.starts_with("/graphql/assets/") && !url.contains("..");
            assert!(
                own || (tag.name == "link" && url.starts_with("data:")),
                "<{} {key}=\"{url}\"> is not one of this server's assets",
                tag.name
            );
            if own {
                assets.push((tag, url));
            }
        }
    }
    let scripts: Vec<_> = assets.iter().filter(|(t, _)| t.name == "script").collect();
    let styles: Vec<_> = assets.iter().filter(|(t, _)| t.name == "link").collect();
    assert_eq!(scripts.len(), 3, "React, ReactDOM, GraphiQL:\n{html}");
    assert_eq!(styles.len(), 1, "GraphiQL's stylesheet:\n{html}");
    for (want, (_, url)) in [
        "/react-18.3.1.production.min.js",
        "/react-dom-18.3.1.production.min.js",
        "/graphiql-4.1.2.min.js",
    ]
    .iter()
    .zip(&scripts)
    {
        assert!(
            url.ends_with(want),
            "{url}: expected …{want}, in this order"
        );
    }

    for (tag, url) in &assets {
        let integrity = tag
            .attr("integrity")
            .unwrap_or_else(|| panic!("{url} has no integrity attribute"));
        let res = app.client.get(app.url(url)).send().await.expect("sent");
        assert_eq!(res.status(), StatusCode::OK, "{url}");
        let headers = res.headers().clone();
        let content_type = headers["content-type"].to_str().expect("ASCII");
        let expected = if url.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        assert!(content_type.starts_with(expected), "{url}: {content_type}");
        assert_eq!(
            headers["cache-control"], "public, max-age=31536000, immutable",
            "{url}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{url}");
        let body = res.bytes().await.expect("body");
        assert!(body.len() > 1000, "{url}: {} bytes", body.len());
        let actual = format!("sha384-{}", STANDARD.encode(Sha384::digest(&body)));
        assert_eq!(integrity, actual, "{url}: the integrity attribute");
    }

    // The policy allows this server alone, and the inline bootstrap by its hash.
    assert_eq!(directive(&policy, "default-src"), ["'none'"], "{policy}");
    let script_src = directive(&policy, "script-src");
    let inline = inline_scripts(&html);
    assert_eq!(inline.len(), 1, "one inline script:\n{html}");
    let hash = format!("'sha256-{}'", STANDARD.encode(Sha256::digest(inline[0])));
    assert_eq!(script_src, ["'self'".to_owned(), hash], "{policy}");
    assert!(
        !policy.contains("unsafe-eval") && !policy.contains('*'),
        "{policy}"
    );
    for name in ["style-src", "font-src", "img-src", "connect-src"] {
        for source in directive(&policy, name) {
            assert!(
                matches!(source.as_str(), "'self'" | "'unsafe-inline'" | "data:")
                    || source == format!("ws://{}", app.addr)
                    || source == format!("wss://{}", app.addr),
                "{name} allows {source}: {policy}"
            );
        }
    }
    assert!(
        directive(&policy, "connect-src").contains(&format!("ws://{}", app.addr)),
        "{policy}"
    );
    assert_eq!(directive(&policy, "frame-ancestors"), ["'none'"]);
}

#[tokio::test]
async fn behind_a_tls_proxy_the_page_allows_the_secure_socket_and_escapes_nothing_it_should_not() {
    let app = TestApp::spawn().await;
    let res = graphiql(
        &app,
        &[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "crm.example.com"),
        ],
    )
    .await;
    let connect = directive(&csp(&res), "connect-src");
    assert_eq!(connect, ["'self'", "wss://crm.example.com"]);
    let html = res.text().await.expect("html");
    assert!(html.contains("wss://crm.example.com/graphql"), "{html}");

    // A forged host is neither written into the page nor into its policy.
    let forged = "x\"><script>alert(1)</script>";
    let res = graphiql(&app, &[("x-forwarded-host", forged)]).await;
    assert_eq!(directive(&csp(&res), "connect-src"), ["'self'"]);
    let html = res.text().await.expect("html");
    assert!(!html.contains("alert(1)"), "{html}");
    assert_eq!(inline_scripts(&html).len(), 1);
}

#[tokio::test]
async fn unknown_assets_are_404() {
    let app = TestApp::spawn().await;
    for path in [
        "/graphql/assets/nope.js",
        "/graphql/assets/graphiql-4.1.1.min.js",
        "/graphql/assets/graphiql.min.js",
        "/graphql/assets/%2e%2e%2fCargo.toml",
        "/graphql/assets/..%2f..%2fCargo.toml",
        "/graphql/assets/react-18.3.1.production.min.js/x",
    ] {
        let res = app.client.get(app.url(path)).send().await.expect("sent");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(res.headers().get("cache-control").is_none(), "{path}");
    }
}
