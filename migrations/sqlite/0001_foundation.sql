-- Merchants, their API credentials, users, Video KYC requests and their history.
-- Times are Unix milliseconds (UTC) in every table, so both backends store them alike.

CREATE TABLE merchants (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    env         TEXT    NOT NULL CHECK (env IN ('test', 'live')),
    created_at  INTEGER NOT NULL
);

-- A client id may hold two secrets at once (old and new, while the merchant rotates).
-- secret_digest (SHA-256) checks a call: secrets are 256 random bits, so the digest reveals
-- nothing and checking it is fast. secret_enc is the secret encrypted under the master key,
-- because webhooks are signed with it.
CREATE TABLE credentials (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id     TEXT    NOT NULL,
    merchant_id   INTEGER NOT NULL REFERENCES merchants (id),
    secret_digest TEXT    NOT NULL,
    secret_enc    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX credentials_client ON credentials (client_id);
CREATE INDEX credentials_merchant ON credentials (merchant_id);

-- users.id is the API's user_reference_id.
CREATE TABLE users (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    merchant_id  INTEGER NOT NULL REFERENCES merchants (id),
    user_id      TEXT    NOT NULL,
    phone        TEXT    NOT NULL,
    email        TEXT,
    name         TEXT,
    address      TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (merchant_id, user_id)
);

-- requests.id is the API's reference_id. status is derived from sub_status (the status
-- machine owns both); it is stored for the expiry index. version guards every move.
CREATE TABLE requests (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    merchant_id         INTEGER NOT NULL REFERENCES merchants (id),
    verification_id     TEXT    NOT NULL,
    user_ref            INTEGER NOT NULL REFERENCES users (id),
    user_id             TEXT    NOT NULL,
    link_token          TEXT    NOT NULL UNIQUE,
    link_expires_at     INTEGER NOT NULL,
    status              TEXT    NOT NULL,
    sub_status          TEXT    NOT NULL,
    version             INTEGER NOT NULL,
    notification_types  TEXT,
    user_template       TEXT,
    agent_template      TEXT,
    aadhaar_details     TEXT,
    security_questions  TEXT,
    recording_link      TEXT,
    meeting_schedule    INTEGER,
    agent_remarks       TEXT,
    auditor_remarks     TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (merchant_id, verification_id)
);
-- The expiry worker reads only links that can still expire, soonest first (the status
-- machine's expirable sub-statuses all belong to these three phases).
CREATE INDEX requests_expiry ON requests (link_expires_at)
    WHERE status IN ('RECEIVED', 'PRE_VIDEO_CALL', 'VIDEO_CALL');

CREATE TABLE history (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id       INTEGER NOT NULL REFERENCES requests (id),
    at               INTEGER NOT NULL,
    actor            TEXT    NOT NULL,
    event            TEXT    NOT NULL,
    from_status      TEXT,
    from_sub_status  TEXT,
    to_status        TEXT    NOT NULL,
    to_sub_status    TEXT    NOT NULL,
    details          TEXT
);
CREATE INDEX history_request ON history (request_id, id);

-- Access tokens for the embeddable journey; only their digest is kept.
CREATE TABLE access_tokens (
    token_digest  TEXT    PRIMARY KEY,
    request_id    INTEGER NOT NULL REFERENCES requests (id),
    expires_at    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);
