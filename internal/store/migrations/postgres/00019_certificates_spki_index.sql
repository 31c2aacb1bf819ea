-- The indexes of 00018's column: certificates_spki finds a key's
-- certificates, certificates_unkeyed the rows ca.FillKeyIDs has still to
-- fill. Built CONCURRENTLY, outside a transaction, so that issuance and
-- revocation go on while they build over a large table; should a build be
-- interrupted, PostgreSQL leaves an invalid index that IF NOT EXISTS
-- keeps: drop it and migrate again. Validating the CHECK reads the table
-- without blocking writes.
-- migrations/sqlite/00019_certificates_spki_index.sql is the same indexes.

-- +goose NO TRANSACTION

-- +goose Up

CREATE INDEX CONCURRENTLY IF NOT EXISTS certificates_spki ON certificates (spki_sha256) WHERE spki_sha256 IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS certificates_unkeyed ON certificates (issuer_id, serial) WHERE spki_sha256 IS NULL;
ALTER TABLE certificates VALIDATE CONSTRAINT certificates_spki_sha256_length;

-- +goose Down

DROP INDEX CONCURRENTLY IF EXISTS certificates_unkeyed;
DROP INDEX CONCURRENTLY IF EXISTS certificates_spki;
