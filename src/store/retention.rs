//! The SQL of retention: which requests are due for purging, the purge itself (personal
//! data removed, a tombstone kept, one transaction per request), the files it leaves to
//! delete, legal holds and relationship ends.

use super::Store;
use crate::domain::retention::{Cutoffs, Rule};
use crate::error::Result;
use serde_json::Value;
use sqlx::Row;

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// A request the retention rules look at, for the report.
#[derive(Debug, Clone)]
pub struct RetentionRow {
    pub id: i64,
    pub verification_id: String,
    pub merchant: String,
    pub sandbox: bool,
    pub sub_status: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub relationship_end: Option<String>,
}

/// A standing legal hold.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hold {
    pub reason: String,
    pub held_by: String,
    pub held_at: i64,
}

/// What a hold, a release or a relationship end found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseChange {
    Done,
    /// Nothing to do: already held (a hold), not held (a release).
    Unchanged,
    /// The request's personal data is gone already.
    Purged,
}

/// Who changes a case's retention, for the staff audit.
pub struct By<'a> {
    pub staff_id: Option<i64>,
    pub ip: Option<&'a str>,
    /// The name written in `legal_holds.held_by` and the audit's details.
    pub name: &'a str,
}

impl Store {
    /// The requests whose personal data is due for removal under `cutoffs`, at most
    /// `limit`, with the rule that makes each due.
    pub async fn due_for_purge(
        &self,
        cutoffs: &Cutoffs,
        closed: &[&str],
        limit: i64,
    ) -> Result<Vec<(i64, Rule)>> {
        let rows = self
            .retention_query("r.id", cutoffs, closed, Some(limit))
            .await?;
        rows.iter()
            .map(|r| {
                let rule = match r.try_get::<String, _>("rule")?.as_str() {
                    "sandbox" => Rule::Sandbox,
                    "approved" => Rule::Approved,
                    _ => Rule::Closed,
                };
                Ok((r.try_get("id")?, rule))
            })
            .collect()
    }

    /// The requests that fall due by `cutoffs` (the report's: now plus N days), with what
    /// the report shows of them.
    pub async fn retention_due(
        &self,
        cutoffs: &Cutoffs,
        closed: &[&str],
    ) -> Result<Vec<RetentionRow>> {
        let rows = self
            .retention_query(
                "r.id, r.verification_id, m.name AS merchant, m.env, r.sub_status, \
                 r.created_at, r.updated_at, r.relationship_end",
                cutoffs,
                closed,
                None,
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RetentionRow {
                    id: r.try_get("id")?,
                    verification_id: r.try_get("verification_id")?,
                    merchant: r.try_get("merchant")?,
                    sandbox: r.try_get::<String, _>("env")? == "test",
                    sub_status: r.try_get("sub_status")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                    relationship_end: r.try_get("relationship_end")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// One select per rule, each over its partial index of unpurged requests.
    async fn retention_query(
        &self,
        columns: &str,
        cutoffs: &Cutoffs,
        closed: &[&str],
        limit: Option<i64>,
    ) -> Result<Vec<sqlx::any::AnyRow>> {
        // Status names are the product's own constants: safe to write into the text.
        let closed: Vec<String> = closed.iter().map(|s| format!("'{s}'")).collect();
        // A sandbox deployment has test merchants only (it refuses live secrets).
        let (test, live) = ("m.env = 'test'", "m.env = 'live'");
        let from = "FROM requests r JOIN merchants m ON m.id = r.merchant_id \
                    WHERE r.purged_at IS NULL AND r.legal_hold = 0";
        let limit_clause = match limit {
            Some(_) => " LIMIT $4",
            None => "",
        };
        let sql = format!(
            "SELECT {columns}, 'sandbox' AS rule {from} AND {test} AND r.created_at < $1 \
             UNION ALL \
             SELECT {columns}, 'closed' AS rule {from} AND {live} AND r.updated_at < $2 \
               AND r.sub_status IN ({closed}) \
             UNION ALL \
             SELECT {columns}, 'approved' AS rule {from} AND {live} \
               AND r.relationship_end IS NOT NULL AND r.relationship_end < $3 \
               AND r.sub_status = 'AUDITOR_APPROVED'{limit_clause}",
            closed = closed.join(", "),
        );
        let mut query = sqlx::query(&sql)
            .bind(cutoffs.sandbox_created_before)
            .bind(cutoffs.closed_before)
            .bind(cutoffs.approved_ended_before.clone());
        if let Some(limit) = limit {
            query = query.bind(limit);
        }
        Ok(query.fetch_all(&self.read).await?)
    }

    /// Removes the request's personal data and keeps its tombstone, in one transaction:
    /// false when it is held or purged already (another process was first). The
    /// recordings' files are left in `pending_deletions` for [`Store::pending_deletions`].
    pub async fn purge_request(&self, id: i64, rule: Rule, now: i64) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        // The guard takes the row's lock: a hold placed meanwhile by another process
        // (which also updates the row) is seen here, or waits for this to finish.
        let row = sqlx::query(
            "UPDATE requests SET purged_at = $1, aadhaar_details = NULL, \
             security_questions = NULL, recording_link = NULL, agent_remarks = NULL, \
             auditor_remarks = NULL \
             WHERE id = $2 AND purged_at IS NULL AND legal_hold = 0 RETURNING user_ref",
        )
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let user_ref: i64 = row.try_get("user_ref")?;
        // The customer's details go with their last request kept.
        sqlx::query(
            "UPDATE users SET name = NULL, email = NULL, address = NULL, phone = '' \
             WHERE id = $1 AND NOT EXISTS \
               (SELECT 1 FROM requests WHERE user_ref = $1 AND purged_at IS NULL)",
        )
        .bind(user_ref)
        .execute(&mut *tx)
        .await?;
        for sql in [
            "DELETE FROM aadhaar_kyc WHERE request_id = $1",
            "DELETE FROM personal_details WHERE request_id = $1",
            "UPDATE consents SET ip = '', user_agent = '' WHERE request_id = $1",
            "UPDATE journey_steps SET evidence = NULL WHERE request_id = $1",
            "UPDATE audits SET remarks = '' WHERE request_id = $1",
            "UPDATE notifications SET recipient = NULL, subject = NULL, body = NULL \
             WHERE request_id = $1",
            "DELETE FROM captures WHERE call_id IN (SELECT id FROM calls WHERE request_id = $1)",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        purge_calls(&mut tx, id, now).await?;
        purge_webhook_bodies(&mut tx, id).await?;
        let details = serde_json::json!({ "rule": rule.as_str() }).to_string();
        self.insert_staff_audit_in(
            &mut tx,
            None,
            now,
            "personal_data_purged",
            Some(&id.to_string()),
            None,
            Some(&details),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every merchant's request with this `verification_id` (the command line's lookup).
    pub async fn requests_by_verification_id(
        &self,
        verification_id: &str,
    ) -> Result<Vec<crate::domain::request::Request>> {
        let sql = format!(
            "SELECT {} FROM requests WHERE verification_id = $1 ORDER BY id",
            super::REQUEST_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(verification_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(super::request_from_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Files a purge left to delete, oldest first: (id, local path or `s3://` URL).
    pub async fn pending_deletions(&self, limit: i64) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query("SELECT id, location FROM pending_deletions ORDER BY id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("location")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Crosses a deleted file off.
    pub async fn deletion_done(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM pending_deletions WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// The request's standing legal hold, its relationship end and when it was purged.
    pub async fn retention_state(
        &self,
        id: i64,
    ) -> Result<(Option<Hold>, Option<String>, Option<i64>)> {
        let row = sqlx::query(
            "SELECT r.relationship_end, r.purged_at, h.reason, h.held_by, h.held_at \
             FROM requests r LEFT JOIN legal_holds h ON h.request_id = r.id WHERE r.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        let Some(r) = row else {
            return Ok((None, None, None));
        };
        let hold = match r.try_get::<Option<String>, _>("reason")? {
            Some(reason) => Some(Hold {
                reason,
                held_by: r.try_get("held_by")?,
                held_at: r.try_get("held_at")?,
            }),
            None => None,
        };
        Ok((
            hold,
            r.try_get("relationship_end")?,
            r.try_get("purged_at")?,
        ))
    }

    /// Places a legal hold on the request (audited as `case_hold`).
    pub async fn place_hold(
        &self,
        id: i64,
        reason: &str,
        by: &By<'_>,
        now: i64,
    ) -> Result<CaseChange> {
        let mut tx = self.write.begin().await?;
        let Some(purged) = lock_request(&mut tx, id).await? else {
            return Ok(CaseChange::Unchanged);
        };
        if purged {
            return Ok(CaseChange::Purged);
        }
        let set =
            sqlx::query("UPDATE requests SET legal_hold = 1 WHERE id = $1 AND legal_hold = 0")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if set.rows_affected() == 0 {
            return Ok(CaseChange::Unchanged);
        }
        sqlx::query(
            "INSERT INTO legal_holds (request_id, reason, held_by, held_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(reason)
        .bind(by.name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let details = serde_json::json!({ "reason": reason, "by": by.name }).to_string();
        self.audit_case(&mut tx, by, now, "case_hold", id, &details)
            .await?;
        tx.commit().await?;
        Ok(CaseChange::Done)
    }

    /// Releases the request's legal hold (audited as `case_release`).
    pub async fn release_hold(
        &self,
        id: i64,
        reason: &str,
        by: &By<'_>,
        now: i64,
    ) -> Result<CaseChange> {
        let mut tx = self.write.begin().await?;
        if lock_request(&mut tx, id).await?.is_none() {
            return Ok(CaseChange::Unchanged);
        }
        let set =
            sqlx::query("UPDATE requests SET legal_hold = 0 WHERE id = $1 AND legal_hold = 1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if set.rows_affected() == 0 {
            return Ok(CaseChange::Unchanged);
        }
        sqlx::query("DELETE FROM legal_holds WHERE request_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let details = serde_json::json!({ "reason": reason, "by": by.name }).to_string();
        self.audit_case(&mut tx, by, now, "case_release", id, &details)
            .await?;
        tx.commit().await?;
        Ok(CaseChange::Done)
    }

    /// Records the day the business relationship ended (audited as `relationship_end`;
    /// `by.staff_id` is none for the merchant and the command line).
    pub async fn set_relationship_end(
        &self,
        id: i64,
        date: &str,
        by: &By<'_>,
        now: i64,
    ) -> Result<CaseChange> {
        let mut tx = self.write.begin().await?;
        match lock_request(&mut tx, id).await? {
            None => return Ok(CaseChange::Unchanged),
            Some(true) => return Ok(CaseChange::Purged),
            Some(false) => {}
        }
        sqlx::query("UPDATE requests SET relationship_end = $1 WHERE id = $2")
            .bind(date)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let details = serde_json::json!({ "date": date, "by": by.name }).to_string();
        self.audit_case(&mut tx, by, now, "relationship_end", id, &details)
            .await?;
        tx.commit().await?;
        Ok(CaseChange::Done)
    }
}

impl Store {
    /// The staff audit row of a change to case `id`, in its transaction.
    async fn audit_case(
        &self,
        tx: &mut Tx,
        by: &By<'_>,
        now: i64,
        action: &str,
        id: i64,
        details: &str,
    ) -> Result<(), sqlx::Error> {
        let target = id.to_string();
        self.insert_staff_audit_in(
            tx,
            by.staff_id,
            now,
            action,
            Some(&target),
            by.ip,
            Some(details),
        )
        .await
    }
}

/// Takes the request row's lock (an update that changes nothing); whether it is purged,
/// or `None` when there is no such request.
async fn lock_request(tx: &mut Tx, id: i64) -> Result<Option<bool>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE requests SET legal_hold = legal_hold WHERE id = $1 RETURNING purged_at",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        None => Ok(None),
        Some(r) => Ok(Some(r.try_get::<Option<i64>, _>("purged_at")?.is_some())),
    }
}

/// The calls' PAN, remarks, the merchant's expected answers and the recordings (left in
/// `pending_deletions`: the WebM and its sidecar, which holds the GPS).
async fn purge_calls(tx: &mut Tx, request_id: i64, now: i64) -> Result<(), sqlx::Error> {
    let calls =
        sqlx::query("SELECT id, questions, recording_path FROM calls WHERE request_id = $1")
            .bind(request_id)
            .fetch_all(&mut **tx)
            .await?;
    for call in &calls {
        let call_id: i64 = call.try_get("id")?;
        let questions: String = call.try_get("questions")?;
        let questions = match serde_json::from_str::<Value>(&questions) {
            Ok(Value::Array(mut list)) => {
                for q in &mut list {
                    if let Some(q) = q.as_object_mut() {
                        q.insert("expected".into(), Value::Null);
                    }
                }
                Value::Array(list).to_string()
            }
            _ => "[]".to_string(),
        };
        sqlx::query(
            "UPDATE calls SET pan = NULL, remarks = NULL, recording_path = NULL, recording_key = NULL, \
             questions = $1 \
             WHERE id = $2",
        )
        .bind(questions)
        .bind(call_id)
        .execute(&mut **tx)
        .await?;
        if let Some(path) = call.try_get::<Option<String>, _>("recording_path")? {
            let sidecar = match path.strip_suffix(".webm") {
                Some(stem) => format!("{stem}.json"),
                None => format!("{path}.json"),
            };
            // The desk's side copies of the recording go too (see storage::delete).
            let sides = format!("{}{call_id}", crate::storage::SIDES);
            for location in [path, sidecar, sides] {
                sqlx::query("INSERT INTO pending_deletions (location, created_at) VALUES ($1, $2)")
                    .bind(location)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    Ok(())
}

/// The stored webhook bodies keep their envelope but lose the remarks and the recording
/// link their `data` carried.
async fn purge_webhook_bodies(tx: &mut Tx, request_id: i64) -> Result<(), sqlx::Error> {
    let rows = sqlx::query("SELECT id, body FROM webhook_events WHERE request_id = $1")
        .bind(request_id)
        .fetch_all(&mut **tx)
        .await?;
    for row in &rows {
        let id: i64 = row.try_get("id")?;
        let body: String = row.try_get("body")?;
        let Ok(mut value) = serde_json::from_str::<Value>(&body) else {
            continue;
        };
        if let Some(data) = value.get_mut("data").and_then(Value::as_object_mut) {
            for key in ["recording_link", "agent_remarks", "auditor_remarks"] {
                if data.contains_key(key) {
                    data.insert(key.into(), Value::Null);
                }
            }
        }
        sqlx::query("UPDATE webhook_events SET body = $1 WHERE id = $2")
            .bind(value.to_string())
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
