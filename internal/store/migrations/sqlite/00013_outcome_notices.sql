-- The notice that tells an applicant how an enrollment that waited for RA
-- officers ended (ra: noticeOutcome): written in the transaction that moves
-- the enrollment to its end, so that none is lost with a gateway down or a
-- node stopped; claimed (claimed_at) by the RA node that sends it, ended
-- with what came of it in the transaction that audits it. A claim older
-- than a few minutes is a node that stopped or could not send, and another
-- may take it over. migrations/postgres/00013_outcome_notices.sql is the
-- same table.

-- +goose Up

CREATE TABLE outcome_notices (
    enrollment_id TEXT    NOT NULL PRIMARY KEY REFERENCES enrollments (id),
    event         TEXT    NOT NULL CHECK (event IN ('issued', 'rejected', 'failed', 'expired')),
    serial        BLOB,
    created_at    INTEGER NOT NULL,
    claimed_at    INTEGER,
    outcome       TEXT    NOT NULL DEFAULT '' CHECK (outcome IN ('', 'sent', 'no-contact')),
    ended_at      INTEGER,
    CHECK ((event = 'issued') = (serial IS NOT NULL)),
    CHECK ((outcome = '') = (ended_at IS NULL)),
    CHECK (outcome = '' OR claimed_at IS NOT NULL)
) STRICT;

-- The sweep's look: notices not sent yet.
CREATE INDEX outcome_notices_unsent ON outcome_notices (created_at) WHERE outcome = '';

-- +goose Down

DROP TABLE outcome_notices;
