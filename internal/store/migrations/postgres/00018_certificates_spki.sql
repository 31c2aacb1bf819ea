-- Each certificate's key, so that a key reported compromised revokes every
-- certificate of it, whoever's (ra: revokeSameKey), as it is blocked from
-- then on (blocked_keys): spki_sha256 is the SHA-256 of the certified
-- key's DER SubjectPublicKeyInfo, as blocked_keys keys it (ca.KeyIDs, its
-- first). Written with the intent. NULL in rows written before this
-- migration until ca.FillKeyIDs has read their key from the TBS; it stays
-- NULL only for a TBS that does not parse.
-- Adding a nullable column with no default rewrites nothing; the CHECK is
-- added NOT VALID (no scan under the table's lock) and validated by 00019,
-- which also builds the indexes CONCURRENTLY, outside a transaction.
-- migrations/sqlite/00018_certificates_spki.sql is the same column.

-- +goose Up

ALTER TABLE certificates ADD COLUMN spki_sha256 BYTEA;
ALTER TABLE certificates ADD CONSTRAINT certificates_spki_sha256_length
    CHECK (spki_sha256 IS NULL OR octet_length(spki_sha256) = 32) NOT VALID;

-- +goose Down

ALTER TABLE certificates DROP COLUMN spki_sha256;
