//! What every part of the running server shares: the store, the configuration, the
//! checkers, the relay. The HTTP surfaces, the call logic and the workers take it; it
//! knows nothing of them, so nothing here imports the module that builds the router.

use crate::auth::Authenticator;
use crate::checks::aadhaar::UidaiCertificate;
use crate::checks::ipcheck::{IpChecker, IpSettings};
use crate::config::Config;
use crate::domain::queue::QueueBoard;
use crate::secrets::MasterKey;
use crate::store::Store;
use ipnet::IpNet;
use std::path::PathBuf;
use std::sync::Arc;

/// What every handler shares. Handlers take it by value, so it is one `Arc`: a clone per
/// request is one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub store: Store,
    pub config: Arc<Config>,
    pub auth: Arc<Authenticator>,
    /// Seals and opens the secrets kept at rest.
    pub key: MasterKey,
    pub limiter: Arc<crate::ratelimit::RateLimiter>,
    /// Bounds on staff sign-ins: password checks per core, attempts per address.
    pub sign_ins: crate::ratelimit::SignIns,
    /// Where merchants and customers reach this server, e.g. `https://kyc.example.in`.
    pub base_url: Arc<str>,
    /// The customer journey's checkers and queue board.
    pub journey: Arc<JourneyServices>,
    /// The media relay (None where `[media] enabled = false`).
    pub media: Option<crate::media::Relay>,
    /// Signs and checks recording links.
    pub signer: crate::domain::recording_links::RecordingSigner,
    /// This server's counters and gauges, served by `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Who this process is among the relay nodes, and how it reaches the others.
    pub node: NodeIdentity,
}

/// This process as a relay node (see `calls::nodes`): a fresh id at every start, so a
/// restarted process is a new node and its predecessor's calls are seen to be gone.
pub struct NodeIdentity {
    pub id: String,
    pub started_at: i64,
    /// Where the other processes reach this one's HTTP port.
    pub internal_url: String,
    /// The bearer token between processes, derived from the master key they share.
    pub token: String,
    /// The client for calls to other nodes (no proxy, short timeouts).
    pub client: reqwest::Client,
}

impl NodeIdentity {
    pub fn new(key: &MasterKey, internal_url: String) -> anyhow::Result<NodeIdentity> {
        Ok(NodeIdentity {
            id: hex::encode(rand::random::<[u8; 8]>()),
            started_at: crate::clock::now_ms(),
            internal_url,
            token: hex::encode(key.derive("vkyc relay node signalling")),
            client: reqwest::Client::builder()
                .no_proxy()
                .connect_timeout(std::time::Duration::from_secs(3))
                .timeout(std::time::Duration::from_secs(120))
                .build()?,
        })
    }
}

/// What the journey needs beside the store, built once at start.
pub struct JourneyServices {
    pub ip: IpChecker,
    /// The operator's UIDAI certificate, or why there is none usable.
    pub uidai: std::result::Result<std::sync::Arc<UidaiCertificate>, String>,
    pub trusted_proxies: Vec<IpNet>,
    pub board: QueueBoard,
    /// Sends the mobile OTP as it is made (None where the `[notify]` settings do not
    /// build; the worker refuses to start then).
    pub notifier: Option<crate::notify::Notifier>,
}

impl JourneyServices {
    pub fn new(config: &crate::config::Config) -> anyhow::Result<JourneyServices> {
        let j = &config.journey;
        let path = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
        let ip = IpChecker::load(&IpSettings {
            country_db: path(&j.ip_country_db),
            anonymous_db: path(&j.ip_anonymous_db),
            proxy_lists: j.ip_proxy_lists.iter().map(PathBuf::from).collect(),
            allowed_countries: vec!["IN".into()],
        });
        let uidai = if j.uidai_certificate.is_empty() {
            Err("no UIDAI certificate is configured".to_string())
        } else {
            std::fs::read(&j.uidai_certificate)
                .map_err(|e| format!("reading the UIDAI certificate: {e}"))
                .and_then(|bytes| {
                    UidaiCertificate::from_pem_or_der(&bytes)
                        .map(std::sync::Arc::new)
                        .map_err(|e| format!("the UIDAI certificate is not usable: {e}"))
                })
        };
        if let Err(reason) = &uidai {
            tracing::warn!(%reason, "Aadhaar offline e-KYC uploads will end in TECHNICAL_FAILURE");
        }
        Ok(JourneyServices {
            ip,
            uidai,
            trusted_proxies: crate::config::parse_ip_list(&config.trusted_proxies)?,
            board: QueueBoard::default(),
            notifier: crate::notify::Notifier::from_config(&config.notify).ok(),
        })
    }
}
