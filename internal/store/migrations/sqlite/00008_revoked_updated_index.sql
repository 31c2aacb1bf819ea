-- Whether a revocation may be missing from the latest CRL (RevokedSince, at
-- a CA's start) is asked by updated_at, not revoked_at: a reason raised to
-- keyCompromise keeps the revocation's time but changes the CRL entry.

-- +goose Up

CREATE INDEX certificates_revoked_updated ON certificates (issuer_id, updated_at) WHERE status = 'revoked';

-- +goose Down

DROP INDEX certificates_revoked_updated;
