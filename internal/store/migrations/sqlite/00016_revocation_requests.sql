-- CA officers' requests to revoke a CA certificate (an OCSP signer's, the
-- audit key's: one a ceremony made and sanad issuer add recorded). One
-- officer cannot revoke such a certificate alone: revoking the last OCSP
-- signer stops issuance. A request is kept here, and the revocation is
-- carried out once two distinct CA officers with two distinct keys asked
-- for it with the same reason within a day. Every request is a row, a
-- repeated one too (keyed like signed_request_nonces: by the officer's
-- certificate and the request's nonce, written in the same transaction).
-- migrations/postgres/00016_revocation_requests.sql is the same table.

-- +goose Up

CREATE TABLE revocation_requests (
    issuer_id           TEXT    NOT NULL,
    serial              BLOB    NOT NULL,
    officer_fingerprint BLOB    NOT NULL REFERENCES officers (fingerprint),
    nonce               TEXT    NOT NULL CHECK (nonce <> ''),
    reason              INTEGER NOT NULL CHECK (reason BETWEEN 0 AND 10 AND reason <> 7), -- RFC 5280 §5.3.1 CRLReason
    jws                 TEXT    NOT NULL CHECK (jws <> ''), -- the officer's signed action, verbatim
    requested_at        INTEGER NOT NULL,
    PRIMARY KEY (officer_fingerprint, nonce),
    FOREIGN KEY (issuer_id, serial) REFERENCES certificates (issuer_id, serial)
) STRICT;
CREATE INDEX revocation_requests_certificate ON revocation_requests (issuer_id, serial);

-- +goose Down

DROP TABLE revocation_requests;
