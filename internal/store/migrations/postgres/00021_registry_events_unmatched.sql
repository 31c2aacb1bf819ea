-- The events that matched no subject when they came, by the subject they
-- name (00020), and those received before it was recorded, by time. Built
-- CONCURRENTLY, outside a transaction; should a build be interrupted,
-- PostgreSQL leaves an invalid index that IF NOT EXISTS keeps: drop it and
-- migrate again. Validating 00020's CHECK reads the table without blocking
-- writes.
-- migrations/sqlite/00021_registry_events_unmatched.sql is the same indexes.

-- +goose NO TRANSACTION

-- +goose Up

CREATE INDEX CONCURRENTLY IF NOT EXISTS registry_events_unmatched ON registry_events (subject_key, received_at) WHERE subject_id IS NULL AND subject_key IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS registry_events_unmatched_unkeyed ON registry_events (received_at) WHERE subject_id IS NULL AND subject_key IS NULL;
ALTER TABLE registry_events VALIDATE CONSTRAINT registry_events_subject_key_set;

-- +goose Down

DROP INDEX CONCURRENTLY IF EXISTS registry_events_unmatched_unkeyed;
DROP INDEX CONCURRENTLY IF EXISTS registry_events_unmatched;
