-- The customer journey: consent, each step's start, end and evidence, the Aadhaar data
-- a customer proved, the live queue, booked slots and the messages sent to customers.

-- Consent is append-only: the triggers refuse any change or deletion, so what a customer
-- agreed to, when and from where stays as it was recorded.
CREATE TABLE consents (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id   INTEGER NOT NULL REFERENCES requests (id),
    lang         TEXT    NOT NULL,
    text         TEXT    NOT NULL,
    text_sha256  TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    ip           TEXT    NOT NULL,
    user_agent   TEXT    NOT NULL
);
CREATE INDEX consents_request ON consents (request_id);
CREATE TRIGGER consents_no_update BEFORE UPDATE ON consents
BEGIN SELECT RAISE(ABORT, 'consent records cannot be changed'); END;
CREATE TRIGGER consents_no_delete BEFORE DELETE ON consents
BEGIN SELECT RAISE(ABORT, 'consent records cannot be deleted'); END;

-- One row per attempt at a step: when it was shown, when it ended, how (the sub-status
-- it produced) and the evidence the decision rests on (JSON).
CREATE TABLE journey_steps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id  INTEGER NOT NULL REFERENCES requests (id),
    step        TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    outcome     TEXT,
    evidence    TEXT
);
CREATE INDEX journey_steps_request ON journey_steps (request_id, id);

-- The Aadhaar details a request rests on: proved in the journey or sent by the merchant.
-- Only the last 4 digits of an Aadhaar number are ever stored.
CREATE TABLE aadhaar_kyc (
    request_id   INTEGER PRIMARY KEY REFERENCES requests (id),
    source       TEXT    NOT NULL,
    details      TEXT    NOT NULL,
    photo        TEXT,
    verified_at  INTEGER NOT NULL
);

-- The live queue. priority 0 = came for a booked slot, 1 = walk-in; the oldest of the
-- lowest priority is served first. Every process reads the same rows.
CREATE TABLE queue_entries (
    request_id   INTEGER PRIMARY KEY REFERENCES requests (id),
    priority     INTEGER NOT NULL,
    enqueued_at  INTEGER NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('waiting', 'assigned', 'left'))
);
CREATE INDEX queue_waiting ON queue_entries (priority, enqueued_at) WHERE state = 'waiting';

-- A booked slot holds one seat; the unique index makes two bookings of the last seat
-- impossible, whichever process takes them.
CREATE TABLE slot_bookings (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id   INTEGER NOT NULL REFERENCES requests (id),
    slot_start   INTEGER NOT NULL,
    seat         INTEGER NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('booked', 'cancelled', 'arrived', 'missed')),
    created_at   INTEGER NOT NULL,
    reminded_at  INTEGER
);
CREATE UNIQUE INDEX slot_seats ON slot_bookings (slot_start, seat) WHERE state IN ('booked', 'arrived');
CREATE INDEX slot_bookings_request ON slot_bookings (request_id);
CREATE INDEX slot_bookings_due ON slot_bookings (slot_start) WHERE state = 'booked';

-- Messages to customers (link, slot booked, reminder, cancelled): an outbox written with
-- the change that causes it. state: pending, sent, recorded (sandbox), failed.
CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id  INTEGER NOT NULL REFERENCES requests (id),
    channel     TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    recipient   TEXT,
    subject     TEXT,
    body        TEXT,
    state       TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    sent_at     INTEGER,
    -- A process sending the message holds it until then (a crashed one's claim lapses).
    lease_until INTEGER
);
CREATE INDEX notifications_pending ON notifications (id) WHERE state = 'pending';
CREATE INDEX notifications_request ON notifications (request_id);

-- The queue's expected wait comes from the most recent calls' lengths.
CREATE INDEX history_calls ON history (id) WHERE event = 'invite_accepted';
