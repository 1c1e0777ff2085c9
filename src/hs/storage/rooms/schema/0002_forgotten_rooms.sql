-- /forget: the membership event (leave/ban) a user forgot the room at. The room stays
-- forgotten while that event is still the user's current membership; a new membership
-- (invite, join) supersedes it without any cleanup.
CREATE TABLE forgotten_rooms (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);
