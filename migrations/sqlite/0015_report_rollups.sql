-- Daily roll-ups for the funnel and failures reports, kept up to date in the same
-- transaction as the moves, journey steps and creations they count (src/store/rollups.rs),
-- and filled here from the existing history so the reports keep their numbers.

-- The funnel stages each request has reached, one bit each (rollups.rs, STAGES).
ALTER TABLE requests ADD COLUMN stages INTEGER NOT NULL DEFAULT 0;

-- Requests per creation day (IST), merchant and stage, over a few slots (request id
-- modulo 8) so that concurrent writers do not all wait on one row.
CREATE TABLE report_funnel_daily (
    day          INTEGER NOT NULL,
    merchant_id  INTEGER NOT NULL,
    stage        TEXT    NOT NULL,
    slot         INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (day, merchant_id, stage, slot)
);

-- Failed checks per creation day, merchant, event and reason: attempts and requests.
CREATE TABLE report_failures_daily (
    day          INTEGER NOT NULL,
    merchant_id  INTEGER NOT NULL,
    event        TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    failures     INTEGER NOT NULL,
    requests     INTEGER NOT NULL,
    PRIMARY KEY (day, merchant_id, event, reason)
);

-- Whether a request already counts in report_failures_daily.requests for an event and
-- reason.
CREATE TABLE request_failures (
    request_id   INTEGER NOT NULL,
    event        TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    PRIMARY KEY (request_id, event, reason)
);

-- The roll-ups of the existing history (the statements of rollups::rebuild_statements).
UPDATE requests SET stages =
    (CASE WHEN EXISTS (SELECT 1 FROM journey_steps s WHERE s.request_id = requests.id)
     THEN 2 ELSE 0 END)
    + COALESCE((SELECT CAST(SUM(DISTINCT CASE WHEN h.event IN ('aadhaar_verified') THEN 4 WHEN h.event IN ('aadhaar_failed', 'aadhaar_session_expired') THEN 8 WHEN h.event IN ('ip_verified') THEN 16 WHEN h.event IN ('proxy_detected', 'ip_outside_india') THEN 32 WHEN h.event IN ('location_verified') THEN 64 WHEN h.event IN ('location_outside_india', 'location_permission_denied') THEN 128 WHEN h.event IN ('device_check_passed') THEN 256 WHEN h.event IN ('audio_check_failed', 'video_check_failed') THEN 512 WHEN h.event IN ('queued', 'scheduled_arrived') THEN 1024 WHEN h.event IN ('invite_accepted') THEN 2048 WHEN h.event IN ('agent_approved') THEN 4096 WHEN h.event IN ('agent_rejected') THEN 8192 WHEN h.event IN ('agent_unable_to_validate') THEN 16384 WHEN h.event IN ('auditor_approved') THEN 32768 WHEN h.event IN ('auditor_rejected') THEN 65536 WHEN h.event IN ('link_expired') THEN 131072 ELSE 0 END) AS INTEGER)
                FROM history h WHERE h.request_id = requests.id), 0);

INSERT INTO report_funnel_daily (day, merchant_id, stage, slot, n)
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'created', r.id % 8, COUNT(*) FROM requests r
    WHERE EXISTS (SELECT 1 FROM history h WHERE h.request_id = r.id)
    GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'opened', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 2) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'aadhaar_passed', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 4) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'aadhaar_failed', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 8) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'ip_passed', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 16) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'ip_failed', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 32) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'location_passed', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 64) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'location_failed', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 128) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'devices_passed', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 256) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'devices_failed', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 512) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'queued', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 1024) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'call', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 2048) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'agent_approved', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 4096) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'agent_rejected', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 8192) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'agent_unable', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 16384) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'auditor_approved', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 32768) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'auditor_rejected', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 65536) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8
UNION ALL
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, 'expired', r.id % 8, COUNT(*) FROM requests r
    WHERE (r.stages & 131072) <> 0 GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, r.id % 8;

INSERT INTO request_failures (request_id, event, reason)
SELECT DISTINCT request_id, event, to_sub_status FROM history
WHERE event IN ('aadhaar_failed', 'aadhaar_session_expired', 'proxy_detected', 'ip_outside_india', 'location_outside_india', 'location_permission_denied', 'audio_check_failed', 'video_check_failed', 'check_technical_failure');

INSERT INTO report_failures_daily (day, merchant_id, event, reason, failures, requests)
SELECT ((r.created_at + 19800000) / 86400000), r.merchant_id, h.event, h.to_sub_status, COUNT(*), COUNT(DISTINCT h.request_id)
FROM requests r JOIN history h ON h.request_id = r.id
WHERE h.event IN ('aadhaar_failed', 'aadhaar_session_expired', 'proxy_detected', 'ip_outside_india', 'location_outside_india', 'location_permission_denied', 'audio_check_failed', 'video_check_failed', 'check_technical_failure')
GROUP BY ((r.created_at + 19800000) / 86400000), r.merchant_id, h.event, h.to_sub_status;
