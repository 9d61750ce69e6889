-- Webhooks: every status change becomes an event (the outbox, written in the same
-- transaction as the move) and one delivery per webhook URL; each try is recorded.

ALTER TABLE merchants ADD COLUMN webhook_url TEXT;
-- A second URL for one request, given at POST /vkyc.
ALTER TABLE requests ADD COLUMN webhook_url TEXT;
-- How many events the request has produced: the next event's sequence number follows it.
ALTER TABLE requests ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;

CREATE TABLE webhook_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL UNIQUE,
    merchant_id  INTEGER NOT NULL,
    request_id   INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    event_type   TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX webhook_events_request ON webhook_events (request_id, seq);

-- status: pending, delivered or failed. A worker holds a claimed row until lease_until;
-- a crashed worker's lease runs out and another takes the row.
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id         INTEGER NOT NULL REFERENCES webhook_events (id),
    merchant_id      INTEGER NOT NULL,
    request_id       INTEGER NOT NULL,
    seq              INTEGER NOT NULL,
    url              TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    lease_until      INTEGER,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    last_status_code INTEGER,
    last_error       TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (request_id, url, seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_merchant ON webhook_deliveries (merchant_id, id);

CREATE TABLE webhook_attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id      INTEGER NOT NULL REFERENCES webhook_deliveries (id),
    attempt          INTEGER NOT NULL,
    at               INTEGER NOT NULL,
    latency_ms       INTEGER NOT NULL,
    status_code      INTEGER,
    response_snippet TEXT,
    error            TEXT
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);
