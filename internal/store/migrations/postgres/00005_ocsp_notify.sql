-- Responders follow ocsp_responses by its updated_at cursor (store.
-- OCSPResponsesAfter); on PostgreSQL they are also told, by LISTEN/NOTIFY,
-- the moment a transaction that stored responses commits (a revocation),
-- instead of at their next poll. One notification per statement, with the
-- schema as payload: several deployments (or test schemas) may share a
-- database, and a listener only wakes for its own.

-- +goose Up

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION sanad_notify_ocsp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sanad_ocsp', current_schema());
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER ocsp_responses_notify AFTER INSERT OR UPDATE ON ocsp_responses
    FOR EACH STATEMENT EXECUTE FUNCTION sanad_notify_ocsp();

-- +goose Down

DROP TRIGGER ocsp_responses_notify ON ocsp_responses;
DROP FUNCTION sanad_notify_ocsp();
