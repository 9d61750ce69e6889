-- Daily roll-ups for the times and agents reports, kept up to date in the same
-- transaction as the invitations, answers, ends, decisions and reviews they count
-- (src/store/rollups/work.rs), and filled here from the existing calls and audits; and
-- each agent's cases in creation order, for the case search's agent filter.

-- A histogram of each time per IST day, measure and merchant: the bucket is the time in ms
-- rounded to three significant digits (and to at least 100 ms), n how many fell in it.
CREATE TABLE report_times_daily (
    day          BIGINT NOT NULL,
    measure      TEXT    NOT NULL,
    merchant_id  BIGINT NOT NULL,
    bucket       BIGINT NOT NULL,
    n            BIGINT NOT NULL,
    PRIMARY KEY (day, measure, merchant_id, bucket)
);

-- Each agent's answered calls and talk time (by the day answered), and decisions and
-- reviewed or overturned decisions (by the day decided).
CREATE TABLE report_agents_daily (
    day          BIGINT NOT NULL,
    agent_id     BIGINT NOT NULL,
    calls        BIGINT NOT NULL,
    call_ms      BIGINT NOT NULL,
    approved     BIGINT NOT NULL,
    rejected     BIGINT NOT NULL,
    unable       BIGINT NOT NULL,
    audited      BIGINT NOT NULL,
    reversed     BIGINT NOT NULL,
    PRIMARY KEY (day, agent_id)
);

-- The roll-ups of the existing calls and audits (rollups::work::rebuild_statements).
INSERT INTO report_times_daily (day, measure, merchant_id, bucket, n)
    SELECT day, 'link_to_call', merchant_id, bucket, COUNT(*)
    FROM (SELECT day, merchant_id, CASE WHEN ms < 0 THEN 0 WHEN ms < 100000 THEN (ms + 50) / 100 * 100 WHEN ms < 1000000 THEN (ms + 500) / 1000 * 1000 WHEN ms < 10000000 THEN (ms + 5000) / 10000 * 10000 WHEN ms < 100000000 THEN (ms + 50000) / 100000 * 100000 WHEN ms < 1000000000 THEN (ms + 500000) / 1000000 * 1000000 ELSE (ms + 5000000) / 10000000 * 10000000 END AS bucket
    FROM (SELECT ((c.accepted_at + 19800000) / 86400000) AS day, r.merchant_id AS merchant_id, c.accepted_at - r.created_at AS ms FROM calls c JOIN requests r ON r.id = c.request_id WHERE c.accepted_at IS NOT NULL) s) b
    GROUP BY day, merchant_id, bucket;

INSERT INTO report_times_daily (day, measure, merchant_id, bucket, n)
    SELECT day, 'queue_wait', merchant_id, bucket, COUNT(*)
    FROM (SELECT day, merchant_id, CASE WHEN ms < 0 THEN 0 WHEN ms < 100000 THEN (ms + 50) / 100 * 100 WHEN ms < 1000000 THEN (ms + 500) / 1000 * 1000 WHEN ms < 10000000 THEN (ms + 5000) / 10000 * 10000 WHEN ms < 100000000 THEN (ms + 50000) / 100000 * 100000 WHEN ms < 1000000000 THEN (ms + 500000) / 1000000 * 1000000 ELSE (ms + 5000000) / 10000000 * 10000000 END AS bucket
    FROM (SELECT ((c.invited_at + 19800000) / 86400000) AS day, r.merchant_id AS merchant_id, c.invited_at - q.enqueued_at AS ms FROM calls c JOIN requests r ON r.id = c.request_id JOIN queue_entries q ON q.request_id = c.request_id WHERE q.enqueued_at <= c.invited_at) s) b
    GROUP BY day, merchant_id, bucket;

INSERT INTO report_times_daily (day, measure, merchant_id, bucket, n)
    SELECT day, 'call_length', merchant_id, bucket, COUNT(*)
    FROM (SELECT day, merchant_id, CASE WHEN ms < 0 THEN 0 WHEN ms < 100000 THEN (ms + 50) / 100 * 100 WHEN ms < 1000000 THEN (ms + 500) / 1000 * 1000 WHEN ms < 10000000 THEN (ms + 5000) / 10000 * 10000 WHEN ms < 100000000 THEN (ms + 50000) / 100000 * 100000 WHEN ms < 1000000000 THEN (ms + 500000) / 1000000 * 1000000 ELSE (ms + 5000000) / 10000000 * 10000000 END AS bucket
    FROM (SELECT ((c.accepted_at + 19800000) / 86400000) AS day, r.merchant_id AS merchant_id, c.ended_at - c.accepted_at AS ms FROM calls c JOIN requests r ON r.id = c.request_id WHERE c.accepted_at IS NOT NULL AND c.ended_at IS NOT NULL) s) b
    GROUP BY day, merchant_id, bucket;

INSERT INTO report_times_daily (day, measure, merchant_id, bucket, n)
    SELECT day, 'review_turnaround', merchant_id, bucket, COUNT(*)
    FROM (SELECT day, merchant_id, CASE WHEN ms < 0 THEN 0 WHEN ms < 100000 THEN (ms + 50) / 100 * 100 WHEN ms < 1000000 THEN (ms + 500) / 1000 * 1000 WHEN ms < 10000000 THEN (ms + 5000) / 10000 * 10000 WHEN ms < 100000000 THEN (ms + 50000) / 100000 * 100000 WHEN ms < 1000000000 THEN (ms + 500000) / 1000000 * 1000000 ELSE (ms + 5000000) / 10000000 * 10000000 END AS bucket
    FROM (SELECT ((a.at + 19800000) / 86400000) AS day, r.merchant_id AS merchant_id, a.at - c.decided_at AS ms FROM audits a JOIN calls c ON c.request_id = a.request_id JOIN requests r ON r.id = a.request_id WHERE c.decided_at IS NOT NULL) s) b
    GROUP BY day, merchant_id, bucket;

INSERT INTO report_agents_daily (day, agent_id, calls, call_ms, approved, rejected, unable, audited, reversed)
    SELECT day, agent_id, CAST(SUM(calls) AS BIGINT), CAST(SUM(call_ms) AS BIGINT), CAST(SUM(approved) AS BIGINT), CAST(SUM(rejected) AS BIGINT), CAST(SUM(unable) AS BIGINT), CAST(SUM(audited) AS BIGINT), CAST(SUM(reversed) AS BIGINT)
    FROM (SELECT ((c.accepted_at + 19800000) / 86400000) AS day, c.agent_id, 1 AS calls, 0 AS call_ms, 0 AS approved, 0 AS rejected, 0 AS unable, 0 AS audited, 0 AS reversed FROM calls c WHERE c.accepted_at IS NOT NULL
    UNION ALL SELECT ((c.accepted_at + 19800000) / 86400000) AS day, c.agent_id, 0 AS calls, c.ended_at - c.accepted_at AS call_ms, 0 AS approved, 0 AS rejected, 0 AS unable, 0 AS audited, 0 AS reversed FROM calls c WHERE c.accepted_at IS NOT NULL AND c.ended_at IS NOT NULL
    UNION ALL SELECT ((c.decided_at + 19800000) / 86400000) AS day, c.agent_id, 0 AS calls, 0 AS call_ms, CASE WHEN c.decision = 'approved' THEN 1 ELSE 0 END AS approved, CASE WHEN c.decision = 'rejected' THEN 1 ELSE 0 END AS rejected, CASE WHEN c.decision = 'unable' THEN 1 ELSE 0 END AS unable, 0 AS audited, 0 AS reversed FROM calls c WHERE c.decided_at IS NOT NULL
    UNION ALL SELECT ((c.decided_at + 19800000) / 86400000) AS day, c.agent_id, 0 AS calls, 0 AS call_ms, 0 AS approved, 0 AS rejected, 0 AS unable, 1 AS audited, CASE WHEN a.decision <> c.decision THEN 1 ELSE 0 END AS reversed FROM audits a JOIN calls c ON c.request_id = a.request_id WHERE c.decided_at IS NOT NULL AND c.decision IN ('approved', 'rejected')) s
    GROUP BY day, agent_id;

-- The requests each agent has had a call of, with the request's creation time, so that
-- an agent's cases are read a page at a time in creation order (src/store/cases.rs).
CREATE TABLE case_agents (
    agent_id     BIGINT NOT NULL,
    request_id   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (agent_id, request_id)
);
CREATE INDEX case_agents_created ON case_agents (agent_id, created_at, request_id);

INSERT INTO case_agents (agent_id, request_id, created_at)
    SELECT DISTINCT c.agent_id, c.request_id, r.created_at
    FROM calls c JOIN requests r ON r.id = c.request_id;
