-- Sanad schema, PostgreSQL dialect. DESIGN.md §3.
--
-- migrations/sqlite/00001_schema.sql defines the same tables with the same
-- column names and nullability (TestSchemaParity checks it); keep them in step.
--
-- Conventions:
--   * Times are TIMESTAMPTZ (microsecond precision); the store writes UTC
--     values truncated to the microsecond.
--   * Serial numbers (certificates, OCSP responses, TSA tokens) are BYTEA: the
--     big-endian magnitude with no leading zero octet (what big.Int.Bytes
--     returns), 1..20 octets (RFC 5280 §4.1.2.2). The CHECK enforces that one
--     form, so the same serial can never be stored twice in two spellings.
--   * JSON is TEXT, never jsonb: it is stored and returned byte for byte
--     (audit details are hashed by internal/audit).
--   * Hashes, DER, signatures and fingerprints are BYTEA.

-- +goose Up

CREATE TABLE issuers (
    id              TEXT        NOT NULL PRIMARY KEY CHECK (id <> ''),
    name            TEXT        NOT NULL,
    role            TEXT        NOT NULL CHECK (role IN ('root', 'issuing', 'ocsp-signer', 'audit', 'tsa')),
    certificate_der BYTEA       NOT NULL CHECK (octet_length(certificate_der) > 0),
    key_label       TEXT        NOT NULL CHECK (key_label <> ''),
    created_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE subjects (
    id           TEXT        NOT NULL PRIMARY KEY CHECK (id <> ''),
    kind         TEXT        NOT NULL CHECK (kind IN ('person', 'business')),
    national_id  TEXT        NOT NULL CHECK (national_id <> ''),
    attributes   TEXT        NOT NULL DEFAULT '{}', -- verified attributes, JSON
    registry_ref TEXT,                              -- the registry's own reference, once verified
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (kind, national_id)
);

CREATE TABLE enrollments (
    id              TEXT        NOT NULL PRIMARY KEY CHECK (id <> ''), -- random, URL-safe
    subject_id      TEXT        NOT NULL REFERENCES subjects (id),
    profile         TEXT        NOT NULL CHECK (profile <> ''),
    csr_der         BYTEA       NOT NULL CHECK (octet_length(csr_der) > 0),
    state           TEXT        NOT NULL CHECK (state IN ('pending_proof', 'pending_approval', 'approved', 'issued', 'rejected', 'expired', 'failed')),
    state_reason    TEXT,                              -- why rejected / failed, shown to the applicant
    proofing        TEXT        NOT NULL DEFAULT '{}', -- proofing data, JSON
    idempotency_key TEXT        UNIQUE CHECK (idempotency_key <> ''),
    request_hash    BYTEA,                             -- of the request that used idempotency_key
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ                        -- when a pending enrollment lapses
);
CREATE INDEX enrollments_subject ON enrollments (subject_id);
CREATE INDEX enrollments_state ON enrollments (state, created_at);

CREATE TABLE officers (
    fingerprint     BYTEA       NOT NULL PRIMARY KEY CHECK (octet_length(fingerprint) > 0), -- SHA-256 of certificate_der
    certificate_der BYTEA       NOT NULL CHECK (octet_length(certificate_der) > 0),
    name            TEXT        NOT NULL CHECK (name <> ''),
    active          BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

-- An officer's roles, one row each: a CHECK can constrain a row's value on
-- both databases, but not the members of a list in one column.
CREATE TABLE officer_roles (
    officer_fingerprint BYTEA NOT NULL REFERENCES officers (fingerprint) ON DELETE CASCADE,
    role                TEXT  NOT NULL CHECK (role IN ('ra-officer', 'ca-officer', 'auditor')),
    PRIMARY KEY (officer_fingerprint, role)
);

-- One decision per officer per enrollment: four-eyes counts distinct officers.
CREATE TABLE approvals (
    enrollment_id       TEXT        NOT NULL REFERENCES enrollments (id),
    officer_fingerprint BYTEA       NOT NULL REFERENCES officers (fingerprint),
    decision            TEXT        NOT NULL CHECK (decision IN ('approve', 'reject')),
    jws                 TEXT        NOT NULL CHECK (jws <> ''), -- the officer's signed action, verbatim
    decided_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (enrollment_id, officer_fingerprint)
);
CREATE INDEX approvals_officer ON approvals (officer_fingerprint);

-- A row is the issuance intent: it is written with the linted TBSCertificate
-- before the HSM signs, and der is filled in afterwards. Rows are never
-- deleted, so a serial is never reused.
CREATE TABLE certificates (
    issuer_id     TEXT        NOT NULL REFERENCES issuers (id),
    serial        BYTEA       NOT NULL CHECK (octet_length(serial) BETWEEN 1 AND 20 AND get_byte(serial, 0) <> 0),
    subject_id    TEXT        REFERENCES subjects (id),    -- NULL for ceremony certificates (CA, OCSP signer)
    enrollment_id TEXT        REFERENCES enrollments (id), -- NULL for ceremony certificates
    profile       TEXT        NOT NULL CHECK (profile <> ''),
    not_before    TIMESTAMPTZ NOT NULL,
    not_after     TIMESTAMPTZ NOT NULL,
    tbs_der       BYTEA       NOT NULL CHECK (octet_length(tbs_der) > 0), -- the linted TBSCertificate
    der           BYTEA       CHECK (octet_length(der) > 0),              -- NULL until the HSM has signed
    status        TEXT        NOT NULL DEFAULT 'good' CHECK (status IN ('good', 'revoked')),
    revoked_at    TIMESTAMPTZ,
    reason        INTEGER,    -- RFC 5280 §5.3.1 CRLReason; 7 is unassigned
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (issuer_id, serial), -- UNIQUE (issuer_id, serial)
    CHECK (not_after > not_before),
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL)),
    CHECK (reason IS NULL OR (status = 'revoked' AND reason BETWEEN 0 AND 10 AND reason <> 7))
);
CREATE INDEX certificates_serial ON certificates (serial); -- GET /api/v1/certificates/{serial}
CREATE INDEX certificates_subject ON certificates (subject_id);
CREATE INDEX certificates_enrollment ON certificates (enrollment_id);
CREATE INDEX certificates_revoked ON certificates (issuer_id, revoked_at) WHERE status = 'revoked';
CREATE INDEX certificates_unsigned ON certificates (created_at) WHERE der IS NULL; -- recovery

CREATE TABLE ocsp_responses (
    issuer_id   TEXT        NOT NULL,
    serial      BYTEA       NOT NULL,
    der         BYTEA       NOT NULL CHECK (octet_length(der) > 0),
    this_update TIMESTAMPTZ NOT NULL,
    next_update TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (issuer_id, serial),
    FOREIGN KEY (issuer_id, serial) REFERENCES certificates (issuer_id, serial),
    CHECK (next_update > this_update)
);
-- The responders' sync cursor: (updated_at, issuer_id, serial).
CREATE INDEX ocsp_responses_updated ON ocsp_responses (updated_at, issuer_id, serial);

CREATE TABLE crls (
    issuer_id   TEXT        NOT NULL REFERENCES issuers (id),
    crl_number  BIGINT      NOT NULL CHECK (crl_number >= 0), -- RFC 5280 §5.2.3, monotonic per issuer
    der         BYTEA       NOT NULL CHECK (octet_length(der) > 0),
    this_update TIMESTAMPTZ NOT NULL,
    next_update TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (issuer_id, crl_number), -- UNIQUE (issuer_id, crl_number)
    CHECK (next_update > this_update)
);

-- The audit log. internal/audit computes prev_hash and hash; the store keeps
-- them verbatim. No foreign keys or triggers here on purpose: detecting a
-- tampered log is internal/audit's job, and its tests tamper with these rows.
CREATE TABLE audit_events (
    seq       BIGINT      NOT NULL PRIMARY KEY CHECK (seq >= 1),
    logged_at TIMESTAMPTZ NOT NULL,
    actor     TEXT        NOT NULL,
    action    TEXT        NOT NULL,
    object    TEXT        NOT NULL,
    details   TEXT        NOT NULL, -- JSON, byte for byte
    prev_hash BYTEA       NOT NULL,
    hash      BYTEA       NOT NULL CHECK (octet_length(hash) > 0)
);

-- The last appended event, in exactly one row. Appenders lock it
-- (SELECT … FOR UPDATE), which serializes them. seq 0 means the log is empty.
CREATE TABLE audit_head (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  BIGINT  NOT NULL CHECK (seq >= 0),
    hash BYTEA   NOT NULL
);
-- The empty log's head carries the genesis hash, 32 zero bytes: event 1's
-- prev_hash (internal/audit documents the chain).
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

CREATE TABLE audit_checkpoints (
    seq        BIGINT      NOT NULL PRIMARY KEY CHECK (seq >= 1),
    hash       BYTEA       NOT NULL CHECK (octet_length(hash) > 0), -- tree head hash
    created_at TIMESTAMPTZ NOT NULL,
    key_id     BYTEA       NOT NULL,
    signature  BYTEA       NOT NULL CHECK (octet_length(signature) > 0) -- by the HSM audit key
);

-- What issuance relied on: one row per registry lookup.
CREATE TABLE registry_evidence (
    id             BIGINT      NOT NULL GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    enrollment_id  TEXT        NOT NULL REFERENCES enrollments (id),
    source         TEXT        NOT NULL CHECK (source <> ''), -- which registry
    record         TEXT        NOT NULL CHECK (record <> ''), -- what was looked up: person, business, representation
    record_version TEXT,
    record_hash    BYTEA,
    looked_up_at   TIMESTAMPTZ NOT NULL,
    CHECK (record_version IS NOT NULL OR record_hash IS NOT NULL)
);
CREATE INDEX registry_evidence_enrollment ON registry_evidence (enrollment_id);

-- Signed events from a national registry; event_id makes delivery idempotent.
CREATE TABLE registry_events (
    event_id       TEXT        NOT NULL PRIMARY KEY CHECK (event_id <> ''),
    source         TEXT        NOT NULL CHECK (source <> ''),
    subject_id     TEXT        REFERENCES subjects (id), -- NULL when no known subject matches
    kind           TEXT        NOT NULL CHECK (kind IN ('death', 'dissolution', 'authority_change')),
    occurred_at    TIMESTAMPTZ NOT NULL,
    received_at    TIMESTAMPTZ NOT NULL,
    payload        TEXT        NOT NULL, -- the signed event as received
    outcome        TEXT        NOT NULL DEFAULT 'pending' CHECK (outcome IN ('pending', 'applied', 'ignored', 'failed')),
    outcome_detail TEXT,
    outcome_at     TIMESTAMPTZ, -- when the outcome was decided
    CHECK ((outcome = 'pending') = (outcome_at IS NULL))
);
CREATE INDEX registry_events_subject ON registry_events (subject_id);
CREATE INDEX registry_events_pending ON registry_events (received_at) WHERE outcome = 'pending';

-- Every RFC 3161 token issued. RFC 3161 §2.4.2: serialNumber is unique per TSA.
CREATE TABLE tsa_tokens (
    issuer_id           TEXT        NOT NULL REFERENCES issuers (id),
    serial              BYTEA       NOT NULL CHECK (octet_length(serial) BETWEEN 1 AND 20 AND get_byte(serial, 0) <> 0),
    message_imprint_alg TEXT        NOT NULL CHECK (message_imprint_alg <> ''), -- hash algorithm OID, dotted
    message_imprint     BYTEA       NOT NULL CHECK (octet_length(message_imprint) > 0),
    gen_time            TIMESTAMPTZ NOT NULL,
    policy              TEXT        NOT NULL CHECK (policy <> ''), -- TSA policy OID, dotted
    token_der           BYTEA       CHECK (octet_length(token_der) > 0), -- the token as issued
    PRIMARY KEY (issuer_id, serial)
);
CREATE INDEX tsa_tokens_gen_time ON tsa_tokens (gen_time);

-- +goose Down

DROP TABLE tsa_tokens;
DROP TABLE registry_events;
DROP TABLE registry_evidence;
DROP TABLE audit_checkpoints;
DROP TABLE audit_head;
DROP TABLE audit_events;
DROP TABLE crls;
DROP TABLE ocsp_responses;
DROP TABLE certificates;
DROP TABLE approvals;
DROP TABLE officer_roles;
DROP TABLE officers;
DROP TABLE enrollments;
DROP TABLE subjects;
DROP TABLE issuers;
