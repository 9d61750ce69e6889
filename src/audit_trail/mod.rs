//! The tamper-evident audit trail (docs/records.md): `vkyc audit verify` walks every
//! chain (the staff audit's and each request's) and holds them against the daily anchors
//! it finds; [`anchor`] takes those anchors.
//!
//! The walk streams: request chains are read a page of heads at a time (their rows,
//! and the anchor entries that cover them, with them), so memory stays flat however
//! many rows there are.

pub mod anchor;

use crate::domain::chain::{decode_hash, Broken, LinkRow, Table, GENESIS, STAFF_CHAIN};
use crate::store::{AnchorEntry, AnchorRow, Head, Store};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Request chains read per page.
const CHAINS_PER_PAGE: i64 = 2_000;
/// Staff chain rows read per page.
const STAFF_PER_PAGE: i64 = 10_000;

/// The first broken link of one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub chain: i64,
    /// The row where the chain stops holding (None: the chain's head itself).
    pub table: Option<Table>,
    pub row_id: Option<i64>,
    pub why: Broken,
}

impl std::fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.chain == STAFF_CHAIN {
            f.write_str("staff chain")?;
        } else {
            write!(f, "request {}", self.chain)?;
        }
        match (self.table, self.row_id) {
            (Some(t), Some(id)) => write!(f, ": {} row {id}: {}", t.as_str(), self.why),
            _ => write!(f, ": {}", self.why),
        }
    }
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Report {
    pub chains: u64,
    pub links: u64,
    pub anchors: u64,
    /// The first broken link of each chain that has one, in chain order.
    pub broken: Vec<BrokenLink>,
    /// Anchors that do not hold (signature, digest, or missing from the database).
    pub anchor_problems: Vec<String>,
}

impl Report {
    pub fn holds(&self) -> bool {
        self.broken.is_empty() && self.anchor_problems.is_empty()
    }
}

/// Chains the final rows that no writer sealed: on the first start after the upgrade
/// that brought the chain, every row written before it; after a bulk import, the
/// imported rows. Anything else found here was written around vkyc, so it is said in the
/// log and recorded in the staff audit (`audit_chain_extended`); `vkyc audit verify` run
/// before this start names such rows.
pub async fn chain_unsealed(store: &Store) -> anyhow::Result<u64> {
    let chained = store.chain_unsealed().await?;
    if chained > 0 {
        tracing::warn!(
            rows = chained,
            "audit trail: chained rows that were written without a link (expected once after \
             the upgrade that brought the chain, or after an import)"
        );
        let details = serde_json::json!({ "rows": chained }).to_string();
        store
            .insert_staff_audit(
                None,
                crate::clock::now_ms(),
                "audit_chain_extended",
                None,
                None,
                Some(&details),
            )
            .await?;
    }
    Ok(chained)
}

/// Walks every chain and every anchor (those in the database and, with `anchor_dir`,
/// those in its anchor file).
pub async fn verify(store: &Store, anchor_dir: Option<&Path>) -> anyhow::Result<Report> {
    let mut report = Report::default();
    check_anchors(store, anchor_dir, &mut report).await?;
    walk_staff(store, &mut report).await?;
    let mut after = STAFF_CHAIN;
    loop {
        let heads = store.chain_heads_after(after, CHAINS_PER_PAGE).await?;
        let first = after + 1;
        // The last page reaches to the end, so rows of a chain with no head are read.
        let last = if (heads.len() as i64) < CHAINS_PER_PAGE {
            i64::MAX
        } else {
            heads.last().map_or(i64::MAX, |h| h.chain)
        };
        let mut rows: BTreeMap<i64, Vec<LinkRow>> = BTreeMap::new();
        for row in store.request_links(first, last).await? {
            rows.entry(row.chain).or_default().push(row);
        }
        let mut entries: HashMap<i64, Vec<AnchorEntry>> = HashMap::new();
        for entry in store.anchor_entries_of(first, last).await? {
            entries.entry(entry.chain).or_default().push(entry);
        }
        let mut heads: BTreeMap<i64, Head> = heads.into_iter().map(|h| (h.chain, h)).collect();
        let mut chains: Vec<i64> = rows.keys().chain(heads.keys()).copied().collect();
        chains.sort_unstable();
        chains.dedup();
        for chain in chains {
            let chain_rows = rows.remove(&chain).unwrap_or_default();
            report.chains += 1;
            report.links += chain_rows.iter().filter(|r| r.seq.is_some()).count() as u64;
            let entries = entries.remove(&chain).unwrap_or_default();
            if let Some(broken) = walk(chain, chain_rows, heads.remove(&chain), &entries) {
                report.broken.push(broken);
            }
        }
        if last == i64::MAX {
            return Ok(report);
        }
        after = last;
    }
}

async fn walk_staff(store: &Store, report: &mut Report) -> anyhow::Result<()> {
    let head = store.staff_chain_head().await?;
    let entries = store.anchor_entries_of(STAFF_CHAIN, STAFF_CHAIN).await?;
    let mut chain = Walk::new(STAFF_CHAIN, &entries);
    let mut after = 0;
    let mut broken = None;
    'pages: loop {
        let page = store.staff_links(after, STAFF_PER_PAGE).await?;
        for row in &page {
            report.links += 1;
            if let Err(b) = chain.step(row) {
                broken = Some(b);
                break 'pages;
            }
        }
        match page.last() {
            Some(row) if page.len() as i64 == STAFF_PER_PAGE => after = row.seq.unwrap_or(0),
            _ => break,
        }
    }
    let unsealed = store.staff_unsealed().await?;
    if head.is_some() || !unsealed.is_empty() || broken.is_some() {
        report.chains += 1;
    }
    let broken = match broken {
        Some(b) => Some(b),
        None => chain.finish(head.as_ref(), &unsealed),
    };
    report.broken.extend(broken);
    Ok(())
}

/// One chain's rows, oldest link first.
fn walk(
    chain: i64,
    mut rows: Vec<LinkRow>,
    head: Option<Head>,
    entries: &[AnchorEntry],
) -> Option<BrokenLink> {
    let unsealed: Vec<LinkRow> = rows.iter().filter(|r| r.hash.is_none()).cloned().collect();
    rows.retain(|r| r.hash.is_some());
    rows.sort_by_key(|r| (r.seq, r.table, r.id));
    let mut walk = Walk::new(chain, entries);
    for row in &rows {
        if let Err(broken) = walk.step(row) {
            return Some(broken);
        }
    }
    walk.finish(head.as_ref(), &unsealed)
}

/// The state of a walk along one chain.
struct Walk<'a> {
    chain: i64,
    prev: [u8; 32],
    next_seq: i64,
    last: Option<(Table, i64)>,
    /// What the anchors recorded, by place in the chain.
    anchored: HashMap<i64, Vec<&'a AnchorEntry>>,
}

impl<'a> Walk<'a> {
    fn new(chain: i64, entries: &'a [AnchorEntry]) -> Walk<'a> {
        let mut anchored: HashMap<i64, Vec<&AnchorEntry>> = HashMap::new();
        for e in entries {
            anchored.entry(e.seq).or_default().push(e);
        }
        Walk {
            chain,
            prev: GENESIS,
            next_seq: 1,
            last: None,
            anchored,
        }
    }

    fn broken(&self, row: Option<&LinkRow>, why: Broken) -> BrokenLink {
        BrokenLink {
            chain: self.chain,
            table: row.map(|r| r.table),
            row_id: row.map(|r| r.id),
            why,
        }
    }

    fn step(&mut self, row: &LinkRow) -> Result<(), BrokenLink> {
        let hash = row
            .check(self.next_seq, &self.prev)
            .map_err(|why| self.broken(Some(row), why))?;
        if let Some(entries) = self.anchored.remove(&self.next_seq) {
            let hex_hash = hex::encode(hash);
            if let Some(e) = entries.iter().find(|e| e.hash != hex_hash) {
                let why = Broken::Anchor {
                    anchor: e.anchor_id,
                };
                return Err(self.broken(Some(row), why));
            }
        }
        self.prev = hash;
        self.next_seq += 1;
        self.last = Some((row.table, row.id));
        Ok(())
    }

    fn finish(self, head: Option<&Head>, unsealed: &[LinkRow]) -> Option<BrokenLink> {
        let at_last = |why| BrokenLink {
            chain: self.chain,
            table: self.last.map(|l| l.0),
            row_id: self.last.map(|l| l.1),
            why,
        };
        let seq = self.next_seq - 1;
        match head {
            Some(h) if h.seq == seq && decode_hash(&h.hash) == Some(self.prev) => {}
            Some(h) => return Some(at_last(Broken::Head { seq: h.seq })),
            None if seq > 0 => return Some(at_last(Broken::Head { seq: 0 })),
            None => {}
        }
        // An anchor covering a place the chain no longer reaches: rows were removed.
        if let Some(e) = self.anchored.values().flatten().min_by_key(|e| e.seq) {
            return Some(at_last(Broken::Anchor {
                anchor: e.anchor_id,
            }));
        }
        unsealed.first().map(|row| BrokenLink {
            chain: self.chain,
            table: Some(row.table),
            row_id: Some(row.id),
            why: Broken::NotChained,
        })
    }
}

/// Checks each anchor: its signature under the deployment's anchor key, its place after
/// the anchor before, its digest against what it covered, and (for the anchor file's)
/// that the database still holds it unchanged.
async fn check_anchors(
    store: &Store,
    anchor_dir: Option<&Path>,
    report: &mut Report,
) -> anyhow::Result<()> {
    use crate::case_export::signing;
    let key = store
        .signing_key(signing::ANCHOR_PURPOSE)
        .await?
        .and_then(|k| hex::decode(k.public_key).ok());
    let mut stored: BTreeMap<i64, AnchorRow> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = store.anchors_after(after, 1000).await?;
        let full = page.len() == 1000;
        for anchor in page {
            after = anchor.id;
            stored.insert(anchor.id, anchor);
        }
        if !full {
            break;
        }
    }
    let problems = &mut report.anchor_problems;
    if let Some(dir) = anchor_dir {
        let file = anchor::anchor_file(dir);
        if file.exists() {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                report.anchors += 1;
                match serde_json::from_str::<AnchorRow>(line) {
                    Err(_) => problems.push(format!(
                        "line {} of {} is not an anchor",
                        n + 1,
                        file.display()
                    )),
                    Ok(a) => match stored.get(&a.id) {
                        None => problems.push(format!(
                            "anchor {} (in {}) is missing from the database",
                            a.id,
                            file.display()
                        )),
                        Some(s) if *s != a => problems.push(format!(
                            "anchor {} in the database differs from the one in {}",
                            a.id,
                            file.display()
                        )),
                        Some(_) => {}
                    },
                }
            }
        }
    }
    let mut prev = String::new();
    for anchor in stored.values() {
        report.anchors += 1;
        let signed_by_us = signing::raw_public_key(&anchor.public_key)
            .is_some_and(|raw| key.as_deref() == Some(raw.as_slice()));
        let signature = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            &anchor.signature,
        )
        .unwrap_or_default();
        if !signed_by_us
            || !signing::verify(&anchor.public_key, anchor.message().as_bytes(), &signature)
        {
            problems.push(format!(
                "anchor {}'s signature does not verify under this deployment's anchor key",
                anchor.id
            ));
        }
        if anchor.prev_digest != prev {
            problems.push(format!(
                "anchor {} does not follow the anchor before it (one was removed)",
                anchor.id
            ));
        }
        prev = anchor.digest.clone();
        let mut digest =
            crate::domain::chain::AnchorDigest::new(anchor.id, anchor.at, &anchor.prev_digest);
        let mut count = 0i64;
        let mut after_chain = STAFF_CHAIN - 1;
        loop {
            let page = store.anchor_entries(anchor.id, after_chain, 10_000).await?;
            for e in &page {
                digest.entry(e.chain, e.seq, &e.hash);
                after_chain = e.chain;
            }
            count += page.len() as i64;
            if page.len() < 10_000 {
                break;
            }
        }
        if count != anchor.chains || digest.finish(count) != anchor.digest {
            problems.push(format!(
                "anchor {}'s record of the chain heads was changed",
                anchor.id
            ));
        }
    }
    Ok(())
}
