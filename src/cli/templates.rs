//! `vkyc template list|show|import|export`: the user and agent templates
//! (docs/templates.md).

use crate::domain::templates::Kind;
use crate::operations::{self, for_cli, Actor};
use crate::store::{Store, TemplateRow};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum TemplateCommand {
    /// Every template's newest version (the built-ins included).
    List,
    /// One template as JSON: its newest version, or --version N.
    Show {
        /// user or agent.
        kind: String,
        name: String,
        #[arg(long)]
        version: Option<i64>,
    },
    /// Add a template from a TOML or JSON file (by its extension) as its name's next
    /// version; requests already made keep the version they were made under.
    Import {
        /// user or agent.
        kind: String,
        file: PathBuf,
    },
    /// Upload a bank's logo (PNG or JPEG, up to 1 MiB): it is scaled to fit the journey's
    /// header and kept as a PNG; prints the id a user template's `logo` names.
    Logo { file: PathBuf },
    /// Write a template's newest version (or --version N) as TOML or JSON (by the
    /// file's extension), ready to edit and import.
    Export {
        /// user or agent.
        kind: String,
        name: String,
        file: PathBuf,
        #[arg(long)]
        version: Option<i64>,
    },
}

fn kind(text: &str) -> anyhow::Result<Kind> {
    Kind::parse(text).ok_or_else(|| anyhow::anyhow!("a template is user or agent, not {text:?}"))
}

fn is_json(file: &std::path::Path) -> anyhow::Result<bool> {
    match file.extension().and_then(|e| e.to_str()) {
        Some("json") => Ok(true),
        Some("toml") => Ok(false),
        _ => anyhow::bail!("{}: name a .toml or .json file", file.display()),
    }
}

async fn one(
    store: &Store,
    kind: Kind,
    name: &str,
    version: Option<i64>,
) -> anyhow::Result<TemplateRow> {
    operations::templates::show(store, kind, name, version)
        .await
        .map_err(for_cli)?
        .ok_or_else(|| match version {
            Some(v) => anyhow::anyhow!("no {} template {name} version {v}", kind.as_str()),
            None => anyhow::anyhow!("no {} template {name}", kind.as_str()),
        })
}

pub async fn run(store: &Store, command: TemplateCommand) -> anyhow::Result<()> {
    match command {
        TemplateCommand::List => {
            println!("{:<6} {:<40} {:>7}  created by", "kind", "name", "version");
            for t in operations::templates::list(store).await.map_err(for_cli)? {
                println!(
                    "{:<6} {:<40} {:>7}  {}",
                    t.kind, t.name, t.version, t.created_by
                );
            }
        }
        TemplateCommand::Show {
            kind: k,
            name,
            version,
        } => {
            let t = one(store, kind(&k)?, &name, version).await?;
            let body: serde_json::Value = serde_json::from_str(&t.body)?;
            println!("# {} template {} version {}", t.kind, t.name, t.version);
            println!("{}", serde_json::to_string_pretty(&body)?);
        }
        TemplateCommand::Import { kind: k, file } => {
            let kind = kind(&k)?;
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let (name, version, added) =
                operations::templates::import(store, kind, &text, is_json(&file)?, "vkyc cli")
                    .await?;
            if added {
                Actor::Cli
                    .audit(
                        store,
                        "template_imported",
                        &format!("{} {name} {version}", kind.as_str()),
                        None,
                    )
                    .await
                    .map_err(for_cli)?;
                println!("{} template {name}: version {version} added", kind.as_str());
            } else {
                println!(
                    "{} template {name}: unchanged, still version {version}",
                    kind.as_str()
                );
            }
        }
        TemplateCommand::Logo { file } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            let logo = operations::templates::upload_logo(store, &bytes, "vkyc cli")
                .await
                .map_err(for_cli)?
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            Actor::Cli
                .audit(store, "logo_uploaded", &logo.id, None)
                .await
                .map_err(for_cli)?;
            println!(
                "logo {} ({}×{} pixels): in a user template, logo = \"{}\"",
                logo.id, logo.width, logo.height, logo.id
            );
        }
        TemplateCommand::Export {
            kind: k,
            name,
            file,
            version,
        } => {
            let t = one(store, kind(&k)?, &name, version).await?;
            let body: serde_json::Value = serde_json::from_str(&t.body)?;
            let text = if is_json(&file)? {
                serde_json::to_string_pretty(&body)? + "\n"
            } else {
                toml::to_string_pretty(&body)?
            };
            std::fs::write(&file, text)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", file.display()))?;
            println!(
                "{} template {} version {} written to {}",
                t.kind,
                t.name,
                t.version,
                file.display()
            );
        }
    }
    Ok(())
}
