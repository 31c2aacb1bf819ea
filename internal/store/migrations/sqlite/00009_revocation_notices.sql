-- The notice that tells a certificate's holder it was revoked (ra:
-- NoticeRevoked): one row per certificate, for the reason last told or being
-- told, so that a reason raised to keyCompromise is told again (each notice
-- is in the audit log; this row is where the latest stands). A row is
-- claimed (outcome '') by the RA node that sends the notice, and ended with
-- what came of it in the transaction that audits it; a claim older than a
-- few minutes is a node that stopped or could not send, and another may take
-- it over. migrations/postgres/00009_revocation_notices.sql is the same table.

-- +goose Up

CREATE TABLE revocation_notices (
    issuer_id  TEXT    NOT NULL,
    serial     BLOB    NOT NULL,
    reason     INTEGER NOT NULL CHECK (reason BETWEEN 0 AND 10 AND reason <> 7),
    claimed_at INTEGER NOT NULL,
    outcome    TEXT    NOT NULL DEFAULT '' CHECK (outcome IN ('', 'sent', 'no-contact')),
    ended_at   INTEGER,
    PRIMARY KEY (issuer_id, serial),
    FOREIGN KEY (issuer_id, serial) REFERENCES certificates (issuer_id, serial),
    CHECK ((outcome = '') = (ended_at IS NULL))
) STRICT;

-- The sweep's second look: claims that went stale, however old.
CREATE INDEX revocation_notices_claimed ON revocation_notices (issuer_id, claimed_at) WHERE outcome = '';

-- +goose Down

DROP TABLE revocation_notices;
