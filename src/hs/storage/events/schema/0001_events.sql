-- Events and the room DAG. See hs.storage.events for the conventions.

-- One row per event we hold. `stream_ordering` comes from the "events" stream
-- (hs.storage.streams) and is unique; `in_timeline` is NOT (outlier OR rejected OR soft_failed),
-- i.e. whether clients may see the event in timelines, and is what the timeline indexes cover.
-- The PDU is kept exactly as received (`json`); redaction is applied when serving.
CREATE TABLE events (
    stream_ordering BIGINT NOT NULL PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT,
    sender TEXT NOT NULL,
    depth BIGINT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    received_ts BIGINT NOT NULL,
    outlier BOOLEAN NOT NULL,
    soft_failed BOOLEAN NOT NULL,
    rejected_reason TEXT,
    in_timeline BOOLEAN NOT NULL,
    redacted BOOLEAN NOT NULL DEFAULT FALSE,
    redacted_by TEXT,
    room_version TEXT NOT NULL,
    json TEXT NOT NULL
);
-- Sync and stream-ordered pagination.
CREATE INDEX events_room_stream ON events (room_id, stream_ordering) WHERE in_timeline;
-- /messages (topological order) and /context.
CREATE INDEX events_room_topo ON events (room_id, depth, stream_ordering) WHERE in_timeline;
CREATE INDEX events_room_sender ON events (room_id, sender);

-- prev_events. `is_excluded` copies the event's outlier/rejected/soft-failed status: only
-- non-excluded edges retire forward extremities (hs.core.dag.update_forward_extremities).
CREATE TABLE event_edges (
    event_id TEXT NOT NULL,
    prev_event_id TEXT NOT NULL,
    is_excluded BOOLEAN NOT NULL,
    PRIMARY KEY (event_id, prev_event_id)
);
CREATE INDEX event_edges_prev ON event_edges (prev_event_id, is_excluded);

-- auth_events, walked one breadth-first frontier per query for auth chains.
CREATE TABLE event_auth (
    event_id TEXT NOT NULL,
    auth_id TEXT NOT NULL,
    PRIMARY KEY (event_id, auth_id)
);

CREATE TABLE event_forward_extremities (
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);

-- Idempotent client sends. The spec scopes a transaction ID to a device and the request
-- path, which includes the room, so the room is part of the key.
CREATE TABLE event_txn_ids (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    inserted_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, room_id, txn_id)
);
CREATE INDEX event_txn_ids_ts ON event_txn_ids (inserted_ts);

-- m.room.redaction events, also those whose target we do not hold (yet).
CREATE TABLE redactions (
    event_id TEXT NOT NULL PRIMARY KEY,
    redacts TEXT NOT NULL,
    received_ts BIGINT NOT NULL
);
CREATE INDEX redactions_redacts ON redactions (redacts);

-- m.relates_to of timeline events, with the relating event's room, type, sender and
-- position copied so aggregation and /relations read this table alone. A redacted event
-- loses its relation (redaction strips m.relates_to), so its row is deleted.
CREATE TABLE event_relations (
    event_id TEXT NOT NULL PRIMARY KEY,
    relates_to TEXT NOT NULL,
    rel_type TEXT NOT NULL,
    aggregation_key TEXT,
    room_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    sender TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL
);
CREATE INDEX event_relations_target ON event_relations (relates_to, rel_type, stream_ordering);
CREATE INDEX event_relations_target_all ON event_relations (relates_to, stream_ordering);
