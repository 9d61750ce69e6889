-- Case search for admins and auditors, and the key that signs case exports.
--
-- Every search filter is served by an index. Results come newest first by
-- (created_at, id), the keyset a page's cursor continues from, so each index on requests
-- ends with those two columns: a page is a range read, however deep.
CREATE INDEX requests_created ON requests (created_at, id);
CREATE INDEX requests_status_created ON requests (status, created_at, id);
CREATE INDEX requests_sub_status_created ON requests (sub_status, created_at, id);
CREATE INDEX requests_user_id_created ON requests (user_id, created_at, id);
CREATE INDEX requests_user_ref_created ON requests (user_ref, created_at, id);
-- The unique (merchant_id, verification_id) cannot serve a search across merchants.
CREATE INDEX requests_verification ON requests (verification_id);
-- Phone and name are stored as the merchant sent them; search is exact (name without
-- regard to case).
CREATE INDEX users_phone ON users (phone);
CREATE INDEX users_name ON users (lower(name));
CREATE INDEX calls_agent_request ON calls (agent_id, request_id);
-- The case file lists every webhook delivery of a request.
CREATE INDEX webhook_deliveries_request ON webhook_deliveries (request_id, id);

-- Keys the deployment signs with, one per purpose ('case_export'): created on first use,
-- the private half sealed under the master key like every other secret, the public
-- half (raw, hex) for anyone to verify with.
CREATE TABLE signing_keys (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    purpose          TEXT    NOT NULL UNIQUE,
    algorithm        TEXT    NOT NULL,
    private_key_enc  TEXT    NOT NULL,
    public_key       TEXT    NOT NULL,
    created_at       INTEGER NOT NULL
);
