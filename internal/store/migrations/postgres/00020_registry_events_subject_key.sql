-- The subject an event names, as subjects.national_id spells it (the
-- semantics identifier: IDCKZ-…, NTRPK-…), recorded as it is received, so
-- that an issuance finds an event that came for its subject before the
-- subject had a row (store.Tx.UnmatchedRegistryEvents) by an index, among
-- however many events of people and businesses that never enrolled a
-- national registry sends. NULL in rows received before this migration,
-- which are read as before. A nullable column without a default rewrites
-- nothing; the CHECK is added NOT VALID and validated by 00021, which
-- builds the index CONCURRENTLY.
-- migrations/sqlite/00020_registry_events_subject_key.sql is the same
-- column.

-- +goose Up

ALTER TABLE registry_events ADD COLUMN subject_key TEXT;
ALTER TABLE registry_events ADD CONSTRAINT registry_events_subject_key_set
    CHECK (subject_key IS NULL OR subject_key <> '') NOT VALID;

-- +goose Down

ALTER TABLE registry_events DROP COLUMN subject_key;
