-- Templates (src/domain/templates.rs, docs/templates.md): every version of every user
-- and agent template, as canonical JSON. A version is never changed: importing a changed
-- template adds the next version, so a request made under an older one keeps it.
CREATE TABLE templates (
    id          BIGSERIAL PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('user', 'agent')),
    name        TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    body        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    created_by  TEXT    NOT NULL,
    UNIQUE (kind, name, version)
);

-- The versions a request was made under (its user_template and agent_template columns
-- hold the names). NULL on requests made before templates: the built-ins' first version.
ALTER TABLE requests ADD COLUMN user_template_version BIGINT;
ALTER TABLE requests ADD COLUMN agent_template_version BIGINT;

-- A capture's kind comes from the request's agent template now (a signature on paper,
-- ...), not from a fixed pair.
ALTER TABLE captures DROP CONSTRAINT captures_kind_check;
ALTER TABLE captures ADD CONSTRAINT captures_kind_check CHECK (kind ~ '^[a-z_]{1,32}$');
