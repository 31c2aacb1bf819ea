-- Each certificate's key, so that a key reported compromised revokes every
-- certificate of it, whoever's (ra: revokeSameKey), as it is blocked from
-- then on (blocked_keys): spki_sha256 is the SHA-256 of the certified
-- key's DER SubjectPublicKeyInfo, as blocked_keys keys it (ca.KeyIDs, its
-- first). Written with the intent. NULL in rows written before this
-- migration until ca.FillKeyIDs has read their key from the TBS; it stays
-- NULL only for a TBS that does not parse.
-- 00019 builds its indexes. migrations/postgres/00018_certificates_spki.sql
-- is the same column.

-- +goose Up

ALTER TABLE certificates ADD COLUMN spki_sha256 BLOB CHECK (spki_sha256 IS NULL OR length(spki_sha256) = 32);

-- +goose Down

ALTER TABLE certificates DROP COLUMN spki_sha256;
