package store_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestKeyedWrites explains the writes that every issuance makes to one row
// it names by key, once many rows went through and ANALYZE saw them, and
// requires each database to find the row by that key. A plan that reads
// by a partial or low-cardinality index instead reads every entry the
// index holds for the state (in PostgreSQL also one dead entry per row
// that left it since the last VACUUM), so each write would cost more than
// the one before:
//   - completing an intent, when certificates_unsigned (created_at) WHERE
//     der IS NULL was PostgreSQL's choice, or a BitmapAnd over every good
//     certificate of the issuer (migration 00014);
//   - moving an enrollment on, when enrollments_state (state, created_at)
//     was PostgreSQL's choice for a state that enrollments pass through;
//   - claiming and ending an outcome notice, and ending a revocation
//     notice, when the partial indexes of unsent notices were its choice:
//     they hold every unsent notice (a gateway outage's backlog, a mass
//     revocation's).
//
// Revocation and the notices' other writes are held to the same. SQLite
// took the keys already except in SetCertificateDERs' join, where it read
// the whole partial index of intents; PostgreSQL is the main guard, and CI
// runs it.
func TestKeyedWrites(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		const issued = 400
		intents := make([]store.Certificate, issued)
		signed := make([]store.SignedCertificate, issued)
		for i := range intents {
			serial := []byte{0x40, byte(i >> 8), byte(i)}
			intents[i] = store.Certificate{IssuerID: "issuing", Serial: serial, Profile: "citizen-sign",
				NotBefore: t0, NotAfter: t0.AddDate(1, 0, 0), TBS: []byte{0x30, 0x00}, CreatedAt: t0.Add(time.Duration(i) * time.Second)}
			signed[i] = store.SignedCertificate{IssuerID: "issuing", Serial: serial, DER: []byte{0x30, 0x01, byte(i)}, At: t0}
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.InsertCertificateIntents(ctx, intents); err != nil {
				return err
			}
			if err := tx.SetCertificateDERs(ctx, signed); err != nil {
				return err
			}
			if _, err := tx.PutSubject(ctx, store.Subject{ID: "s1", Kind: "person", NationalID: "IDCKZ-900101300123", Attributes: []byte(`{}`), CreatedAt: t0}); err != nil {
				return err
			}
			// Every enrollment went through pending_proof and approved to
			// issued, as auto enrollments do.
			for i := range issued {
				e := store.Enrollment{ID: fmt.Sprintf("e%d", i), SubjectID: "s1", Profile: "citizen-auth", CSR: []byte{0x30},
					State: store.StatePendingProof, CreatedAt: t0, UpdatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
				if err := tx.InsertEnrollment(ctx, e); err != nil {
					return err
				}
				for _, step := range [][2]string{{store.StatePendingProof, store.StateApproved}, {store.StateApproved, store.StateIssued}} {
					e.State = step[1]
					if err := tx.UpdateEnrollment(ctx, step[0], e); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		// Most of them then revoked, their holders told; the others'
		// expiry reminders sent; every enrollment's outcome told.
		t1 := t0.Add(time.Hour)
		for i, c := range intents {
			if i%4 == 0 {
				if ok, err := db.ClaimExpiryNotice(ctx, "issuing", c.Serial, t1, t0); err != nil || !ok {
					t.Fatalf("claim expiry notice: %v, %v", ok, err)
				}
				if err := db.InTx(ctx, func(tx *store.Tx) error {
					return tx.EndExpiryNotice(ctx, "issuing", c.Serial, t1, store.NoticeSent, t1)
				}); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.RevokeCertificate(ctx, "issuing", c.Serial, t1, 4, t1) }); err != nil {
				t.Fatal(err)
			}
			if ok, err := db.ClaimRevocationNotice(ctx, "issuing", c.Serial, 4, t1, t0); err != nil || !ok {
				t.Fatalf("claim revocation notice: %v, %v", ok, err)
			}
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				return tx.EndRevocationNotice(ctx, "issuing", c.Serial, 4, t1, store.NoticeSent, t1)
			}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range issued {
			id := fmt.Sprintf("e%d", i)
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				return tx.AddOutcomeNotice(ctx, store.OutcomeNotice{EnrollmentID: id, Event: "rejected", CreatedAt: t1})
			}); err != nil {
				t.Fatal(err)
			}
			if ok, err := db.ClaimOutcomeNotice(ctx, id, t1, t0); err != nil || !ok {
				t.Fatalf("claim outcome notice: %v, %v", ok, err)
			}
			if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.EndOutcomeNotice(ctx, id, t1, store.NoticeSent, t1) }); err != nil {
				t.Fatal(err)
			}
		}
		// As many registry events received and acted on.
		for i := range issued {
			id := fmt.Sprintf("ev%d", i)
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				ev := store.RegistryEvent{EventID: id, Source: "registry:test", Kind: store.EventDeath, OccurredAt: t0, ReceivedAt: t1, Payload: "x.y.z"}
				if err := tx.InsertRegistryEvent(ctx, ev); err != nil {
					return err
				}
				return tx.EndRegistryEvent(ctx, id, store.OutcomeIgnored, "{}", t1)
			}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := raw.ExecContext(ctx, "ANALYZE"); err != nil {
			t.Fatal(err)
		}
		at := t0.Format(time.RFC3339)
		q := db.KeyedWrites()
		serial := []byte{0x40, 0, 1} // revoked
		for _, w := range []struct {
			name, table string
			key         []string
			args        []any
		}{
			// Certificates are found by key when found by serial, with or
			// without issuer_id: certificates_serial (serial), for GET
			// /api/v1/certificates/{serial}, serves too; serials are random.
			{"SetCertificateDER", "certificates", []string{"serial"}, []any{[]byte{1}, at, "issuing", []byte{0x41}}},
			{"UpdateEnrollment", "enrollments", []string{"id"}, []any{store.StateApproved, nil, "{}", at, "e1", store.StatePendingProof}},
			{"UpdateEnrollment", "enrollments", []string{"id"}, []any{store.StateIssued, nil, "{}", at, "e1", store.StateApproved}},
			{"SetCertificateDERs", "certificates", []string{"serial"}, []any{"issuing", []byte{0x41}, []byte{1}, at, "issuing", []byte{0x42}, []byte{1}, at}},
			{"RevokeCertificate", "certificates", []string{"serial"}, []any{at, 1, at, "issuing", []byte{0x40, 0, 0}}},
			{"RaiseRevocationReason", "certificates", []string{"serial"}, []any{at, "issuing", serial, 4}},
			{"ClaimRevocationNotice", "certificates", []string{"serial"}, []any{"issuing", serial, 1, at, at}},
			{"ClaimExpiryNotice", "certificates", []string{"serial"}, []any{"issuing", []byte{0x40, 0, 0}, at, at}},
			{"EndRevocationNotice", "revocation_notices", []string{"issuer_id", "serial"}, []any{store.NoticeSent, at, "issuing", serial, at, 4}},
			{"EndExpiryNotice", "expiry_notices", []string{"issuer_id", "serial"}, []any{store.NoticeSent, at, "issuing", []byte{0x40, 0, 0}, at}},
			{"ClaimOutcomeNotice", "outcome_notices", []string{"enrollment_id"}, []any{"e1", at, at}},
			{"EndOutcomeNotice", "outcome_notices", []string{"enrollment_id"}, []any{store.NoticeSent, at, "e1", at}},
			{"EndRegistryEvent", "registry_events", []string{"event_id"}, []any{store.OutcomeApplied, "{}", at, "ev1"}},
		} {
			t.Run(w.name, func(t *testing.T) {
				for _, r := range reads(t, db.Driver(), raw, w.table, w.key, q[w.name], w.args) {
					if !r.keyed {
						t.Errorf("%s read by %s, not by %s\nplan:\n%s", w.table, r.how, strings.Join(w.key, ", "), r.plan)
					}
				}
			})
		}
	})
}

// read is how a plan reads a table.
type read struct {
	keyed bool   // one index descent on every column of the key
	how   string // the plan's words for it
	plan  string // the whole plan, for the failure message
}

// reads explains query in raw's database and returns each way its plan
// reads table; it fails t if the plan never does.
func reads(t *testing.T, driver string, raw *sql.DB, table string, key []string, query string, args []any) []read {
	t.Helper()
	var rs []read
	if driver == store.DriverPostgres {
		for _, doc := range postgresPlans(t, raw, query, args) {
			rs = append(rs, postgresReads(t, doc, table, key)...)
		}
	} else {
		rs = sqliteReads(t, raw, table, key, query, args)
	}
	if len(rs) == 0 {
		t.Fatalf("the plan of %s never reads %s", query, table)
	}
	return rs
}

// postgresPlans returns PostgreSQL's plans of query as JSON: the plan for
// these values, and the generic plan it may switch to for a statement pgx
// prepared (after five runs). A table of a few pages is read whole, cheaper
// than through any index; the question is which index PostgreSQL takes
// once the table is large, so sequential scans are made dear.
func postgresPlans(t *testing.T, raw *sql.DB, query string, args []any) []string {
	t.Helper()
	ctx := t.Context()
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	var custom, generic string
	if err := tx.QueryRowContext(ctx, "EXPLAIN (FORMAT JSON) "+query, args...).Scan(&custom); err != nil {
		t.Fatal(err)
	}
	nulls := strings.TrimSuffix(strings.Repeat("NULL, ", len(args)), ", ")
	for _, stmt := range []string{"SET LOCAL plan_cache_mode = force_generic_plan", "PREPARE keyed_write AS " + query} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	err = tx.QueryRowContext(ctx, "EXPLAIN (FORMAT JSON) EXECUTE keyed_write("+nulls+")").Scan(&generic)
	// A prepared statement outlives the transaction.
	if _, derr := tx.ExecContext(ctx, "DEALLOCATE keyed_write"); err == nil {
		err = derr
	}
	if err != nil {
		t.Fatal(err)
	}
	return []string{custom, generic}
}

// postgresReads returns how the JSON plan doc reads table: each scan node
// of it, wherever it stands in the plan.
func postgresReads(t *testing.T, doc, table string, key []string) []read {
	t.Helper()
	var plans []struct{ Plan map[string]any }
	if err := json.Unmarshal([]byte(doc), &plans); err != nil || len(plans) != 1 {
		t.Fatalf("EXPLAIN: %v\n%s", err, doc)
	}
	var rs []read
	var walk func(node map[string]any)
	walk = func(node map[string]any) {
		typ, _ := node["Node Type"].(string)
		if rel, _ := node["Relation Name"].(string); rel == table && typ != "ModifyTable" {
			cond, _ := node["Index Cond"].(string)
			keyed := typ == "Index Scan" || typ == "Index Only Scan"
			for _, col := range key {
				keyed = keyed && regexp.MustCompile(`\b`+col+` =`).MatchString(cond)
			}
			rs = append(rs, read{keyed: keyed, how: fmt.Sprintf("%s using %v, index condition %q", typ, node["Index Name"], cond), plan: doc})
		}
		children, _ := node["Plans"].([]any)
		for _, c := range children {
			if m, ok := c.(map[string]any); ok {
				walk(m)
			}
		}
	}
	walk(plans[0].Plan)
	return rs
}

// sqliteReads returns how SQLite's plan of query reads table: each line of
// EXPLAIN QUERY PLAN that names it.
func sqliteReads(t *testing.T, raw *sql.DB, table string, key []string, query string, args []any) []read {
	t.Helper()
	rows, err := raw.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	var rs []read
	for _, d := range lines {
		if f := strings.Fields(d); len(f) >= 2 && f[1] == table {
			// SEARCH t USING INDEX i (a=? AND b=?)
			keyed := f[0] == "SEARCH"
			for _, col := range key {
				keyed = keyed && regexp.MustCompile(`\b`+col+`=\?`).MatchString(d)
			}
			rs = append(rs, read{keyed: keyed, how: d, plan: plan})
		}
	}
	return rs
}
