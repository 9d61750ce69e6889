-- Video calls: one row per call attempt (a dropped call is never resumed: the customer
-- queues again and a new call, with a new recording, starts). The partial unique index
-- gives an agent at most one live call, whichever process assigns it.
CREATE TABLE calls (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id        INTEGER NOT NULL REFERENCES requests (id),
    agent_id          INTEGER NOT NULL REFERENCES staff (id),
    state             TEXT    NOT NULL CHECK (state IN ('invited', 'active', 'ended', 'declined', 'missed', 'dropped')),
    invited_at        INTEGER NOT NULL,
    accepted_at       INTEGER,
    ended_at          INTEGER,
    ended_by          TEXT,
    -- The random number the customer reads aloud (liveness), and the agent's marks.
    liveness_code     TEXT    NOT NULL,
    liveness_result   TEXT,
    -- [{"question", "source": "merchant"|"deployment", "answer": null|"correct"|"incorrect"}]
    questions         TEXT    NOT NULL,
    pan               TEXT,
    -- When each side's media was last lost (NULL: connected); a side lost for longer than
    -- the grace period has dropped off.
    customer_lost_at  INTEGER,
    agent_lost_at     INTEGER,
    recording_path    TEXT,
    recording_bytes   INTEGER,
    duration_ms       INTEGER,
    decision          TEXT,
    remarks           TEXT,
    decided_at        INTEGER
);
CREATE INDEX calls_request ON calls (request_id, id);
CREATE UNIQUE INDEX calls_agent_live ON calls (agent_id) WHERE state IN ('invited', 'active');
CREATE INDEX calls_live ON calls (state) WHERE state IN ('invited', 'active');

-- Stills the agent captured during a call: the customer's face and the PAN card.
CREATE TABLE captures (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id     INTEGER NOT NULL REFERENCES calls (id),
    kind        TEXT    NOT NULL CHECK (kind IN ('face', 'pan')),
    image       TEXT    NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX captures_call ON captures (call_id, id);

-- The auditor's review of a case (four eyes: never the agent of its call).
CREATE TABLE audits (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id  INTEGER NOT NULL REFERENCES requests (id),
    auditor_id  INTEGER NOT NULL REFERENCES staff (id),
    decision    TEXT    NOT NULL,
    remarks     TEXT    NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX audits_request ON audits (request_id);
