package store_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestSchemaConstraints writes rows with raw SQL, as later issues' methods
// will, and checks that both dialects accept and reject the same rows: the
// schema's constraints are part of the contract, not a SQLite or PostgreSQL
// accident.
func TestSchemaConstraints(t *testing.T) {
	t0 := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	t1 := t0.Add(365 * 24 * time.Hour)
	serial := []byte{0x5a, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f}

	// Rows every case builds on, written once per backend.
	setup := []rawStmt{
		{`INSERT INTO issuers (id, name, role, certificate_der, key_label, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			[]any{"issuing-1", "Issuing CA 1", "issuing", []byte{0x30}, "issuing-1", t0}},
		{`INSERT INTO subjects (id, kind, national_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)`,
			[]any{"subj-1", "person", "860101300123", t0, t0}},
		{`INSERT INTO enrollments (id, subject_id, profile, csr_der, state, idempotency_key, created_at, updated_at)
		  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			[]any{"enr-1", "subj-1", "person-sign", []byte{0x30}, "pending_proof", "key-1", t0, t0}},
		{`INSERT INTO certificates (issuer_id, serial, subject_id, enrollment_id, profile, not_before, not_after, tbs_der, created_at, updated_at)
		  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			[]any{"issuing-1", serial, "subj-1", "enr-1", "person-sign", t0, t1, []byte{0x30}, t0, t0}},
		{`INSERT INTO crls (issuer_id, crl_number, der, this_update, next_update, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			[]any{"issuing-1", int64(1), []byte{0x30}, t0, t1, t0}},
		{`INSERT INTO officers (fingerprint, certificate_der, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)`,
			[]any{[]byte("fp-alice"), []byte{0x30}, "Alice", t0, t0}},
	}

	cert := func(serial []byte, status string, revokedAt any, reason any) rawStmt {
		return rawStmt{`INSERT INTO certificates (issuer_id, serial, profile, not_before, not_after, tbs_der, status, revoked_at, reason, created_at, updated_at)
		  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			[]any{"issuing-1", serial, "ocsp-signer", t0, t1, []byte{0x30}, status, revokedAt, reason, t0, t0}}
	}
	enrollment := func(id, state, key string) rawStmt {
		return rawStmt{`INSERT INTO enrollments (id, subject_id, profile, csr_der, state, idempotency_key, created_at, updated_at)
		  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			[]any{id, "subj-1", "person-sign", []byte{0x30}, state, key, t0, t0}}
	}

	tests := []struct {
		name   string
		stmt   rawStmt
		wantOK bool
	}{
		{"enrollment in a known state", enrollment("enr-2", "pending_approval", "key-2"), true},
		{"enrollment in an unknown state", enrollment("enr-2", "on_hold", "key-2"), false},
		{"enrollment idempotency key reused", enrollment("enr-2", "pending_proof", "key-1"), false},
		{"enrollment of an unknown subject", rawStmt{`INSERT INTO enrollments (id, subject_id, profile, csr_der, state, created_at, updated_at)
		  VALUES ($1, $2, $3, $4, $5, $6, $7)`, []any{"enr-2", "nobody", "p", []byte{0x30}, "pending_proof", t0, t0}}, false},
		{"subject of an unknown kind", rawStmt{`INSERT INTO subjects (id, kind, national_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)`,
			[]any{"subj-2", "robot", "1", t0, t0}}, false},
		{"same national id twice", rawStmt{`INSERT INTO subjects (id, kind, national_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)`,
			[]any{"subj-2", "person", "860101300123", t0, t0}}, false},
		{"certificate intent without DER", cert([]byte{0x01}, "good", nil, nil), true},
		{"certificate serial reused", cert(serial, "good", nil, nil), false},
		{"certificate serial with a leading zero", cert([]byte{0x00, 0x5a}, "good", nil, nil), false},
		{"certificate serial over 20 octets", cert(make21(), "good", nil, nil), false},
		{"certificate serial empty", cert([]byte{}, "good", nil, nil), false},
		{"certificate with an unknown status", cert([]byte{0x02}, "suspended", nil, nil), false},
		{"revoked certificate", cert([]byte{0x02}, "revoked", t0, int64(1)), true},
		{"revoked without revoked_at", cert([]byte{0x02}, "revoked", nil, int64(1)), false},
		{"good with a reason", cert([]byte{0x02}, "good", nil, int64(1)), false},
		{"revoked with reason 7", cert([]byte{0x02}, "revoked", t0, int64(7)), false},
		{"crl number reused", rawStmt{`INSERT INTO crls (issuer_id, crl_number, der, this_update, next_update, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			[]any{"issuing-1", int64(1), []byte{0x30}, t0, t1, t0}}, false},
		{"ocsp response for an unknown certificate", rawStmt{`INSERT INTO ocsp_responses (issuer_id, serial, der, this_update, next_update, updated_at)
		  VALUES ($1, $2, $3, $4, $5, $6)`, []any{"issuing-1", []byte{0x7f}, []byte{0x30}, t0, t1, t0}}, false},
		{"ocsp response for a known certificate", rawStmt{`INSERT INTO ocsp_responses (issuer_id, serial, der, this_update, next_update, updated_at)
		  VALUES ($1, $2, $3, $4, $5, $6)`, []any{"issuing-1", serial, []byte{0x30}, t0, t1, t0}}, true},
		{"officer role unknown", rawStmt{`INSERT INTO officer_roles (officer_fingerprint, role) VALUES ($1, $2)`,
			[]any{[]byte("fp-alice"), "root"}}, false},
		{"officer role known", rawStmt{`INSERT INTO officer_roles (officer_fingerprint, role) VALUES ($1, $2)`,
			[]any{[]byte("fp-alice"), "ra-officer"}}, true},
		{"approval by an unknown officer", rawStmt{`INSERT INTO approvals (enrollment_id, officer_fingerprint, decision, jws, decided_at)
		  VALUES ($1, $2, $3, $4, $5)`, []any{"enr-1", []byte("fp-mallory"), "approve", "h.p.s", t0}}, false},
		{"second audit head row", rawStmt{`INSERT INTO audit_head (id, seq, hash) VALUES ($1, $2, $3)`,
			[]any{int64(2), int64(0), []byte{}}}, false},
		{"registry event of an unknown kind", rawStmt{`INSERT INTO registry_events (event_id, source, kind, occurred_at, received_at, payload)
		  VALUES ($1, $2, $3, $4, $5, $6)`, []any{"ev-1", "national", "marriage", t0, t0, "{}"}}, false},
		{"tsa token", rawStmt{`INSERT INTO tsa_tokens (issuer_id, serial, message_imprint_alg, message_imprint, gen_time, policy)
		  VALUES ($1, $2, $3, $4, $5, $6)`, []any{"issuing-1", []byte{0x01}, "2.16.840.1.101.3.4.2.1", []byte{0xaa}, t0, "1.2.3"}}, true},
	}

	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		for _, s := range setup {
			if err := s.exec(t.Context(), raw, db.Driver()); err != nil {
				t.Fatalf("setup: %v\n%s", err, s.query)
			}
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				// Each case in a transaction rolled back, so cases do not
				// see each other's rows.
				tx, err := raw.BeginTx(t.Context(), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = tx.Rollback() }()
				err = tc.stmt.exec(t.Context(), tx, db.Driver())
				if tc.wantOK && err != nil {
					t.Errorf("rejected: %v", err)
				}
				if !tc.wantOK {
					if err == nil {
						t.Error("accepted, want a constraint error")
					}
					t.Logf("rejected as expected: %v", err)
				}
			})
		}
	})
}

func make21() []byte {
	b := make([]byte, 21)
	b[0] = 0x01
	return b
}

// rawStmt is a statement written with $N placeholders and time.Time
// arguments, run through the encodings the store uses on each backend.
type rawStmt struct {
	query string
	args  []any
}

func (s rawStmt) exec(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, driver string) error {
	query, args := s.query, s.args
	if driver == store.DriverSQLite {
		query = strings.ReplaceAll(query, "$", "?")
		args = make([]any, len(s.args))
		for i, a := range s.args {
			if tm, ok := a.(time.Time); ok {
				a = tm.UnixMicro()
			}
			args[i] = a
		}
	}
	_, err := db.ExecContext(ctx, query, args...)
	return err
}
