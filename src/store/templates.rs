//! Template versions (migration 0022): each kind and name has versions 1, 2, ...; a
//! version's body never changes once written.

use super::Store;
use crate::clock::now_ms;
use crate::error::Result;
use sqlx::Row;

/// A version of a template, as listed.
#[derive(Debug, Clone)]
pub struct TemplateRow {
    pub kind: String,
    pub name: String,
    pub version: i64,
    /// Canonical JSON.
    pub body: String,
    pub created_at: i64,
    pub created_by: String,
}

fn template_from_row(r: &sqlx::any::AnyRow) -> Result<TemplateRow, sqlx::Error> {
    Ok(TemplateRow {
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        body: r.try_get("body")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

const COLUMNS: &str = "kind, name, version, body, created_at, created_by";

impl Store {
    /// The newest version of a template; None when the name has none.
    pub async fn template_latest(&self, kind: &str, name: &str) -> Result<Option<TemplateRow>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM templates WHERE kind = $1 AND name = $2 \
             ORDER BY version DESC LIMIT 1"
        ))
        .bind(kind)
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.as_ref().map(template_from_row).transpose()?)
    }

    /// The newest version number of a template; None when the name has none. On
    /// PostgreSQL gathered with other lookups waiting (`point_reads`).
    pub async fn template_newest_version(
        &self,
        kind: &'static str,
        name: &str,
    ) -> Result<Option<i64>> {
        if let Some(reads) = &self.reads {
            let key = super::point_reads::Key::Template(kind, name.to_string());
            return reads.version(key).await;
        }
        Ok(self
            .template_latest(kind, name)
            .await?
            .map(|row| row.version))
    }

    /// One version of a template.
    pub async fn template_version(
        &self,
        kind: &str,
        name: &str,
        version: i64,
    ) -> Result<Option<TemplateRow>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM templates WHERE kind = $1 AND name = $2 AND version = $3"
        ))
        .bind(kind)
        .bind(name)
        .bind(version)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.as_ref().map(template_from_row).transpose()?)
    }

    /// Every template's newest version, by kind and name.
    pub async fn templates(&self) -> Result<Vec<TemplateRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM templates t WHERE version = \
             (SELECT MAX(version) FROM templates o WHERE o.kind = t.kind AND o.name = t.name) \
             ORDER BY kind, name"
        ))
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(template_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Keeps `body` as the template's next version, unless it is the newest version's
    /// body already. Answers (version, whether it was added). Two writers racing for
    /// the same next version: the unique key lets one in, the other reads it back.
    pub async fn add_template_version(
        &self,
        kind: &str,
        name: &str,
        body: &str,
        by: &str,
    ) -> Result<(i64, bool)> {
        for _ in 0..3 {
            let latest = self.template_latest(kind, name).await?;
            if let Some(latest) = &latest {
                if latest.body == body {
                    return Ok((latest.version, false));
                }
            }
            let version = latest.map_or(1, |l| l.version + 1);
            let added = sqlx::query(
                "INSERT INTO templates (kind, name, version, body, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kind, name, version) DO NOTHING",
            )
            .bind(kind)
            .bind(name)
            .bind(version)
            .bind(body)
            .bind(now_ms())
            .bind(by)
            .execute(&self.write)
            .await?;
            if added.rows_affected() == 1 {
                return Ok((version, true));
            }
        }
        Err(crate::error::Error::internal(anyhow::anyhow!(
            "template {kind} {name}: three writers raced for its next version"
        )))
    }
}
