//! The `vkyc` command line: serve, migrate, print the default config, manage merchants
//! and staff.

use crate::config::{Config, DEFAULT_CONFIG};
use crate::http::app::Application;
use crate::secrets::{self, MasterKey};
use crate::store::Store;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod audit;
mod backup;
mod records;
mod templates;
pub use audit::AuditCommand;
pub use records::{CaseCommand, CaseRef, RetentionCommand};
pub use templates::TemplateCommand;

#[derive(Parser)]
#[command(
    name = "vkyc",
    version,
    about = "Self-hosted Video KYC with a Cashfree-compatible merchant API"
)]
pub struct Cli {
    /// A TOML configuration file (see `vkyc config`).
    #[arg(long, global = true, env = "VKYC_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Start the server (creates the data directory and database on first start).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the default configuration, with comments.
    Config,
    /// Manage merchants and their API credentials.
    #[command(subcommand)]
    Merchant(MerchantCommand),
    /// Manage staff accounts (admins, agents, auditors) of the desk.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Manage the master key that seals secrets at rest.
    #[command(subcommand, name = "master-key")]
    MasterKey(MasterKeyCommand),
    /// Work with case exports (the signed ZIPs of the desk).
    #[command(subcommand)]
    Export(ExportCommand),
    /// A case's retention: legal holds and the relationship's end.
    #[command(subcommand)]
    Case(CaseCommand),
    /// What the retention rules will purge, and a purge pass now.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Copy the database and the recordings into a new directory while the server runs,
    /// with a manifest of every file's SHA-256. The master key is not included.
    Backup {
        /// An empty or new directory.
        #[arg(long)]
        to: PathBuf,
    },
    /// Put a backup back into an empty data directory (and, on PostgreSQL, an empty
    /// database), after checking every file against its manifest.
    Restore {
        /// The backup directory.
        #[arg(long)]
        from: PathBuf,
        /// The deployment's master key file, kept apart from the backup: checked against
        /// the backup and put where this configuration reads the key.
        #[arg(long)]
        master_key: Option<PathBuf>,
    },
    /// The tamper-evident audit trail (hash chains and daily anchors).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// User and agent templates: list, show, import a new version, export.
    #[command(subcommand)]
    Template(TemplateCommand),
}

#[derive(Subcommand)]
pub enum ExportCommand {
    /// Check a case export: the manifest's signature and every file's SHA-256.
    Verify {
        /// The exported ZIP.
        zip: PathBuf,
        /// The deployment's public key (PEM) to require; without it the key inside the
        /// archive is used, which proves integrity but not origin.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum MasterKeyCommand {
    /// Seal every stored secret under a new master key and replace the key file.
    Rotate,
}

#[derive(Subcommand)]
pub enum StaffCommand {
    /// Create a staff account. Without --password-stdin a strong password is generated
    /// and printed (shown only once).
    Create {
        #[arg(long)]
        username: String,
        /// admin, agent or auditor.
        #[arg(long)]
        role: String,
        /// Read the password from standard input (at least 12 characters).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List staff accounts with their state and, for agents, presence.
    List,
    /// Disable an account: it can no longer sign in, and its sessions end.
    Disable {
        #[arg(long)]
        username: String,
    },
    /// Move a staff member to another role (admin, agent or auditor). Their sessions
    /// end and they go offline; refused while they are on a call or one of their calls
    /// waits for their decision.
    SetRole {
        #[arg(long)]
        username: String,
        /// admin, agent or auditor.
        #[arg(long)]
        role: String,
    },
    /// Set an agent's own working hours (IST), within which the queue gives them
    /// customers and slots count them; --clear returns them to the desk's hours.
    Hours {
        #[arg(long)]
        username: String,
        /// Days, e.g. mon,tue,wed.
        #[arg(long, value_delimiter = ',')]
        days: Vec<String>,
        /// e.g. 09:00-13:00.
        #[arg(long)]
        hours: Option<String>,
        #[arg(long)]
        clear: bool,
    },
    /// Require a TOTP one-time code at login; prints the otpauth:// URI (shown only once).
    /// Run again to replace a lost authenticator: the earlier secret stops working.
    Totp {
        #[arg(long)]
        username: String,
    },
    /// End a lock-out after too many failed logins.
    Unlock {
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand)]
pub enum MerchantCommand {
    /// Create a merchant and print its client id and secret (shown only once).
    Create {
        #[arg(long)]
        name: String,
        /// test (for sandbox deployments) or live (for production deployments).
        #[arg(long, default_value = "test")]
        env: String,
    },
    /// List merchants and their client ids.
    List,
    /// Give a client id a second, new secret (both work until the old one is revoked).
    RotateSecret {
        #[arg(long)]
        client_id: String,
    },
    /// Revoke the older of a client id's two secrets, ending a rotation.
    RevokeSecret {
        #[arg(long)]
        client_id: String,
    },
    /// Allow calls only from these addresses or CIDR ranges (IPv4 or IPv6).
    AllowIp {
        #[arg(long)]
        client_id: String,
        /// An address or range; repeat for more (at most 10, as the hosted service).
        #[arg(long = "ip", required = true)]
        ips: Vec<String>,
    },
    /// Require an x-cf-signature: create an RSA key pair and print the public key.
    Keygen {
        #[arg(long)]
        client_id: String,
    },
    /// Set the merchant's calls per minute: standard (100), medium (200), restricted (5),
    /// a number, unlimited, or default (the deployment's default_rate_limit_per_minute).
    RateLimit {
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        limit: String,
    },
    /// Set the URL that receives the merchant's webhooks (`--url none` removes it).
    Webhook {
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        url: String,
    },
    /// List the merchant's latest webhook deliveries.
    Deliveries {
        #[arg(long)]
        client_id: String,
    },
    /// Send one of the merchant's webhook deliveries again.
    Resend {
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        delivery: i64,
    },
    /// Remove the merchant's second factor (IP allow-list or signature).
    ClearSecondFactor {
        #[arg(long)]
        client_id: String,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Config = cli.command {
        print!("{DEFAULT_CONFIG}");
        return Ok(());
    }
    // Checking an export needs no configuration, database or key of this deployment.
    if let Command::Export(ExportCommand::Verify { zip, public_key }) = &cli.command {
        return verify_export(zip, public_key.as_deref());
    }
    let config = Config::load(cli.config.as_deref())?;
    crate::files::private_umask();
    crate::telemetry::init(&config.log_format);
    match cli.command {
        Command::Config | Command::Export(_) => unreachable!("handled above"),
        Command::Serve => serve(config).await,
        Command::Migrate => {
            crate::files::private_dir(&config.data_dir)?;
            // The upgrade seals personal data written in clear by earlier versions.
            let (_, store) = operations::master_key::open(&config).await?;
            let chained = crate::audit_trail::chain_unsealed(&store).await;
            store.close().await;
            println!("migrations applied");
            let chained = chained?;
            if chained > 0 {
                println!("{chained} rows added to the audit trail's chains");
            }
            Ok(())
        }
        Command::Merchant(command) => {
            crate::files::private_dir(&config.data_dir)?;
            let (key, store) = operations::master_key::open(&config).await?;
            let result = merchant(&store, &key, &config, command).await;
            store.close().await;
            result
        }
        Command::Staff(command) => {
            crate::files::private_dir(&config.data_dir)?;
            let (key, store) = operations::master_key::open(&config).await?;
            let result = staff(&store, &key, &config, command).await;
            store.close().await;
            result
        }
        Command::Case(command) => {
            let store = open_store(&config).await?;
            let result = records::case(&store, command).await;
            store.close().await;
            result
        }
        Command::Retention(command) => {
            let store = open_store(&config).await?;
            let result = records::retention(&store, &config, command).await;
            store.close().await;
            result
        }
        Command::Audit(command) => {
            let store = open_store(&config).await?;
            let result = audit::run(&store, &config, command).await;
            store.close().await;
            result
        }
        Command::Template(command) => {
            let store = open_store(&config).await?;
            let result = templates::run(&store, command).await;
            store.close().await;
            result
        }
        // Neither creates the data directory or a key: a backup reads a running
        // deployment, a restore refuses anything but an empty one.
        Command::Backup { to } => backup::backup(&config, &to).await,
        Command::Restore { from, master_key } => {
            backup::restore(&config, &from, master_key.as_deref()).await
        }
        Command::MasterKey(MasterKeyCommand::Rotate) => {
            crate::files::private_dir(&config.data_dir)?;
            let path = secrets::key_path(&config.data_dir, &config.master_key_file);
            let (_, store) = operations::master_key::open(&config).await?;
            let result = rotate_master_key(&path, &store).await;
            store.close().await;
            result
        }
    }
}

use crate::operations::{self, for_cli, Actor};

async fn merchant(
    store: &Store,
    key: &MasterKey,
    config: &Config,
    command: MerchantCommand,
) -> anyhow::Result<()> {
    let actor = Actor::Cli;
    match command {
        MerchantCommand::Create { name, env } => {
            let env = operations::merchants::parse_env(&env).map_err(for_cli)?;
            let created = operations::merchants::create(store, key, &actor, &name, env)
                .await
                .map_err(for_cli)?;
            println!(
                "merchant {} created ({} environment)",
                created.merchant.id,
                env.as_str()
            );
            println!("client id:     {}", created.client_id);
            println!("client secret: {}", created.secret);
            println!("The secret is shown only this once: store it now.");
        }
        MerchantCommand::List => {
            for (merchant, client_ids) in store.merchants().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    merchant.id,
                    merchant.env.as_str(),
                    merchant.name,
                    client_ids.join(",")
                );
            }
        }
        MerchantCommand::RotateSecret { client_id } => {
            let merchant = operations::merchants::find(store, &client_id)
                .await
                .map_err(for_cli)?;
            let secret =
                operations::merchants::rotate_secret(store, key, &actor, &merchant, &client_id)
                    .await
                    .map_err(|e| anyhow::anyhow!("{} (vkyc merchant revoke-secret)", for_cli(e)))?;
            println!("client id:         {client_id}");
            println!("new client secret: {secret}");
            println!(
                "Both secrets work until `vkyc merchant revoke-secret --client-id {client_id}`."
            );
        }
        MerchantCommand::RevokeSecret { client_id } => {
            operations::merchants::find(store, &client_id)
                .await
                .map_err(for_cli)?;
            operations::merchants::revoke_secret(store, &actor, &client_id)
                .await
                .map_err(|e| anyhow::anyhow!("{} (vkyc merchant rotate-secret)", for_cli(e)))?;
            println!("the older secret of {client_id} is revoked");
        }
        MerchantCommand::AllowIp { client_id, ips } => {
            let merchant = operations::merchants::find(store, &client_id)
                .await
                .map_err(for_cli)?;
            let list = operations::merchants::allow_ips(store, &actor, &merchant, &ips)
                .await
                .map_err(for_cli)?;
            println!("{client_id} may call only from: {}", list.join(", "));
        }
        MerchantCommand::Keygen { client_id } => {
            let merchant = operations::merchants::find(store, &client_id)
                .await
                .map_err(for_cli)?;
            let public_pem = operations::merchants::keygen(store, key, &actor, &merchant)
                .await
                .map_err(for_cli)?;
            println!(
                "{client_id} must now send x-cf-signature. Give the merchant this public key:"
            );
            print!("{public_pem}");
        }
        MerchantCommand::RateLimit { client_id, limit } => {
            let merchant = operations::merchants::find(store, &client_id)
                .await
                .map_err(for_cli)?;
            let per_minute =
                operations::merchants::set_rate_limit(store, &actor, &merchant, &limit)
                    .await
                    .map_err(for_cli)?;
            match per_minute {
                None => println!("{client_id} uses the deployment's default rate limit"),
                Some(0) => println!("{client_id} has no rate limit"),
                Some(n) => println!("{client_id} may make {n} calls per minute"),
            }
        }
        MerchantCommand::Webhook { client_id, url } => {
            let merchant = operations::merchants::find(store, &client_id)
                .await
                .map_err(for_cli)?;
            let url = (url != "none").then_some(url.as_str());
            match operations::merchants::set_webhook(store, config, &actor, &merchant, url)
                .await
                .map_err(for_cli)?
            {
                None => println!("{client_id} has no webhook URL"),
                Some(url) => println!("{client_id} webhooks go to {url}"),
            }
        }
        MerchantCommand::Deliveries { client_id } => {
            let merchant = operations::merchants::find(store, &client_id)
                .await
                .map_err(for_cli)?;
            for d in store.deliveries(merchant.id, None, 100).await? {
                println!(
                    "{}\t{}\t{}\t{}#{}\t{}\tattempts={}\t{}",
                    d.id,
                    d.status,
                    d.event_type,
                    d.verification_id,
                    d.seq,
                    d.url,
                    d.attempts,
                    d.last_error.unwrap_or_default()
                );
            }
        }
        MerchantCommand::Resend {
            client_id,
            delivery,
        } => {
            let merchant = operations::merchants::find(store, &client_id)
                .await
                .map_err(for_cli)?;
            let id = store
                .resend(merchant.id, delivery)
                .await?
                .ok_or_else(|| anyhow::anyhow!("{client_id} has no delivery {delivery}"))?;
            println!("delivery {delivery} queued again as delivery {id}");
        }
        MerchantCommand::ClearSecondFactor { client_id } => {
            let merchant = operations::merchants::find(store, &client_id)
                .await
                .map_err(for_cli)?;
            operations::merchants::clear_second_factor(store, &actor, &merchant)
                .await
                .map_err(for_cli)?;
            println!("{client_id} has no second factor");
        }
    }
    Ok(())
}

async fn staff(
    store: &Store,
    key: &MasterKey,
    config: &Config,
    command: StaffCommand,
) -> anyhow::Result<()> {
    use operations::staff as ops;
    let actor = Actor::Cli;
    match command {
        StaffCommand::Create {
            username,
            role,
            password_stdin,
        } => {
            let role = ops::parse_role(&role).map_err(for_cli)?;
            let password = if password_stdin {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
                Some(text.trim_end_matches(['\r', '\n']).to_string())
            } else {
                None
            };
            let (created, generated) = ops::create(store, &actor, &username, role, password)
                .await
                .map_err(for_cli)?;
            println!(
                "staff {} created: {} ({})",
                created.id, created.username, role
            );
            if let Some(password) = generated {
                println!("password: {password}");
                println!("The password is shown only this once: hand it over now.");
            }
        }
        StaffCommand::List => {
            for member in ops::list(store, config).await.map_err(for_cli)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    member.id,
                    member.username,
                    member.role,
                    member.state,
                    if member.totp { "totp" } else { "no-totp" },
                    member.presence.unwrap_or("-")
                );
            }
        }
        StaffCommand::Disable { username } => {
            let member = ops::find(store, &username).await.map_err(for_cli)?;
            ops::disable(store, &actor, &member)
                .await
                .map_err(for_cli)?;
            println!("{} is disabled and signed out", member.username);
        }
        StaffCommand::SetRole { username, role } => {
            let role = ops::parse_role(&role).map_err(for_cli)?;
            let member = ops::find(store, &username).await.map_err(for_cli)?;
            ops::set_role(store, &actor, &member, role)
                .await
                .map_err(for_cli)?;
            println!(
                "{} is now {role} (was {}); their sessions ended",
                member.username, member.role
            );
        }
        StaffCommand::Hours {
            username,
            days,
            hours,
            clear,
        } => {
            let member = ops::find(store, &username).await.map_err(for_cli)?;
            let given = if clear {
                None
            } else {
                let hours = hours.ok_or_else(|| anyhow::anyhow!("give --hours or --clear"))?;
                Some((days, hours))
            };
            let stored = ops::set_hours(
                store,
                &actor,
                &member,
                given.as_ref().map(|(d, h)| (d.as_slice(), h.as_str())),
            )
            .await
            .map_err(for_cli)?;
            match stored {
                Some(s) => println!("{} works {s}", member.username),
                None => println!("{} works the desk's hours", member.username),
            }
        }
        StaffCommand::Totp { username } => {
            let member = ops::find(store, &username).await.map_err(for_cli)?;
            let uri = ops::reset_totp(store, key, &actor, &member)
                .await
                .map_err(for_cli)?;
            println!(
                "{} must now give a one-time code at login. Add this to an authenticator app \
                 (shown only this once):",
                member.username
            );
            println!("{uri}");
        }
        StaffCommand::Unlock { username } => {
            let member = ops::find(store, &username).await.map_err(for_cli)?;
            ops::unlock(store, &actor, &member).await.map_err(for_cli)?;
            println!("{} may sign in again", member.username);
        }
    }
    Ok(())
}

/// Writes the new key beside the old one first, re-seals every value (secrets and
/// personal data) in one transaction, then moves the new key into place, keeping the old
/// one as `<file>.old`. A crash in between leaves either the old key valid, or the new one
/// in `<file>.new`. `store` was opened with the old key.
async fn rotate_master_key(path: &std::path::Path, store: &Store) -> anyhow::Result<()> {
    let from_env = std::env::var("VKYC_MASTER_KEY").is_ok_and(|v| !v.trim().is_empty());
    let new = MasterKey::generate();
    let staged = path.with_extension("key.new");
    if !from_env {
        let _ = std::fs::remove_file(&staged);
        new.write(&staged)?;
    }
    let count = store.rotate_master_key(&new).await?;
    if from_env {
        println!("{count} values re-sealed. Set VKYC_MASTER_KEY to the new key now:");
        println!("{}", new.to_hex());
    } else {
        std::fs::rename(path, path.with_extension("key.old"))?;
        std::fs::rename(&staged, path)?;
        println!(
            "{count} values re-sealed; new key in {} (the old one in {}.old)",
            path.display(),
            path.with_extension("key").display()
        );
    }
    Ok(())
}

fn verify_export(
    zip: &std::path::Path,
    public_key: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let expected = public_key
        .map(|p| {
            std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))
        })
        .transpose()?;
    let verified = crate::case_export::verify(zip, expected.as_deref())?;
    println!(
        "OK: case {} (reference {}), exported {} by {}",
        verified.manifest["verification_id"].as_str().unwrap_or("?"),
        verified.manifest["reference_id"],
        verified.manifest["exported_at"].as_str().unwrap_or("?"),
        verified.manifest["exported_by"].as_str().unwrap_or("?"),
    );
    println!(
        "{} files match manifest.json, whose Ed25519 signature verifies under {}",
        verified.files,
        if expected.is_some() {
            "the given public key"
        } else {
            "the public key inside the archive (compare it with the deployment's)"
        }
    );
    Ok(())
}

/// The data directory made private, the master key loaded and the database opened (and
/// migrated), for a command that works on the database.
async fn open_store(config: &Config) -> anyhow::Result<Store> {
    crate::files::private_dir(&config.data_dir)?;
    Ok(operations::master_key::open(config).await?.1)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    let shutdown = app.shutdown_token();
    tokio::spawn(async move {
        crate::telemetry::stop_signal().await;
        // Cancel first: logging can fail (a closed stderr) and must not stop the stop.
        shutdown.cancel();
        tracing::info!("stop signal received; finishing in-flight requests");
    });
    // Printed, not logged: the bootstrap secret must not end up in log files.
    println!(
        "vkyc {} listening on {}",
        env!("CARGO_PKG_VERSION"),
        app.local_addr()
    );
    println!("merchant API: {}/verification", app.base_url());
    if let Some(addr) = app.metrics_addr() {
        println!("metrics: http://{addr}/metrics");
    }
    if let Some(bootstrap) = &app.bootstrap {
        println!("bootstrap test merchant created (the secret is shown only this once):");
        println!("  client id:     {}", bootstrap.client_id);
        println!("  client secret: {}", bootstrap.secret);
    }
    use std::io::Write;
    std::io::stdout().flush()?;
    app.run().await
}
