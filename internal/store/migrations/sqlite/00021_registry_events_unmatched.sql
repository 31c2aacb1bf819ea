-- The events that matched no subject when they came, by the subject they
-- name (00020), and those received before it was recorded, by time.
-- migrations/postgres/00021_registry_events_unmatched.sql is the same
-- indexes, built CONCURRENTLY.

-- +goose Up

CREATE INDEX registry_events_unmatched ON registry_events (subject_key, received_at) WHERE subject_id IS NULL AND subject_key IS NOT NULL;
CREATE INDEX registry_events_unmatched_unkeyed ON registry_events (received_at) WHERE subject_id IS NULL AND subject_key IS NULL;

-- +goose Down

DROP INDEX registry_events_unmatched_unkeyed;
DROP INDEX registry_events_unmatched;
