-- Push actions per event instead of per (event, member): a message in a room of N local
-- members used to write N rows to event_push_actions. Now an event whose most common
-- outcome among its recipients notifies or highlights gets ONE row here (that outcome, "the
-- default"), and event_push_actions keeps only the members whose outcome differs (a row
-- with notif = 0 and highlight = 0 suppresses the default for that member).
--
-- Who a default row covers: the local members with a span in event_push_members covering
-- the event's stream_ordering, except the event's sender. Existing event_push_actions rows
-- stay as they are: events before this migration have no default row, so those rows are
-- exactly the old per-member rows (nothing to convert).
--
-- PostgreSQL variant: stream_ordering is a BIGINT key (SQLite: the rowid).
CREATE TABLE event_push_defaults (
    stream_ordering BIGINT PRIMARY KEY,
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    notif SMALLINT NOT NULL,
    highlight SMALLINT NOT NULL,
    actions TEXT NOT NULL,
    ts BIGINT NOT NULL
);
-- Unread windows per room (main timeline: filtered on thread_id); /notifications.
CREATE INDEX event_push_defaults_room ON event_push_defaults (room_id, stream_ordering);
-- Unread windows of thread events only (few), so they need not scan the main timeline.
CREATE INDEX event_push_defaults_room_threads ON event_push_defaults (room_id, stream_ordering)
    WHERE thread_id <> 'main';

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
