-- The signed requests' nonces by when they were used, for PurgeNonces:
-- a nonce is kept only as long as a replay of its request could pass the
-- request's time check. migrations/postgres/00015_nonces_used.sql is the same
-- index.

-- +goose Up

CREATE INDEX signed_request_nonces_used ON signed_request_nonces (used_at);

-- +goose Down

DROP INDEX signed_request_nonces_used;
