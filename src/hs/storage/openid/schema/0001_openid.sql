-- OpenID tokens (client-server "OpenID"): short-lived bearer tokens a user hands to an
-- integration server, which checks them with GET /_matrix/federation/v1/openid/userinfo.
-- Only the SHA-256 of the token is kept (hex), so a leaked database yields no usable token.
-- `expires_ts` is ms since the epoch.
CREATE TABLE openid_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    expires_ts BIGINT NOT NULL
);
CREATE INDEX openid_tokens_expires ON openid_tokens (expires_ts);
