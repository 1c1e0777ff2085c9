-- To-device messages waiting for delivery to one local device, by "to_device" stream
-- position. A row is deleted once the device's next sync acknowledges it.
CREATE TABLE device_inbox (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    message_json TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, stream_id)
);

-- Messages for remote users, one row per destination server: the federation sender sends
-- each as an m.direct_to_device EDU and deletes it.
CREATE TABLE device_federation_outbox (
    destination TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    edu_json TEXT NOT NULL,
    queued_ts BIGINT NOT NULL,
    PRIMARY KEY (destination, stream_id)
);

-- Transaction IDs already processed per sending device (PUT /sendToDevice is idempotent).
CREATE TABLE device_inbox_txns (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id)
);
CREATE INDEX device_inbox_txns_ts ON device_inbox_txns (ts);
