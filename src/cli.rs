//! The `vkyc` command line: serve, migrate, print the default config, manage merchants.

use crate::app::Application;
use crate::auth::NewCredential;
use crate::config::{Config, DEFAULT_CONFIG};
use crate::store::{MerchantEnv, Store};
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
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Config = cli.command {
        print!("{DEFAULT_CONFIG}");
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref())?;
    crate::telemetry::init(&config.log_format);
    match cli.command {
        Command::Config => unreachable!("handled above"),
        Command::Serve => serve(config).await,
        Command::Migrate => {
            std::fs::create_dir_all(&config.data_dir)?;
            let store = Store::open(&config.database_url()).await?;
            store.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Merchant(command) => {
            std::fs::create_dir_all(&config.data_dir)?;
            let store = Store::open(&config.database_url()).await?;
            let result = merchant(&store, command).await;
            store.close().await;
            result
        }
    }
}

async fn merchant(store: &Store, command: MerchantCommand) -> anyhow::Result<()> {
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
            Ok(())
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
            Ok(())
        }
    }
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
