-- Merchant security: second factors, rate limits, secrets encrypted at rest.

-- second_factor: 'none', 'ip' (allow-list) or 'signature' (x-cf-signature).
-- ip_allowlist: JSON array of addresses and CIDR ranges. The RSA private key that opens
-- x-cf-signature is kept encrypted under the master key; the public key is the merchant's.
-- rate_limit_per_minute: NULL means the deployment's default.
ALTER TABLE merchants ADD COLUMN second_factor TEXT NOT NULL DEFAULT 'none';
ALTER TABLE merchants ADD COLUMN ip_allowlist TEXT;
ALTER TABLE merchants ADD COLUMN public_key_pem TEXT;
ALTER TABLE merchants ADD COLUMN private_key_enc TEXT;
ALTER TABLE merchants ADD COLUMN rate_limit_per_minute BIGINT;

-- Calls counted per merchant per minute, shared by every process on the database.
CREATE TABLE rate_counters (
    merchant_id   BIGINT  NOT NULL,
    window_start  BIGINT  NOT NULL,
    calls         BIGINT  NOT NULL,
    PRIMARY KEY (merchant_id, window_start)
);

-- x-cf-signature values already used, until their window has passed (replays refused).
CREATE TABLE used_signatures (
    digest      TEXT    PRIMARY KEY,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX used_signatures_expiry ON used_signatures (expires_at);
