-- Personal data sealed at rest under the master key: the Aadhaar details (proved in the
-- journey or sent by the merchant), the Aadhaar photo, the stills captured in calls and
-- the customer's address. The server seals them as it writes them (src/store/personal.rs).
--
-- Which master key the sealed values are under: an HMAC of a fixed text under the key,
-- which says nothing of the key. A server whose key is not this one refuses to start, and
-- refuses to write a sealed value once `vkyc master-key rotate` has changed it.
CREATE TABLE master_key_id (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    key_id   TEXT    NOT NULL,
    set_at   INTEGER NOT NULL
);

-- Values written in clear before this version. Sealing needs the key, which SQL does not
-- have: the first start after the upgrade seals each value listed here and deletes its
-- row in the same transaction, so an interrupted start resumes where it stopped.
CREATE TABLE unsealed_values (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name   TEXT    NOT NULL,
    column_name  TEXT    NOT NULL,
    row_key      INTEGER NOT NULL
);
INSERT INTO unsealed_values (table_name, column_name, row_key)
    SELECT 'users', 'address', id FROM users WHERE address IS NOT NULL;
INSERT INTO unsealed_values (table_name, column_name, row_key)
    SELECT 'requests', 'aadhaar_details', id FROM requests WHERE aadhaar_details IS NOT NULL;
INSERT INTO unsealed_values (table_name, column_name, row_key)
    SELECT 'aadhaar_kyc', 'details', request_id FROM aadhaar_kyc;
INSERT INTO unsealed_values (table_name, column_name, row_key)
    SELECT 'aadhaar_kyc', 'photo', request_id FROM aadhaar_kyc WHERE photo IS NOT NULL;
INSERT INTO unsealed_values (table_name, column_name, row_key)
    SELECT 'captures', 'image', id FROM captures;
