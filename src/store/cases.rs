//! Cases as admins and auditors find and read them: the search (every filter served by
//! an index of migration 0012, pages continued by a `(created_at, id)` keyset), the
//! rows of a case file the other aggregates do not read, and the deployment's signing
//! keys.

use super::{AttemptRow, Backend, Store};
use crate::error::Result;
use sqlx::Row;

/// What a case search asks for; every given field must match.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub verification_id: Option<String>,
    pub reference_id: Option<i64>,
    pub user_id: Option<String>,
    /// Ten digits, as stored.
    pub phone: Option<String>,
    /// Matched exactly, without regard to (ASCII) case.
    pub name: Option<String>,
    pub status: Option<&'static str>,
    pub sub_status: Option<&'static str>,
    /// A staff id: cases where this agent took a call.
    pub agent_id: Option<i64>,
    /// Created at or after (Unix ms).
    pub from: Option<i64>,
    /// Created before (Unix ms).
    pub until: Option<i64>,
}

/// Where a page continues: strictly older than this `(created_at, id)`.
pub type Cursor = (i64, i64);

/// One line of a search result.
#[derive(Debug, Clone)]
pub struct CaseRow {
    pub id: i64,
    pub verification_id: String,
    pub user_id: String,
    pub sub_status: String,
    pub created_at: i64,
    pub name: Option<String>,
    pub phone: String,
    /// The agent of the latest call, if any.
    pub agent: Option<String>,
}

/// The consent as the customer saw it, with the words they agreed to.
#[derive(Debug, Clone)]
pub struct ConsentText {
    pub lang: String,
    pub text: String,
    pub text_sha256: String,
    pub at: i64,
    pub ip: String,
    pub user_agent: String,
}

/// One webhook delivery of a case, with its attempts.
#[derive(Debug, Clone)]
pub struct CaseDelivery {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub seq: i64,
    pub url: String,
    pub status: String,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub attempts: Vec<AttemptRow>,
}

/// An auditor's review.
#[derive(Debug, Clone)]
pub struct AuditReview {
    pub auditor: String,
    pub decision: String,
    pub remarks: String,
    pub at: i64,
}

/// A key the deployment signs with.
#[derive(Debug, Clone)]
pub struct SigningKeyRow {
    pub algorithm: String,
    pub private_key_enc: String,
    /// Hex.
    pub public_key: String,
}

impl Store {
    /// A page of cases matching `filter`, newest first, after `cursor`; at most `limit`.
    pub async fn search_cases(
        &self,
        filter: &CaseFilter,
        cursor: Option<Cursor>,
        limit: i64,
    ) -> Result<Vec<CaseRow>> {
        let (sql, binds) = search_sql(filter, cursor, limit, "");
        let mut query = sqlx::query(&sql);
        for bind in binds {
            query = match bind {
                Bind::Int(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
            };
        }
        let rows = query.fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| {
                Ok(CaseRow {
                    id: r.try_get("id")?,
                    verification_id: r.try_get("verification_id")?,
                    user_id: r.try_get("user_id")?,
                    sub_status: r.try_get("sub_status")?,
                    created_at: r.try_get("created_at")?,
                    name: r.try_get("name")?,
                    phone: r.try_get("phone")?,
                    agent: r.try_get("agent")?,
                })
            })
            .collect()
    }

    /// The query plan of [`Store::search_cases`], for the test that each filter is
    /// served by an index rather than a scan of the requests.
    pub async fn explain_search_cases(
        &self,
        filter: &CaseFilter,
        cursor: Option<Cursor>,
    ) -> Result<String> {
        let mut tx = self.read.begin().await?;
        let (prefix, column) = match self.backend {
            Backend::Sqlite => ("EXPLAIN QUERY PLAN ", "detail"),
            Backend::Postgres => {
                // A near-empty table is cheaper to scan; ask what the plan would be at size.
                sqlx::query("SET LOCAL enable_seqscan = off")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("SET LOCAL enable_sort = off")
                    .execute(&mut *tx)
                    .await?;
                ("EXPLAIN ", "QUERY PLAN")
            }
        };
        let (sql, binds) = search_sql(filter, cursor, 50, prefix);
        let mut query = sqlx::query(&sql);
        for bind in binds {
            query = match bind {
                Bind::Int(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
            };
        }
        let mut plan = Vec::new();
        for row in query.fetch_all(&mut *tx).await? {
            plan.push(row.try_get::<String, _>(column)?);
        }
        Ok(plan.join("\n"))
    }

    /// The first consent of a request, with its text.
    pub async fn consent_text(&self, request_id: i64) -> Result<Option<ConsentText>> {
        let row = sqlx::query(
            "SELECT lang, text, text_sha256, at, ip, user_agent FROM consents \
             WHERE request_id = $1 ORDER BY id LIMIT 1",
        )
        .bind(request_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row
            .map(|r| -> Result<ConsentText, sqlx::Error> {
                Ok(ConsentText {
                    lang: r.try_get("lang")?,
                    text: r.try_get("text")?,
                    text_sha256: r.try_get("text_sha256")?,
                    at: r.try_get("at")?,
                    ip: r.try_get("ip")?,
                    user_agent: r.try_get("user_agent")?,
                })
            })
            .transpose()?)
    }

    /// Every webhook delivery of a request, oldest first, each with its attempts.
    pub async fn case_deliveries(&self, request_id: i64) -> Result<Vec<CaseDelivery>> {
        let rows = sqlx::query(
            "SELECT d.id, e.event_id, e.event_type, d.seq, d.url, d.status, d.created_at, \
             d.delivered_at FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id \
             WHERE d.request_id = $1 ORDER BY d.id",
        )
        .bind(request_id)
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(CaseDelivery {
                id: r.try_get("id")?,
                event_id: r.try_get("event_id")?,
                event_type: r.try_get("event_type")?,
                seq: r.try_get("seq")?,
                url: r.try_get("url")?,
                status: r.try_get("status")?,
                created_at: r.try_get("created_at")?,
                delivered_at: r.try_get("delivered_at")?,
                attempts: Vec::new(),
            });
        }
        let attempts = sqlx::query(
            "SELECT a.delivery_id, a.attempt, a.at, a.latency_ms, a.status_code, \
             a.response_snippet, a.error FROM webhook_attempts a \
             JOIN webhook_deliveries d ON d.id = a.delivery_id \
             WHERE d.request_id = $1 ORDER BY a.delivery_id, a.attempt",
        )
        .bind(request_id)
        .fetch_all(&self.read)
        .await?;
        for r in &attempts {
            let delivery: i64 = r.try_get("delivery_id")?;
            if let Some(d) = out.iter_mut().find(|d| d.id == delivery) {
                d.attempts.push(AttemptRow {
                    attempt: r.try_get("attempt")?,
                    at: r.try_get("at")?,
                    latency_ms: r.try_get("latency_ms")?,
                    status_code: r.try_get("status_code")?,
                    response_snippet: r.try_get("response_snippet")?,
                    error: r.try_get("error")?,
                });
            }
        }
        Ok(out)
    }

    /// The auditors' reviews of a request, oldest first.
    pub async fn audit_reviews(&self, request_id: i64) -> Result<Vec<AuditReview>> {
        let rows = sqlx::query(
            "SELECT s.username, a.decision, a.remarks, a.at FROM audits a \
             JOIN staff s ON s.id = a.auditor_id WHERE a.request_id = $1 ORDER BY a.id",
        )
        .bind(request_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditReview {
                    auditor: r.try_get("username")?,
                    decision: r.try_get("decision")?,
                    remarks: r.try_get("remarks")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    // ---- signing keys ----

    pub async fn signing_key(&self, purpose: &str) -> Result<Option<SigningKeyRow>> {
        let row = sqlx::query(
            "SELECT algorithm, private_key_enc, public_key FROM signing_keys WHERE purpose = $1",
        )
        .bind(purpose)
        .fetch_optional(&self.read)
        .await?;
        Ok(row
            .map(|r| -> Result<SigningKeyRow, sqlx::Error> {
                Ok(SigningKeyRow {
                    algorithm: r.try_get("algorithm")?,
                    private_key_enc: r.try_get("private_key_enc")?,
                    public_key: r.try_get("public_key")?,
                })
            })
            .transpose()?)
    }

    /// Stores a new key for `purpose` unless one is there already (two processes making
    /// one at once: the first stays, and both use it).
    pub async fn insert_signing_key(&self, purpose: &str, key: &SigningKeyRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO signing_keys (purpose, algorithm, private_key_enc, public_key, \
             created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (purpose) DO NOTHING",
        )
        .bind(purpose)
        .bind(&key.algorithm)
        .bind(&key.private_key_enc)
        .bind(&key.public_key)
        .bind(crate::clock::now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }
}

/// The statements that fill `case_agents` from the calls (migration 0016 runs the same;
/// a bulk load that writes calls directly runs them after).
pub fn case_agents_statements() -> Vec<String> {
    vec![
        "DELETE FROM case_agents".into(),
        "INSERT INTO case_agents (agent_id, request_id, created_at) \
         SELECT DISTINCT c.agent_id, c.request_id, r.created_at \
         FROM calls c JOIN requests r ON r.id = c.request_id"
            .into(),
    ]
}

/// Records that the agent took a call of the request (once per agent and request).
pub(super) async fn add_case_agent(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    agent_id: i64,
    request_id: i64,
    created_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO case_agents (agent_id, request_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (agent_id, request_id) DO NOTHING",
    )
    .bind(agent_id)
    .bind(request_id)
    .bind(created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

enum Bind {
    Int(i64),
    Text(String),
}

/// The search statement and its parameters, in order.
fn search_sql(
    filter: &CaseFilter,
    cursor: Option<Cursor>,
    limit: i64,
    prefix: &str,
) -> (String, Vec<Bind>) {
    let mut binds = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    let mut add = |sql: &str, bind: Bind, binds: &mut Vec<Bind>| {
        binds.push(bind);
        conditions.push(sql.replace('?', &format!("${}", binds.len())));
    };
    if let Some(id) = filter.reference_id {
        add("r.id = ?", Bind::Int(id), &mut binds);
    }
    if let Some(v) = &filter.verification_id {
        add("r.verification_id = ?", Bind::Text(v.clone()), &mut binds);
    }
    if let Some(v) = &filter.user_id {
        add("r.user_id = ?", Bind::Text(v.clone()), &mut binds);
    }
    if let Some(v) = &filter.phone {
        add("u.phone = ?", Bind::Text(v.clone()), &mut binds);
    }
    if let Some(v) = &filter.name {
        add(
            "lower(u.name) = lower(?)",
            Bind::Text(v.clone()),
            &mut binds,
        );
    }
    if let Some(v) = filter.status {
        add("r.status = ?", Bind::Text(v.to_string()), &mut binds);
    }
    if let Some(v) = filter.sub_status {
        add("r.sub_status = ?", Bind::Text(v.to_string()), &mut binds);
    }
    // An agent's cases are read from `case_agents` in creation order, a page at a time
    // like the others, however many calls the agent has had; the order and the cursor
    // are then on its copy of each request's creation time.
    let (from, created, id) = match filter.agent_id {
        Some(v) => {
            add("ca.agent_id = ?", Bind::Int(v), &mut binds);
            (
                "case_agents ca JOIN requests r ON r.id = ca.request_id",
                "ca.created_at",
                "ca.request_id",
            )
        }
        None => ("requests r", "r.created_at", "r.id"),
    };
    if let Some(v) = filter.from {
        add(&format!("{created} >= ?"), Bind::Int(v), &mut binds);
    }
    if let Some(v) = filter.until {
        add(&format!("{created} < ?"), Bind::Int(v), &mut binds);
    }
    if let Some((at, at_id)) = cursor {
        binds.push(Bind::Int(at));
        binds.push(Bind::Int(at_id));
        let n = binds.len();
        // A row value: both backends read it as a range of the (…, created_at, id) index.
        conditions.push(format!("({created}, {id}) < (${}, ${n})", n - 1));
    }
    binds.push(Bind::Int(limit));
    let limit_param = binds.len();
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "{prefix}SELECT r.id, r.verification_id, r.user_id, r.sub_status, r.created_at, \
         u.name, u.phone, (SELECT s.username FROM calls c JOIN staff s ON s.id = c.agent_id \
         WHERE c.request_id = r.id ORDER BY c.id DESC LIMIT 1) AS agent \
         FROM {from} JOIN users u ON u.id = r.user_ref {filter} \
         ORDER BY {created} DESC, {id} DESC LIMIT ${limit_param}"
    );
    (sql, binds)
}
