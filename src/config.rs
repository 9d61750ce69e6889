//! Settings: commented defaults < a TOML file < `VKYC_*` environment variables.
//!
//! The defaults are the commented file below, parsed: what `vkyc config` prints is, by
//! construction, what the server uses when nothing else is given.

use anyhow::Context;
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG: &str = r#"# vkyc configuration. Every key can also be set by an environment variable named
# VKYC_<KEY> in upper case (VKYC_LISTEN, VKYC_DATABASE_URL, ...), which wins over this file.

# Address the HTTP server listens on. Port 0 picks a free port (printed at start).
listen = "127.0.0.1:8080"

# Base URL at which customers and merchants reach this server, without a trailing
# slash; `vkyc_link` is "<public_base_url>/v/<token>". Empty: "http://<listen address>".
public_base_url = ""

# Directory for the embedded database and other local files; created on first start.
data_dir = "vkyc-data"

# Database. Empty: SQLite at <data_dir>/vkyc.db. Or a URL: "sqlite:///path/file.db",
# "postgres://user@host:5432/dbname".
database_url = ""

# "sandbox" or "production". A production deployment refuses test credentials and a
# sandbox refuses live ones (400 x-client-secret_value_invalid).
environment = "sandbox"

# Lifetime of a vkyc_link when POST /vkyc does not give link_expiry, in hours.
default_link_expiry_hours = 72

# The furthest in the future a request's link_expiry may be, in hours.
max_link_expiry_hours = 720

# Largest request body accepted, in bytes; larger bodies get 413.
max_body_bytes = 65536

# Seconds a client may take to send a request body before it gets 408.
body_timeout_seconds = 10

# Lifetime of an access token from POST /oauth/token, in seconds.
token_ttl_seconds = 900

# How often the expiry worker looks for links that have expired, in milliseconds.
expiry_interval_ms = 1000

# How long a verified credential is trusted from memory before it is read again from
# the database, in seconds (a revoked secret stops working within this time).
credential_cache_seconds = 30

# Log output: "pretty" or "json". The level comes from RUST_LOG (default "info").
log_format = "pretty"

# The master key that seals client secrets and signature keys at rest: 64 hex digits in
# this file. Empty: <data_dir>/master.key, created with mode 0600 on first start. The
# environment variable VKYC_MASTER_KEY (the 64 hex digits themselves) wins over both.
master_key_file = ""

# Proxies or load balancers in front of this server, as addresses or CIDR ranges. When a
# call comes from one of them, the right-most X-Forwarded-For entry that is not itself a
# trusted proxy is the caller's address (for IP allow-lists); otherwise the header is
# ignored. As an environment variable: VKYC_TRUSTED_PROXIES='["10.0.0.0/8"]'.
trusted_proxies = []

# How long an x-cf-signature stays valid after the time it carries, in seconds. Each
# signature is accepted once within that window.
signature_window_seconds = 300

# Calls per minute per merchant when the merchant has no limit of its own (0: no limit).
# The hosted service's tiers are 100 (standard), 200 (medium) and 5 (restricted).
default_rate_limit_per_minute = 100

# Webhooks. Seconds to wait after each failed attempt (with up to 20 % jitter); after the
# last, the delivery is marked failed. The default retries for about 27.6 hours.
webhook_retry_schedule_seconds = [5, 300, 1800, 7200, 18000, 36000, 36000]
# How long a receiver may take to answer, in seconds.
webhook_timeout_seconds = 10
# How many deliveries run at once (one slow receiver does not hold up the others).
webhook_concurrency = 16
# How often the delivery worker looks for due deliveries, in milliseconds.
webhook_interval_ms = 500
# Allow webhook URLs on loopback, private and link-local addresses. Off, so that a
# merchant cannot make this server call into the network it runs in.
webhook_allow_private_addresses = false
"#;

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
        figment = figment.merge(Env::prefixed("VKYC_").ignore(&["config"]));
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
        crate::auth::parse_ip_list(&self.trusted_proxies).context("trusted_proxies")?;
        anyhow::ensure!(
            (1..=3600).contains(&self.signature_window_seconds),
            "signature_window_seconds must be between 1 and 3600"
        );
        anyhow::ensure!(
            (1..=300).contains(&self.webhook_timeout_seconds),
            "webhook_timeout_seconds must be between 1 and 300"
        );
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

    /// The public base URL, given the address the server actually bound.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        if self.public_base_url.is_empty() {
            format!("http://{bound}")
        } else {
            self.public_base_url.trim_end_matches('/').to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_commented_file() {
        let config = Config::default();
        assert_eq!(config.default_link_expiry_hours, 72);
        assert_eq!(config.environment, Environment::Sandbox);
        config.validate().unwrap();
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
