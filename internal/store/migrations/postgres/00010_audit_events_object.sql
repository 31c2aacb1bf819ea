-- An auditor asks what happened to one thing (sanad audit list --object:
-- an enrollment, a certificate, an officer): the index answers without
-- reading the whole log. Built CONCURRENTLY, outside a transaction, so that
-- audit appends (every issuance, every revocation) go on while it builds
-- over a large log; should the build be interrupted, PostgreSQL leaves an
-- invalid index that IF NOT EXISTS keeps: drop it and migrate again.
-- migrations/sqlite/00010_audit_events_object.sql is the same index.

-- +goose NO TRANSACTION

-- +goose Up

CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_events_object ON audit_events (object, seq);

-- +goose Down

DROP INDEX CONCURRENTLY IF EXISTS audit_events_object;
