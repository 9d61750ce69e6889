-- Relay nodes: every process that runs a media relay registers here and beats its
-- heartbeat; a new call is placed on the least-loaded live node (docs/calls.md).
CREATE TABLE relay_nodes (
    id           TEXT    PRIMARY KEY,
    -- Where other vkyc processes reach this one's HTTP port for a call's signalling.
    internal_url TEXT    NOT NULL,
    udp_addr     TEXT    NOT NULL,
    tcp_addr     TEXT,
    capacity     BIGINT  NOT NULL,
    live_calls   BIGINT  NOT NULL,
    started_at   BIGINT  NOT NULL,
    heartbeat_at BIGINT  NOT NULL
);

-- The node a live call's media runs on (NULL: calls from before nodes, or no relay).
ALTER TABLE calls ADD COLUMN relay_node TEXT;
CREATE INDEX calls_active_by_node ON calls (relay_node) WHERE state = 'active';
