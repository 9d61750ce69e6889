//! The `vkyc` command line: serve, migrate, print the default config, manage merchants
//! and staff.

use crate::auth::NewCredential;
use crate::clock::now_ms;
use crate::config::parse_ip_list;
use crate::config::{Config, DEFAULT_CONFIG};
use crate::http::app::Application;
use crate::http::desk;
use crate::secrets::{self, MasterKey};
use crate::store::{Merchant, MerchantEnv, Role, Staff, Store};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

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
    Totp {
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
            let store = Store::open(&config.database_url()).await?;
            store.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Merchant(command) => {
            crate::files::private_dir(&config.data_dir)?;
            let key = MasterKey::load_or_create(&secrets::key_path(
                &config.data_dir,
                &config.master_key_file,
            ))?;
            let store = Store::open(&config.database_url()).await?;
            let result = merchant(&store, &key, &config, command).await;
            store.close().await;
            result
        }
        Command::Staff(command) => {
            crate::files::private_dir(&config.data_dir)?;
            let key = MasterKey::load_or_create(&secrets::key_path(
                &config.data_dir,
                &config.master_key_file,
            ))?;
            let store = Store::open(&config.database_url()).await?;
            let result = staff(&store, &key, &config, command).await;
            store.close().await;
            result
        }
        Command::MasterKey(MasterKeyCommand::Rotate) => {
            crate::files::private_dir(&config.data_dir)?;
            let store = Store::open(&config.database_url()).await?;
            let result = rotate_master_key(&config, &store).await;
            store.close().await;
            result
        }
    }
}

async fn find_merchant(store: &Store, client_id: &str) -> anyhow::Result<Merchant> {
    store
        .merchant_by_client_id(client_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no merchant has client id {client_id}"))
}

async fn merchant(
    store: &Store,
    key: &MasterKey,
    config: &Config,
    command: MerchantCommand,
) -> anyhow::Result<()> {
    match command {
        MerchantCommand::Create { name, env } => {
            let env: MerchantEnv = env.parse()?;
            anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
            let credential = NewCredential::generate(env);
            let merchant = store
                .create_merchant(
                    name.trim(),
                    env,
                    &credential.client_id,
                    &credential.digest(),
                    &credential.sealed(key),
                )
                .await?;
            println!(
                "merchant {} created ({} environment)",
                merchant.id,
                env.as_str()
            );
            println!("client id:     {}", credential.client_id);
            println!("client secret: {}", credential.secret);
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
            let merchant = find_merchant(store, &client_id).await?;
            let mut credential = NewCredential::generate(merchant.env);
            credential.client_id = client_id.clone();
            let added = store
                .add_secret(
                    merchant.id,
                    &client_id,
                    &credential.digest(),
                    &credential.sealed(key),
                )
                .await?;
            anyhow::ensure!(
                added,
                "{client_id} already has two secrets: revoke the old one first (vkyc merchant revoke-secret)"
            );
            println!("client id:         {client_id}");
            println!("new client secret: {}", credential.secret);
            println!(
                "Both secrets work until `vkyc merchant revoke-secret --client-id {client_id}`."
            );
        }
        MerchantCommand::RevokeSecret { client_id } => {
            find_merchant(store, &client_id).await?;
            anyhow::ensure!(
                store.revoke_oldest_secret(&client_id).await?,
                "{client_id} has only one secret; rotate first (vkyc merchant rotate-secret)"
            );
            println!("the older secret of {client_id} is revoked");
        }
        MerchantCommand::AllowIp { client_id, ips } => {
            let merchant = find_merchant(store, &client_id).await?;
            anyhow::ensure!(ips.len() <= 10, "at most 10 addresses or ranges");
            let nets = parse_ip_list(&ips)?;
            let list: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
            let json = serde_json::to_string(&list)?;
            store
                .set_second_factor(merchant.id, "ip", Some(&json), None)
                .await?;
            println!("{client_id} may call only from: {}", list.join(", "));
        }
        MerchantCommand::Keygen { client_id } => {
            use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
            let merchant = find_merchant(store, &client_id).await?;
            let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
            let public_pem = private.to_public_key().to_public_key_pem(LineEnding::LF)?;
            let sealed = key.seal(private.to_pkcs8_der()?.as_bytes());
            store
                .set_second_factor(merchant.id, "signature", None, Some((&public_pem, &sealed)))
                .await?;
            println!(
                "{client_id} must now send x-cf-signature. Give the merchant this public key:"
            );
            print!("{public_pem}");
        }
        MerchantCommand::RateLimit { client_id, limit } => {
            let merchant = find_merchant(store, &client_id).await?;
            let per_minute = match limit.as_str() {
                "default" => None,
                text => Some(crate::ratelimit::parse_limit(text).ok_or_else(|| {
                    anyhow::anyhow!(
                        "--limit must be standard, medium, restricted, unlimited, default or a number"
                    )
                })?),
            };
            store
                .set_rate_limit(merchant.id, per_minute.map(i64::from))
                .await?;
            match per_minute {
                None => println!("{client_id} uses the deployment's default rate limit"),
                Some(0) => println!("{client_id} has no rate limit"),
                Some(n) => println!("{client_id} may make {n} calls per minute"),
            }
        }
        MerchantCommand::Webhook { client_id, url } => {
            let merchant = find_merchant(store, &client_id).await?;
            if url == "none" {
                store.set_webhook_url(merchant.id, None).await?;
                println!("{client_id} has no webhook URL");
            } else {
                let allow = config.webhook_allow_private_addresses;
                let url = crate::outbound::check_url(&url, allow)
                    .map_err(|reason| anyhow::anyhow!("--url: {reason}"))?;
                store
                    .set_webhook_url(merchant.id, Some(url.as_str()))
                    .await?;
                println!("{client_id} webhooks go to {url}");
            }
        }
        MerchantCommand::Deliveries { client_id } => {
            let merchant = find_merchant(store, &client_id).await?;
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
            let merchant = find_merchant(store, &client_id).await?;
            let id = store
                .resend(merchant.id, delivery)
                .await?
                .ok_or_else(|| anyhow::anyhow!("{client_id} has no delivery {delivery}"))?;
            println!("delivery {delivery} queued again as delivery {id}");
        }
        MerchantCommand::ClearSecondFactor { client_id } => {
            let merchant = find_merchant(store, &client_id).await?;
            store
                .set_second_factor(merchant.id, "none", None, None)
                .await?;
            println!("{client_id} has no second factor");
        }
    }
    Ok(())
}

async fn find_staff(store: &Store, username: &str) -> anyhow::Result<Staff> {
    let username = desk::normalize_username(username);
    store
        .staff_by_username(&username)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no staff member is called {username}"))
}

/// The operator's command line acts as nobody in particular: its audit rows have no
/// staff id and no address.
async fn cli_audit(store: &Store, action: &str, target: &str) -> anyhow::Result<()> {
    store
        .insert_staff_audit(None, now_ms(), action, Some(target), None, Some("vkyc cli"))
        .await?;
    Ok(())
}

async fn staff(
    store: &Store,
    key: &MasterKey,
    config: &Config,
    command: StaffCommand,
) -> anyhow::Result<()> {
    match command {
        StaffCommand::Create {
            username,
            role,
            password_stdin,
        } => {
            let role: Role = role.parse()?;
            let username = desk::normalize_username(&username);
            anyhow::ensure!(
                desk::valid_username(&username),
                "--username must be 1 to 64 characters: a-z, 0-9, '.', '_', '-', '@'"
            );
            let (password, generated) = if password_stdin {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
                let password = text.trim_end_matches(['\r', '\n']).to_string();
                anyhow::ensure!(
                    password.chars().count() >= desk::MIN_PASSWORD_LEN
                        && password.len() <= desk::MAX_PASSWORD_LEN,
                    "the password must be {} to {} characters",
                    desk::MIN_PASSWORD_LEN,
                    desk::MAX_PASSWORD_LEN
                );
                (password, false)
            } else {
                (desk::generate_password(), true)
            };
            let hash = desk::hash_password(&password)?;
            let created = store
                .create_staff(&username, role, &hash, now_ms())
                .await?
                .ok_or_else(|| anyhow::anyhow!("a staff member is already called {username}"))?;
            cli_audit(store, "staff_created", &username).await?;
            println!("staff {} created: {} ({})", created.id, username, role);
            if generated {
                println!("password: {password}");
                println!("The password is shown only this once: hand it over now.");
            }
        }
        StaffCommand::List => {
            let now = now_ms();
            let stale_ms = config.agent_stale_seconds as i64 * 1000;
            for (member, presence) in store.list_staff().await? {
                let state = if member.disabled_at.is_some() {
                    "disabled"
                } else if member.locked_until.is_some_and(|until| until > now) {
                    "locked"
                } else {
                    "active"
                };
                let presence = match presence {
                    _ if member.role != Role::Agent => "-",
                    Some(p) if p.online && p.last_seen > now - stale_ms => "online",
                    _ => "offline",
                };
                let totp = if member.totp_secret_enc.is_some() {
                    "totp"
                } else {
                    "no-totp"
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    member.id, member.username, member.role, state, totp, presence
                );
            }
        }
        StaffCommand::Disable { username } => {
            let member = find_staff(store, &username).await?;
            anyhow::ensure!(
                store.disable_staff(member.id, now_ms()).await?,
                "{} is already disabled",
                member.username
            );
            cli_audit(store, "staff_disabled", &member.username).await?;
            println!("{} is disabled and signed out", member.username);
        }
        StaffCommand::SetRole { username, role } => {
            let role: Role = role.parse()?;
            let member = find_staff(store, &username).await?;
            anyhow::ensure!(
                member.disabled_at.is_none(),
                "{} is disabled",
                member.username
            );
            anyhow::ensure!(member.role != role, "{} is already {role}", member.username);
            anyhow::ensure!(
                store.set_staff_role(member.id, role, now_ms()).await?,
                "{} is on a call or has a call waiting for their decision (or was disabled \
                 meanwhile): try again once it is decided",
                member.username
            );
            let change = format!("{} -> {role}", member.role);
            store
                .insert_staff_audit(
                    None,
                    now_ms(),
                    "staff_role_changed",
                    Some(&member.username),
                    None,
                    Some(&format!("vkyc cli: {change}")),
                )
                .await?;
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
            let member = find_staff(store, &username).await?;
            let stored = if clear {
                None
            } else {
                let hours = hours.ok_or_else(|| anyhow::anyhow!("give --hours or --clear"))?;
                // Checked as the queue will read it.
                crate::domain::slots::Hours::parse(&days, &hours, 15)?;
                Some(serde_json::json!({ "days": days, "hours": hours }).to_string())
            };
            store
                .set_working_hours(member.id, stored.as_deref())
                .await?;
            store
                .insert_staff_audit(
                    None,
                    now_ms(),
                    "working_hours_set",
                    Some(&member.username),
                    None,
                    Some(stored.as_deref().unwrap_or("the desk's hours")),
                )
                .await?;
            match stored {
                Some(s) => println!("{} works {s}", member.username),
                None => println!("{} works the desk's hours", member.username),
            }
        }
        StaffCommand::Totp { username } => {
            let member = find_staff(store, &username).await?;
            anyhow::ensure!(
                member.disabled_at.is_none(),
                "{} is disabled",
                member.username
            );
            let secret = desk::totp::generate_secret();
            store
                .set_totp_secret(member.id, Some(&key.seal(&secret)))
                .await?;
            cli_audit(store, "totp_enabled", &member.username).await?;
            println!(
                "{} must now give a one-time code at login. Add this to an authenticator app \
                 (shown only this once):",
                member.username
            );
            println!("{}", desk::totp::otpauth_uri(&member.username, &secret));
        }
    }
    Ok(())
}

/// Writes the new key beside the old one first, re-seals every value in one transaction,
/// then moves the new key into place, keeping the old one as `<file>.old`. A crash
/// in between leaves either the old key valid, or the new one in `<file>.new`.
async fn rotate_master_key(config: &Config, store: &Store) -> anyhow::Result<()> {
    let path = secrets::key_path(&config.data_dir, &config.master_key_file);
    let from_env = std::env::var("VKYC_MASTER_KEY").is_ok_and(|v| !v.trim().is_empty());
    let old = MasterKey::load_or_create(&path)?;
    let new = MasterKey::generate();
    let staged = path.with_extension("key.new");
    if !from_env {
        let _ = std::fs::remove_file(&staged);
        new.write(&staged)?;
    }
    let mut values = store.sealed_values().await?;
    for (_, _, sealed) in values.iter_mut() {
        *sealed = new.seal(&old.open(sealed)?);
    }
    store.reseal(&values).await?;
    if from_env {
        println!(
            "{} values re-sealed. Set VKYC_MASTER_KEY to the new key now:",
            values.len()
        );
        println!("{}", new.to_hex());
    } else {
        std::fs::rename(&path, path.with_extension("key.old"))?;
        std::fs::rename(&staged, &path)?;
        println!(
            "{} values re-sealed; new key in {} (the old one in {}.old)",
            values.len(),
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
    if let Some(bootstrap) = &app.bootstrap {
        println!("bootstrap test merchant created (the secret is shown only this once):");
        println!("  client id:     {}", bootstrap.client_id);
        println!("  client secret: {}", bootstrap.secret);
    }
    use std::io::Write;
    std::io::stdout().flush()?;
    app.run().await
}
