-- Presence (client-server "Presence"): one row per local user, the latest state only.
-- `stream_id` is the "presence" stream position of the last change, so an incremental sync
-- reads the rows with stream_id > since. Timestamps are ms since the epoch.
CREATE TABLE presence (
    user_id TEXT NOT NULL PRIMARY KEY,
    state TEXT NOT NULL,
    status_msg TEXT,
    last_active_ts BIGINT NOT NULL,
    currently_active BOOLEAN NOT NULL,
    stream_id BIGINT NOT NULL
);
CREATE INDEX presence_stream ON presence (stream_id);
