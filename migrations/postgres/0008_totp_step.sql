-- The last one-time-code step each account used: a code is accepted once, so a step at
-- or before this one is refused even while the code is still valid.
ALTER TABLE staff ADD COLUMN totp_last_step BIGINT;
