//! The audit trail's chain in the database (rules in `domain::chain`): writers seal the
//! rows they wrote into their chains inside their own transaction, the first start chains
//! rows written before the chain existed, and `vkyc audit verify` reads the chains back.
//!
//! Sealing locks the chain's head first (PostgreSQL: `FOR UPDATE`; SQLite has one
//! writer), then reads the chain's unsealed rows: a concurrent writer's rows are either
//! not yet committed (invisible, and sealed by that writer) or committed and sealed.

use super::{Backend, Store, ROWS_PER_STATEMENT};
use crate::domain::chain::{LinkRow, Table, GENESIS, STAFF_CHAIN};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Which tables a writer wrote to, so a seal reads only those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wrote(u8);

impl Wrote {
    pub const HISTORY: Wrote = Wrote(1);
    pub const STEPS: Wrote = Wrote(2);
    pub const CONSENTS: Wrote = Wrote(4);
    pub const AUDITS: Wrote = Wrote(8);
    pub const CALLS: Wrote = Wrote(16);
    pub const ALL: Wrote = Wrote(31);

    fn has(self, table: Table) -> bool {
        let bit = match table {
            Table::History => 1,
            Table::JourneySteps => 2,
            Table::Consents => 4,
            Table::Audits => 8,
            Table::Calls => 16,
            Table::StaffAudit => 0,
        };
        self.0 & bit != 0
    }
}

impl std::ops::BitOr for Wrote {
    type Output = Wrote;
    fn bitor(self, other: Wrote) -> Wrote {
        Wrote(self.0 | other.0)
    }
}

/// A table's columns in the chain's layout (`LinkRow`), and which of its rows are final.
struct Layout {
    chain: &'static str,
    at: &'static str,
    ints: [&'static str; 3],
    texts: [&'static str; 6],
    personal: [&'static str; 3],
    /// Rows not yet final (an open step, an undecided call) are not links yet.
    final_rows: &'static str,
}

const NO_INT: &str = "CAST(NULL AS BIGINT)";
const NO_TEXT: &str = "CAST(NULL AS TEXT)";

fn layout(table: Table) -> Layout {
    match table {
        Table::History => Layout {
            chain: "request_id",
            at: "at",
            ints: ["at", NO_INT, NO_INT],
            texts: [
                "actor",
                "event",
                "from_status",
                "from_sub_status",
                "to_status",
                "to_sub_status",
            ],
            personal: ["details", NO_TEXT, NO_TEXT],
            final_rows: "TRUE",
        },
        Table::JourneySteps => Layout {
            chain: "request_id",
            at: "ended_at",
            ints: ["started_at", "ended_at", NO_INT],
            texts: ["step", "outcome", NO_TEXT, NO_TEXT, NO_TEXT, NO_TEXT],
            personal: ["evidence", NO_TEXT, NO_TEXT],
            final_rows: "ended_at IS NOT NULL",
        },
        Table::Consents => Layout {
            chain: "request_id",
            at: "at",
            ints: ["at", NO_INT, NO_INT],
            texts: ["lang", "text", "text_sha256", NO_TEXT, NO_TEXT, NO_TEXT],
            personal: ["ip", "user_agent", NO_TEXT],
            final_rows: "TRUE",
        },
        Table::Audits => Layout {
            chain: "request_id",
            at: "at",
            ints: ["auditor_id", "at", NO_INT],
            texts: ["decision", NO_TEXT, NO_TEXT, NO_TEXT, NO_TEXT, NO_TEXT],
            personal: ["remarks", NO_TEXT, NO_TEXT],
            final_rows: "TRUE",
        },
        // A call is a link once its agent decided it; the link covers the decision.
        Table::Calls => Layout {
            chain: "request_id",
            at: "decided_at",
            ints: ["agent_id", "decided_at", NO_INT],
            texts: ["decision", NO_TEXT, NO_TEXT, NO_TEXT, NO_TEXT, NO_TEXT],
            personal: ["remarks", NO_TEXT, NO_TEXT],
            final_rows: "decision IS NOT NULL",
        },
        Table::StaffAudit => Layout {
            chain: "0",
            at: "at",
            ints: ["staff_id", "at", NO_INT],
            texts: ["action", NO_TEXT, NO_TEXT, NO_TEXT, NO_TEXT, NO_TEXT],
            personal: ["target", "ip", "details"],
            final_rows: "TRUE",
        },
    }
}

/// `SELECT <the LinkRow columns> FROM <table> WHERE <filter>`.
fn select_links(table: Table, filter: &str) -> String {
    let l = layout(table);
    let mut sql = format!(
        "SELECT id, CAST({} AS BIGINT) AS chain, {} AS link_at",
        l.chain, l.at
    );
    for (i, c) in l.ints.iter().enumerate() {
        let _ = write!(sql, ", {c} AS i{i}");
    }
    for (i, c) in l.texts.iter().enumerate() {
        let _ = write!(sql, ", {c} AS t{i}");
    }
    for (i, c) in l.personal.iter().enumerate() {
        let _ = write!(sql, ", {c} AS p{i}");
    }
    let _ = write!(
        sql,
        ", chain_seq, personal_digest, chain_hash FROM {} WHERE {} AND ({filter})",
        table.as_str(),
        l.final_rows
    );
    sql
}

fn link_from_row(table: Table, row: &AnyRow) -> Result<LinkRow, sqlx::Error> {
    let int = |name: &str| row.try_get::<Option<i64>, _>(name);
    let text = |name: &str| row.try_get::<Option<String>, _>(name);
    Ok(LinkRow {
        table,
        id: row.try_get("id")?,
        chain: row.try_get("chain")?,
        at: int("link_at")?.unwrap_or_default(),
        ints: [int("i0")?, int("i1")?, int("i2")?],
        texts: [
            text("t0")?,
            text("t1")?,
            text("t2")?,
            text("t3")?,
            text("t4")?,
            text("t5")?,
        ],
        personal: [text("p0")?, text("p1")?, text("p2")?],
        seq: int("chain_seq")?,
        personal_digest: text("personal_digest")?,
        hash: text("chain_hash")?,
    })
}

fn id_list(ids: &[i64]) -> String {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    list.join(", ")
}

/// A chain's head: its last link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub chain: i64,
    pub seq: i64,
    pub hash: String,
}

/// Locks and reads the heads of `chains` (sorted, distinct), making the missing ones.
async fn lock_heads(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    chains: &[i64],
) -> Result<BTreeMap<i64, Head>, sqlx::Error> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let read = |list: &[i64]| {
        format!(
            "SELECT chain, seq, hash FROM audit_heads WHERE chain IN ({}) ORDER BY chain{lock}",
            id_list(list)
        )
    };
    let mut heads = BTreeMap::new();
    for chunk in chains.chunks(1000) {
        for row in sqlx::query(&read(chunk))
            .persistent(false)
            .fetch_all(&mut **tx)
            .await?
        {
            let head = Head {
                chain: row.try_get("chain")?,
                seq: row.try_get("seq")?,
                hash: row.try_get("hash")?,
            };
            heads.insert(head.chain, head);
        }
    }
    let missing: Vec<i64> = chains
        .iter()
        .copied()
        .filter(|c| !heads.contains_key(c))
        .collect();
    if missing.is_empty() {
        return Ok(heads);
    }
    // A new chain. Another writer may make the same head at once: the key lets one in,
    // the other waits for it and then locks the head it made.
    for chunk in missing.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from("INSERT INTO audit_heads (chain, seq, hash) VALUES ");
        for (i, chain) in chunk.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(sql, "{sep}({chain}, 0, '{}')", hex::encode(GENESIS));
        }
        sql.push_str(" ON CONFLICT (chain) DO NOTHING");
        sqlx::query(&sql)
            .persistent(false)
            .execute(&mut **tx)
            .await?;
        for row in sqlx::query(&read(chunk))
            .persistent(false)
            .fetch_all(&mut **tx)
            .await?
        {
            let head = Head {
                chain: row.try_get("chain")?,
                seq: row.try_get("seq")?,
                hash: row.try_get("hash")?,
            };
            heads.insert(head.chain, head);
        }
    }
    Ok(heads)
}

/// Links the unsealed `rows` (all of chains locked in `heads`) after their heads, in the
/// order they were made, and writes the links and the new heads (`new_heads`: heads not
/// in the table yet, inserted).
async fn link_rows(
    tx: &mut Transaction<'static, Any>,
    heads: &mut BTreeMap<i64, Head>,
    mut rows: Vec<LinkRow>,
    new_heads: bool,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    rows.sort_by_key(|r| (r.chain, r.at, r.table, r.id));
    let mut by_table: BTreeMap<Table, Vec<(i64, i64, String, String)>> = BTreeMap::new();
    let mut moved = Vec::new();
    for row in &rows {
        let head = heads
            .get_mut(&row.chain)
            .ok_or_else(|| sqlx::Error::Protocol(format!("no head for chain {}", row.chain)))?;
        let prev = crate::domain::chain::decode_hash(&head.hash).ok_or_else(|| {
            sqlx::Error::Decode(format!("chain {}'s head is not a hash", row.chain).into())
        })?;
        let seq = head.seq + 1;
        let (personal, hash) = row.link(seq, &prev);
        head.seq = seq;
        head.hash = hex::encode(hash);
        by_table
            .entry(row.table)
            .or_default()
            .push((row.id, seq, personal, head.hash.clone()));
        if moved.last() != Some(&row.chain) {
            moved.push(row.chain);
        }
    }
    for (table, links) in by_table {
        for chunk in links.chunks(ROWS_PER_STATEMENT) {
            let sql = super::update_by_key(
                table.as_str(),
                "id",
                &["chain_seq", "personal_digest", "chain_hash"],
                chunk.len(),
            );
            let mut query = sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_STATEMENT);
            for (id, seq, personal, hash) in chunk {
                query = query.bind(*id).bind(*seq).bind(personal).bind(hash);
            }
            query.execute(&mut **tx).await?;
        }
    }
    for chunk in moved.chunks(ROWS_PER_STATEMENT) {
        let sql = if new_heads {
            format!(
                "INSERT INTO audit_heads (chain, seq, hash) VALUES {}",
                super::value_rows(chunk.len(), 3)
            )
        } else {
            super::update_by_key("audit_heads", "chain", &["seq", "hash"], chunk.len())
        };
        let mut query = sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_STATEMENT);
        for chain in chunk {
            let head = &heads[chain];
            query = query.bind(head.chain).bind(head.seq).bind(&head.hash);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// A history row as the chain sees it (the `history` layout above, field for field).
pub(super) struct HistoryFields<'a> {
    pub id: i64,
    pub request_id: i64,
    pub at: i64,
    pub actor: &'a str,
    pub event: &'a str,
    pub from: Option<(&'a str, &'a str)>,
    pub to: (&'a str, &'a str),
    pub details: Option<&'a str>,
}

impl HistoryFields<'_> {
    fn link_row(&self) -> LinkRow {
        let text = |v: &str| Some(v.to_string());
        LinkRow {
            table: Table::History,
            id: self.id,
            chain: self.request_id,
            at: self.at,
            ints: [Some(self.at), None, None],
            texts: [
                text(self.actor),
                text(self.event),
                self.from.map(|f| f.0.to_string()),
                self.from.map(|f| f.1.to_string()),
                text(self.to.0),
                text(self.to.1),
            ],
            personal: [self.details.map(str::to_string), None, None],
            seq: None,
            personal_digest: None,
            hash: None,
        }
    }
}

/// Starts the chains of new requests with their first history rows (`rows`, one per
/// request): no head to lock, as nobody else can know a request that is being created.
pub(super) async fn start_chains(
    tx: &mut Transaction<'static, Any>,
    rows: &[HistoryFields<'_>],
) -> Result<(), sqlx::Error> {
    let mut heads = rows
        .iter()
        .map(|r| {
            let head = Head {
                chain: r.request_id,
                seq: 0,
                hash: hex::encode(GENESIS),
            };
            (r.request_id, head)
        })
        .collect();
    let rows = rows.iter().map(HistoryFields::link_row).collect();
    link_rows(tx, &mut heads, rows, true).await
}

/// Writes new requests' first history rows (`rows`, one per request, their ids already
/// drawn) sealed as they go in, with their chains' heads, in one statement (PostgreSQL).
/// Unlike [`start_chains`] no row is updated after its insert, so none is written twice
/// or passes through `history_unchained`; and the statement's text is the same for any
/// number of rows, so it stays prepared.
pub(super) async fn insert_first_rows(
    tx: &mut Transaction<'static, Any>,
    rows: &[HistoryFields<'_>],
) -> Result<(), sqlx::Error> {
    const SQL: &str = "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(\
            id BIGINT, request_id BIGINT, at BIGINT, actor TEXT, event TEXT, \
            from_status TEXT, from_sub_status TEXT, to_status TEXT, to_sub_status TEXT, \
            details TEXT, personal_digest TEXT, chain_hash TEXT)), \
         heads AS (INSERT INTO audit_heads (chain, seq, hash) \
            SELECT request_id, 1, chain_hash FROM r) \
         INSERT INTO history (id, request_id, at, actor, event, from_status, from_sub_status, \
            to_status, to_sub_status, details, chain_seq, personal_digest, chain_hash) \
         SELECT id, request_id, at, actor, event, from_status, from_sub_status, to_status, \
            to_sub_status, details, 1, personal_digest, chain_hash FROM r";
    /// One row of the statement's `jsonb_to_recordset`, its columns by name.
    #[derive(serde::Serialize)]
    struct Sealed<'a> {
        id: i64,
        request_id: i64,
        at: i64,
        actor: &'a str,
        event: &'a str,
        from_status: Option<&'a str>,
        from_sub_status: Option<&'a str>,
        to_status: &'a str,
        to_sub_status: &'a str,
        details: Option<&'a str>,
        personal_digest: String,
        chain_hash: String,
    }
    let records: Vec<Sealed> = rows
        .iter()
        .map(|r| {
            let (personal_digest, hash) = r.link_row().link(1, &GENESIS);
            Sealed {
                id: r.id,
                request_id: r.request_id,
                at: r.at,
                actor: r.actor,
                event: r.event,
                from_status: r.from.map(|f| f.0),
                from_sub_status: r.from.map(|f| f.1),
                to_status: r.to.0,
                to_sub_status: r.to.1,
                details: r.details,
                personal_digest,
                chain_hash: hex::encode(hash),
            }
        })
        .collect();
    let records = serde_json::to_string(&records)
        .map_err(|e| sqlx::Error::Protocol(format!("history rows as JSON: {e}")))?;
    sqlx::query(SQL).bind(records).execute(&mut **tx).await?;
    Ok(())
}

impl Store {
    /// Seals into their requests' chains the rows of `requests` that this transaction
    /// wrote to the tables in `wrote` (and any other unsealed final row of theirs).
    pub(super) async fn seal(
        &self,
        tx: &mut Transaction<'static, Any>,
        requests: &[i64],
        wrote: Wrote,
    ) -> Result<(), sqlx::Error> {
        if requests.is_empty() {
            return Ok(());
        }
        let mut chains = requests.to_vec();
        chains.sort_unstable();
        chains.dedup();
        // Heads first, in chain order (as every writer takes them), then the rows.
        let mut heads = lock_heads(tx, self.backend, &chains).await?;
        let mut rows = Vec::new();
        for chunk in chains.chunks(1000) {
            let filter = if chunk.len() == 1 {
                "request_id = $1 AND chain_hash IS NULL".to_string()
            } else {
                format!("request_id IN ({}) AND chain_hash IS NULL", id_list(chunk))
            };
            for table in Table::REQUEST_TABLES {
                if !wrote.has(table) {
                    continue;
                }
                let sql = select_links(table, &filter);
                let mut query = sqlx::query(&sql).persistent(chunk.len() == 1);
                if chunk.len() == 1 {
                    query = query.bind(chunk[0]);
                }
                for row in query.fetch_all(&mut **tx).await? {
                    rows.push(link_from_row(table, &row)?);
                }
            }
        }
        link_rows(tx, &mut heads, rows, false).await
    }

    /// Seals the staff audit's unsealed rows, in the order they were written.
    pub(super) async fn seal_staff(
        &self,
        tx: &mut Transaction<'static, Any>,
    ) -> Result<usize, sqlx::Error> {
        let mut heads = lock_heads(tx, self.backend, &[STAFF_CHAIN]).await?;
        let sql = format!(
            "{} ORDER BY id LIMIT 10000",
            select_links(Table::StaffAudit, "chain_hash IS NULL")
        );
        let rows = sqlx::query(&sql)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| link_from_row(Table::StaffAudit, r))
            .collect::<Result<Vec<_>, _>>()?;
        let n = rows.len();
        link_rows(tx, &mut heads, rows, false).await?;
        Ok(n)
    }

    /// Chains the rows written before the chain existed (or by anything that wrote
    /// around vkyc's writers, such as a data import), chain by chain in the order they
    /// were made. Runs on every start; costs a few index lookups when there is nothing
    /// to do. Returns how many rows it chained.
    pub async fn chain_unsealed(&self) -> crate::error::Result<u64> {
        let mut chained = 0u64;
        loop {
            let mut tx = self.write.begin().await?;
            let n = self.seal_staff(&mut tx).await?;
            tx.commit().await?;
            chained += n as u64;
            if n < 10000 {
                break;
            }
        }
        // Requests with unsealed final rows, 1000 request ids at a time.
        const SPAN: i64 = 1000;
        let mut after = -1i64;
        loop {
            let mut next: Option<i64> = None;
            for table in Table::REQUEST_TABLES {
                let sql = format!(
                    "SELECT MIN(request_id) AS first FROM {} WHERE chain_hash IS NULL \
                     AND {} AND request_id > $1",
                    table.as_str(),
                    layout(table).final_rows
                );
                let first: Option<i64> = sqlx::query(&sql)
                    .bind(after)
                    .fetch_one(&self.write)
                    .await?
                    .try_get("first")?;
                next = match (next, first) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            let Some(first) = next else {
                break;
            };
            let last = first.saturating_add(SPAN - 1);
            let mut ids = Vec::new();
            for table in Table::REQUEST_TABLES {
                let sql = format!(
                    "SELECT DISTINCT request_id FROM {} WHERE chain_hash IS NULL AND {} \
                     AND request_id BETWEEN $1 AND $2",
                    table.as_str(),
                    layout(table).final_rows
                );
                for row in sqlx::query(&sql)
                    .bind(first)
                    .bind(last)
                    .fetch_all(&self.write)
                    .await?
                {
                    ids.push(row.try_get::<i64, _>("request_id")?);
                }
            }
            let mut tx = self.write.begin().await?;
            let before = self.unsealed_in(&mut tx, first, last).await?;
            self.seal(&mut tx, &ids, Wrote::ALL).await?;
            tx.commit().await?;
            chained += before;
            after = last;
        }
        Ok(chained)
    }

    async fn unsealed_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        first: i64,
        last: i64,
    ) -> Result<u64, sqlx::Error> {
        let mut n = 0;
        for table in Table::REQUEST_TABLES {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM {} WHERE chain_hash IS NULL AND {} \
                 AND request_id BETWEEN $1 AND $2",
                table.as_str(),
                layout(table).final_rows
            );
            let count: i64 = sqlx::query(&sql)
                .bind(first)
                .bind(last)
                .fetch_one(&mut **tx)
                .await?
                .try_get("n")?;
            n += count as u64;
        }
        Ok(n)
    }

    // ---- reading the chains back (vkyc audit verify) ----

    /// Up to `limit` heads of request chains after `after`, in chain order.
    pub async fn chain_heads_after(
        &self,
        after: i64,
        limit: i64,
    ) -> crate::error::Result<Vec<Head>> {
        let rows = sqlx::query(
            "SELECT chain, seq, hash FROM audit_heads WHERE chain > $1 ORDER BY chain LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|row| -> Result<Head, sqlx::Error> {
                Ok(Head {
                    chain: row.try_get("chain")?,
                    seq: row.try_get("seq")?,
                    hash: row.try_get("hash")?,
                })
            })
            .collect::<Result<_, _>>()?)
    }

    /// The staff chain's head, if it has one.
    pub async fn staff_chain_head(&self) -> crate::error::Result<Option<Head>> {
        Ok(self
            .chain_heads_after(STAFF_CHAIN - 1, 1)
            .await?
            .into_iter()
            .find(|h| h.chain == STAFF_CHAIN))
    }

    /// Every final row (sealed or not) of the request chains `first..=last`.
    pub async fn request_links(&self, first: i64, last: i64) -> crate::error::Result<Vec<LinkRow>> {
        let mut out = Vec::new();
        for table in Table::REQUEST_TABLES {
            let sql = select_links(table, "request_id BETWEEN $1 AND $2");
            for row in sqlx::query(&sql)
                .bind(first)
                .bind(last)
                .fetch_all(&self.read)
                .await?
            {
                out.push(link_from_row(table, &row)?);
            }
        }
        Ok(out)
    }

    /// The staff chain's rows in chain order, `limit` at a time from after `seq` (then
    /// the rows no writer sealed, with `seq` None, once the sealed ones are done).
    pub async fn staff_links(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> crate::error::Result<Vec<LinkRow>> {
        let sql = format!(
            "{} ORDER BY chain_seq LIMIT $2",
            select_links(
                Table::StaffAudit,
                "chain_hash IS NOT NULL AND chain_seq > $1"
            )
        );
        let rows = sqlx::query(&sql)
            .bind(after_seq)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(|r| link_from_row(Table::StaffAudit, r))
            .collect::<Result<_, _>>()?)
    }

    /// Staff audit rows that no writer sealed (a few at most: they are reported).
    pub async fn staff_unsealed(&self) -> crate::error::Result<Vec<LinkRow>> {
        let sql = format!(
            "{} ORDER BY id LIMIT 100",
            select_links(Table::StaffAudit, "chain_hash IS NULL")
        );
        let rows = sqlx::query(&sql).fetch_all(&self.read).await?;
        Ok(rows
            .iter()
            .map(|r| link_from_row(Table::StaffAudit, r))
            .collect::<Result<_, _>>()?)
    }
}
