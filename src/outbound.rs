//! Calls this server makes to addresses that merchants give (webhook receivers): the
//! guard that keeps them out of the operator's own network, checked on the URL when it
//! is set and again on every address a name resolves to at the moment of the call.

use std::net::{IpAddr, SocketAddr};

/// IANA's IPv4 Special-Purpose Address Registry in full, with the multicast block and
/// the limited broadcast address (table reviewed 2026-12-04). A webhook may reach none of
/// these unless the operator allows internal addresses.
const SPECIAL_V4: &[(&str, &str)] = &[
    ("0.0.0.0/8", "this network"),
    ("10.0.0.0/8", "private use"),
    ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link local"),
    ("172.16.0.0/12", "private use"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.31.196.0/24", "AS112-v4"),
    ("192.52.193.0/24", "AMT"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
    ("192.168.0.0/16", "private use"),
    ("192.175.48.0/24", "direct delegation AS112 service"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "limited broadcast"),
];

/// IANA's IPv6 Special-Purpose Address Registry in full, with multicast and the
/// deprecated site-local block (table reviewed 2026-12-04). The forms that carry an IPv4
/// address (mapped, compatible, NAT64, 6to4) are judged by that address instead.
const SPECIAL_V6: &[(&str, &str)] = &[
    ("::1/128", "loopback"),
    ("::/128", "unspecified"),
    ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
    ("100::/64", "discard-only"),
    ("100:0:0:1::/64", "dummy IPv6 prefix"),
    (
        "2001::/23",
        "IETF protocol assignments (TEREDO, benchmarking, ORCHID, AS112, ...)",
    ),
    ("2001:db8::/32", "documentation"),
    ("2620:4f:8000::/48", "direct delegation AS112 service"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing (SRv6) SIDs"),
    ("fc00::/7", "unique local"),
    ("fe80::/10", "link-local unicast"),
    ("fec0::/10", "deprecated site-local"),
    ("ff00::/8", "multicast"),
];

fn table<N: std::str::FromStr>(rows: &[(&str, &str)]) -> Vec<N>
where
    N::Err: std::fmt::Debug,
{
    rows.iter()
        .map(|(net, _)| net.parse().expect("the table's ranges parse"))
        .collect()
}

/// The IPv4 address an IPv6 address carries, for the forms that carry one: IPv4-mapped
/// (`::ffff:0:0/96`), IPv4-compatible (`::/96`), NAT64 (`64:ff9b::/96`) and 6to4
/// (`2002::/16`).
fn carried_v4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = v6.segments();
    let tail = |hi: u16, lo: u16| std::net::Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(tail(hi, lo)),
        [0, 0, 0, 0, 0, 0, hi, lo] if (hi, lo) != (0, 0) && (hi, lo) != (0, 1) => {
            Some(tail(hi, lo))
        }
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(tail(hi, lo)),
        [0x2002, hi, lo, ..] => Some(tail(hi, lo)),
        _ => None,
    }
}

/// Addresses a webhook may not reach unless the operator allows it: every special-purpose
/// range above. This is what keeps a merchant from using the server against the
/// operator's own network.
pub fn is_internal(ip: IpAddr) -> bool {
    use std::sync::OnceLock;
    static V4: OnceLock<Vec<ipnet::Ipv4Net>> = OnceLock::new();
    static V6: OnceLock<Vec<ipnet::Ipv6Net>> = OnceLock::new();
    match ip {
        IpAddr::V4(v4) => V4
            .get_or_init(|| table(SPECIAL_V4))
            .iter()
            .any(|n| n.contains(&v4)),
        IpAddr::V6(v6) => match carried_v4(v6) {
            Some(v4) => is_internal(IpAddr::V4(v4)),
            None => V6
                .get_or_init(|| table(SPECIAL_V6))
                .iter()
                .any(|n| n.contains(&v6)),
        },
    }
}

/// `localhost`, `localhost.` and any name under `.localhost` (RFC 6761): names that
/// always mean this machine, refused before any look-up.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Checks a webhook URL given by an operator or a merchant: http(s), a host, and no
/// internal address literal unless allowed. Host names are checked again at each
/// delivery, on the addresses they resolve to then.
pub fn check_url(text: &str, allow_internal: bool) -> Result<url::Url, &'static str> {
    let url = url::Url::parse(text).map_err(|_| "not a URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the scheme must be http or https");
    }
    if text.chars().count() > 2000 {
        return Err("the URL is too long");
    }
    let internal = match url.host() {
        None => return Err("the URL has no host"),
        Some(url::Host::Ipv4(ip)) => is_internal(ip.into()),
        Some(url::Host::Ipv6(ip)) => is_internal(ip.into()),
        Some(url::Host::Domain(name)) => is_local_name(name),
    };
    if internal && !allow_internal {
        return Err("internal addresses are not allowed");
    }
    Ok(url)
}

/// Resolves a URL's host and refuses it when any address it resolves to is internal (for
/// deliveries through a proxy, which would otherwise resolve the name out of sight).
pub async fn check_resolved(url: &url::Url) -> Result<(), String> {
    let host = url.host_str().ok_or("the URL has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(80);
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("{host} does not resolve: {e}"))?
        .collect();
    if found.is_empty() || found.iter().any(|a| is_internal(a.ip())) {
        return Err(format!("{host} resolves to an internal address"));
    }
    Ok(())
}

/// An HTTP client for addresses merchants give: no redirects (a 3xx could lead anywhere),
/// the guarded resolver, and the operator's proxy when one is set (its callers then check
/// the target's addresses themselves with [`check_resolved`]).
pub fn guarded_client(
    allow_internal: bool,
    proxy: Option<&str>,
    timeout: std::time::Duration,
    user_agent: &str,
) -> reqwest::Result<reqwest::Client> {
    let builder = match proxy {
        Some(url) => reqwest::Client::builder().proxy(reqwest::Proxy::all(url)?),
        None => reqwest::Client::builder().no_proxy(),
    };
    builder
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(std::sync::Arc::new(GuardedResolver { allow_internal }))
        .user_agent(user_agent)
        .build()
}

/// A DNS resolver for the webhook client that drops internal addresses (unless allowed),
/// so that a host name cannot lead a delivery into the operator's network.
pub struct GuardedResolver {
    pub allow_internal: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_internal;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allow || !is_internal(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{} resolves to no allowed address", name.as_str()).into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_special_purpose_registries_are_refused_in_full() {
        for bad in [
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "192.0.0.8",
            "192.0.0.170",
            "192.88.99.1",
            "0.1.2.3",
            "255.255.255.255",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "::7f00:1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "fec0::1",
            "2001::1",
            "2001:2::1",
            "3fff::1",
            "5f00::1",
            "100::1",
            "ff02::1",
        ] {
            assert!(is_internal(bad.parse().unwrap()), "{bad}");
        }
        for good in [
            "8.8.8.8",
            "1.1.1.1",
            "198.17.255.255",
            "198.20.0.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "::ffff:8.8.8.8",
            "2606:4700:4700::1111",
        ] {
            assert!(!is_internal(good.parse().unwrap()), "{good}");
        }
    }

    #[test]
    fn names_that_always_mean_this_machine_are_refused() {
        for bad in [
            "http://localhost./x",
            "http://foo.localhost/x",
            "http://LOCALHOST:8080/",
        ] {
            assert_eq!(
                check_url(bad, false).err(),
                Some("internal addresses are not allowed"),
                "{bad}"
            );
        }
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        for bad in [
            "http://127.0.0.1/x",
            "http://10.1.2.3/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://localhost:8080/",
            "http://100.64.0.1/",
            "ftp://example.in/",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_url("https://merchant.example.in/hooks", false).is_ok());
        assert!(check_url("https://8.8.8.8/hooks", false).is_ok());
    }
}

#[cfg(test)]
mod resolver_tests {
    use super::*;
    use reqwest::dns::Resolve;
    use std::str::FromStr;

    #[tokio::test]
    async fn names_that_resolve_only_to_internal_addresses_are_refused() {
        let strict = GuardedResolver {
            allow_internal: false,
        };
        let name = reqwest::dns::Name::from_str("localhost").unwrap();
        let err = strict
            .resolve(name)
            .await
            .err()
            .expect("localhost is internal");
        assert!(err.to_string().contains("no allowed address"), "{err}");
        let open = GuardedResolver {
            allow_internal: true,
        };
        let name = reqwest::dns::Name::from_str("localhost").unwrap();
        assert!(open.resolve(name).await.is_ok());
    }
}
