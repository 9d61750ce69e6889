//! The audit trail's hash chain, as pure rules: which tables take part, what a row's
//! canonical content is, and how its link is computed and checked (docs/records.md,
//! "Tamper-evident audit trail").
//!
//! A link is `chain_hash = SHA-256(previous chain_hash || content_digest)`, where
//! `content_digest = SHA-256("vkyc-chain-v1", table, row id, chain, seq, the row's other
//! fields, personal_digest)` and `personal_digest = SHA-256(the row's personal fields)`.
//! `personal_digest` is stored in the row: once a purge has set the personal fields to
//! NULL, the link still checks every other field and the chain itself.

use sha2::{Digest, Sha256};

/// The hash before a chain's first link: 32 zero bytes.
pub const GENESIS: [u8; 32] = [0; 32];
/// The staff audit's chain; chain `n > 0` is request `n`'s.
pub const STAFF_CHAIN: i64 = 0;

/// A table whose rows are links. The order is the order of rows written in one
/// transaction (a move's history row before the step it closes, and so on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    History,
    JourneySteps,
    Consents,
    Audits,
    Calls,
    StaffAudit,
}

impl Table {
    pub const REQUEST_TABLES: [Table; 5] = [
        Table::History,
        Table::JourneySteps,
        Table::Consents,
        Table::Audits,
        Table::Calls,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Table::History => "history",
            Table::JourneySteps => "journey_steps",
            Table::Consents => "consents",
            Table::Audits => "audits",
            Table::Calls => "calls",
            Table::StaffAudit => "staff_audit",
        }
    }

    pub fn parse(name: &str) -> Option<Table> {
        [Table::StaffAudit]
            .into_iter()
            .chain(Table::REQUEST_TABLES)
            .find(|t| t.as_str() == name)
    }
}

/// One row as the chain sees it: the fields its link covers, in a fixed layout per table
/// (see `store::chain` for which column goes where).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    pub table: Table,
    pub id: i64,
    pub chain: i64,
    /// When the row became final (its order among rows made in one pass).
    pub at: i64,
    pub ints: [Option<i64>; 3],
    pub texts: [Option<String>; 6],
    /// Personal data: removed by a purge, covered through `personal_digest`.
    pub personal: [Option<String>; 3],
    /// Set once the row is chained.
    pub seq: Option<i64>,
    pub personal_digest: Option<String>,
    pub hash: Option<String>,
}

/// Length-prefixed, typed fields: no two different rows encode the same.
struct Canonical(Sha256);

impl Canonical {
    fn new(domain: &str) -> Canonical {
        let mut c = Canonical(Sha256::new());
        c.text(Some(domain));
        c
    }
    fn int(&mut self, v: Option<i64>) {
        match v {
            None => self.0.update([0u8]),
            Some(v) => {
                self.0.update([1u8]);
                self.0.update(v.to_be_bytes());
            }
        }
    }
    fn text(&mut self, v: Option<&str>) {
        match v {
            None => self.0.update([0u8]),
            Some(v) => {
                self.0.update([2u8]);
                self.0.update((v.len() as u64).to_be_bytes());
                self.0.update(v.as_bytes());
            }
        }
    }
    fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

impl LinkRow {
    /// SHA-256 of the personal fields, hex.
    pub fn personal_digest_now(&self) -> String {
        let mut c = Canonical::new("vkyc-personal-v1");
        for p in &self.personal {
            c.text(p.as_deref());
        }
        hex::encode(c.finish())
    }

    /// Whether a purge has removed this row's personal fields (all are NULL, or empty
    /// where the column cannot be NULL): its stored `personal_digest` is then taken as it
    /// is.
    pub fn personal_removed(&self) -> bool {
        self.personal
            .iter()
            .all(|p| p.as_deref().is_none_or(str::is_empty))
    }

    fn content_digest(&self, seq: i64, personal_digest: &str) -> [u8; 32] {
        let mut c = Canonical::new("vkyc-chain-v1");
        c.text(Some(self.table.as_str()));
        c.int(Some(self.id));
        c.int(Some(self.chain));
        c.int(Some(seq));
        for v in &self.ints {
            c.int(*v);
        }
        for v in &self.texts {
            c.text(v.as_deref());
        }
        c.text(Some(personal_digest));
        c.finish()
    }

    /// The link of this row at `seq` after `prev`: (personal_digest, chain_hash), hex.
    pub fn link(&self, seq: i64, prev: &[u8; 32]) -> (String, [u8; 32]) {
        let personal = self.personal_digest_now();
        let hash = link_hash(prev, &self.content_digest(seq, &personal));
        (personal, hash)
    }

    /// Checks a chained row against the link before it; the stored hash (bytes) to carry
    /// on with, or why it does not hold.
    pub fn check(&self, expected_seq: i64, prev: &[u8; 32]) -> Result<[u8; 32], Broken> {
        let (Some(seq), Some(personal), Some(hash)) = (
            self.seq,
            self.personal_digest.as_deref(),
            self.hash.as_deref(),
        ) else {
            return Err(Broken::NotChained);
        };
        let stored = decode_hash(hash).ok_or(Broken::Content)?;
        if seq != expected_seq {
            return Err(Broken::Sequence {
                expected: expected_seq,
                found: seq,
            });
        }
        if !self.personal_removed() && self.personal_digest_now() != personal {
            return Err(Broken::Content);
        }
        if link_hash(prev, &self.content_digest(seq, personal)) != stored {
            return Err(Broken::Content);
        }
        Ok(stored)
    }
}

fn link_hash(prev: &[u8; 32], content: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(content);
    h.finalize().into()
}

pub fn decode_hash(hex_text: &str) -> Option<[u8; 32]> {
    hex::decode(hex_text).ok()?.try_into().ok()
}

/// Why a chain does not hold at a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// The row's fields (or its stored hash) are not what was chained, or the link before
    /// it was changed.
    Content,
    /// A row is missing before this one, or sits at another place.
    Sequence { expected: i64, found: i64 },
    /// A final row that no writer chained: added outside vkyc.
    NotChained,
    /// The chain's head does not name its last row (rows removed from its end).
    Head { seq: i64 },
    /// A daily anchor recorded another hash at this place: the chain was rewritten.
    Anchor { anchor: i64 },
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::Content => f.write_str("the row does not match its link (changed)"),
            Broken::Sequence { expected, found } => write!(
                f,
                "link {found} where link {expected} belongs (a row was removed or moved)"
            ),
            Broken::NotChained => f.write_str("the row is not in the chain (added outside vkyc)"),
            Broken::Head { seq } => write!(
                f,
                "the chain's head names link {seq}, not this last row (rows removed)"
            ),
            Broken::Anchor { anchor } => write!(
                f,
                "anchor {anchor} recorded another hash for this link (the chain was rewritten)"
            ),
        }
    }
}

/// The digest a daily anchor signs: the anchor before it, then each chain's head that
/// moved since (in chain order), then their count.
pub struct AnchorDigest(Canonical);

impl AnchorDigest {
    pub fn new(id: i64, at: i64, prev: &str) -> AnchorDigest {
        let mut c = Canonical::new("vkyc-anchor-v1");
        c.int(Some(id));
        c.int(Some(at));
        c.text(Some(prev));
        AnchorDigest(c)
    }
    pub fn entry(&mut self, chain: i64, seq: i64, hash: &str) {
        self.0.int(Some(chain));
        self.0.int(Some(seq));
        self.0.text(Some(hash));
    }
    pub fn finish(mut self, chains: i64) -> String {
        self.0.int(Some(chains));
        hex::encode(self.0.finish())
    }
}

/// The text a daily anchor's signature covers.
pub fn anchor_message(id: i64, at: i64, chains: i64, prev: &str, digest: &str) -> String {
    format!("vkyc-audit-anchor v1 id={id} at={at} chains={chains} prev={prev} digest={digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> LinkRow {
        LinkRow {
            table: Table::Consents,
            id: 7,
            chain: 3,
            at: 1,
            ints: [Some(1_700_000_000_000), None, None],
            texts: [
                Some("en".into()),
                Some("text".into()),
                None,
                None,
                None,
                None,
            ],
            personal: [Some("10.0.0.1".into()), Some("agent".into()), None],
            seq: None,
            personal_digest: None,
            hash: None,
        }
    }

    fn chained(mut r: LinkRow, seq: i64, prev: &[u8; 32]) -> (LinkRow, [u8; 32]) {
        let (p, h) = r.link(seq, prev);
        r.seq = Some(seq);
        r.personal_digest = Some(p);
        r.hash = Some(hex::encode(h));
        (r, h)
    }

    #[test]
    fn a_link_checks_until_a_field_changes_and_survives_a_purge() {
        let (r, h) = chained(row(), 1, &GENESIS);
        assert_eq!(r.check(1, &GENESIS), Ok(h));
        let mut changed = r.clone();
        changed.texts[0] = Some("hi".into());
        assert_eq!(changed.check(1, &GENESIS), Err(Broken::Content));
        let mut personal = r.clone();
        personal.personal[0] = Some("10.0.0.2".into());
        assert_eq!(personal.check(1, &GENESIS), Err(Broken::Content));
        // A purge nulls the personal fields: the rest and the link still check.
        let mut purged = r.clone();
        purged.personal = [None, None, None];
        assert_eq!(purged.check(1, &GENESIS), Ok(h));
        purged.ints[0] = Some(1);
        assert_eq!(purged.check(1, &GENESIS), Err(Broken::Content));
        // Another place, another previous link: broken.
        assert!(r.check(2, &GENESIS).is_err());
        assert_eq!(r.check(1, &[1; 32]), Err(Broken::Content));
    }

    #[test]
    fn null_and_empty_and_shifted_fields_encode_differently() {
        let mut a = row();
        a.texts[2] = Some(String::new());
        let mut b = row();
        b.texts[2] = None;
        assert_ne!(a.link(1, &GENESIS).1, b.link(1, &GENESIS).1);
        let mut c = row();
        c.texts[0] = Some("ent".into());
        c.texts[1] = Some("ext".into());
        assert_ne!(row().link(1, &GENESIS).1, c.link(1, &GENESIS).1);
    }
}
