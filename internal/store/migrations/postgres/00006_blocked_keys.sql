-- Public keys revoked for keyCompromise: the CA never certifies them again
-- (CA/Browser Forum BR 6.1.1.3 asks the same of TLS CAs), whoever asks.
-- Keyed by the SHA-256 of the DER SubjectPublicKeyInfo; the certificate
-- whose revocation blocked the key is named. Written in the revocation's
-- transaction. migrations/sqlite/00006_blocked_keys.sql is the same table.

-- +goose Up

CREATE TABLE blocked_keys (
    spki_sha256 BYTEA       PRIMARY KEY CHECK (octet_length(spki_sha256) = 32),
    issuer_id   TEXT        NOT NULL,
    serial      BYTEA       NOT NULL,
    blocked_at  TIMESTAMPTZ NOT NULL
);

-- +goose Down

DROP TABLE blocked_keys;
