-- SQLite has one writer, so a counter row allocates state group IDs without contention.
CREATE TABLE state_group_id_counter (
    one INTEGER NOT NULL PRIMARY KEY CHECK (one = 1),
    last_id BIGINT NOT NULL
);
INSERT INTO state_group_id_counter (one, last_id) VALUES (1, 0);
