//! Settings: commented defaults < a TOML file < `VKYC_*` environment variables.
//!
//! The defaults are the commented file below, parsed: what `vkyc config` prints is, by
//! construction, what the server uses when nothing else is given.

use anyhow::{anyhow, bail, Context};
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use ipnet::IpNet;
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The commented default configuration that `vkyc config` prints and every setting starts
/// from (its own file, so that the settings and their explanations read as one TOML).
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Sandbox,
    Production,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub listen: SocketAddr,
    pub public_base_url: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub environment: Environment,
    pub default_link_expiry_hours: u64,
    pub max_link_expiry_hours: u64,
    pub max_body_bytes: usize,
    pub body_timeout_seconds: u64,
    pub token_ttl_seconds: u64,
    pub expiry_interval_ms: u64,
    pub credential_cache_seconds: u64,
    pub log_format: String,
    pub master_key_file: String,
    pub trusted_proxies: Vec<String>,
    pub signature_window_seconds: u64,
    pub default_rate_limit_per_minute: u32,
    pub webhook_retry_schedule_seconds: Vec<u64>,
    pub webhook_timeout_seconds: u64,
    pub webhook_concurrency: usize,
    pub webhook_interval_ms: u64,
    pub webhook_allow_private_addresses: bool,
    #[serde(default)]
    pub webhook_proxy: String,
    /// Where `/metrics` is served; empty for nowhere.
    #[serde(default)]
    pub metrics_listen: String,
    pub staff_lockout_attempts: u32,
    pub staff_lockout_minutes: u64,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default = "default_header_read_timeout_seconds")]
    pub header_read_timeout_seconds: u64,
    #[serde(default = "default_login_attempts_per_minute")]
    pub staff_login_attempts_per_minute: u32,
    pub staff_session_hours: u64,
    pub agent_stale_seconds: u64,
    pub journey: JourneyConfig,
    pub calls: CallsConfig,
    pub media: MediaSettings,
    pub notify: crate::notify::NotifySettings,
    #[serde(default)]
    pub retention: crate::domain::retention::RetentionSettings,
    #[serde(default)]
    pub audit: AuditConfig,
}

/// The audit trail's anchors (`[audit]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuditConfig {
    /// Empty: anchors go to the log only.
    #[serde(default)]
    pub anchor_dir: String,
}

impl AuditConfig {
    pub fn anchor_dir(&self) -> Option<&Path> {
        Some(Path::new(&self.anchor_dir)).filter(|_| !self.anchor_dir.is_empty())
    }
}

/// Settings of the video call (`[calls]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallsConfig {
    pub invite_seconds: u64,
    pub drop_grace_seconds: u64,
    pub recording_link_ttl_seconds: u64,
    #[serde(default = "default_wrap_up_seconds")]
    pub wrap_up_seconds: u64,
    pub questions: Vec<String>,
}

/// Settings of the media relay (`[media]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MediaSettings {
    pub enabled: bool,
    pub udp_bind: String,
    pub advertised_ip: String,
    #[serde(default)]
    pub tcp_bind: String,
    #[serde(default)]
    pub turn_urls: Vec<String>,
    #[serde(default)]
    pub turn_shared_secret: String,
    #[serde(default = "default_turn_ttl")]
    pub turn_ttl_seconds: u64,
    #[serde(default)]
    pub shards: usize,
    pub recordings_dir: String,
    /// `""` (the directory) or `s3://bucket/prefix`; see [`crate::storage`].
    #[serde(default)]
    pub recordings_store: String,
    #[serde(default)]
    pub recordings_s3_endpoint: String,
    #[serde(default = "default_s3_region")]
    pub recordings_s3_region: String,
    #[serde(default)]
    pub recordings_s3_access_key: String,
    #[serde(default)]
    pub recordings_s3_secret_key: String,
    /// Seal each finished recording under a key of its own ([`crate::storage::sealing`]).
    #[serde(default)]
    pub encrypt_recordings: bool,
    /// Where the other `vkyc` processes reach this one's HTTP port for a call's
    /// signalling; empty: `http://<listen address>`.
    #[serde(default)]
    pub internal_url: String,
    /// At most this many live calls are placed on this node.
    #[serde(default = "default_relay_capacity")]
    pub capacity: u32,
    /// A relay node whose heartbeat is older than this is dead: no new call is placed
    /// on it, and its calls drop.
    #[serde(default = "default_node_timeout")]
    pub node_timeout_seconds: u64,
}

fn default_relay_capacity() -> u32 {
    200
}

fn default_node_timeout() -> u64 {
    10
}

/// `name must be between lo and hi` unless `value` is.
fn in_range<T: PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        range.contains(&value),
        "{name} must be between {} and {}",
        range.start(),
        range.end()
    );
    Ok(())
}

fn default_turn_ttl() -> u64 {
    3600
}

fn default_max_connections() -> usize {
    10_000
}

fn default_header_read_timeout_seconds() -> u64 {
    10
}

fn default_login_attempts_per_minute() -> u32 {
    30
}

fn default_step_attempts() -> u32 {
    5
}

fn default_step_attempt_window_minutes() -> u64 {
    15
}

fn default_wrap_up_seconds() -> u64 {
    900
}

fn default_s3_region() -> String {
    "ap-south-1".into()
}

/// Settings of the customer journey (`[journey]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JourneyConfig {
    pub aadhaar_session_minutes: u64,
    #[serde(default = "default_step_attempts")]
    pub step_attempts: u32,
    #[serde(default = "default_step_attempt_window_minutes")]
    pub step_attempt_window_minutes: u64,
    pub uidai_certificate: String,
    pub aadhaar_max_upload_bytes: usize,
    pub ip_country_db: String,
    pub ip_anonymous_db: String,
    pub ip_proxy_lists: Vec<String>,
    pub working_days: Vec<String>,
    pub working_hours: String,
    pub slot_minutes: u32,
    pub booking_days_ahead: u32,
    pub slot_capacity_per_agent: u32,
    pub slot_early_minutes: u32,
    pub slot_grace_minutes: u32,
    pub slot_reminder_minutes: u32,
    pub default_call_seconds: u64,
    pub queue_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Config {
        toml::from_str(DEFAULT_CONFIG).expect("the default configuration parses")
    }
}

impl Config {
    /// Defaults, then `file` (if given), then `VKYC_*` variables.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Toml::string(DEFAULT_CONFIG));
        if let Some(file) = file {
            anyhow::ensure!(file.exists(), "config file {} not found", file.display());
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed("VKYC_").split("__").ignore(&["config"]));
        let config: Config = figment.extract().context("reading the configuration")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.default_link_expiry_hours > 0
                && self.default_link_expiry_hours <= self.max_link_expiry_hours,
            "default_link_expiry_hours must be between 1 and max_link_expiry_hours"
        );
        anyhow::ensure!(
            self.max_body_bytes >= 1024,
            "max_body_bytes must be at least 1024"
        );
        anyhow::ensure!(
            matches!(self.log_format.as_str(), "pretty" | "json"),
            "log_format must be \"pretty\" or \"json\""
        );
        parse_ip_list(&self.trusted_proxies).context("trusted_proxies")?;
        in_range(
            "signature_window_seconds",
            self.signature_window_seconds,
            1..=3600,
        )?;
        in_range(
            "webhook_timeout_seconds",
            self.webhook_timeout_seconds,
            1..=300,
        )?;
        in_range(
            "staff_lockout_attempts",
            self.staff_lockout_attempts,
            1..=100,
        )?;
        in_range(
            "staff_lockout_minutes",
            self.staff_lockout_minutes,
            1..=10080,
        )?;
        in_range("staff_session_hours", self.staff_session_hours, 1..=720)?;
        self.metrics_addr().context("metrics_listen")?;
        anyhow::ensure!(
            (11..=3600).contains(&self.agent_stale_seconds),
            "agent_stale_seconds must be between 11 and 3600 (heartbeats come every 10 s)"
        );
        in_range("calls.invite_seconds", self.calls.invite_seconds, 5..=600)?;
        in_range(
            "calls.drop_grace_seconds",
            self.calls.drop_grace_seconds,
            1..=600,
        )?;
        anyhow::ensure!(
            self.max_connections >= 1,
            "max_connections must be at least 1"
        );
        in_range(
            "header_read_timeout_seconds",
            self.header_read_timeout_seconds,
            1..=600,
        )?;
        in_range("journey.step_attempts", self.journey.step_attempts, 1..=100)?;
        in_range(
            "journey.step_attempt_window_minutes",
            self.journey.step_attempt_window_minutes,
            1..=1440,
        )?;
        in_range(
            "calls.wrap_up_seconds",
            self.calls.wrap_up_seconds,
            10..=86_400,
        )?;
        self.journey.hours().context("journey working hours")?;
        self.media.tcp_bind().context("media.tcp_bind")?;
        anyhow::ensure!(self.media.shards <= 256, "media.shards must be at most 256");
        in_range("media.capacity", self.media.capacity, 1..=100_000)?;
        in_range(
            "media.node_timeout_seconds",
            self.media.node_timeout_seconds,
            3..=3600,
        )?;
        if !self.media.internal_url.is_empty() {
            let url = url::Url::parse(&self.media.internal_url)
                .context("media.internal_url is not a URL")?;
            anyhow::ensure!(
                matches!(url.scheme(), "http" | "https"),
                "media.internal_url must be an http:// or https:// URL"
            );
        }
        for url in &self.media.turn_urls {
            anyhow::ensure!(
                ["turn:", "turns:"].iter().any(|p| url.starts_with(p)),
                "media.turn_urls: {url:?} is not a turn: or turns: URL"
            );
        }
        anyhow::ensure!(
            self.media.turn_urls.is_empty() || !self.media.turn_shared_secret.is_empty(),
            "media.turn_urls needs media.turn_shared_secret (coturn's static-auth-secret)"
        );
        in_range(
            "media.turn_ttl_seconds",
            self.media.turn_ttl_seconds,
            60..=86_400,
        )?;
        if !self.media.recordings_store.is_empty() {
            self.media
                .recordings_location()
                .context("media.recordings_store")?;
        }
        if !self.public_base_url.is_empty() {
            url::Url::parse(&self.public_base_url).context("public_base_url is not a URL")?;
        }
        Ok(())
    }

    /// The database URL, defaulting to the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("vkyc.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// The address `/metrics` listens on, when `metrics_listen` names one.
    pub fn metrics_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        match self.metrics_listen.trim() {
            "" => Ok(None),
            addr => addr.parse().map(Some).map_err(|_| {
                anyhow!("{addr:?} is not an address and port such as \"127.0.0.1:9464\"")
            }),
        }
    }

    /// The public base URL, given the address the server actually bound.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        if self.public_base_url.is_empty() {
            format!("http://{bound}")
        } else {
            self.public_base_url.trim_end_matches('/').to_string()
        }
    }
}

impl JourneyConfig {
    /// The deployment's working days and hours, parsed.
    pub fn hours(&self) -> anyhow::Result<crate::domain::slots::Hours> {
        crate::domain::slots::Hours::parse(
            &self.working_days,
            &self.working_hours,
            self.slot_minutes,
        )
    }
}

impl MediaSettings {
    /// How many relay tasks: `shards`, or one per core when 0.
    pub fn shard_count(&self) -> usize {
        match self.shards {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// Where the ICE-TCP port listens: `tcp_bind`, or beside the UDP port by default;
    /// None when turned off.
    pub fn tcp_bind(&self) -> anyhow::Result<Option<std::net::SocketAddr>> {
        match self.tcp_bind.trim() {
            "off" => Ok(None),
            "" => Ok(Some(self.udp_bind.parse().context("media.udp_bind")?)),
            addr => Ok(Some(addr.parse()?)),
        }
    }

    /// The S3 bucket and prefix of a non-empty `recordings_store`, once the endpoint and
    /// the key pair are checked too. (An empty one means the local directory.)
    pub fn recordings_location(&self) -> anyhow::Result<(String, String)> {
        let (bucket, prefix) = parse_store_url(&self.recordings_store)?;
        let endpoint = self.recordings_s3_endpoint.trim_end_matches('/');
        if !endpoint.is_empty() {
            let parsed = url::Url::parse(endpoint)
                .with_context(|| format!("recordings_s3_endpoint {endpoint:?} is not a URL"))?;
            anyhow::ensure!(
                matches!(parsed.scheme(), "http" | "https"),
                "recordings_s3_endpoint must be an http:// or https:// URL"
            );
        }
        anyhow::ensure!(
            self.recordings_s3_access_key.is_empty() == self.recordings_s3_secret_key.is_empty(),
            "recordings_s3_access_key and recordings_s3_secret_key go together"
        );
        Ok((bucket, prefix))
    }
}

/// Parses addresses and CIDR ranges (IPv4 or IPv6); a bare address is a range of one.
pub fn parse_ip_list(items: &[String]) -> anyhow::Result<Vec<IpNet>> {
    items
        .iter()
        .map(|item| {
            let item = item.trim();
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| anyhow::anyhow!("{item:?} is not an IP address or CIDR range"))
        })
        .collect()
}

/// `s3://bucket/some/prefix` → (`bucket`, `some/prefix`).
pub fn parse_store_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| anyhow!("{url:?} is neither empty nor an s3://bucket/prefix URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty()
        || !bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
    {
        bail!("{url:?}: the bucket name is missing or not a valid S3 bucket name");
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|part| part.is_empty()) && !prefix.is_empty() {
        bail!("{url:?}: the prefix has an empty path segment");
    }
    ObjectPath::parse(prefix).with_context(|| format!("{url:?}: the prefix is not a valid key"))?;
    Ok((bucket.to_string(), prefix.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_commented_file() {
        let config = Config::default();
        assert_eq!(config.default_link_expiry_hours, 72);
        assert_eq!(config.environment, Environment::Sandbox);
        assert_eq!(config.metrics_addr().unwrap(), None);
        config.validate().unwrap();
    }

    #[test]
    fn metrics_listen_must_be_an_address() {
        let mut config = Config {
            metrics_listen: "127.0.0.1:9464".into(),
            ..Config::default()
        };
        assert_eq!(
            config.metrics_addr().unwrap(),
            Some("127.0.0.1:9464".parse().unwrap())
        );
        config.metrics_listen = "localhost".into();
        let err = format!("{:#}", config.validate().unwrap_err());
        assert_eq!(
            err,
            "metrics_listen: \"localhost\" is not an address and port such as \"127.0.0.1:9464\""
        );
    }

    #[test]
    fn database_defaults_to_sqlite_in_the_data_dir() {
        let config = Config {
            data_dir: PathBuf::from("/srv/vkyc"),
            ..Config::default()
        };
        assert_eq!(config.database_url(), "sqlite:///srv/vkyc/vkyc.db");
    }
}
