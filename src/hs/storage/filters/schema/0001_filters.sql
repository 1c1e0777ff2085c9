-- Client filters (POST /user/{userId}/filter), numbered per user from 0 like Synapse.
CREATE TABLE user_filters (
    user_id TEXT NOT NULL,
    filter_id BIGINT NOT NULL,
    filter_json TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
);

-- Read-side indexes over the events area's tables (they belong to the client read paths
-- in hs.storage.filters.reads): /threads lists a room's thread roots by latest reply, and
-- /timestamp_to_event seeks by origin_server_ts within a room.
CREATE INDEX event_relations_room_type ON event_relations (room_id, rel_type, stream_ordering);
CREATE INDEX events_room_origin_ts ON events (room_id, origin_server_ts) WHERE in_timeline;
