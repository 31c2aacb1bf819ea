-- The certificates that expire soon, for the reminders (ra:
-- NoticeExpiring). Built CONCURRENTLY, outside a transaction, so that
-- issuance and revocation go on while it builds over a large table; should
-- the build be interrupted, PostgreSQL leaves an invalid index that IF NOT
-- EXISTS keeps: drop it and migrate again.
-- migrations/sqlite/00012_certificates_expiring.sql is the same index.

-- +goose NO TRANSACTION

-- +goose Up

CREATE INDEX CONCURRENTLY IF NOT EXISTS certificates_expiring ON certificates (issuer_id, not_after) WHERE status = 'good';

-- +goose Down

DROP INDEX CONCURRENTLY IF EXISTS certificates_expiring;
