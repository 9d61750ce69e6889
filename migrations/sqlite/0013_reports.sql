-- Reports: each agent's stretches of time online (for calls per hour online), and the
-- indexes the report queries read by time.

-- One row per stretch online: from going online to going offline (ended_at), or, for an
-- agent who just vanished, to the last heartbeat (last_seen).
CREATE TABLE presence_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    staff_id    INTEGER NOT NULL REFERENCES staff (id),
    started_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    ended_at    INTEGER
);
CREATE INDEX presence_log_open ON presence_log (staff_id) WHERE ended_at IS NULL;
CREATE INDEX presence_log_started ON presence_log (started_at);

-- The funnel takes the requests created in a range of days; the time reports take the
-- calls answered, and the audits made, in a range.
CREATE INDEX requests_created_merchant ON requests (created_at, merchant_id);
CREATE INDEX calls_invited ON calls (invited_at);
CREATE INDEX calls_accepted ON calls (accepted_at) WHERE accepted_at IS NOT NULL;
CREATE INDEX calls_decided ON calls (decided_at) WHERE decided_at IS NOT NULL;
CREATE INDEX audits_at ON audits (at);
-- The funnel reads every history event of the requests in range: with the event in the
-- index it never reads the (wide) history rows themselves.
CREATE INDEX history_request_event ON history (request_id, event);
