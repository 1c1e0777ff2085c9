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
