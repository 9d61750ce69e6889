//! Tests of the customer IP check against small MaxMind databases built by
//! `tests/support/make-mmdb` (MaxMind's Perl writer).

use crate::support::support_dir;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::{json, Value};
use tempfile::TempDir;
use vkyc::checks::ipcheck::{IpChecker, IpSettings, IpVerdict};

/// Builds `dir/name` with make-mmdb from `spec` (CIDR => record).
fn make_mmdb(dir: &Path, name: &str, db_type: &str, ip_version: u8, spec: &Value) -> PathBuf {
    let out = dir.join(name);
    let mut child = Command::new(support_dir().join("make-mmdb"))
        .args([
            "--type",
            db_type,
            "--ip-version",
            &ip_version.to_string(),
            "--out",
        ])
        .arg(&out)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tests/support/make-mmdb");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "make-mmdb failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

fn country_spec() -> Value {
    json!({
        "49.36.0.0/14": {"country": {"iso_code": "IN", "geoname_id": 1269750, "names": {"en": "India"}}},
        "103.10.0.0/16": {"country": {"iso_code": "IN"}},
        "2401:4900::/32": {"country": {"iso_code": "IN"}},
        "8.8.8.0/24": {"country": {"iso_code": "US"}},
        "2001:4860::/32": {"country": {"iso_code": "US"}},
        "112.134.0.0/16": {"country": {"iso_code": "LK"}},
        // Only the registered country is known.
        "59.88.0.0/16": {"registered_country": {"iso_code": "IN"}},
        // A more specific network inside an Indian one.
        "49.36.200.0/24": {"country": {"iso_code": "NP"}}
    })
}

fn anonymous_spec() -> Value {
    json!({
        "103.10.1.0/24": {"is_anonymous": true, "is_anonymous_vpn": true},
        "103.10.2.0/24": {"is_anonymous": true, "is_hosting_provider": true},
        "103.10.3.7/32": {"is_anonymous": true, "is_tor_exit_node": true},
        "103.10.4.0/24": {"is_anonymous": true, "is_public_proxy": true},
        "103.10.5.0/24": {"is_anonymous": true, "is_residential_proxy": true},
        "103.10.6.0/24": {"is_anonymous": true},
        "103.10.7.0/24": {"is_anonymous": false},
        "2401:4900:1::/48": {"is_anonymous": true, "is_anonymous_vpn": true}
    })
}

struct Fixture {
    dir: TempDir,
    country: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let country = make_mmdb(
        dir.path(),
        "country.mmdb",
        "GeoLite2-Country",
        6,
        &country_spec(),
    );
    Fixture { dir, country }
}

fn checker_with(settings: IpSettings) -> IpChecker {
    IpChecker::load(&settings)
}

fn country_only(f: &Fixture) -> IpChecker {
    checker_with(IpSettings {
        country_db: Some(f.country.clone()),
        ..Default::default()
    })
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn allowed(country: &str) -> IpVerdict {
    IpVerdict::Allowed {
        country: country.to_string(),
    }
}

fn outside(country: Option<&str>) -> IpVerdict {
    IpVerdict::OutsideIndia {
        country: country.map(str::to_string),
    }
}

fn proxy(reason: &str) -> IpVerdict {
    IpVerdict::Proxy {
        reason: reason.to_string(),
    }
}

fn assert_unavailable(v: IpVerdict, needle: &str) {
    match v {
        IpVerdict::Unavailable { reason } => assert!(
            reason.contains(needle),
            "reason {reason:?} should mention {needle:?}"
        ),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn indian_ipv4_and_ipv6_are_allowed() {
    let f = fixture();
    let c = country_only(&f);
    assert!(c.is_configured());
    assert!(c.problems().is_empty(), "{:?}", c.problems());
    assert_eq!(c.check(ip("49.36.10.20")), allowed("IN"));
    assert_eq!(c.check(ip("49.39.255.255")), allowed("IN"));
    assert_eq!(c.check(ip("2401:4900:abcd::1")), allowed("IN"));
    assert!(c.check(ip("49.36.10.20")).is_allowed());
}

#[test]
fn foreign_addresses_are_outside_india() {
    let f = fixture();
    let c = country_only(&f);
    assert_eq!(c.check(ip("8.8.8.8")), outside(Some("US")));
    assert_eq!(c.check(ip("2001:4860:4860::8888")), outside(Some("US")));
    assert_eq!(c.check(ip("112.134.1.1")), outside(Some("LK")));
    // The more specific network wins.
    assert_eq!(c.check(ip("49.36.200.9")), outside(Some("NP")));
}

#[test]
fn unknown_addresses_are_outside_india_with_no_country() {
    let f = fixture();
    let c = country_only(&f);
    assert_eq!(c.check(ip("1.1.1.1")), outside(None));
    assert_eq!(c.check(ip("192.168.1.10")), outside(None));
    assert_eq!(c.check(ip("2a00:1450::1")), outside(None));
    assert_eq!(c.check(ip("::1")), outside(None));
}

#[test]
fn registered_country_is_the_fallback() {
    let f = fixture();
    let c = country_only(&f);
    assert_eq!(c.check(ip("59.88.1.1")), allowed("IN"));
}

#[test]
fn ipv4_mapped_ipv6_is_treated_as_ipv4() {
    let f = fixture();
    let c = country_only(&f);
    assert_eq!(c.check(ip("::ffff:49.36.10.20")), allowed("IN"));
    assert_eq!(c.check(ip("::ffff:8.8.8.8")), outside(Some("US")));
}

#[test]
fn ipv4_only_database_works_and_ipv6_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let db = make_mmdb(
        dir.path(),
        "v4.mmdb",
        "GeoIP2-Country",
        4,
        &json!({"49.36.0.0/14": {"country": {"iso_code": "IN"}}}),
    );
    let c = checker_with(IpSettings {
        country_db: Some(db),
        ..Default::default()
    });
    assert_eq!(c.check(ip("49.36.1.1")), allowed("IN"));
    assert_eq!(c.check(ip("::ffff:49.36.1.1")), allowed("IN"));
    assert_eq!(c.check(ip("2401:4900::1")), outside(None));
}

#[test]
fn city_format_records_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = make_mmdb(
        dir.path(),
        "city.mmdb",
        "GeoIP2-City",
        6,
        &json!({
            "49.36.0.0/14": {
                "city": {"geoname_id": 1275339, "names": {"en": "Mumbai"}},
                "continent": {"code": "AS", "geoname_id": 6255147, "names": {"en": "Asia"}},
                "country": {"iso_code": "IN", "geoname_id": 1269750, "names": {"en": "India"}},
                "location": {"accuracy_radius": 50, "latitude": 19.0728, "longitude": 72.8826, "time_zone": "Asia/Kolkata"},
                "postal": {"code": "400070"},
                "registered_country": {"iso_code": "IN", "geoname_id": 1269750},
                "subdivisions": [{"iso_code": "MH", "geoname_id": 1264418, "names": {"en": "Maharashtra"}}]
            }
        }),
    );
    let c = checker_with(IpSettings {
        country_db: Some(db),
        ..Default::default()
    });
    assert_eq!(c.check(ip("49.37.0.1")), allowed("IN"));
}

#[test]
fn anonymous_database_flags_proxies_even_in_india() {
    let f = fixture();
    let anon = make_mmdb(
        f.dir.path(),
        "anon.mmdb",
        "GeoIP2-Anonymous-IP",
        6,
        &anonymous_spec(),
    );
    let c = checker_with(IpSettings {
        country_db: Some(f.country.clone()),
        anonymous_db: Some(anon),
        ..Default::default()
    });
    assert!(c.problems().is_empty(), "{:?}", c.problems());
    // 103.10.0.0/16 is Indian in the country database.
    assert_eq!(c.check(ip("103.10.9.9")), allowed("IN"));
    assert_eq!(c.check(ip("103.10.1.5")), proxy("vpn"));
    assert_eq!(c.check(ip("::ffff:103.10.1.5")), proxy("vpn"));
    assert_eq!(c.check(ip("103.10.2.5")), proxy("hosting"));
    assert_eq!(c.check(ip("103.10.3.7")), proxy("tor"));
    assert_eq!(c.check(ip("103.10.3.8")), allowed("IN"));
    assert_eq!(c.check(ip("103.10.4.5")), proxy("public_proxy"));
    assert_eq!(c.check(ip("103.10.5.5")), proxy("residential_proxy"));
    assert_eq!(c.check(ip("103.10.6.5")), proxy("anonymous"));
    assert_eq!(c.check(ip("103.10.7.5")), allowed("IN"));
    assert_eq!(c.check(ip("2401:4900:1::5")), proxy("vpn"));
    assert_eq!(c.check(ip("2401:4900:2::5")), allowed("IN"));
}

#[test]
fn proxy_flags_in_the_country_database_count() {
    let dir = tempfile::tempdir().unwrap();
    let db = make_mmdb(
        dir.path(),
        "enterprise.mmdb",
        "GeoIP2-Enterprise",
        6,
        &json!({
            "49.36.0.0/16": {"country": {"iso_code": "IN"}, "traits": {"is_anonymous_proxy": true}},
            "49.37.0.0/16": {"country": {"iso_code": "IN"}, "traits": {"is_anonymous": true, "is_anonymous_vpn": true}},
            "49.38.0.0/16": {"country": {"iso_code": "IN"}, "is_tor_exit_node": true},
            "49.39.0.0/16": {"country": {"iso_code": "IN"}, "traits": {"is_anonymous_proxy": false, "is_satellite_provider": true}}
        }),
    );
    let c = checker_with(IpSettings {
        country_db: Some(db),
        ..Default::default()
    });
    assert_eq!(c.check(ip("49.36.1.1")), proxy("anonymous"));
    assert_eq!(c.check(ip("49.37.1.1")), proxy("vpn"));
    assert_eq!(c.check(ip("49.38.1.1")), proxy("tor"));
    assert_eq!(c.check(ip("49.39.1.1")), allowed("IN"));
}

#[test]
fn proxy_list_hits_are_proxies() {
    let f = fixture();
    let list = f.dir.path().join("bad-ips.txt");
    std::fs::write(
        &list,
        "# known VPN exits\n\
         \n\
         49.36.10.20\n\
         \t49.37.0.0/16   # a whole provider\n\
         103.10.9.0/24\n\
         2401:4900:5::/48\n\
         ::ffff:49.38.1.1\n\
         \n",
    )
    .unwrap();
    let other = f.dir.path().join("tor-exits.txt");
    std::fs::write(&other, "8.8.8.8\n").unwrap();
    let c = checker_with(IpSettings {
        country_db: Some(f.country.clone()),
        proxy_lists: vec![list, other],
        ..Default::default()
    });
    assert!(c.problems().is_empty(), "{:?}", c.problems());
    assert_eq!(c.check(ip("49.36.10.20")), proxy("list:bad-ips.txt"));
    assert_eq!(c.check(ip("::ffff:49.36.10.20")), proxy("list:bad-ips.txt"));
    assert_eq!(c.check(ip("49.36.10.21")), allowed("IN"));
    assert_eq!(c.check(ip("49.37.200.1")), proxy("list:bad-ips.txt"));
    assert_eq!(c.check(ip("103.10.9.255")), proxy("list:bad-ips.txt"));
    assert_eq!(c.check(ip("2401:4900:5:1::1")), proxy("list:bad-ips.txt"));
    assert_eq!(c.check(ip("2401:4900:6::1")), allowed("IN"));
    assert_eq!(c.check(ip("49.38.1.1")), proxy("list:bad-ips.txt"));
    assert_eq!(c.check(ip("8.8.8.8")), proxy("list:tor-exits.txt"));
    // A comment line's address is not listed.
    assert_eq!(c.check(ip("103.10.8.1")), allowed("IN"));
}

#[test]
fn no_country_database_is_unavailable() {
    let c = checker_with(IpSettings::default());
    assert!(!c.is_configured());
    assert_unavailable(c.check(ip("49.36.10.20")), "country");
}

#[test]
fn missing_country_database_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("GeoLite2-Country.mmdb");
    let c = checker_with(IpSettings {
        country_db: Some(missing),
        ..Default::default()
    });
    assert!(c.is_configured());
    assert_eq!(c.problems().len(), 1);
    assert_unavailable(c.check(ip("49.36.10.20")), "GeoLite2-Country.mmdb");
}

#[test]
fn garbage_country_database_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("country.mmdb");
    std::fs::write(&garbage, b"this is not a MaxMind database\n".repeat(100)).unwrap();
    let c = checker_with(IpSettings {
        country_db: Some(garbage.clone()),
        ..Default::default()
    });
    assert!(c.is_configured());
    assert_unavailable(c.check(ip("49.36.10.20")), "not a valid MaxMind DB");

    std::fs::write(&garbage, b"").unwrap();
    let c = checker_with(IpSettings {
        country_db: Some(garbage),
        ..Default::default()
    });
    assert_unavailable(c.check(ip("8.8.8.8")), "not a valid MaxMind DB");
}

#[test]
fn corrupt_search_tree_is_unavailable_not_a_panic() {
    let f = fixture();
    let mut bytes = std::fs::read(&f.country).unwrap();
    // Every record of the first nodes now points far past the data section.
    for b in bytes.iter_mut().take(140) {
        *b = 0xff;
    }
    std::fs::write(&f.country, &bytes).unwrap();
    let c = country_only(&f);
    for addr in ["49.36.10.20", "8.8.8.8", "2401:4900::1", "::1"] {
        assert!(
            matches!(c.check(ip(addr)), IpVerdict::Unavailable { .. }),
            "{addr}: {:?}",
            c.check(ip(addr))
        );
    }
}

#[test]
fn unloadable_optional_sources_make_it_unavailable() {
    let f = fixture();
    let c = checker_with(IpSettings {
        country_db: Some(f.country.clone()),
        anonymous_db: Some(f.dir.path().join("no-such-anon.mmdb")),
        ..Default::default()
    });
    assert_unavailable(c.check(ip("49.36.10.20")), "no-such-anon.mmdb");

    let c = checker_with(IpSettings {
        country_db: Some(f.country.clone()),
        proxy_lists: vec![f.dir.path().join("no-such-list.txt")],
        ..Default::default()
    });
    assert_unavailable(c.check(ip("49.36.10.20")), "no-such-list.txt");

    let bad = f.dir.path().join("bad-list.txt");
    std::fs::write(&bad, "1.2.3.4\nnot-an-ip\n").unwrap();
    let c = checker_with(IpSettings {
        country_db: Some(f.country.clone()),
        proxy_lists: vec![bad],
        ..Default::default()
    });
    assert_unavailable(c.check(ip("49.36.10.20")), "line 2");
}

#[test]
fn allowed_countries_can_be_overridden() {
    let f = fixture();
    let c = checker_with(IpSettings {
        country_db: Some(f.country.clone()),
        allowed_countries: vec!["in".into(), " LK ".into()],
        ..Default::default()
    });
    assert_eq!(c.check(ip("49.36.10.20")), allowed("IN"));
    assert_eq!(c.check(ip("112.134.1.1")), allowed("LK"));
    assert_eq!(c.check(ip("8.8.8.8")), outside(Some("US")));

    let c = checker_with(IpSettings {
        country_db: Some(f.country.clone()),
        allowed_countries: vec!["US".into()],
        ..Default::default()
    });
    assert_eq!(c.check(ip("8.8.8.8")), allowed("US"));
    assert_eq!(c.check(ip("49.36.10.20")), outside(Some("IN")));
}

#[test]
fn checker_is_shared_across_threads() {
    let f = fixture();
    let c = Arc::new(country_only(&f));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                let addr: IpAddr = format!("49.36.{i}.1").parse().unwrap();
                c.check(addr)
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), allowed("IN"));
    }
}

#[test]
fn settings_and_verdicts_serialize() {
    let s: IpSettings = serde_json::from_value(json!({"country_db": "/x/c.mmdb"})).unwrap();
    assert_eq!(s.country_db.as_deref(), Some(Path::new("/x/c.mmdb")));
    assert!(s.proxy_lists.is_empty() && s.allowed_countries.is_empty());
    assert_eq!(
        serde_json::to_value(allowed("IN")).unwrap(),
        json!({"Allowed": {"country": "IN"}})
    );
}
