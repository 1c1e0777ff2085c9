-- Which migration files have been applied, per storage area (see hs.storage.migrations).
CREATE TABLE schema_migrations (
    area TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    applied_ts BIGINT NOT NULL,
    PRIMARY KEY (area, version)
);

-- One row per stream (hs.storage.streams). On SQLite `position` is the allocation counter;
-- on PostgreSQL positions come from the sequence hs_stream_<name> and `position` is the
-- highest position completed (committed or abandoned) by any process.
CREATE TABLE stream_positions (
    stream_name TEXT NOT NULL PRIMARY KEY,
    position BIGINT NOT NULL
);

-- PostgreSQL only: positions allocated but not yet completed, so that every process can tell
-- how far it may read without skipping another process's in-flight write.
CREATE TABLE stream_inflight (
    stream_name TEXT NOT NULL,
    position BIGINT NOT NULL,
    instance_name TEXT NOT NULL,
    PRIMARY KEY (stream_name, position)
);
CREATE INDEX stream_inflight_instance ON stream_inflight (instance_name);
