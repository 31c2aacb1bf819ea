-- Nonces of signed requests (officer actions, holder revocations) already
-- used: a replayed JWS finds its nonce here and is refused. The row is
-- written in the transaction of the action the request caused.
-- migrations/postgres/00003_signed_request_nonces.sql is the same table.

-- +goose Up

CREATE TABLE signed_request_nonces (
    key_id  BLOB    NOT NULL CHECK (length(key_id) > 0), -- SHA-256 of the signer's certificate
    nonce   TEXT    NOT NULL CHECK (nonce <> ''),
    used_at INTEGER NOT NULL,
    PRIMARY KEY (key_id, nonce)
) STRICT;

-- +goose Down

DROP TABLE signed_request_nonces;
