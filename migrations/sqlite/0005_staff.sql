-- Staff accounts (admins, agents, auditors), their desk sessions, the staff audit log and
-- the agents' presence. Times are Unix milliseconds, as everywhere.

-- password_hash is an argon2 PHC string. totp_secret_enc, when set, is the RFC 6238
-- secret sealed under the master key. failed_logins counts consecutive failures; at the
-- configured limit the account is locked until locked_until and the count starts again.
-- working_hours is JSON, kept for the agent console.
CREATE TABLE staff (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    username        TEXT    NOT NULL UNIQUE,
    role            TEXT    NOT NULL CHECK (role IN ('admin', 'agent', 'auditor')),
    password_hash   TEXT    NOT NULL,
    totp_secret_enc TEXT,
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    locked_until    INTEGER,
    working_hours   TEXT,
    created_at      INTEGER NOT NULL,
    disabled_at     INTEGER
);

-- token_digest is the SHA-256 (hex) of the cookie value: the token itself is never stored.
CREATE TABLE staff_sessions (
    token_digest TEXT    PRIMARY KEY,
    staff_id     INTEGER NOT NULL REFERENCES staff (id),
    csrf_token   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);

-- Who did what, when and from where. staff_id is NULL for the operator's command line and
-- for logins with an unknown username. Rows are only ever added.
CREATE TABLE staff_audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    staff_id  INTEGER REFERENCES staff (id),
    at        INTEGER NOT NULL,
    action    TEXT    NOT NULL,
    target    TEXT,
    ip        TEXT,
    details   TEXT
);
CREATE INDEX staff_audit_staff ON staff_audit (staff_id, id);
CREATE TRIGGER staff_audit_no_update BEFORE UPDATE ON staff_audit
BEGIN
    SELECT RAISE(ABORT, 'staff_audit is append-only');
END;
CREATE TRIGGER staff_audit_no_delete BEFORE DELETE ON staff_audit
BEGIN
    SELECT RAISE(ABORT, 'staff_audit is append-only');
END;

-- online is 0 or 1; since is when the current state began; last_seen is the latest
-- heartbeat. An online agent whose last_seen is stale counts as gone.
CREATE TABLE agent_presence (
    staff_id  INTEGER PRIMARY KEY REFERENCES staff (id),
    online    INTEGER NOT NULL CHECK (online IN (0, 1)),
    since     INTEGER,
    last_seen INTEGER NOT NULL
);
CREATE INDEX agent_presence_online ON agent_presence (last_seen) WHERE online = 1;
