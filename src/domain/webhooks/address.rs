//! Where webhooks may go: only to public addresses. An endpoint URL naming (or resolving to)
//! a loopback, private, link-local (cloud metadata lives there), shared, multicast or
//! unspecified address is refused at registration, and again each time a delivery connects
//! (a name may resolve elsewhere by then: DNS rebinding). `CRM_WEBHOOK_ALLOW_PRIVATE=1` lifts
//! this, for tests and private deployments.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("the URL must be http:// or https:// with a host, and no user or password")]
    NotHttp,
    #[error("the URL is longer than 2,000 characters")]
    TooLong,
    #[error("`{0}` does not resolve")]
    Unresolved(String),
    #[error(
        "`{0}` is (or resolves to) a loopback, private, link-local or otherwise non-public address"
    )]
    NotPublic(String),
}

/// Whether an address is one the public internet reaches.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                let [a, b] = hi.to_be_bytes();
                let [c, d] = lo.to_be_bytes();
                Ipv4Addr::new(a, b, c, d)
            };
            // NAT64 (64:ff9b::/96) and IPv4-compatible (::a.b.c.d) addresses reach the IPv4
            // address they embed; 6to4 (2002::/16) the one after its prefix.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
                || (segments[..6] == [0; 6] && segments[6] != 0)
            {
                return is_public_v4(embedded(segments[6], segments[7]));
            }
            if segments[0] == 0x2002 {
                return is_public_v4(embedded(segments[1], segments[2]));
            }
            // Local-use NAT64 (64:ff9b:1::/48), Teredo (2001::/32), documentation
            // (2001:db8::/32), discard (100::/64): nothing a webhook should reach.
            if (segments[0] == 0x64 && segments[1] == 0xff9b && segments[2] == 1)
                || (segments[0] == 0x2001 && matches!(segments[1], 0 | 0xdb8))
                || (segments[0] == 0x100 && segments[1..4] == [0, 0, 0])
            {
                return false;
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local (fc00::/7)
                || (segments[0] & 0xffc0) == 0xfe80 // link-local (fe80::/10)
                || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1))
        }
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240)
}

/// An endpoint URL, checked: its form, and every address its host resolves to now.
pub async fn check(raw: &str, allow_private: bool) -> Result<Url, Refusal> {
    if raw.len() > 2_000 {
        return Err(Refusal::TooLong);
    }
    let url = Url::parse(raw).map_err(|_| Refusal::NotHttp)?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(Refusal::NotHttp);
    }
    let host = url.host().ok_or(Refusal::NotHttp)?;
    if allow_private {
        return Ok(url);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match host {
        Host::Ipv4(v4) => vec![IpAddr::V4(v4)],
        Host::Ipv6(v6) => vec![IpAddr::V6(v6)],
        Host::Domain(name) => resolve(name, port)
            .await?
            .iter()
            .map(SocketAddr::ip)
            .collect(),
    };
    if addresses.iter().all(|ip| is_public(*ip)) {
        Ok(url)
    } else {
        Err(Refusal::NotPublic(host.to_string()))
    }
}

async fn resolve(name: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
    let found = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::lookup_host((name, port)),
    )
    .await
    .map_err(|_| Refusal::Unresolved(name.to_owned()))?
    .map_err(|_| Refusal::Unresolved(name.to_owned()))?
    .collect::<Vec<_>>();
    if found.is_empty() {
        return Err(Refusal::Unresolved(name.to_owned()));
    }
    Ok(found)
}

/// The resolver deliveries connect through: a name's public addresses only, looked up at
/// connect time, so a name that now points inside is refused, not followed.
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let found = resolve(name.as_str(), 0)
                .await
                .map_err(|err| Box::new(err) as Box<dyn std::error::Error + Send + Sync>)?;
            let public: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| is_public(addr.ip()))
                .collect();
            if public.is_empty() {
                return Err(Box::new(Refusal::NotPublic(name.as_str().to_owned()))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_addresses_are_not_public() {
        for inside in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
            "64:ff9b:1::7f00:1",
            "2002:7f00:1::",
            "2001::7f00:1",
            "2001:db8::1",
            "100::1",
        ] {
            let ip: IpAddr = inside.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            assert!(!is_public(ip), "{inside}");
        }
        for outside in [
            "93.184.215.14",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "2002:5db8:d70e::1",
        ] {
            let ip: IpAddr = outside.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            assert!(is_public(ip), "{outside}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_for_form_and_address() {
        for refused in [
            "ftp://example.com/x",
            "http://user:pw@93.184.215.14/",
            "not a url",
            "http://127.0.0.1:8080/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost/hook",
        ] {
            assert!(check(refused, false).await.is_err(), "{refused}");
        }
        assert!(check("http://93.184.215.14/hook", false).await.is_ok());
        assert!(check("http://127.0.0.1:8080/hook", true).await.is_ok());
        assert_eq!(
            check(&format!("http://a.example/{}", "x".repeat(2_000)), false).await,
            Err(Refusal::TooLong)
        );
    }
}
