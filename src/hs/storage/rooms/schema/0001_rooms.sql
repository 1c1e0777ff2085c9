-- Rooms, their current state and membership history, aliases and directory visibility.
CREATE TABLE rooms (
    room_id TEXT NOT NULL PRIMARY KEY,
    room_version TEXT NOT NULL,
    creator TEXT,
    is_public BOOLEAN NOT NULL DEFAULT FALSE,
    created_ts BIGINT NOT NULL
);
CREATE INDEX rooms_public ON rooms (is_public, room_id);

-- The resolved state at the room's forward extremities; `membership` is copied from
-- m.room.member content so member lists and rooms-for-user need no event fetch.
CREATE TABLE current_state (
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    membership TEXT,
    PRIMARY KEY (room_id, type, state_key)
);
CREATE INDEX current_state_member ON current_state (state_key, type, membership);

-- Every change to current_state, by stream ordering: what incremental sync reads.
-- event_id NULL = the key was removed.
CREATE TABLE current_state_delta_stream (
    stream_ordering BIGINT NOT NULL,
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT,
    prev_event_id TEXT,
    PRIMARY KEY (stream_ordering, room_id, type, state_key)
);
CREATE INDEX current_state_delta_room ON current_state_delta_stream (room_id, stream_ordering);

-- One row per (non-rejected) m.room.member event, outliers included (invites over
-- federation arrive as outliers).
CREATE TABLE room_memberships (
    event_id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    membership TEXT NOT NULL,
    sender TEXT NOT NULL,
    displayname TEXT,
    avatar_url TEXT,
    stream_ordering BIGINT NOT NULL
);
CREATE INDEX room_memberships_room_user ON room_memberships (room_id, user_id);
CREATE INDEX room_memberships_user ON room_memberships (user_id, stream_ordering);

CREATE TABLE room_aliases (
    alias TEXT NOT NULL PRIMARY KEY,
    room_id TEXT NOT NULL,
    creator TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);
CREATE INDEX room_aliases_room ON room_aliases (room_id);
