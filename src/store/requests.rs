//! Video KYC requests: create (on SQLite through one writer that commits creates in
//! groups), point reads, the links due to expire, and the journey's access tokens.

use super::chain::HistoryFields;
use super::{notifications, point_reads, Backend, Store, ROWS_PER_STATEMENT};
use crate::clock::now_ms;
use crate::domain::request::Request;
use crate::domain::status::{self, Actor, SubStatus};
use crate::error::{Error, Result};
use crate::secrets::Sealed;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::sync::OnceLock;

/// A create waiting for the group-commit writer, and where to send its outcome.
pub(super) struct CreateJob {
    merchant_id: i64,
    new: NewRequest,
    actor: Actor,
    reply: tokio::sync::oneshot::Sender<Result<Option<Request>>>,
}

/// A new request's first history row, as the audit chain sees it.
fn created_row(request_id: i64, actor: Actor, id: i64, at: i64) -> HistoryFields<'static> {
    let initial = SubStatus::INITIAL;
    HistoryFields {
        id,
        request_id,
        at,
        actor: actor.as_str(),
        event: "created",
        from: None,
        to: (initial.status().as_str(), initial.as_str()),
        details: None,
    }
}

/// New requests' first history rows (SQLite): inserted, then sealed with their ids.
async fn insert_first_history(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    inserted: &[(&Request, Actor)],
    now: i64,
) -> Result<(), sqlx::Error> {
    use std::fmt::Write;
    let initial = SubStatus::INITIAL;
    // $1 time, $2 status, $3 sub-status; then the request and the actor.
    let mut sql = String::from(
        "INSERT INTO history (request_id, at, actor, event, from_status, from_sub_status, \
         to_status, to_sub_status, details) VALUES ",
    );
    for i in 0..inserted.len() {
        let p = 4 + 2 * i;
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(
            sql,
            "{sep}(${p}, $1, ${}, 'created', NULL, NULL, $2, $3, NULL)",
            p + 1
        );
    }
    // The row ids, for the links that start the requests' chains.
    sql.push_str(" RETURNING id, request_id");
    let mut query = sqlx::query(&sql)
        .persistent(inserted.len() == ROWS_PER_STATEMENT)
        .bind(now)
        .bind(initial.status().as_str())
        .bind(initial.as_str());
    for (request, actor) in inserted {
        query = query.bind(request.id).bind(actor.as_str());
    }
    let ids: std::collections::HashMap<i64, i64> = query
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("request_id")?, r.try_get("id")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let links = inserted
        .iter()
        .map(|(request, actor)| {
            let id = *ids
                .get(&request.id)
                .ok_or_else(|| sqlx::Error::Protocol("a history row was not returned".into()))?;
            Ok(created_row(request.id, *actor, id, now))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    super::chain::start_chains(tx, &links).await
}

/// The creates waiting, shared by the writers that take them.
pub(super) type CreateQueue =
    std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<CreateJob>>>;

/// The most creates one group commit takes.
pub(super) const GROUP_COMMIT_MAX: usize = 256;
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub verification_id: String,
    pub user_ref: i64,
    pub user_id: String,
    pub link_token: String,
    pub link_expires_at: i64,
    pub notification_types: Option<String>,
    pub user_template: Option<String>,
    pub agent_template: Option<String>,
    pub user_template_version: Option<i64>,
    pub agent_template_version: Option<i64>,
    pub aadhaar_details: Option<String>,
    pub security_questions: Option<String>,
    pub webhook_url: Option<String>,
}

/// Requests whose link expired by `$1` and that can still expire. The status filter is
/// the partial index `requests_expiry`'s; the sub-status list is the status machine's.
pub(super) fn due_clause() -> &'static str {
    static CLAUSE: OnceLock<String> = OnceLock::new();
    CLAUSE.get_or_init(|| {
        let expirable: Vec<String> = status::expirable()
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        format!(
            "status IN ('RECEIVED', 'PRE_VIDEO_CALL', 'VIDEO_CALL') AND link_expires_at <= $1 \
             AND sub_status IN ({})",
            expirable.join(", ")
        )
    })
}
impl Store {
    /// The table the expiry reads name, with SQLite told to use `requests_expiry`: without
    /// statistics its planner would take the case search's `(status, created_at, id)`
    /// index for the `status IN` term and sort every live request by expiry.
    pub(super) fn due_source(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "requests INDEXED BY requests_expiry",
            Backend::Postgres => "requests",
        }
    }
}

pub(super) const REQUEST_COLUMNS: &str =
    "id, merchant_id, verification_id, user_ref, user_id, link_token, \
     link_expires_at, sub_status, version, notification_types, user_template, agent_template, \
     user_template_version, agent_template_version, aadhaar_details, security_questions, \
     recording_link, meeting_schedule, agent_remarks, auditor_remarks, created_at, webhook_url, \
     event_seq, purged_at";
/// The one mapping of a `requests` row to a [`Request`], over [`REQUEST_COLUMNS`].
pub(super) fn request_from_row(row: &AnyRow) -> Result<Request, sqlx::Error> {
    let sub_status: String = row.try_get("sub_status")?;
    let sub_status = SubStatus::parse(&sub_status).ok_or_else(|| {
        sqlx::Error::Decode(format!("unknown sub_status {sub_status:?} in the database").into())
    })?;
    Ok(Request {
        id: row.try_get("id")?,
        merchant_id: row.try_get("merchant_id")?,
        verification_id: row.try_get("verification_id")?,
        user_ref: row.try_get("user_ref")?,
        user_id: row.try_get("user_id")?,
        link_token: row.try_get("link_token")?,
        link_expires_at: row.try_get("link_expires_at")?,
        sub_status,
        version: row.try_get("version")?,
        notification_types: row.try_get("notification_types")?,
        user_template: row.try_get("user_template")?,
        agent_template: row.try_get("agent_template")?,
        user_template_version: row.try_get("user_template_version")?,
        agent_template_version: row.try_get("agent_template_version")?,
        aadhaar_details: row
            .try_get::<Option<String>, _>("aadhaar_details")?
            .map(Sealed::new),
        security_questions: row.try_get("security_questions")?,
        recording_link: row.try_get("recording_link")?,
        meeting_schedule: row.try_get("meeting_schedule")?,
        agent_remarks: row.try_get("agent_remarks")?,
        auditor_remarks: row.try_get("auditor_remarks")?,
        created_at: row.try_get("created_at")?,
        webhook_url: row.try_get("webhook_url")?,
        event_seq: row.try_get("event_seq")?,
        purged_at: row.try_get("purged_at")?,
    })
}

/// A key of a point lookup, bound in order to the filter's `$1`, `$2`, ...
enum Key<'a> {
    Int(i64),
    Text(&'a str),
}

impl Store {
    /// Inserts a request in the initial state with its first history row; `Ok(None)`
    /// when the merchant already used that `verification_id`.
    pub async fn insert_request(
        &self,
        merchant_id: i64,
        new: &NewRequest,
        actor: Actor,
    ) -> Result<Option<Request>> {
        if let Some(creates) = &self.creates {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let job = CreateJob {
                merchant_id,
                new: new.clone(),
                actor,
                reply,
            };
            creates
                .send(job)
                .await
                .map_err(|_| Error::internal(anyhow::anyhow!("the database writer has stopped")))?;
            return answer.await.map_err(|_| {
                Error::internal(anyhow::anyhow!("the database writer has stopped"))
            })?;
        }
        let mut tx = self.write.begin().await?;
        if new.aadhaar_details.is_some() {
            self.check_key_in(&mut tx).await?;
        }
        let created = self
            .insert_request_in(&mut tx, merchant_id, new, actor)
            .await?;
        if created.is_some() {
            tx.commit().await?;
        }
        Ok(created)
    }

    /// The statements of one create, inside `tx`: the request, its first history row and
    /// its first event. `Ok(None)` when the merchant already used the `verification_id`.
    pub(super) async fn insert_request_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        merchant_id: i64,
        new: &NewRequest,
        actor: Actor,
    ) -> Result<Option<Request>, sqlx::Error> {
        let mut created = self
            .insert_requests_in(tx, &[(merchant_id, new, actor)])
            .await?;
        Ok(created.pop().flatten())
    }

    /// The statements of many creates, inside `tx`: the requests, their first history rows
    /// and first events, a few statements for the lot (not a few per create). A create
    /// whose merchant already used its `verification_id` (in the database, or earlier in
    /// `creates`) is left out, `None` in its slot; the others go on.
    pub(super) async fn insert_requests_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        creates: &[(i64, &NewRequest, Actor)],
    ) -> Result<Vec<Option<Request>>, sqlx::Error> {
        use std::fmt::Write;
        let now = now_ms();
        let initial = SubStatus::INITIAL;
        let mut out: Vec<Option<Request>> = Vec::with_capacity(creates.len());
        for chunk in creates.chunks(ROWS_PER_STATEMENT) {
            // $1 is the time; then 16 values per request.
            let mut sql = String::from(
                "INSERT INTO requests (merchant_id, verification_id, user_ref, user_id, link_token, \
                 link_expires_at, status, sub_status, version, notification_types, user_template, \
                 agent_template, aadhaar_details, security_questions, created_at, updated_at, \
                 webhook_url, event_seq, user_template_version, agent_template_version) VALUES ",
            );
            for i in 0..chunk.len() {
                let p = 2 + 16 * i;
                let _ = write!(
                    sql,
                    "{}(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, 1, ${}, ${}, ${}, ${}, ${}, $1, $1, ${}, 1, \
                     ${}, ${})",
                    if i == 0 { "" } else { ", " },
                    p,
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7,
                    p + 8,
                    p + 9,
                    p + 10,
                    p + 11,
                    p + 12,
                    p + 13,
                    p + 14,
                    p + 15
                );
            }
            // A repeated verification_id is skipped, not an error: the row that went in is
            // told apart by its link token (unique, drawn at random).
            sql.push_str(
                " ON CONFLICT (merchant_id, verification_id) DO NOTHING RETURNING id, link_token",
            );
            // PostgreSQL draws each new request's first history id here too, so that row
            // goes in sealed, in one statement with no update after it
            // (chain::insert_first_rows).
            let pg = self.backend == Backend::Postgres;
            if pg {
                sql.push_str(", nextval('history_id_seq') AS history_id");
            }
            let full = chunk.len() == ROWS_PER_STATEMENT;
            // The merchant's Aadhaar details are personal data: stored sealed.
            let sealed: Vec<Option<String>> = chunk
                .iter()
                .map(|(_, new, _)| new.aadhaar_details.as_deref().map(|d| self.seal_text(d)))
                .collect();
            let mut query = sqlx::query(&sql).persistent(full).bind(now);
            for ((merchant_id, new, _), aadhaar_details) in chunk.iter().zip(&sealed) {
                query = query
                    .bind(*merchant_id)
                    .bind(&new.verification_id)
                    .bind(new.user_ref)
                    .bind(&new.user_id)
                    .bind(&new.link_token)
                    .bind(new.link_expires_at)
                    .bind(initial.status().as_str())
                    .bind(initial.as_str())
                    .bind(&new.notification_types)
                    .bind(&new.user_template)
                    .bind(&new.agent_template)
                    .bind(aadhaar_details)
                    .bind(&new.security_questions)
                    .bind(&new.webhook_url)
                    .bind(new.user_template_version)
                    .bind(new.agent_template_version);
            }
            let mut ids = std::collections::HashMap::with_capacity(chunk.len());
            let mut history_ids = std::collections::HashMap::new();
            for row in query.fetch_all(&mut **tx).await? {
                let token: String = row.try_get("link_token")?;
                let id: i64 = row.try_get("id")?;
                if pg {
                    history_ids.insert(id, row.try_get::<i64, _>("history_id")?);
                }
                ids.insert(token, id);
            }
            let requests: Vec<Option<Request>> = chunk
                .iter()
                .zip(&sealed)
                .map(|((merchant_id, new, _), aadhaar_details)| {
                    let id = *ids.get(&new.link_token)?;
                    Some(Request {
                        id,
                        merchant_id: *merchant_id,
                        verification_id: new.verification_id.clone(),
                        user_ref: new.user_ref,
                        user_id: new.user_id.clone(),
                        link_token: new.link_token.clone(),
                        link_expires_at: new.link_expires_at,
                        sub_status: initial,
                        version: 1,
                        notification_types: new.notification_types.clone(),
                        user_template: new.user_template.clone(),
                        agent_template: new.agent_template.clone(),
                        user_template_version: new.user_template_version,
                        agent_template_version: new.agent_template_version,
                        aadhaar_details: aadhaar_details.clone().map(Sealed::new),
                        security_questions: new.security_questions.clone(),
                        recording_link: None,
                        meeting_schedule: None,
                        agent_remarks: None,
                        auditor_remarks: None,
                        created_at: now,
                        webhook_url: new.webhook_url.clone(),
                        event_seq: 1,
                        purged_at: None,
                    })
                })
                .collect();
            let inserted: Vec<(&Request, Actor)> = requests
                .iter()
                .zip(chunk)
                .filter_map(|(request, (_, _, actor))| Some((request.as_ref()?, *actor)))
                .collect();
            if !inserted.is_empty() {
                if pg {
                    let rows = inserted
                        .iter()
                        .map(|(request, actor)| {
                            let id = *history_ids.get(&request.id).ok_or_else(|| {
                                sqlx::Error::Protocol("a history id was not returned".into())
                            })?;
                            Ok(created_row(request.id, *actor, id, now))
                        })
                        .collect::<Result<Vec<_>, sqlx::Error>>()?;
                    super::chain::insert_first_rows(tx, &rows).await?;
                } else {
                    insert_first_history(tx, &inserted, now).await?;
                }
                let created: Vec<(i64, i64)> = inserted
                    .iter()
                    .map(|(r, _)| (r.merchant_id, r.created_at))
                    .collect();
                super::rollups::count_created(tx, &created).await?;
                let events: Vec<(&Request, i64)> =
                    inserted.iter().map(|(request, _)| (*request, 1)).collect();
                self.write_events_of(tx, &events, now).await?;
            }
            // The link message goes out on every channel the merchant asked for; queued
            // with the create, so an acknowledged request never misses its message.
            for request in requests.iter().flatten() {
                notifications::insert_notifications(
                    tx,
                    request.id,
                    request.notification_types.as_deref(),
                    "link",
                    now,
                )
                .await?;
            }
            out.extend(requests);
        }
        Ok(out)
    }

    /// The Aadhaar details the merchant sent with the request, opened.
    pub fn merchant_aadhaar_details(&self, request: &Request) -> Result<Option<String>> {
        request
            .aadhaar_details
            .as_ref()
            .map(|d| self.open_text(d.as_str()))
            .transpose()
    }

    /// The one request that `filter` (a `WHERE` clause over `requests` with `$1`, `$2`, …
    /// in order) finds with `keys`: an indexed point lookup on the read pool.
    async fn fetch_request(&self, filter: &str, keys: &[Key<'_>]) -> Result<Option<Request>> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE {filter}");
        let mut query = sqlx::query(&sql);
        for key in keys {
            query = match key {
                Key::Int(v) => query.bind(*v),
                Key::Text(v) => query.bind(*v),
            };
        }
        let row = query.fetch_optional(&self.read).await?;
        Ok(row.as_ref().map(request_from_row).transpose()?)
    }

    pub async fn request_by_ref(&self, merchant_id: i64, id: i64) -> Result<Option<Request>> {
        if let Some(reads) = &self.reads {
            return reads
                .request(point_reads::Key::RequestRef(merchant_id, id))
                .await;
        }
        use Key::Int;
        self.fetch_request("merchant_id = $1 AND id = $2", &[Int(merchant_id), Int(id)])
            .await
    }

    pub async fn request_by_verification_id(
        &self,
        merchant_id: i64,
        verification_id: &str,
    ) -> Result<Option<Request>> {
        if let Some(reads) = &self.reads {
            let key = point_reads::Key::RequestId(merchant_id, verification_id.to_string());
            return reads.request(key).await;
        }
        use Key::{Int, Text};
        self.fetch_request(
            "merchant_id = $1 AND verification_id = $2",
            &[Int(merchant_id), Text(verification_id)],
        )
        .await
    }

    pub async fn request_by_id(&self, id: i64) -> Result<Option<Request>> {
        self.fetch_request("id = $1", &[Key::Int(id)]).await
    }
    /// Requests whose link expired by `now` and that can still expire, soonest first.
    /// Served by the partial index `requests_expiry`.
    pub async fn due_expiries(&self, now: i64, limit: i64) -> Result<Vec<Request>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM {} WHERE {} ORDER BY link_expires_at LIMIT $2",
            self.due_source(),
            due_clause()
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(request_from_row)
            .collect::<Result<_, _>>()?)
    }
    // ---- access tokens ----

    pub async fn insert_access_token(
        &self,
        token_digest: &str,
        request_id: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO access_tokens (token_digest, request_id, expires_at, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_digest)
        .bind(request_id)
        .bind(expires_at)
        .bind(now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The request an unexpired access token opens.
    pub async fn access_token_request(&self, token_digest: &str, now: i64) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT request_id FROM access_tokens WHERE token_digest = $1 AND expires_at > $2",
        )
        .bind(token_digest)
        .bind(now)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| r.try_get("request_id")).transpose()?)
    }
    /// The request a `vkyc_link` token opens.
    pub async fn request_by_token(&self, token: &str) -> Result<Option<Request>> {
        self.fetch_request("link_token = $1", &[Key::Text(token)])
            .await
    }

    /// The query plan of [`Store::due_expiries`], for the test that it uses its index.
    pub async fn explain_due_expiries(&self) -> Result<String> {
        let select = format!(
            "SELECT id FROM {} WHERE {} ORDER BY link_expires_at LIMIT 10",
            self.due_source(),
            due_clause()
        );
        let mut tx = self.read.begin().await?;
        let (sql, column) = match self.backend {
            Backend::Sqlite => (format!("EXPLAIN QUERY PLAN {select}"), "detail"),
            Backend::Postgres => {
                // A near-empty table is cheaper to scan; ask what the plan would be at size.
                sqlx::query("SET LOCAL enable_seqscan = off")
                    .execute(&mut *tx)
                    .await?;
                (format!("EXPLAIN {select}"), "QUERY PLAN")
            }
        };
        let rows = sqlx::query(&sql).bind(now_ms()).fetch_all(&mut *tx).await?;
        let mut plan = Vec::new();
        for row in rows {
            plan.push(row.try_get::<String, _>(column)?);
        }
        Ok(plan.join("\n"))
    }
}

/// The writer for creates: takes every create waiting (up to [`GROUP_COMMIT_MAX`]),
/// runs them in one transaction and commits once, so one fsync serves many creates. Each
/// caller hears of its create only after the commit, so an answer still means "on disk".
/// A repeated `verification_id` fails alone; any other error fails the whole group,
/// which is rolled back (nothing of it is stored).
pub(super) async fn group_commit(store: Store, jobs: CreateQueue) {
    let mut batch = Vec::with_capacity(GROUP_COMMIT_MAX);
    while jobs
        .lock()
        .await
        .recv_many(&mut batch, GROUP_COMMIT_MAX)
        .await
        > 0
    {
        // `Ok(None)`: the master key was rotated since this process started, and the
        // group has sealed values to write. On PostgreSQL another process's group may
        // deadlock with this one (the database ends one of the two): that group is run
        // again, up to three times, before its callers hear of a failure.
        let mut tries = 0;
        let outcome = loop {
            tries += 1;
            let outcome = commit_group(&store, &batch).await;
            match &outcome {
                Err(sqlx::Error::Database(e))
                    if tries < 3 && matches!(e.code().as_deref(), Some("40P01" | "40001")) =>
                {
                    tracing::warn!(
                        creates = batch.len(),
                        "a group of creates met a deadlock; again"
                    );
                }
                _ => break outcome,
            }
        };
        match outcome {
            Ok(None) => {
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(super::sealed::key_changed()));
                }
            }
            Ok(Some(created)) => {
                for (job, request) in batch.drain(..).zip(created) {
                    let _ = job.reply.send(Ok(request));
                }
            }
            Err(err) => {
                tracing::error!(error = ?err, creates = batch.len(), "a group of creates failed");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(Error::internal(anyhow::anyhow!(
                        "the group commit failed"
                    ))));
                }
            }
        }
    }
}

/// One try at a group of creates: one transaction, one commit.
async fn commit_group(
    store: &Store,
    batch: &[CreateJob],
) -> Result<Option<Vec<Option<Request>>>, sqlx::Error> {
    let mut tx = store.write.begin().await?;
    let sealing = batch.iter().any(|job| job.new.aadhaar_details.is_some());
    if sealing && !store.key_is_current_in(&mut tx).await? {
        return Ok(None);
    }
    let creates: Vec<(i64, &NewRequest, Actor)> = batch
        .iter()
        .map(|job| (job.merchant_id, &job.new, job.actor))
        .collect();
    let created = store.insert_requests_in(&mut tx, &creates).await?;
    tx.commit().await?;
    Ok(Some(created))
}
