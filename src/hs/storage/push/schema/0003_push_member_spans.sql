-- Spans of stream orderings [since_so, until_so) during which a local user is covered by
-- the default rows of a room: the local members joined after the push hook's batch, from
-- the batch's first event on (what the hook evaluated before this table existed).
-- until_so is 9223372036854775807 while the span is open.
CREATE TABLE event_push_members (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    since_so BIGINT NOT NULL,
    until_so BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, since_so)
);
CREATE INDEX event_push_members_room_open ON event_push_members (room_id, until_so);

-- Per room, a digest of the local member set event_push_members has open spans for, so a
-- batch only rewrites spans when the membership changed (one key read per room otherwise).
CREATE TABLE event_push_member_sets (
    room_id TEXT NOT NULL PRIMARY KEY,
    digest TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL
);
