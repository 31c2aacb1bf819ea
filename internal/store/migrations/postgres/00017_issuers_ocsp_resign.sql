-- When an issuing CA's OCSP signer was revoked and another took its place,
-- every answer the CA's certificates had that was signed before then is
-- signed again (ca.Publisher.ResignNow): ocsp_resign_before is that time,
-- the latest any node recorded, and the refresh passes of every node, a
-- restarted one too, re-sign what is older. NULL: never.
-- migrations/sqlite/00017_issuers_ocsp_resign.sql is the same column.

-- +goose Up

ALTER TABLE issuers ADD COLUMN ocsp_resign_before TIMESTAMPTZ;

-- +goose Down

ALTER TABLE issuers DROP COLUMN ocsp_resign_before;
