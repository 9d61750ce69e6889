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

pub const DEFAULT_CONFIG: &str = r#"# vkyc configuration. Every key can also be set by an environment variable named
# VKYC_<KEY> in upper case (VKYC_LISTEN, VKYC_DATABASE_URL, ...), which wins over this file;
# a key inside a [table] with a double underscore (VKYC_MEDIA__UDP_BIND).

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
# The proxy webhook deliveries go through ("http://proxy.internal:3128"), or "" for none.
# The environment's HTTP_PROXY, HTTPS_PROXY and ALL_PROXY are never used for webhooks: a
# proxy resolves names itself, out of the guard's sight. Through this proxy, each target
# name is still resolved and checked here first.
webhook_proxy = ""

# Connections: a client must send a request's headers within this many seconds (a
# keep-alive connection left idle that long is closed too), and at most max_connections
# are open at once (kept below the process's open-files limit, which is raised to its hard
# limit at start; a connection over the cap waits until one closes).
header_read_timeout_seconds = 10
max_connections = 10000

# Prometheus metrics (GET /metrics, see docs/metrics.md) on an address of their own, e.g.
# "127.0.0.1:9464", so that they stay off the public port. Empty: no metrics listener.
metrics_listen = ""

# Staff desk (/desk). After this many consecutive failed logins an account is locked for
# staff_lockout_minutes; a locked account is refused like a wrong password.
staff_lockout_attempts = 5
staff_lockout_minutes = 15
# Sign-in attempts one address may make per minute (per process); 0 for no limit. Over
# it: 429 too_many_logins with Retry-After. Password checks also run at most one per core
# at a time; a sign-in that waits over 2 s for its turn gets the same 429.
staff_login_attempts_per_minute = 30
# How long a desk session lasts after login, in hours.
staff_session_hours = 12
# An online agent whose last heartbeat (the desk sends one every 10 s) is older than this
# counts as gone, in seconds.
agent_stale_seconds = 30

# ---- The customer journey behind each vkyc_link ----
[journey]
# Minutes a customer has to upload the Aadhaar offline e-KYC file once the step opens;
# later, the step ends as AADHAAR_VERIFICATION_EXPIRED and starts again.
aadhaar_session_minutes = 15
# Checks a customer may run on one journey step (Aadhaar uploads, IP, location, devices)
# within step_attempt_window_minutes; past that the step waits (429 too_many_attempts
# with Retry-After). The Aadhaar attempt that reaches the limit and fails ends as
# AADHAAR_VERIFICATION_FAILED with reason too_many_attempts.
step_attempts = 5
step_attempt_window_minutes = 15
# UIDAI's certificate (PEM or DER) that signs offline e-KYC files. Empty: the Aadhaar
# upload ends in TECHNICAL_FAILURE (merchants can still send aadhaar_details).
uidai_certificate = ""
# Largest Aadhaar ZIP accepted, in bytes.
aadhaar_max_upload_bytes = 5242880
# IP-to-country database in MaxMind format (GeoLite2/GeoIP2 Country or City .mmdb).
# Empty on a sandbox: every address counts as Indian (recorded as such); empty on a
# production deployment: the IP step ends in TECHNICAL_FAILURE.
ip_country_db = ""
# Optional GeoIP2-Anonymous-IP format database (VPN, hosting, Tor, public proxy).
ip_anonymous_db = ""
# Files of addresses and CIDR ranges to treat as VPNs or proxies, one per line.
ip_proxy_lists = []
# When the desk works, in India Standard Time: days (mon..sun) and "HH:MM-HH:MM".
# Outside these hours nobody can join the live queue (NO_AGENT_FOUND) and no slot is
# offered.
working_days = ["mon", "tue", "wed", "thu", "fri", "sat"]
working_hours = "09:00-18:00"
# Length of a bookable slot, and how many days ahead a customer may book.
slot_minutes = 15
booking_days_ahead = 7
# Customers each agent can see in one slot.
slot_capacity_per_agent = 1
# A customer may come for a booked slot from this many minutes before its start, and is
# marked USER_MISSED_MEETING when not there this many minutes after it.
slot_early_minutes = 10
slot_grace_minutes = 15
# Minutes before a booked slot when the reminder goes out.
slot_reminder_minutes = 30
# Average call length to assume until calls have been measured, in seconds.
default_call_seconds = 300
# How often the queue's state is read and pushed to waiting customers, in milliseconds.
queue_interval_ms = 1000

# ---- The video call ----
[calls]
# Seconds a customer has to accept an agent's invitation (else USER_MISSED_MEETING).
invite_seconds = 60
# Seconds a side's media may be lost before it has dropped off (USER_DROPPED_OFF /
# AGENT_DROPPED_OFF); also how long both sides have to connect once the call starts.
drop_grace_seconds = 20
# How long a recording_link stays valid once shown, in seconds.
recording_link_ttl_seconds = 3600
# Wrap-up: an agent whose call has ended is given no new customer until that call is
# decided, for at most this many seconds. Past it the agent is free again and the
# undecided case is written to the staff audit (`wrap_up_expired`) for a supervisor.
wrap_up_seconds = 900
# The deployment's own questions, asked beside the merchant's security_questions.
questions = ["Please tell me your full name.", "Please tell me your date of birth.", "Please tell me the city you live in."]

# ---- The media relay: each browser holds one WebRTC connection to it ----
[media]
# Turn the relay off only on a server that hosts no calls.
enabled = true
# The UDP port calls use ("0.0.0.0:3478"; port 0 picks a free one); with several
# shards (below), shard i uses this port + i.
udp_bind = "0.0.0.0:3478"
# The address browsers reach that port at (the server's public or LAN address).
advertised_ip = "127.0.0.1"
# The TCP port for browsers on networks that block UDP (ICE-TCP, RFC 4571 framing). It
# is offered beside the UDP port with a lower priority, so a browser uses it only when
# UDP fails, with no setting on its side. Empty: the same address and port number as
# udp_bind; "off": UDP only.
tcp_bind = ""
# TURN servers handed to both browsers of every call, for networks where only TLS on
# 443 gets out (coturn; see docs/calls.md), e.g.
# ["turn:turn.example.in:3478?transport=udp", "turns:turn.example.in:443?transport=tcp"].
turn_urls = []
# The TURN server's shared secret (coturn's static-auth-secret, the TURN REST API): each
# call's browsers get the username "<expiry>:<call id>" and the password
# base64(HMAC-SHA1(secret, username)), valid for turn_ttl_seconds.
turn_shared_secret = ""
turn_ttl_seconds = 3600
# Relay tasks: one per core (0) lets one process relay on every core. Shard i listens on
# udp_bind's port + i (and tcp_bind's + i), so open that many ports in the firewall;
# each call lives on one shard. 1 keeps a single UDP and TCP port.
shards = 0
# Where recordings are written. Empty: <data_dir>/recordings.
recordings_dir = ""
# Where finished recordings are kept. Empty: in recordings_dir. Or an S3-compatible
# bucket, "s3://bucket/prefix": each call's <id>.webm and <id>.json are uploaded there
# when the call ends and the local files removed (kept, and logged, if the upload fails).
recordings_store = ""
# The S3 endpoint. Empty: AWS (or AWS_ENDPOINT). A MinIO or other S3-compatible server:
# "http://127.0.0.1:9000" (plain http is allowed only when given here).
recordings_s3_endpoint = ""
# The bucket's region; Mumbai by default, so recordings stay in India.
recordings_s3_region = "ap-south-1"
# Credentials. Empty: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or an instance role).
recordings_s3_access_key = ""
recordings_s3_secret_key = ""

# ---- How long personal data is kept (docs/records.md) ----
[retention]
# Approved cases: years after the business relationship ends (the merchant's
# POST /verification/vkyc/relationship-end or `vkyc case relationship-end`); RBI's KYC
# Master Direction asks for at least five. Without an end date they are kept.
approved_years = 5
# Requests that ended without approval (rejected, expired, abandoned): days after their
# last move before their personal data is removed (DPDP Act: no longer than needed).
closed_days = 180
# Requests of test merchants: days after creation, whatever their state.
sandbox_days = 30
# How often the purge worker runs, and how many requests it purges per run at most.
purge_interval_seconds = 3600
purge_batch = 500

# ---- The tamper-evident audit trail (docs/records.md) ----
[audit]
# A directory the daily anchor (a signed digest of the audit chains' heads) is appended
# to, as anchors.jsonl, beside its log line. Put it where this server can only append:
# another volume or host, or an S3 bucket with object lock. Empty: the log only.
anchor_dir = ""

# ---- Messages to customers (notification_types) ----
[notify]
# SMTP server for email: "smtp://user:pass@host:587" (STARTTLS required), "smtps://..."
# or "smtp://127.0.0.1:25?tls=none". Empty: email is not sent.
smtp_url = ""
email_from = ""
# SMS and WhatsApp go through an HTTP provider. Example:
# [notify.sms]
# url = "https://sms.example.in/send"
# headers = { authorization = "Bearer ..." }
# body = '{"to":"{{to}}","text":"{{text}}"}'
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
