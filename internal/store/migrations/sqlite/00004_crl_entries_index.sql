-- The CRL's entries (store.CRLEntries) read from this index alone, already
-- in serial order: with full certificate rows (TBS and DER, about 1 KiB
-- each) in the table, fetching 100 000 of them one by one took over a
-- second of a CRL rebuild. The same index on both databases.

-- +goose Up

CREATE INDEX IF NOT EXISTS certificates_crl_entries
    ON certificates (issuer_id, serial, revoked_at, reason, not_after, status) WHERE status = 'revoked';

-- +goose Down

DROP INDEX certificates_crl_entries;
