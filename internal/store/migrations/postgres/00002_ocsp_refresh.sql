-- Indexes for the OCSP refresher (store.DueOCSPResponses): a response is due
-- when its this_update or its next_update passes a bound, so each bound gets
-- an index and the database finds the due rows without reading every
-- response. migrations/sqlite/00002_ocsp_refresh.sql defines the same indexes.

-- CREATE INDEX blocks writes to the table while it builds. On a large
-- production table, build both with CREATE INDEX CONCURRENTLY (same names)
-- before migrating; IF NOT EXISTS then leaves them as they are.

-- +goose Up

CREATE INDEX IF NOT EXISTS ocsp_responses_this_update ON ocsp_responses (issuer_id, this_update);
CREATE INDEX IF NOT EXISTS ocsp_responses_next_update ON ocsp_responses (issuer_id, next_update);

-- +goose Down

DROP INDEX ocsp_responses_next_update;
DROP INDEX ocsp_responses_this_update;
