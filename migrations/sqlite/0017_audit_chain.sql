-- The tamper-evident audit trail (docs/records.md). Every status move, closed journey
-- step, consent, auditor's review, agent's decision and staff action is a link of a
-- hash chain: chain_seq is its place in the chain, personal_digest the SHA-256 of its
-- personal fields (so the link survives their later removal) and chain_hash the SHA-256
-- of the previous link and of this row's content. Rows already present are chained on
-- the first start after this migration (`vkyc migrate` or `vkyc serve`).
ALTER TABLE history ADD COLUMN chain_seq INTEGER;
ALTER TABLE history ADD COLUMN personal_digest TEXT;
ALTER TABLE history ADD COLUMN chain_hash TEXT;
ALTER TABLE journey_steps ADD COLUMN chain_seq INTEGER;
ALTER TABLE journey_steps ADD COLUMN personal_digest TEXT;
ALTER TABLE journey_steps ADD COLUMN chain_hash TEXT;
ALTER TABLE consents ADD COLUMN chain_seq INTEGER;
ALTER TABLE consents ADD COLUMN personal_digest TEXT;
ALTER TABLE consents ADD COLUMN chain_hash TEXT;
ALTER TABLE audits ADD COLUMN chain_seq INTEGER;
ALTER TABLE audits ADD COLUMN personal_digest TEXT;
ALTER TABLE audits ADD COLUMN chain_hash TEXT;
ALTER TABLE calls ADD COLUMN chain_seq INTEGER;
ALTER TABLE calls ADD COLUMN personal_digest TEXT;
ALTER TABLE calls ADD COLUMN chain_hash TEXT;
ALTER TABLE staff_audit ADD COLUMN chain_seq INTEGER;
ALTER TABLE staff_audit ADD COLUMN personal_digest TEXT;
ALTER TABLE staff_audit ADD COLUMN chain_hash TEXT;

-- Rows still to be chained: a writer finds its own rows through these in its
-- transaction; after the first start they hold only open steps and undecided calls.
CREATE INDEX history_unchained ON history (request_id) WHERE chain_hash IS NULL;
CREATE INDEX journey_steps_unchained ON journey_steps (request_id) WHERE chain_hash IS NULL;
CREATE INDEX consents_unchained ON consents (request_id) WHERE chain_hash IS NULL;
CREATE INDEX audits_unchained ON audits (request_id) WHERE chain_hash IS NULL;
CREATE INDEX calls_unchained ON calls (request_id) WHERE chain_hash IS NULL;
CREATE INDEX staff_audit_unchained ON staff_audit (id) WHERE chain_hash IS NULL;
CREATE INDEX staff_audit_chain ON staff_audit (chain_seq) WHERE chain_hash IS NOT NULL;

-- Consent and the staff audit stay append-only; the only change allowed is setting a
-- row's chain columns, once.
DROP TRIGGER consents_no_update;
CREATE TRIGGER consents_no_update BEFORE UPDATE OF id, request_id, lang, text, text_sha256,
    at, ip, user_agent ON consents
BEGIN SELECT RAISE(ABORT, 'consent records cannot be changed'); END;
CREATE TRIGGER consents_chained_once BEFORE UPDATE OF chain_seq, personal_digest, chain_hash
    ON consents WHEN OLD.chain_hash IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'consent records cannot be changed'); END;
DROP TRIGGER staff_audit_no_update;
CREATE TRIGGER staff_audit_no_update BEFORE UPDATE OF id, staff_id, at, action, target, ip,
    details ON staff_audit
BEGIN SELECT RAISE(ABORT, 'staff_audit is append-only'); END;
CREATE TRIGGER staff_audit_chained_once BEFORE UPDATE OF chain_seq, personal_digest,
    chain_hash ON staff_audit WHEN OLD.chain_hash IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'staff_audit is append-only'); END;

-- The head of each chain: chain 0 is the staff audit's, chain n request n's. A writer
-- locks the head it extends (PostgreSQL: FOR UPDATE), so two writers never fork a chain.
-- anchored_seq is how far the latest daily anchor covers the chain.
CREATE TABLE audit_heads (
    chain         INTEGER PRIMARY KEY,
    seq           INTEGER NOT NULL,
    hash          TEXT    NOT NULL,
    anchored_seq  INTEGER NOT NULL DEFAULT 0
);

-- Daily anchors: a signed digest of the heads that moved since the anchor before (whose
-- digest each anchor includes). The same lines go to the log and to [audit] anchor_dir.
CREATE TABLE audit_anchors (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    chains       INTEGER NOT NULL,
    prev_digest  TEXT    NOT NULL,
    digest       TEXT    NOT NULL,
    public_key   TEXT    NOT NULL,
    signature    TEXT    NOT NULL
);
-- What each anchor covered: the chain's head (seq, hash) when it was taken.
CREATE TABLE audit_anchor_entries (
    anchor_id  INTEGER NOT NULL,
    chain      INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    hash       TEXT    NOT NULL,
    PRIMARY KEY (chain, anchor_id)
);
CREATE INDEX audit_anchor_entries_anchor ON audit_anchor_entries (anchor_id, chain);
