-- Push rules the user created (client-server "Push Rules"): one row per (user, kind, rule).
-- priority orders the user's rules of one kind, highest first; it is rewritten for the
-- kind whenever a rule is inserted or moved (a user has few rules). conditions/actions are
-- JSON text; pattern is set for content rules only.
CREATE TABLE push_rules (
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    priority BIGINT NOT NULL,
    enabled BOOLEAN NOT NULL,
    conditions TEXT,
    pattern TEXT,
    actions TEXT NOT NULL,
    PRIMARY KEY (user_id, kind, rule_id)
);

-- The user's enabled/actions changes to server-default rules (either may be NULL: kept).
CREATE TABLE push_rule_overrides (
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    enabled BOOLEAN,
    actions TEXT,
    PRIMARY KEY (user_id, kind, rule_id)
);

-- Per-user rules version: the "push_rules" stream position of the user's last change.
-- Compiled rules are cached by (user, version); sync sends m.push_rules when it moved.
CREATE TABLE push_rules_versions (
    user_id TEXT NOT NULL PRIMARY KEY,
    stream_id BIGINT NOT NULL
);
CREATE INDEX push_rules_versions_stream ON push_rules_versions (stream_id);

-- Push actions of events that notify or highlight a local user. thread_id is 'main' for
-- the main timeline, else the thread root's event ID; unread counts are the rows after
-- the user's read receipt for the thread (or the unthreaded one).
CREATE TABLE event_push_actions (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    notif SMALLINT NOT NULL,
    highlight SMALLINT NOT NULL,
    actions TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, stream_ordering)
);
CREATE INDEX event_push_actions_user_stream ON event_push_actions (user_id, stream_ordering);

-- Spec "Marking notifications as read": sending an event marks what precedes it in its
-- thread as read. The latest event a local user sent per (room, thread).
CREATE TABLE push_sender_reads (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, thread_id)
);

-- Pushers (POST /pushers/set): one per (user, app_id, pushkey). device_id ties the pusher
-- to the device that created it, so removing the device removes its pushers.
CREATE TABLE pushers (
    user_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    pushkey TEXT NOT NULL,
    kind TEXT NOT NULL,
    app_display_name TEXT NOT NULL,
    device_display_name TEXT NOT NULL,
    profile_tag TEXT,
    lang TEXT NOT NULL,
    data TEXT NOT NULL,
    device_id TEXT,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id, pushkey)
);
CREATE INDEX pushers_app_pushkey ON pushers (app_id, pushkey);
