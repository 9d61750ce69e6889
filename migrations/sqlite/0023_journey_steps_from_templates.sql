-- The journey's steps from the user template (docs/templates.md).

-- Mobile OTP: one row per request, the code only as a keyed hash. Sends and tries are
-- counted before the code is sent or compared, so concurrent calls cannot pass a limit.
CREATE TABLE journey_otps (
    request_id   INTEGER PRIMARY KEY REFERENCES requests (id),
    code_hash    TEXT    NOT NULL,
    channel      TEXT    NOT NULL,
    sent_at      INTEGER  NOT NULL,
    expires_at   INTEGER  NOT NULL,
    sends        INTEGER  NOT NULL,
    tries        INTEGER  NOT NULL,
    locked_until INTEGER,
    verified_at  INTEGER
);

-- The personal-details form as the customer filled it, sealed under the master key
-- (the step's evidence in journey_steps holds its SHA-256, inside the audit chain).
CREATE TABLE personal_details (
    request_id  INTEGER PRIMARY KEY REFERENCES requests (id),
    details     TEXT    NOT NULL,
    at          INTEGER  NOT NULL
);

-- Logos a user template shows: re-encoded PNGs, named by their SHA-256.
CREATE TABLE logos (
    id          TEXT    PRIMARY KEY,
    png         TEXT    NOT NULL,
    width       INTEGER  NOT NULL,
    height      INTEGER  NOT NULL,
    created_at  INTEGER  NOT NULL,
    created_by  TEXT    NOT NULL
);
