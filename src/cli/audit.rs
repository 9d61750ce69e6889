//! `vkyc audit ...`: check the tamper-evident audit trail, and take an anchor by hand.

use crate::config::Config;
use crate::secrets::{self, MasterKey};
use crate::store::Store;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk every chain and every anchor found; name the first broken link of each
    /// chain. Exits 1 when anything does not hold.
    Verify,
    /// Take an anchor now (the server takes one a day by itself).
    Anchor,
}

pub async fn run(store: &Store, config: &Config, command: AuditCommand) -> anyhow::Result<()> {
    let anchor_dir = config.audit.anchor_dir();
    match command {
        AuditCommand::Verify => {
            let report = crate::audit_trail::verify(store, anchor_dir).await?;
            for broken in &report.broken {
                println!("BROKEN {broken}");
            }
            for problem in &report.anchor_problems {
                println!("ANCHOR {problem}");
            }
            println!(
                "{} chains, {} links, {} anchors checked",
                report.chains, report.links, report.anchors
            );
            anyhow::ensure!(
                report.holds(),
                "the audit trail does not hold: {} broken chains, {} anchor problems",
                report.broken.len(),
                report.anchor_problems.len()
            );
            println!("OK: every chain and anchor holds");
        }
        AuditCommand::Anchor => {
            let key = MasterKey::load_or_create(&secrets::key_path(
                &config.data_dir,
                &config.master_key_file,
            ))?;
            let signer = crate::case_export::signing::ExportSigner::load_or_create_for(
                store,
                &key,
                crate::case_export::signing::ANCHOR_PURPOSE,
            )
            .await?;
            let now = crate::clock::now_ms();
            let anchor = crate::audit_trail::anchor::anchor_now(store, &signer, anchor_dir, now)
                .await?
                .ok_or_else(|| anyhow::anyhow!("another process took this anchor; run again"))?;
            println!(
                "anchor {}: {} chain heads, digest {}",
                anchor.id, anchor.chains, anchor.digest
            );
            if let Some(dir) = anchor_dir {
                println!(
                    "appended to {}",
                    crate::audit_trail::anchor::anchor_file(dir).display()
                );
            }
        }
    }
    Ok(())
}
