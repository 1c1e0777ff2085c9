-- Remote servers' signing keys (federation keyring) and the key responses we received,
-- kept so restarts do not refetch and so we can answer notary queries from cache.

-- One row per (server, key ID). The key is usable until expired_ts when set (an old key,
-- "old_verify_keys"), else until valid_until_ts (the largest one seen for it).
CREATE TABLE server_signature_keys (
    server_name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    verify_key {BYTES} NOT NULL,
    valid_until_ts BIGINT NOT NULL,
    expired_ts BIGINT,
    from_server TEXT NOT NULL,
    fetched_ts BIGINT NOT NULL,
    PRIMARY KEY (server_name, key_id)
);

-- The newest /_matrix/key/v2/server response of each server, per server that gave it to us
-- (itself or a notary), as canonical JSON with the origin's signatures only.
CREATE TABLE server_keys_json (
    server_name TEXT NOT NULL,
    from_server TEXT NOT NULL,
    valid_until_ts BIGINT NOT NULL,
    fetched_ts BIGINT NOT NULL,
    key_json {BYTES} NOT NULL,
    PRIMARY KEY (server_name, from_server)
);
