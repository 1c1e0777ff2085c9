-- Outbound federation: health of each destination (persisted so that a restart keeps the
-- backoff), and what catch-up needs after an outage.
CREATE TABLE federation_destinations (
    destination TEXT NOT NULL PRIMARY KEY,
    -- Start of the current outage (ms), NULL while the destination is healthy.
    failure_ts BIGINT,
    -- When the last attempt failed (ms) and how long to wait after it before the next.
    retry_last_ts BIGINT NOT NULL DEFAULT 0,
    retry_interval_ms BIGINT NOT NULL DEFAULT 0,
    -- Newest stream ordering of a PDU the destination acknowledged; catch-up resends the
    -- rooms whose latest PDU for the destination is newer.
    last_successful_stream_ordering BIGINT NOT NULL DEFAULT 0
);

-- The latest local PDU of each room meant for each destination.
CREATE TABLE federation_destination_rooms (
    destination TEXT NOT NULL,
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    PRIMARY KEY (destination, room_id)
);
CREATE INDEX federation_destination_rooms_order
    ON federation_destination_rooms (destination, stream_ordering);

-- The last m.device_list_update stream_id sent for each local user (``prev_id`` of the
-- next one). IDs are unique per user as the spec requires: position * 65536 + index of the
-- device among those changed at that position.
CREATE TABLE device_list_outbound_ids (
    user_id TEXT NOT NULL PRIMARY KEY,
    last_id BIGINT NOT NULL
);

-- Remote users' device lists as learnt from m.device_list_update EDUs and resyncs.
-- `stream_id` is the remote server's position for the user (prev_id gap detection).
CREATE TABLE remote_device_lists (
    user_id TEXT NOT NULL PRIMARY KEY,
    stream_id BIGINT NOT NULL
);
CREATE TABLE remote_devices (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    keys_json TEXT,
    display_name TEXT,
    PRIMARY KEY (user_id, device_id)
);
CREATE TABLE remote_cross_signing_keys (
    user_id TEXT NOT NULL,
    keytype TEXT NOT NULL,
    key_json TEXT NOT NULL,
    PRIMARY KEY (user_id, keytype)
);
