-- The tamper-evident audit trail (docs/records.md). Every status move, closed journey
-- step, consent, auditor's review, agent's decision and staff action is a link of a
-- hash chain: chain_seq is its place in the chain, personal_digest the SHA-256 of its
-- personal fields (so the link survives their later removal) and chain_hash the SHA-256
-- of the previous link and of this row's content. Rows already present are chained on
-- the first start after this migration (`vkyc migrate` or `vkyc serve`).
ALTER TABLE history ADD COLUMN chain_seq BIGINT, ADD COLUMN personal_digest TEXT,
    ADD COLUMN chain_hash TEXT;
ALTER TABLE journey_steps ADD COLUMN chain_seq BIGINT, ADD COLUMN personal_digest TEXT,
    ADD COLUMN chain_hash TEXT;
ALTER TABLE consents ADD COLUMN chain_seq BIGINT, ADD COLUMN personal_digest TEXT,
    ADD COLUMN chain_hash TEXT;
ALTER TABLE audits ADD COLUMN chain_seq BIGINT, ADD COLUMN personal_digest TEXT,
    ADD COLUMN chain_hash TEXT;
ALTER TABLE calls ADD COLUMN chain_seq BIGINT, ADD COLUMN personal_digest TEXT,
    ADD COLUMN chain_hash TEXT;
ALTER TABLE staff_audit ADD COLUMN chain_seq BIGINT, ADD COLUMN personal_digest TEXT,
    ADD COLUMN chain_hash TEXT;

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
CREATE OR REPLACE FUNCTION consents_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.chain_hash IS NULL
       AND (NEW.id, NEW.request_id, NEW.lang, NEW.text, NEW.text_sha256, NEW.at, NEW.ip,
            NEW.user_agent)
           IS NOT DISTINCT FROM (OLD.id, OLD.request_id, OLD.lang, OLD.text, OLD.text_sha256,
            OLD.at, OLD.ip, OLD.user_agent) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'consent records cannot be changed or deleted';
END;
$$;
CREATE OR REPLACE FUNCTION staff_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.chain_hash IS NULL
       AND (NEW.id, NEW.staff_id, NEW.at, NEW.action, NEW.target, NEW.ip, NEW.details)
           IS NOT DISTINCT FROM (OLD.id, OLD.staff_id, OLD.at, OLD.action, OLD.target, OLD.ip,
            OLD.details) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'staff_audit is append-only';
END
$$;

-- The head of each chain: chain 0 is the staff audit's, chain n request n's. A writer
-- locks the head it extends (FOR UPDATE), so two writers never fork a chain.
-- anchored_seq is how far the latest daily anchor covers the chain.
CREATE TABLE audit_heads (
    chain         BIGINT  PRIMARY KEY,
    seq           BIGINT  NOT NULL,
    hash          TEXT    NOT NULL,
    anchored_seq  BIGINT  NOT NULL DEFAULT 0
);

-- Daily anchors: a signed digest of the heads that moved since the anchor before (whose
-- digest each anchor includes). The same lines go to the log and to [audit] anchor_dir.
CREATE TABLE audit_anchors (
    id           BIGINT  PRIMARY KEY,
    at           BIGINT  NOT NULL,
    chains       BIGINT  NOT NULL,
    prev_digest  TEXT    NOT NULL,
    digest       TEXT    NOT NULL,
    public_key   TEXT    NOT NULL,
    signature    TEXT    NOT NULL
);
-- What each anchor covered: the chain's head (seq, hash) when it was taken.
CREATE TABLE audit_anchor_entries (
    anchor_id  BIGINT  NOT NULL,
    chain      BIGINT  NOT NULL,
    seq        BIGINT  NOT NULL,
    hash       TEXT    NOT NULL,
    PRIMARY KEY (chain, anchor_id)
);
CREATE INDEX audit_anchor_entries_anchor ON audit_anchor_entries (anchor_id, chain);
