-- Per-user account data (client-server "Client Config"): global and per room. Each write
-- takes a position on the "account_data" stream; a row keeps only its latest value, so
-- "what changed since position P" is the rows with stream_id > P.
CREATE TABLE account_data (
    user_id TEXT NOT NULL,
    type TEXT NOT NULL,
    content TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, type)
);
CREATE INDEX account_data_stream ON account_data (user_id, stream_id);

CREATE TABLE room_account_data (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    content TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, type)
);
CREATE INDEX room_account_data_stream ON room_account_data (user_id, stream_id);
