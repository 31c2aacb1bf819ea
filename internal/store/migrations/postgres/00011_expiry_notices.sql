-- The reminder that tells a certificate's holder it expires soon (ra:
-- NoticeExpiring), one per certificate: claimed (outcome '') by the RA node
-- that sends it, ended with what came of it in the transaction that audits
-- it; a claim older than a few minutes is a node that stopped or could not
-- send, and another may take it over. migrations/sqlite/00011_expiry_notices.sql
-- is the same table.

-- +goose Up

CREATE TABLE expiry_notices (
    issuer_id  TEXT        NOT NULL,
    serial     BYTEA       NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL,
    outcome    TEXT        NOT NULL DEFAULT '' CHECK (outcome IN ('', 'sent', 'no-contact', 'renewed')),
    ended_at   TIMESTAMPTZ,
    PRIMARY KEY (issuer_id, serial),
    FOREIGN KEY (issuer_id, serial) REFERENCES certificates (issuer_id, serial),
    CHECK ((outcome = '') = (ended_at IS NULL))
);

-- +goose Down

DROP TABLE expiry_notices;
