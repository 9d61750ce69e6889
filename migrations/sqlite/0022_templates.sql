-- Templates (src/domain/templates.rs, docs/templates.md): every version of every user
-- and agent template, as canonical JSON. A version is never changed: importing a changed
-- template adds the next version, so a request made under an older one keeps it.
CREATE TABLE templates (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('user', 'agent')),
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    UNIQUE (kind, name, version)
);

-- The versions a request was made under (its user_template and agent_template columns
-- hold the names). NULL on requests made before templates: the built-ins' first version.
ALTER TABLE requests ADD COLUMN user_template_version INTEGER;
ALTER TABLE requests ADD COLUMN agent_template_version INTEGER;

-- A capture's kind comes from the request's agent template now (a signature on paper,
-- ...), not from a fixed pair: rebuilt with the new check (SQLite cannot alter one).
CREATE TABLE captures_next (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id     INTEGER NOT NULL REFERENCES calls (id),
    kind        TEXT    NOT NULL CHECK (length(kind) BETWEEN 1 AND 32
                                        AND kind NOT GLOB '*[^a-z_]*'),
    image       TEXT    NOT NULL,
    at          INTEGER NOT NULL
);
INSERT INTO captures_next (id, call_id, kind, image, at)
    SELECT id, call_id, kind, image, at FROM captures;
DROP TABLE captures;
ALTER TABLE captures_next RENAME TO captures;
CREATE INDEX captures_call ON captures (call_id, id);
