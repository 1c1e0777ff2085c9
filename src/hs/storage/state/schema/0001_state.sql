-- State groups: a group is the room state at some point, stored as a delta on `prev_group`
-- (`delta_depth` = length of the delta chain) or as a full snapshot (`delta_depth` = 0).
-- Reading walks at most the snapshot interval of deltas. Events map to the group holding the
-- state AFTER them (and the one before them); consecutive non-state events share a group.
CREATE TABLE state_groups (
    id BIGINT NOT NULL PRIMARY KEY,
    room_id TEXT NOT NULL,
    -- The event whose persistence created the group (diagnostics, purge).
    event_id TEXT,
    prev_group BIGINT,
    delta_depth INTEGER NOT NULL
);
CREATE INDEX state_groups_room ON state_groups (room_id);
CREATE INDEX state_groups_prev ON state_groups (prev_group);

-- A snapshot's full state, or a delta's changes; a NULL event_id removes the key.
CREATE TABLE state_group_entries (
    group_id BIGINT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT,
    PRIMARY KEY (group_id, type, state_key)
);

CREATE TABLE event_to_state_group (
    event_id TEXT NOT NULL PRIMARY KEY,
    state_group BIGINT NOT NULL,
    -- The state before the event; equal to state_group for non-state events.
    state_group_before BIGINT NOT NULL
);
CREATE INDEX event_to_state_group_group ON event_to_state_group (state_group);
