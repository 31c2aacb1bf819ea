-- The unresolved intents (no DER yet, not revoked), keyed by what
-- SetCertificateDER looks them up by rather than by created_at.
-- migrations/postgres/00014_certificates_intents.sql says why; SQLite's
-- planner took the primary key for one intent already, and the schemas
-- stay the same.

-- +goose Up

CREATE INDEX certificates_intents ON certificates (issuer_id, serial) WHERE der IS NULL AND status = 'good';
DROP INDEX certificates_unsigned;

-- +goose Down

CREATE INDEX certificates_unsigned ON certificates (created_at) WHERE der IS NULL;
DROP INDEX certificates_intents;
