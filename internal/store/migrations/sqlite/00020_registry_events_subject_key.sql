-- The subject an event names, as subjects.national_id spells it (the
-- semantics identifier: IDCKZ-…, NTRPK-…), recorded as it is received, so
-- that an issuance finds an event that came for its subject before the
-- subject had a row (store.Tx.UnmatchedRegistryEvents) by an index, among
-- however many events of people and businesses that never enrolled a
-- national registry sends. NULL in rows received before this migration,
-- which are read as before. 00021 builds the index.
-- migrations/postgres/00020_registry_events_subject_key.sql is the same
-- column.

-- +goose Up

ALTER TABLE registry_events ADD COLUMN subject_key TEXT CHECK (subject_key IS NULL OR subject_key <> '');

-- +goose Down

ALTER TABLE registry_events DROP COLUMN subject_key;
