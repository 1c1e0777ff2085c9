-- Read receipts: the latest per (room, receipt type, user, thread). thread_id is '' for an
-- unthreaded receipt (a key column cannot be NULL). stream_id is the position on the
-- "receipts" stream of the last change; event_stream_ordering is the receipted event's
-- position in the events stream, used to keep receipts from moving backwards.
CREATE TABLE receipts (
    room_id TEXT NOT NULL,
    receipt_type TEXT NOT NULL,
    user_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_stream_ordering BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (room_id, receipt_type, user_id, thread_id)
);
CREATE INDEX receipts_room_stream ON receipts (room_id, stream_id);
CREATE INDEX receipts_user ON receipts (user_id, room_id);
