-- The journey's steps from the user template (docs/templates.md).

-- Mobile OTP: one row per request, the code only as a keyed hash. Sends and tries are
-- counted before the code is sent or compared, so concurrent calls cannot pass a limit.
CREATE TABLE journey_otps (
    request_id   BIGINT PRIMARY KEY REFERENCES requests (id),
    code_hash    TEXT    NOT NULL,
    channel      TEXT    NOT NULL,
    sent_at      BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    sends        BIGINT  NOT NULL,
    tries        BIGINT  NOT NULL,
    locked_until BIGINT,
    verified_at  BIGINT
);

-- The personal-details form as the customer filled it, sealed under the master key
-- (the step's evidence in journey_steps holds its SHA-256, inside the audit chain).
CREATE TABLE personal_details (
    request_id  BIGINT PRIMARY KEY REFERENCES requests (id),
    details     TEXT    NOT NULL,
    at          BIGINT  NOT NULL
);

-- Logos a user template shows: re-encoded PNGs, named by their SHA-256.
CREATE TABLE logos (
    id          TEXT    PRIMARY KEY,
    png         TEXT    NOT NULL,
    width       BIGINT  NOT NULL,
    height      BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    created_by  TEXT    NOT NULL
);
