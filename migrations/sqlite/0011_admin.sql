-- What the admin console keeps: the desk's working days and hours, its holidays, and the
-- versioned question banks. Times are Unix milliseconds, as everywhere.

-- At most one row (id = 1). Absent: the configuration's [journey] working_days and
-- working_hours. working_days is a comma list (mon..sun), working_hours "HH:MM-HH:MM" IST.
CREATE TABLE desk_hours (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    working_days  TEXT    NOT NULL,
    working_hours TEXT    NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Days (YYYY-MM-DD, in IST) on which the desk is closed: no queue, no slots.
CREATE TABLE holidays (
    day      TEXT    PRIMARY KEY,
    added_at INTEGER NOT NULL
);

-- Every saved state of a question bank: merchant_id 0 is the deployment's bank, any other
-- the merchant's own. The newest version is the bank in use; older ones stay so that a
-- past call's bank can be read. questions is JSON [{"en", "hi", "mandatory"}].
CREATE TABLE question_banks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    merchant_id  INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    questions    TEXT    NOT NULL,
    random_count INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   INTEGER REFERENCES staff (id),
    UNIQUE (merchant_id, version)
);

-- The bank versions a call's questions were drawn from (JSON {"deployment", "merchant"}).
ALTER TABLE calls ADD COLUMN question_banks TEXT;
