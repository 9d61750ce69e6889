//! PostgreSQL's own tools: `pg_dump --format=custom` for a backup, `pg_restore` for a
//! restore. They get the deployment's database URL without its password, which goes in
//! `PGPASSWORD`: a command line is visible to every user of the machine, a process's
//! environment is not.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// The URL as libpq reads it, and its password (decoded).
fn libpq_target(url: &str) -> anyhow::Result<(String, Option<String>)> {
    let mut parsed = url::Url::parse(url).context("database_url is not a URL")?;
    let password = match parsed.password() {
        Some(p) => Some(crate::store::backup::percent_decode(p)?),
        None => None,
    };
    parsed
        .set_password(None)
        .map_err(|_| anyhow::anyhow!("database_url has no host"))?;
    // sqlx's own parameters mean nothing to libpq, which refuses unknown ones.
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != "statement-cache-capacity")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    // `postgres:` and `postgresql:` are both libpq's.
    Ok((parsed.to_string(), password))
}

/// `tool` on the `PATH`, if it is there.
pub fn find(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn command(tool: &Path, url: &str) -> anyhow::Result<(Command, String)> {
    let (target, password) = libpq_target(url)?;
    let mut command = Command::new(tool);
    command.arg("--no-password").kill_on_drop(true);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    Ok((command, target))
}

async fn run(mut command: Command, what: &str) -> anyhow::Result<()> {
    let out = command
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("starting {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `pg_dump --format=custom` of the database at `url` into the new file `file`, of the
/// exported `snapshot` when one is given.
pub async fn dump(
    pg_dump: &Path,
    url: &str,
    snapshot: Option<&str>,
    file: &Path,
) -> anyhow::Result<()> {
    let (mut command, target) = command(pg_dump, url)?;
    command.arg("--format=custom").arg("--file").arg(file);
    if let Some(snapshot) = snapshot {
        command.arg(format!("--snapshot={snapshot}"));
    }
    command.arg("--dbname").arg(target);
    run(command, "pg_dump").await?;
    // pg_dump creates it under this process's umask (077); make sure of it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("narrowing {}", file.display()))
}

/// `pg_restore` of `file` into the (empty) database at `url`, in one transaction: a
/// failure leaves the database as it was.
pub async fn restore(pg_restore: &Path, url: &str, file: &Path) -> anyhow::Result<()> {
    let (mut command, target) = command(pg_restore, url)?;
    command
        .args([
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
        ])
        .arg("--dbname")
        .arg(target)
        .arg(file);
    run(command, "pg_restore").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_for_the_environment() {
        let (target, password) =
            libpq_target("postgres://vkyc:p%40ss%2Fw@db.internal:5432/vkyc?sslmode=require")
                .unwrap();
        assert_eq!(
            target,
            "postgres://vkyc@db.internal:5432/vkyc?sslmode=require"
        );
        assert_eq!(password.as_deref(), Some("p@ss/w"));
        let (target, password) =
            libpq_target("postgresql://db/vkyc?statement-cache-capacity=10").unwrap();
        assert_eq!(target, "postgresql://db/vkyc");
        assert_eq!(password, None);
    }
}
