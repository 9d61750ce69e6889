-- Each check a customer runs on a journey step (an Aadhaar upload, the IP, location or
-- device check), counted before it runs, so that retries of a step are bounded.
CREATE TABLE journey_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id  INTEGER NOT NULL REFERENCES requests (id),
    step        TEXT    NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX journey_attempts_request ON journey_attempts (request_id, step, at);
