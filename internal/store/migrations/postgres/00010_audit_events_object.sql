-- An auditor asks what happened to one thing (sanad audit list --object:
-- an enrollment, a certificate, an officer): the index answers without
-- reading the whole log. migrations/sqlite/00010_audit_events_object.sql is the
-- same index.

-- +goose Up

CREATE INDEX audit_events_object ON audit_events (object, seq);

-- +goose Down

DROP INDEX audit_events_object;
