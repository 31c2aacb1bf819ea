-- The notices that tell a certificate's holder it was revoked (ra:
-- NoticeRevoked), one per certificate and reason, so that a raised reason
-- is told too. A row is claimed (outcome '') by the RA node that sends the
-- notice, and ended with what came of it in the transaction that audits it;
-- a claim older than a few minutes is a node that stopped, and another may
-- take it over. migrations/postgres/00009_revocation_notices.sql is the same
-- table.

-- +goose Up

CREATE TABLE revocation_notices (
    issuer_id  TEXT    NOT NULL,
    serial     BLOB    NOT NULL,
    reason     INTEGER NOT NULL CHECK (reason BETWEEN 0 AND 10 AND reason <> 7),
    claimed_at INTEGER NOT NULL,
    outcome    TEXT    NOT NULL DEFAULT '' CHECK (outcome IN ('', 'sent', 'no-contact')),
    ended_at   INTEGER,
    PRIMARY KEY (issuer_id, serial, reason),
    FOREIGN KEY (issuer_id, serial) REFERENCES certificates (issuer_id, serial),
    CHECK ((outcome = '') = (ended_at IS NULL))
) STRICT;

-- +goose Down

DROP TABLE revocation_notices;
