-- The unresolved intents (no DER yet, not revoked), keyed by what the hot
-- path looks them up by. certificates_unsigned was keyed by created_at for
-- recovery's ordered scan, and PostgreSQL chose it, or a BitmapAnd over
-- certificates_expiring, for SetCertificateDER's UPDATE: both read every
-- entry (the partial index holds one dead entry per certificate issued
-- since the last VACUUM; certificates_expiring one live entry per good
-- certificate), so each issuance cost more than the one before, up to
-- milliseconds a certificate in `sanad bench enroll`. Now keyed by (issuer_id,
-- serial), and the writes compare status with IS NOT DISTINCT FROM so that
-- no partial index can serve them (store: setCertificateDERSQL), the row is
-- found by key. Recovery sorts the few intents it reads. Built
-- CONCURRENTLY, as 00012 is: should the build be interrupted, PostgreSQL
-- leaves an invalid index that IF NOT EXISTS keeps, so drop
-- certificates_intents and migrate again.
-- migrations/sqlite/00014_certificates_intents.sql is the same change.

-- +goose NO TRANSACTION

-- +goose Up

CREATE INDEX CONCURRENTLY IF NOT EXISTS certificates_intents ON certificates (issuer_id, serial) WHERE der IS NULL AND status = 'good';
DROP INDEX CONCURRENTLY IF EXISTS certificates_unsigned;

-- +goose Down

CREATE INDEX CONCURRENTLY IF NOT EXISTS certificates_unsigned ON certificates (created_at) WHERE der IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS certificates_intents;
