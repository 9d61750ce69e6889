//! Customer IP address checks for Video KYC.
//!
//! A V-CIP session may only be started from an IP address located in India
//! (or another configured country) that is not a known VPN, proxy, hosting
//! provider or Tor exit node.
//!
//! Data sources, all optional except the country database:
//! * `country_db`: a MaxMind DB (GeoLite2/GeoIP2 Country or City format, or
//!   any database with the same `country.iso_code` layout);
//! * `anonymous_db`: a GeoIP2-Anonymous-IP format database;
//! * `proxy_lists`: plain text files with one IP or CIDR per line.
//!
//! [`IpChecker::load`] never fails. Whatever could not be loaded is
//! remembered and every [`IpChecker::check`] then answers
//! [`IpVerdict::Unavailable`], so a misconfigured deployment fails closed
//! with a clear reason instead of letting everyone (or no one, silently) in.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use maxminddb::{MaxMindDbError, Reader};
use serde::{Deserialize, Serialize};

/// Configuration of the IP check.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct IpSettings {
    /// GeoLite2/GeoIP2-Country or City format `.mmdb` file.
    #[serde(default)]
    pub country_db: Option<PathBuf>,
    /// GeoIP2-Anonymous-IP format `.mmdb` file (optional).
    #[serde(default)]
    pub anonymous_db: Option<PathBuf>,
    /// Text files with one IP or CIDR per line; `#` starts a comment.
    #[serde(default)]
    pub proxy_lists: Vec<PathBuf>,
    /// ISO 3166-1 alpha-2 codes of the countries allowed; `["IN"]` when empty.
    #[serde(default)]
    pub allowed_countries: Vec<String>,
}

/// The outcome of checking one IP address.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum IpVerdict {
    /// The address is in an allowed country and shows no sign of a proxy.
    Allowed { country: String },
    /// The address is outside the allowed countries (`None`: unknown).
    OutsideIndia { country: Option<String> },
    /// The address is a VPN, proxy, hosting provider or Tor exit node.
    /// `reason` is `list:<file name>`, `vpn`, `tor`, `public_proxy`,
    /// `hosting`, `residential_proxy` or `anonymous`.
    Proxy { reason: String },
    /// The check could not be made (databases missing or broken).
    Unavailable { reason: String },
}

impl IpVerdict {
    /// True only for [`IpVerdict::Allowed`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, IpVerdict::Allowed { .. })
    }
}

/// Why a data source could not be loaded.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("{what} {path} could not be read: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{what} {path} is not a valid MaxMind DB (.mmdb) file: {message}")]
    NotMmdb {
        what: &'static str,
        path: String,
        message: String,
    },
    #[error("proxy list {path}, line {line}: {text:?} is not an IP address or CIDR")]
    BadListLine {
        path: String,
        line: usize,
        text: String,
    },
}

/// An inclusive address range, IPv4 addresses as `u32` widened to `u128`.
type Range = (u128, u128);

/// One proxy list file, as sorted, merged, non-overlapping ranges.
struct ProxyList {
    name: String,
    v4: Vec<Range>,
    v6: Vec<Range>,
}

impl ProxyList {
    fn load(path: &Path) -> Result<ProxyList, LoadError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            what: "proxy list",
            path: shown.clone(),
            source,
        })?;
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            let Some(token) = line.split_whitespace().next() else {
                continue;
            };
            let net = parse_list_entry(token).ok_or_else(|| LoadError::BadListLine {
                path: shown.clone(),
                line: i + 1,
                text: token.to_string(),
            })?;
            match net {
                IpNet::V4(n) => v4.push((
                    u32::from(n.network()) as u128,
                    u32::from(n.broadcast()) as u128,
                )),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(shown);
        Ok(ProxyList {
            name,
            v4: merge_ranges(v4),
            v6: merge_ranges(v6),
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (ranges, x) = match ip {
            IpAddr::V4(a) => (&self.v4, u32::from(a) as u128),
            IpAddr::V6(a) => (&self.v6, u128::from(a)),
        };
        // Last range starting at or before x.
        let idx = ranges.partition_point(|&(start, _)| start <= x);
        idx > 0 && ranges[idx - 1].1 >= x
    }
}

/// Parses one proxy list entry: an address, a CIDR, or `a.b.c.d:port`.
/// IPv4-mapped IPv6 entries are turned into IPv4 ones.
fn parse_list_entry(token: &str) -> Option<IpNet> {
    let token = token.trim_end_matches([',', ';']);
    let net = if let Ok(net) = token.parse::<IpNet>() {
        net.trunc()
    } else if let Ok(ip) = token.parse::<IpAddr>() {
        IpNet::from(ip)
    } else if let Ok(sa) = token.parse::<std::net::SocketAddr>() {
        IpNet::from(sa.ip())
    } else {
        return None;
    };
    Some(match net {
        IpNet::V6(n) => match (n.network().to_ipv4_mapped(), n.prefix_len()) {
            (Some(v4), len) if len >= 96 => IpNet::V4(ipnet::Ipv4Net::new(v4, len - 96).ok()?),
            _ => net,
        },
        v4 => v4,
    })
}

fn merge_ranges(mut ranges: Vec<Range>) -> Vec<Range> {
    ranges.sort_unstable();
    let mut out: Vec<Range> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// The fields read from a country or anonymous-IP database record. Every
/// field is optional; unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
struct Record {
    #[serde(default)]
    country: Option<CountryField>,
    #[serde(default)]
    registered_country: Option<CountryField>,
    #[serde(default)]
    traits: Option<Flags>,
    // Top-level flags, as in GeoIP2-Anonymous-IP. (Listed here rather than
    // through `#[serde(flatten)]`, which would buffer the whole record.)
    #[serde(default)]
    is_anonymous: Option<bool>,
    #[serde(default)]
    is_anonymous_vpn: Option<bool>,
    #[serde(default)]
    is_public_proxy: Option<bool>,
    #[serde(default)]
    is_tor_exit_node: Option<bool>,
    #[serde(default)]
    is_hosting_provider: Option<bool>,
    #[serde(default)]
    is_residential_proxy: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
struct CountryField {
    #[serde(default)]
    iso_code: Option<String>,
}

/// Anonymity flags, at the top level (GeoIP2-Anonymous-IP) or under
/// `traits` (GeoIP2 Enterprise/Insights, legacy `is_anonymous_proxy`).
#[derive(Debug, Default, Deserialize)]
struct Flags {
    #[serde(default)]
    is_anonymous: Option<bool>,
    #[serde(default)]
    is_anonymous_vpn: Option<bool>,
    #[serde(default)]
    is_public_proxy: Option<bool>,
    #[serde(default)]
    is_tor_exit_node: Option<bool>,
    #[serde(default)]
    is_hosting_provider: Option<bool>,
    #[serde(default)]
    is_residential_proxy: Option<bool>,
    #[serde(default)]
    is_anonymous_proxy: Option<bool>,
}

impl Flags {
    /// The most specific proxy reason these flags give, if any.
    fn proxy_reason(&self) -> Option<&'static str> {
        let set = |f: Option<bool>| f == Some(true);
        if set(self.is_tor_exit_node) {
            Some("tor")
        } else if set(self.is_anonymous_vpn) {
            Some("vpn")
        } else if set(self.is_public_proxy) {
            Some("public_proxy")
        } else if set(self.is_residential_proxy) {
            Some("residential_proxy")
        } else if set(self.is_hosting_provider) {
            Some("hosting")
        } else if set(self.is_anonymous) || set(self.is_anonymous_proxy) {
            Some("anonymous")
        } else {
            None
        }
    }
}

impl Record {
    fn proxy_reason(&self) -> Option<&'static str> {
        let top = Flags {
            is_anonymous: self.is_anonymous,
            is_anonymous_vpn: self.is_anonymous_vpn,
            is_public_proxy: self.is_public_proxy,
            is_tor_exit_node: self.is_tor_exit_node,
            is_hosting_provider: self.is_hosting_provider,
            is_residential_proxy: self.is_residential_proxy,
            is_anonymous_proxy: None,
        };
        top.proxy_reason()
            .or_else(|| self.traits.as_ref().and_then(Flags::proxy_reason))
    }

    fn country(self) -> Option<String> {
        let code = |c: Option<CountryField>| {
            c.and_then(|c| c.iso_code)
                .map(|s| s.trim().to_ascii_uppercase())
                .filter(|s| !s.is_empty())
        };
        code(self.country).or_else(|| code(self.registered_country))
    }
}

/// An opened MaxMind database.
struct Mmdb {
    what: &'static str,
    path: String,
    reader: Reader<Vec<u8>>,
}

impl fmt::Debug for Mmdb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mmdb")
            .field("path", &self.path)
            .field("database_type", &self.reader.metadata().database_type)
            .finish()
    }
}

impl Mmdb {
    fn open(what: &'static str, path: &Path) -> Result<Mmdb, LoadError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
            what,
            path: shown.clone(),
            source,
        })?;
        let reader = Reader::from_source(bytes).map_err(|e| LoadError::NotMmdb {
            what,
            path: shown.clone(),
            message: e.to_string(),
        })?;
        Ok(Mmdb {
            what,
            path: shown,
            reader,
        })
    }

    /// Looks `ip` up. `Ok(None)`: no record for it (including an IPv6
    /// address asked of an IPv4-only database).
    fn lookup(&self, ip: IpAddr) -> Result<Option<Record>, String> {
        if ip.is_ipv6() && self.reader.metadata().ip_version == 4 {
            return Ok(None);
        }
        let broken = |e: MaxMindDbError| {
            format!(
                "lookup in {} {} failed (database corrupt?): {e}",
                self.what, self.path
            )
        };
        let result = self.reader.lookup(ip).map_err(broken)?;
        result.decode::<Record>().map_err(broken)
    }
}

/// Decides whether an IP address may do Video KYC. `Send + Sync`; load it
/// once and share it in an `Arc`.
pub struct IpChecker {
    configured: bool,
    country_db: Option<Mmdb>,
    anonymous_db: Option<Mmdb>,
    proxy_lists: Vec<ProxyList>,
    allowed: Vec<String>,
    /// Everything that could not be loaded; non-empty means every check
    /// answers `Unavailable`.
    problems: Vec<String>,
}

impl fmt::Debug for IpChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpChecker")
            .field("country_db", &self.country_db)
            .field("anonymous_db", &self.anonymous_db)
            .field(
                "proxy_lists",
                &self.proxy_lists.iter().map(|l| &l.name).collect::<Vec<_>>(),
            )
            .field("allowed", &self.allowed)
            .field("problems", &self.problems)
            .finish()
    }
}

impl IpChecker {
    /// Loads the configured data sources. Never fails: what could not be
    /// loaded is remembered (see [`IpChecker::problems`]) and makes every
    /// [`IpChecker::check`] answer [`IpVerdict::Unavailable`].
    pub fn load(settings: &IpSettings) -> IpChecker {
        let mut problems = Vec::new();
        let configured = settings.country_db.is_some();

        let country_db = match &settings.country_db {
            None => {
                problems.push("no IP country database (country_db) is configured".to_string());
                None
            }
            Some(path) => Mmdb::open("country database", path)
                .map_err(|e| problems.push(e.to_string()))
                .ok(),
        };
        let anonymous_db = settings.anonymous_db.as_ref().and_then(|path| {
            Mmdb::open("anonymous-IP database", path)
                .map_err(|e| problems.push(e.to_string()))
                .ok()
        });
        let proxy_lists = settings
            .proxy_lists
            .iter()
            .filter_map(|path| {
                ProxyList::load(path)
                    .map_err(|e| problems.push(e.to_string()))
                    .ok()
            })
            .collect();

        let mut allowed: Vec<String> = settings
            .allowed_countries
            .iter()
            .map(|c| c.trim().to_ascii_uppercase())
            .filter(|c| !c.is_empty())
            .collect();
        if allowed.is_empty() {
            allowed.push("IN".to_string());
        }

        IpChecker {
            configured,
            country_db,
            anonymous_db,
            proxy_lists,
            allowed,
            problems,
        }
    }

    /// True when a country database path was given (whether or not it
    /// could be opened).
    pub fn is_configured(&self) -> bool {
        self.configured
    }

    /// What could not be loaded, for logging at start-up. Empty when every
    /// configured source loaded.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Checks one address. Proxy evidence wins over the country.
    pub fn check(&self, ip: IpAddr) -> IpVerdict {
        if !self.problems.is_empty() {
            return IpVerdict::Unavailable {
                reason: self.problems.join("; "),
            };
        }
        let Some(country_db) = &self.country_db else {
            // Unreachable: a missing country db is recorded as a problem.
            return IpVerdict::Unavailable {
                reason: "no IP country database is loaded".to_string(),
            };
        };
        let ip = canonical(ip);

        if let Some(list) = self.proxy_lists.iter().find(|l| l.contains(ip)) {
            return IpVerdict::Proxy {
                reason: format!("list:{}", list.name),
            };
        }

        if let Some(db) = &self.anonymous_db {
            match db.lookup(ip) {
                Err(reason) => return IpVerdict::Unavailable { reason },
                Ok(Some(record)) => {
                    if let Some(reason) = record.proxy_reason() {
                        return IpVerdict::Proxy {
                            reason: reason.to_string(),
                        };
                    }
                }
                Ok(None) => {}
            }
        }

        let record = match country_db.lookup(ip) {
            Err(reason) => return IpVerdict::Unavailable { reason },
            Ok(None) => return IpVerdict::OutsideIndia { country: None },
            Ok(Some(record)) => record,
        };
        if let Some(reason) = record.proxy_reason() {
            return IpVerdict::Proxy {
                reason: reason.to_string(),
            };
        }
        match record.country() {
            Some(country) if self.allowed.contains(&country) => IpVerdict::Allowed { country },
            country => IpVerdict::OutsideIndia { country },
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) become plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn checker_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<IpChecker>();
    }

    #[test]
    fn list_entries_parse() {
        let p = |s: &str| parse_list_entry(s).map(|n| n.to_string());
        assert_eq!(p("1.2.3.4").as_deref(), Some("1.2.3.4/32"));
        assert_eq!(p("1.2.3.4/24").as_deref(), Some("1.2.3.0/24"));
        assert_eq!(p("1.2.3.4:8080").as_deref(), Some("1.2.3.4/32"));
        assert_eq!(p("::ffff:1.2.3.4").as_deref(), Some("1.2.3.4/32"));
        assert_eq!(p("::ffff:1.2.3.0/120").as_deref(), Some("1.2.3.0/24"));
        assert_eq!(p("2001:db8::/32").as_deref(), Some("2001:db8::/32"));
        assert_eq!(p("nonsense"), None);
        assert_eq!(p("1.2.3.4/33"), None);
    }

    #[test]
    fn ranges_merge_and_match() {
        let list = ProxyList {
            name: "x".into(),
            v4: merge_ranges(vec![(10, 20), (5, 9), (30, 40), (35, 50)]),
            v6: vec![],
        };
        assert_eq!(list.v4, vec![(5, 20), (30, 50)]);
        let v4 = |n: u32| IpAddr::V4(Ipv4Addr::from(n));
        for n in [5, 12, 20, 30, 50] {
            assert!(list.contains(v4(n)), "{n}");
        }
        for n in [0, 4, 21, 29, 51] {
            assert!(!list.contains(v4(n)), "{n}");
        }
        assert!(!list.contains(IpAddr::V6(Ipv6Addr::from(12u128))));
    }

    #[test]
    fn mapped_addresses_become_ipv4() {
        let ip: IpAddr = "::ffff:49.36.1.2".parse().unwrap();
        assert_eq!(canonical(ip), "49.36.1.2".parse::<IpAddr>().unwrap());
        let ip6: IpAddr = "2401:4900::1".parse().unwrap();
        assert_eq!(canonical(ip6), ip6);
    }
}
