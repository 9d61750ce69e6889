-- What happened during a call, with its time: each side's media connecting and being
-- lost, each question asked and answered, the liveness number asked for and marked,
-- each capture, the PAN entered, the end. The auditor's player puts a marker on the
-- recording's timeline for each.
CREATE TABLE call_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id  INTEGER NOT NULL REFERENCES calls (id),
    at       INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    -- JSON: which question, which side, which capture, the mark given.
    detail   TEXT
);
CREATE INDEX call_events_call ON call_events (call_id, id);
