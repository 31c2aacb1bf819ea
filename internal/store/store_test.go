package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing-1", "issuing"))
		before := gooseVersions(t, raw)
		for range 2 {
			if err := db.Migrate(ctx); err != nil {
				t.Fatalf("Migrate again: %v", err)
			}
		}
		if after := gooseVersions(t, raw); !slices.Equal(before, after) {
			t.Errorf("goose versions after migrating again = %v, want %v", after, before)
		}
		if _, err := db.Issuer(ctx, "issuing-1"); err != nil {
			t.Errorf("issuer after migrating again: %v", err)
		}
		head, err := db.AuditHead(ctx)
		if err != nil || head.Seq != 0 || !bytes.Equal(head.Hash, genesis) {
			t.Errorf("AuditHead = %+v, %v; want seq 0, genesis hash", head, err)
		}
	})
}

func gooseVersions(t *testing.T, raw *sql.DB) []int64 {
	t.Helper()
	rows, err := raw.QueryContext(t.Context(), `SELECT version_id FROM goose_db_version ORDER BY id`)
	if err != nil {
		t.Fatalf("read goose versions: %v", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestIssuers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		if got, err := db.Issuers(ctx); err != nil || len(got) != 0 {
			t.Fatalf("Issuers on an empty store = %v, %v; want none", got, err)
		}
		root := testIssuer("root-2026", "root")
		issuing := testIssuer("issuing-1", "issuing")
		putIssuer(t, db, issuing)
		putIssuer(t, db, root)

		got, err := db.Issuer(ctx, "root-2026")
		if err != nil {
			t.Fatalf("Issuer: %v", err)
		}
		assertIssuer(t, got, root)

		all, err := db.Issuers(ctx)
		if err != nil {
			t.Fatalf("Issuers: %v", err)
		}
		if len(all) != 2 {
			t.Fatalf("Issuers returned %d, want 2", len(all))
		}
		assertIssuer(t, all[0], issuing) // ordered by id
		assertIssuer(t, all[1], root)

		dup := testIssuer("root-2026", "issuing")
		err = db.InTx(ctx, func(tx *store.Tx) error { return tx.PutIssuer(ctx, dup) })
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("PutIssuer with an existing id: err = %v, want ErrConflict", err)
		}
		if _, err := db.Issuer(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Issuer(nope): err = %v, want ErrNotFound", err)
		}
	})
}

func TestIssuerRejectsMalformed(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*store.Issuer)
	}{
		{"unknown role", func(is *store.Issuer) { is.Role = "intermediate" }},
		{"empty id", func(is *store.Issuer) { is.ID = "" }},
		{"no certificate", func(is *store.Issuer) { is.CertificateDER = nil }},
		{"empty key label", func(is *store.Issuer) { is.KeyLabel = "" }},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				is := testIssuer("bad", "root")
				tc.mutate(&is)
				err := db.InTx(t.Context(), func(tx *store.Tx) error { return tx.PutIssuer(t.Context(), is) })
				if err == nil {
					t.Fatal("PutIssuer succeeded, want a constraint error")
				}
				if errors.Is(err, store.ErrConflict) {
					t.Errorf("err = %v; a malformed row is not a conflict", err)
				}
			})
		}
	})
}

func TestInTx(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		fn      func(tx *store.Tx, ctx context.Context) error
		wantErr error
		panics  bool
		kept    bool
	}{
		{
			name: "commit",
			fn: func(tx *store.Tx, ctx context.Context) error {
				return tx.PutIssuer(ctx, testIssuer("kept", "root"))
			},
			kept: true,
		},
		{
			name: "error rolls back",
			fn: func(tx *store.Tx, ctx context.Context) error {
				if err := tx.PutIssuer(ctx, testIssuer("kept", "root")); err != nil {
					return err
				}
				if err := tx.AppendAuditEvent(ctx, testEvent(1, genesis)); err != nil {
					return err
				}
				return fmt.Errorf("later step: %w", errBoom)
			},
			wantErr: errBoom,
		},
		{
			name: "panic rolls back",
			fn: func(tx *store.Tx, ctx context.Context) error {
				if err := tx.PutIssuer(ctx, testIssuer("kept", "root")); err != nil {
					return err
				}
				if err := tx.AppendAuditEvent(ctx, testEvent(1, genesis)); err != nil {
					return err
				}
				panic("boom")
			},
			panics: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
				ctx := t.Context()
				var err error
				func() {
					defer func() {
						if r := recover(); (r != nil) != tc.panics {
							t.Errorf("recovered %v, want a panic: %v", r, tc.panics)
						}
					}()
					err = db.InTx(ctx, func(tx *store.Tx) error { return tc.fn(tx, ctx) })
				}()
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("InTx err = %v, want %v", err, tc.wantErr)
				}
				_, err = db.Issuer(ctx, "kept")
				if tc.kept && err != nil {
					t.Errorf("committed issuer: %v", err)
				}
				if !tc.kept {
					if !errors.Is(err, store.ErrNotFound) {
						t.Errorf("rolled back issuer: err = %v, want ErrNotFound", err)
					}
					assertEmptyLog(t, db, raw)
				}
				// The pool must be usable afterwards: no connection left
				// holding a transaction (on SQLite, the write lock).
				if err := db.InTx(ctx, func(tx *store.Tx) error {
					return tx.PutIssuer(ctx, testIssuer("after", "root"))
				}); err != nil {
					t.Errorf("InTx after: %v", err)
				}
			})
		})
	}
}

func TestAuditAppendHeadScan(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		var want []store.AuditEvent
		for range 3 {
			want = append(want, appendNext(t, db))
		}

		head, err := db.AuditHead(ctx)
		if err != nil {
			t.Fatalf("AuditHead: %v", err)
		}
		if head.Seq != 3 || !bytes.Equal(head.Hash, want[2].Hash) {
			t.Errorf("AuditHead = {%d %x}, want {3 %x}", head.Seq, head.Hash, want[2].Hash)
		}

		got := scanAll(t, db, 0)
		if len(got) != 3 {
			t.Fatalf("scanned %d events, want 3", len(got))
		}
		for i, e := range got {
			w := want[i]
			if e.Seq != w.Seq || !e.Time.Equal(w.Time) || e.Time.Location() != time.UTC ||
				e.Actor != w.Actor || e.Action != w.Action || e.Object != w.Object ||
				!bytes.Equal(e.PrevHash, w.PrevHash) || !bytes.Equal(e.Hash, w.Hash) {
				t.Errorf("event %d = %+v, want %+v", i+1, e, w)
			}
			if wd := eventDetails(e.Seq); !bytes.Equal(e.Details, wd) {
				t.Errorf("event %d details = %q, want %q", e.Seq, e.Details, wd)
			}
		}
		if !bytes.Equal(got[0].PrevHash, genesis) {
			t.Errorf("first event prev hash = %x, want the genesis hash", got[0].PrevHash)
		}

		if after := scanAll(t, db, 2); len(after) != 1 || after[0].Seq != 3 {
			t.Errorf("scan after 2 = %+v, want only seq 3", after)
		}
		if after := scanAll(t, db, 3); len(after) != 0 {
			t.Errorf("scan after 3 = %+v, want none", after)
		}

		errStop := errors.New("stop")
		calls := 0
		err = db.ScanAuditEvents(ctx, 0, func(store.AuditEvent) error {
			calls++
			if calls == 2 {
				return errStop
			}
			return nil
		})
		if err != errStop || calls != 2 {
			t.Errorf("scan stopped by fn: err = %v after %d calls, want %v after 2", err, calls, errStop)
		}
	})
}

func TestAuditAppendRejectsWhatDoesNotExtendTheHead(t *testing.T) {
	tests := []struct {
		name     string
		event    func(head store.AuditHead) store.AuditEvent
		conflict bool
	}{
		{"seq skips ahead", func(h store.AuditHead) store.AuditEvent { return testEvent(h.Seq+2, h.Hash) }, true},
		{"seq repeats the head", func(h store.AuditHead) store.AuditEvent { return testEvent(h.Seq, h.Hash) }, true},
		{"prev hash is not the head's", func(h store.AuditHead) store.AuditEvent {
			return testEvent(h.Seq+1, []byte("not the head hash"))
		}, true},
		{"seq zero", func(h store.AuditHead) store.AuditEvent { return testEvent(0, h.Hash) }, false},
		{"empty hash", func(h store.AuditHead) store.AuditEvent {
			e := testEvent(h.Seq+1, h.Hash)
			e.Hash = nil
			return e
		}, false},
		{"details not UTF-8", func(h store.AuditHead) store.AuditEvent {
			e := testEvent(h.Seq+1, h.Hash)
			e.Details = []byte{'"', 0xff, '"'}
			return e
		}, false},
		{"details with NUL", func(h store.AuditHead) store.AuditEvent {
			e := testEvent(h.Seq+1, h.Hash)
			e.Details = []byte("{\"a\":\"\x00\"}")
			return e
		}, false},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		appendNext(t, db) // so that the head's hash is not empty
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ctx := t.Context()
				before := dumpAuditTables(t, raw)
				var appendErr error
				// fn swallows the append's error and commits: even then
				// nothing may have been written.
				err := db.InTx(ctx, func(tx *store.Tx) error {
					h, err := tx.AuditHead(ctx)
					if err != nil {
						return err
					}
					appendErr = tx.AppendAuditEvent(ctx, tc.event(h))
					return nil
				})
				if err != nil {
					t.Fatalf("InTx: %v", err)
				}
				if appendErr == nil {
					t.Fatal("AppendAuditEvent succeeded")
				}
				if got := errors.Is(appendErr, store.ErrConflict); got != tc.conflict {
					t.Errorf("err = %v; ErrConflict %v, want %v", appendErr, got, tc.conflict)
				}
				if after := dumpAuditTables(t, raw); after != before {
					t.Errorf("audit tables changed:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
	})
}

// TestAuditConcurrentAppenders proves the head lock serializes appenders:
// each reads the head and appends head+1 in one transaction, concurrently,
// and every one succeeds with no gap, no duplicate and an unbroken chain.
func TestAuditConcurrentAppenders(t *testing.T) {
	const appenders = 16
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		var wg sync.WaitGroup
		errs := make([]error, appenders)
		start := make(chan struct{})
		for i := range appenders {
			wg.Go(func() {
				<-start
				errs[i] = db.InTx(ctx, func(tx *store.Tx) error {
					h, err := tx.AuditHead(ctx)
					if err != nil {
						return err
					}
					// Widen the window in which an unserialized appender
					// would read the same head.
					time.Sleep(time.Millisecond)
					return tx.AppendAuditEvent(ctx, testEvent(h.Seq+1, h.Hash))
				})
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("appender %d: %v", i, err)
			}
		}
		events := scanAll(t, db, 0)
		if len(events) != appenders {
			t.Fatalf("%d events, want %d", len(events), appenders)
		}
		prev := genesis
		for i, e := range events {
			if e.Seq != int64(i+1) {
				t.Errorf("event %d has seq %d", i+1, e.Seq)
			}
			if !bytes.Equal(e.PrevHash, prev) {
				t.Errorf("event %d prev hash %x, want %x", e.Seq, e.PrevHash, prev)
			}
			prev = e.Hash
		}
		head, err := db.AuditHead(ctx)
		if err != nil || head.Seq != appenders || !bytes.Equal(head.Hash, prev) {
			t.Errorf("AuditHead = {%d %x}, %v; want {%d %x}", head.Seq, head.Hash, err, appenders, prev)
		}
	})
}

func TestAuditCheckpoints(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		if _, err := db.LatestAuditCheckpoint(ctx); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("LatestAuditCheckpoint on an empty store: err = %v, want ErrNotFound", err)
		}
		if got, err := db.AuditCheckpoints(ctx); err != nil || len(got) != 0 {
			t.Errorf("AuditCheckpoints on an empty store = %v, %v; want none", got, err)
		}
		cps := []store.AuditCheckpoint{testCheckpoint(10), testCheckpoint(2), testCheckpoint(5)}
		for _, c := range cps {
			putCheckpoint(t, db, c)
		}
		got, err := db.AuditCheckpoints(ctx)
		if err != nil {
			t.Fatalf("AuditCheckpoints: %v", err)
		}
		want := []store.AuditCheckpoint{cps[1], cps[2], cps[0]}
		if len(got) != len(want) {
			t.Fatalf("AuditCheckpoints returned %d, want %d", len(got), len(want))
		}
		for i := range want {
			assertCheckpoint(t, got[i], want[i])
		}
		latest, err := db.LatestAuditCheckpoint(ctx)
		if err != nil {
			t.Fatalf("LatestAuditCheckpoint: %v", err)
		}
		assertCheckpoint(t, latest, cps[0])

		err = db.InTx(ctx, func(tx *store.Tx) error { return tx.PutAuditCheckpoint(ctx, testCheckpoint(5)) })
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("PutAuditCheckpoint with an existing seq: err = %v, want ErrConflict", err)
		}
	})
}

// TestTimeRoundTrip: a time already truncated to the microsecond comes back
// exactly, in UTC; a finer one comes back truncated (never rounded up).
func TestTimeRoundTrip(t *testing.T) {
	ast := time.FixedZone("UTC+5", 5*3600)
	now := time.Now().Truncate(time.Microsecond) // carries a monotonic reading
	tests := []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{"utc micro", time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC), time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)},
		{"other zone", time.Date(2026, 1, 1, 0, 0, 0, 1000, ast), time.Date(2025, 12, 31, 19, 0, 0, 1000, time.UTC)},
		{"before 1970", time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{"far future", time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{"nanoseconds truncated", time.Date(2026, 6, 1, 12, 0, 0, 123456999, time.UTC), time.Date(2026, 6, 1, 12, 0, 0, 123456000, time.UTC)},
		{"monotonic reading dropped", now, now.Round(0).UTC()},
	}

	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ctx := t.Context()
				is := testIssuer(fmt.Sprintf("issuer-%d", i), "root")
				is.CreatedAt = tc.in
				cp := testCheckpoint(int64(i + 1))
				cp.Time = tc.in
				ev := testEvent(int64(i+1), genesis)
				ev.Time = tc.in
				err := db.InTx(ctx, func(tx *store.Tx) error {
					h, err := tx.AuditHead(ctx)
					if err != nil {
						return err
					}
					ev.PrevHash = h.Hash
					if err := tx.AppendAuditEvent(ctx, ev); err != nil {
						return err
					}
					if err := tx.PutAuditCheckpoint(ctx, cp); err != nil {
						return err
					}
					return tx.PutIssuer(ctx, is)
				})
				if err != nil {
					t.Fatalf("write: %v", err)
				}
				gotIssuer, err := db.Issuer(ctx, is.ID)
				if err != nil {
					t.Fatal(err)
				}
				gotCP, err := db.LatestAuditCheckpoint(ctx)
				if err != nil {
					t.Fatal(err)
				}
				gotEvents := scanAll(t, db, int64(i))
				if len(gotEvents) != 1 {
					t.Fatalf("scanned %d events, want 1", len(gotEvents))
				}
				for what, got := range map[string]time.Time{
					"issuer created_at": gotIssuer.CreatedAt,
					"checkpoint time":   gotCP.Time,
					"audit event time":  gotEvents[0].Time,
				} {
					// == compares wall clock, location and monotonic reading:
					// exactly what a caller comparing values would see.
					if got != tc.want {
						t.Errorf("%s = %v (%s), want %v (UTC)", what, got, got.Location(), tc.want)
					}
				}
			})
		}
	})
}

// TestSchemaParity: both dialects define the same tables with the same
// columns, and agree on which columns may be NULL.
func TestSchemaParity(t *testing.T) {
	_, sqliteRaw := storetest.Open(t, store.DriverSQLite)
	_, pgRaw := storetest.Open(t, store.DriverPostgres)

	sqliteCols := queryColumns(t, sqliteRaw, `
		SELECT m.name, p.name, p."notnull"
		FROM sqlite_master AS m, pragma_table_info(m.name) AS p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\' AND m.name <> 'goose_db_version'
		ORDER BY m.name, p.cid`)
	pgCols := queryColumns(t, pgRaw, `
		SELECT table_name, column_name, CASE is_nullable WHEN 'NO' THEN 1 ELSE 0 END
		FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name <> 'goose_db_version'
		ORDER BY table_name, ordinal_position`)

	wantTables := []string{
		"approvals", "audit_checkpoints", "audit_events", "audit_head", "blocked_keys", "certificates", "crls",
		"enrollments", "expiry_notices", "issuers", "ocsp_responses", "officer_roles", "officers", "outcome_notices", "rate_limits",
		"registry_events", "registry_evidence", "revocation_notices", "revocation_requests", "signed_request_nonces", "subjects", "tsa_tokens",
	}
	for name, cols := range map[string][]string{"sqlite": sqliteCols, "postgres": pgCols} {
		var tables []string
		for _, c := range cols {
			table, _, _ := strings.Cut(c, ".")
			if !slices.Contains(tables, table) {
				tables = append(tables, table)
			}
		}
		if !slices.Equal(tables, wantTables) {
			t.Errorf("%s tables = %v, want %v", name, tables, wantTables)
		}
	}
	if !slices.Equal(sqliteCols, pgCols) {
		t.Errorf("columns differ between dialects:\n%s", diffLines(sqliteCols, pgCols))
	}
}

// queryColumns returns "table.column NOT NULL" or "table.column NULL" lines.
func queryColumns(t *testing.T, raw *sql.DB, query string) []string {
	t.Helper()
	rows, err := raw.QueryContext(t.Context(), query)
	if err != nil {
		t.Fatalf("list columns: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var table, column string
		var notNull int
		if err := rows.Scan(&table, &column, &notNull); err != nil {
			t.Fatal(err)
		}
		null := "NULL"
		if notNull == 1 {
			null = "NOT NULL"
		}
		out = append(out, table+"."+column+" "+null)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out) // column order within a table is not part of the contract
	return out
}

func diffLines(a, b []string) string {
	var sb strings.Builder
	for _, l := range a {
		if !slices.Contains(b, l) {
			fmt.Fprintf(&sb, "  only sqlite:   %s\n", l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			fmt.Fprintf(&sb, "  only postgres: %s\n", l)
		}
	}
	return sb.String()
}

func TestOpenRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  store.Config
	}{
		{"unknown driver", store.Config{Driver: "mysql", DSN: "x"}},
		{"no driver", store.Config{DSN: "x"}},
		{"empty dsn", store.Config{Driver: store.DriverSQLite}},
		{"negative pool", store.Config{Driver: store.DriverSQLite, DSN: t.TempDir() + "/x.db", MaxOpenConns: -1}},
		{"sqlite in memory", store.Config{Driver: store.DriverSQLite, DSN: ":memory:"}},
		{"sqlite memory uri", store.Config{Driver: store.DriverSQLite, DSN: "file:x?mode=memory&cache=shared"}},
		{"sqlite missing directory", store.Config{Driver: store.DriverSQLite, DSN: t.TempDir() + "/no/such/dir/x.db"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := store.Open(t.Context(), tc.cfg)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}

// --- helpers ---

func testIssuer(id, role string) store.Issuer {
	return store.Issuer{
		ID:             id,
		Name:           "Sanad " + id,
		Role:           role,
		CertificateDER: []byte{0x30, 0x82, 0x01, 0x0a, byte(len(id))},
		KeyLabel:       "key-" + id,
		CreatedAt:      time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC),
	}
}

func putIssuer(t *testing.T, db *store.DB, is store.Issuer) {
	t.Helper()
	if err := db.InTx(t.Context(), func(tx *store.Tx) error { return tx.PutIssuer(t.Context(), is) }); err != nil {
		t.Fatalf("PutIssuer(%s): %v", is.ID, err)
	}
}

func assertIssuer(t *testing.T, got, want store.Issuer) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.Role != want.Role ||
		!bytes.Equal(got.CertificateDER, want.CertificateDER) || got.KeyLabel != want.KeyLabel ||
		got.CreatedAt != want.CreatedAt {
		t.Errorf("issuer = %+v, want %+v", got, want)
	}
}

// eventDetails is JSON whose exact bytes matter: spacing, key order, an
// escape, non-ASCII text.
// genesis is the head hash of an empty log, written by the migration.
var genesis = make([]byte, 32)

func eventDetails(seq int64) []byte {
	return fmt.Appendf(nil, `{"seq": %d,  "b":1, "a":"\u00e9 Ә ش", "nested":{"z":[1, 2 ]}}`, seq)
}

// testEvent is an event at seq after prev. Its hash is any stand-in the test
// can recompute; the real chain is internal/audit's business.
func testEvent(seq int64, prev []byte) store.AuditEvent {
	h := sha256.New()
	h.Write(prev)
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(seq)))
	return store.AuditEvent{
		Seq:      seq,
		Time:     time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC).Add(time.Duration(seq) * time.Microsecond),
		Actor:    "officer:alice",
		Action:   "enrollment.approve",
		Object:   fmt.Sprintf("enrollment/%d", seq),
		Details:  eventDetails(seq),
		PrevHash: prev,
		Hash:     h.Sum(nil),
	}
}

// appendNext appends the next event the way internal/audit will: lock the
// head, build on it, append, in one transaction.
func appendNext(t *testing.T, db *store.DB) store.AuditEvent {
	t.Helper()
	ctx := t.Context()
	var e store.AuditEvent
	err := db.InTx(ctx, func(tx *store.Tx) error {
		h, err := tx.AuditHead(ctx)
		if err != nil {
			return err
		}
		e = testEvent(h.Seq+1, h.Hash)
		return tx.AppendAuditEvent(ctx, e)
	})
	if err != nil {
		t.Fatalf("append audit event: %v", err)
	}
	return e
}

func scanAll(t *testing.T, db *store.DB, after int64) []store.AuditEvent {
	t.Helper()
	var out []store.AuditEvent
	if err := db.ScanAuditEvents(t.Context(), after, func(e store.AuditEvent) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("ScanAuditEvents(%d): %v", after, err)
	}
	return out
}

func assertEmptyLog(t *testing.T, db *store.DB, raw *sql.DB) {
	t.Helper()
	head, err := db.AuditHead(t.Context())
	if err != nil || head.Seq != 0 || !bytes.Equal(head.Hash, genesis) {
		t.Errorf("AuditHead = %+v, %v; want seq 0, genesis hash", head, err)
	}
	var n int
	if err := raw.QueryRowContext(t.Context(), `SELECT count(*) FROM audit_events`).Scan(&n); err != nil || n != 0 {
		t.Errorf("audit_events has %d rows (%v), want 0", n, err)
	}
}

// dumpAuditTables renders the audit tables' rows so that any change shows.
func dumpAuditTables(t *testing.T, raw *sql.DB) string {
	t.Helper()
	var sb strings.Builder
	for _, q := range []string{
		`SELECT seq, hash FROM audit_head`,
		`SELECT seq, hash FROM audit_events ORDER BY seq`,
	} {
		rows, err := raw.QueryContext(t.Context(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var seq int64
			var hash []byte
			if err := rows.Scan(&seq, &hash); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&sb, "(%d %x) ", seq, hash)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		sb.WriteString("| ")
	}
	return sb.String()
}

func testCheckpoint(seq int64) store.AuditCheckpoint {
	return store.AuditCheckpoint{
		Seq:       seq,
		Hash:      bytes.Repeat([]byte{byte(seq)}, 32),
		Time:      time.Date(2026, 2, 3, 4, 5, 6, int(seq)*1000, time.UTC),
		KeyID:     []byte("audit-key-1"),
		Signature: bytes.Repeat([]byte{0xa5, byte(seq)}, 32),
	}
}

func putCheckpoint(t *testing.T, db *store.DB, c store.AuditCheckpoint) {
	t.Helper()
	if err := db.InTx(t.Context(), func(tx *store.Tx) error { return tx.PutAuditCheckpoint(t.Context(), c) }); err != nil {
		t.Fatalf("PutAuditCheckpoint(%d): %v", c.Seq, err)
	}
}

func assertCheckpoint(t *testing.T, got, want store.AuditCheckpoint) {
	t.Helper()
	if got.Seq != want.Seq || !bytes.Equal(got.Hash, want.Hash) || got.Time != want.Time ||
		!bytes.Equal(got.KeyID, want.KeyID) || !bytes.Equal(got.Signature, want.Signature) {
		t.Errorf("checkpoint = %+v, want %+v", got, want)
	}
}

// TestSQLiteWritersQueue holds the process's writers to one queue: with
// SQLite's busy handler off, concurrent transactions still all commit, as
// none reaches BEGIN while another holds the lock; and one waiting for
// its turn gives up when its context ends.
func TestSQLiteWritersQueue(t *testing.T) {
	ctx := t.Context()
	db, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, DSN: t.TempDir() + "/sanad.db?_busy_timeout=0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			errs[i] = db.InTx(ctx, func(tx *store.Tx) error {
				if err := tx.PutIssuer(ctx, testIssuer(fmt.Sprintf("w%d", i), "root")); err != nil {
					return err
				}
				time.Sleep(5 * time.Millisecond) // hold the lock while the others arrive
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	for i := range writers {
		if _, err := db.Issuer(ctx, fmt.Sprintf("w%d", i)); err != nil {
			t.Errorf("issuer of writer %d: %v", i, err)
		}
	}

	holding, release := make(chan struct{}), make(chan struct{})
	go db.InTx(ctx, func(*store.Tx) error {
		close(holding)
		<-release
		return nil
	})
	<-holding
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	err = db.InTx(short, func(*store.Tx) error {
		t.Error("ran while another transaction held the writer")
		return nil
	})
	close(release)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("InTx waiting past its deadline: err = %v, want DeadlineExceeded", err)
	}
	if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.PutIssuer(ctx, testIssuer("after", "root")) }); err != nil {
		t.Errorf("InTx after the holder ended: %v", err)
	}
}

// TestOpenHidesTheDSN: a PostgreSQL DSN pgx cannot parse is refused
// without its text, which pgx quotes with the password in plain text when
// it is not written password=… without spaces.
func TestOpenHidesTheDSN(t *testing.T) {
	for _, dsn := range []string{
		"host=127.0.0.1 port=1 user=sanad password = s3cretpw sslmode=requre",
		"host=127.0.0.1 user=sanad password='s3cret pw sslmode=disable",
		"postgres://sanad:s3cretpw@127.0.0.1:1/sanad?sslmode=requre",
	} {
		db, err := store.Open(t.Context(), store.Config{Driver: store.DriverPostgres, DSN: dsn})
		if err == nil {
			db.Close()
			t.Fatalf("Open(%q) succeeded", dsn)
		}
		if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "127.0.0.1") || !strings.Contains(err.Error(), "the DSN (not shown") {
			t.Errorf("Open: %v", err)
		}
	}
}

// TestSQLiteFileMode: a new SQLite database, and so its -wal and -shm
// files, is the owner's alone whatever the umask: it holds personal data,
// one-time code hashes and the audit log. An existing file keeps its mode.
func TestSQLiteFileMode(t *testing.T) {
	old := syscall.Umask(0o022) // a common umask, under which SQLite makes 0644 files
	defer syscall.Umask(old)
	dir := t.TempDir()
	kept := filepath.Join(dir, "kept.db")
	if err := os.WriteFile(kept, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	for _, dsn := range []string{filepath.Join(dir, "plain.db"), "file:" + filepath.Join(dir, "uri.db") + "?cache=private", kept} {
		db, err := store.Open(t.Context(), store.Config{Driver: store.DriverSQLite, DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close() // the -wal and -shm files stay while it is open
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if strings.HasPrefix(filepath.Base(f), "kept.db") {
			want = 0o640
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %04o, want %04o", filepath.Base(f), fi.Mode().Perm(), want)
		}
	}
	if len(files) != 9 {
		t.Errorf("files %v: want three databases with their -wal and -shm", files)
	}
}
