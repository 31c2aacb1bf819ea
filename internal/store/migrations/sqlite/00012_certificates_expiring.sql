-- The certificates that expire soon, for the reminders (ra:
-- NoticeExpiring). migrations/postgres/00012_certificates_expiring.sql is
-- the same index, built CONCURRENTLY.

-- +goose Up

CREATE INDEX certificates_expiring ON certificates (issuer_id, not_after) WHERE status = 'good';

-- +goose Down

DROP INDEX certificates_expiring;
