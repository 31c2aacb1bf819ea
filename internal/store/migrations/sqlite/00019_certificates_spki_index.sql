-- The indexes of 00018's column: certificates_spki finds a key's
-- certificates, certificates_unkeyed the rows ca.FillKeyIDs has still to
-- fill. migrations/postgres/00019_certificates_spki_index.sql is the same
-- indexes, built CONCURRENTLY.

-- +goose Up

CREATE INDEX certificates_spki ON certificates (spki_sha256) WHERE spki_sha256 IS NOT NULL;
CREATE INDEX certificates_unkeyed ON certificates (issuer_id, serial) WHERE spki_sha256 IS NULL;

-- +goose Down

DROP INDEX certificates_unkeyed;
DROP INDEX certificates_spki;
