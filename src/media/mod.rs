// TEMPORARY STUB until the relay lands.
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
pub struct MediaConfig {
    pub udp_bind: SocketAddr,
    pub advertised_ip: IpAddr,
    pub recordings_dir: PathBuf,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Side {
    Customer,
    Agent,
}
#[derive(Clone, Debug, serde::Serialize)]
pub enum MediaEvent {
    Connected { call_id: String, side: Side },
    Disconnected { call_id: String, side: Side },
}
#[derive(Clone, Debug, serde::Serialize)]
pub struct Recording {
    pub path: PathBuf,
    pub sidecar: PathBuf,
    pub started_at_ms: i64,
    pub duration_ms: i64,
    pub bytes: u64,
}
#[derive(Clone)]
pub struct Relay {
    tx: tokio::sync::broadcast::Sender<MediaEvent>,
}
impl Relay {
    pub async fn start(_c: MediaConfig) -> anyhow::Result<Relay> {
        Ok(Relay {
            tx: tokio::sync::broadcast::channel(16).0,
        })
    }
    pub fn local_addr(&self) -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }
    pub async fn open_call(&self, _id: &str, _m: serde_json::Value) -> anyhow::Result<()> {
        Ok(())
    }
    pub async fn join(&self, _id: &str, _s: Side, _o: &str) -> anyhow::Result<String> {
        anyhow::bail!("stub")
    }
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<MediaEvent> {
        self.tx.subscribe()
    }
    pub async fn end_call(&self, _id: &str) -> anyhow::Result<Option<Recording>> {
        Ok(None)
    }
}
