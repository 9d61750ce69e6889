//! Calls this server makes to addresses that merchants give (webhook receivers): the
//! guard that keeps them out of the operator's own network, checked on the URL when it
//! is set and again on every address a name resolves to at the moment of the call.

use std::net::{IpAddr, SocketAddr};

/// Addresses a webhook may not reach unless the operator allows it: loopback, private,
/// link-local, shared (CGNAT), unique-local, unspecified, multicast and documentation
/// ranges. This is what keeps a merchant from using the server against its own network.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
        }
    }
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
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
    };
    if internal && !allow_internal {
        return Err("internal addresses are not allowed");
    }
    Ok(url)
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
