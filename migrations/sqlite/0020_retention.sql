-- Retention: how long personal data is kept, legal holds that stop its removal, and the
-- tombstone a purge leaves (src/domain/retention.rs, src/store/retention.rs).

-- The day the business relationship ended (YYYY-MM-DD, IST), as the merchant or the
-- operator said: an approved case is kept for the configured years after it.
ALTER TABLE requests ADD COLUMN relationship_end TEXT;
-- When the request's personal data was removed (NULL: not removed).
ALTER TABLE requests ADD COLUMN purged_at INTEGER;
-- 1 while a legal hold stands (its reason in legal_holds). On the row itself so that a
-- purge, which updates the row, sees a hold placed by another process (both take the
-- row's lock).
ALTER TABLE requests ADD COLUMN legal_hold INTEGER NOT NULL DEFAULT 0;

CREATE TABLE legal_holds (
    request_id  INTEGER PRIMARY KEY REFERENCES requests (id),
    reason      TEXT    NOT NULL,
    held_by     TEXT    NOT NULL,
    held_at     INTEGER NOT NULL
);

-- Files a purge removes (recordings and their sidecars, local paths or s3:// URLs),
-- written in the purge's transaction and crossed off once gone, so that a crash between
-- the two leaves nothing behind.
CREATE TABLE pending_deletions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    location    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

-- What the purge worker reads: requests not purged yet, by last move, by creation (the
-- sandbox rule) and by relationship end.
CREATE INDEX requests_unpurged_updated ON requests (updated_at) WHERE purged_at IS NULL;
CREATE INDEX requests_unpurged_created ON requests (created_at) WHERE purged_at IS NULL;
CREATE INDEX requests_unpurged_relationship ON requests (relationship_end)
    WHERE purged_at IS NULL AND relationship_end IS NOT NULL;

-- Consents stay append-only (0017 lets the chain columns be set once), but for the one
-- change a purge makes: the customer's IP address and browser blanked, on a request
-- already marked purged, the rest untouched.
DROP TRIGGER consents_no_update;
CREATE TRIGGER consents_no_update BEFORE UPDATE OF id, request_id, lang, text, text_sha256,
    at, ip, user_agent ON consents
WHEN NOT (NEW.ip = '' AND NEW.user_agent = '' AND NEW.id = OLD.id
          AND NEW.request_id = OLD.request_id AND NEW.lang = OLD.lang
          AND NEW.text = OLD.text AND NEW.text_sha256 = OLD.text_sha256 AND NEW.at = OLD.at
          AND EXISTS (SELECT 1 FROM requests r
                      WHERE r.id = OLD.request_id AND r.purged_at IS NOT NULL))
BEGIN SELECT RAISE(ABORT, 'consent records cannot be changed'); END;
