package store

import (
	"path/filepath"
	"testing"
	"time"
)

// TestSQLiteWritesOnOneConnection: on SQLite every write runs on the one
// writer connection (DB.write). SQLite's data_version, read on that
// connection, changes only when another connection has committed a
// change, so it must read the same before and after every kind of write.
func TestSQLiteWritesOnOneConnection(t *testing.T) {
	ctx := t.Context()
	db, err := Open(ctx, Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "writer.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := db.write.Stats().MaxOpenConnections; got != 1 {
		t.Fatalf("writer pool of %d connections, want 1", got)
	}
	dataVersion := func() int64 {
		t.Helper()
		var v int64
		if err := db.InTx(ctx, func(tx *Tx) error {
			return tx.tx.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v)
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	// An enrollment with an outcome notice to claim, written on the writer.
	if err := db.InTx(ctx, func(tx *Tx) error {
		for _, q := range []string{
			`INSERT INTO subjects (id, kind, national_id, created_at, updated_at) VALUES ('s', 'person', 'KZ-1', 0, 0)`,
			`INSERT INTO enrollments (id, subject_id, profile, csr_der, state, created_at, updated_at) VALUES ('e', 's', 'p', X'30', 'rejected', 0, 0)`,
			`INSERT INTO outcome_notices (enrollment_id, event, created_at) VALUES ('e', 'rejected', 0)`,
		} {
			if _, err := tx.tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before := dataVersion()

	b := Bucket{Rate: 1, Burst: 2}
	if ok, _, err := db.TakeToken(ctx, []byte("transaction"), b, t0); err != nil || !ok {
		t.Fatalf("TakeToken: %v, %v", ok, err)
	}
	if err := db.Group().InTx(ctx, func(tx *Tx) error {
		_, _, err := tx.TakeToken(ctx, []byte("group"), b, t0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PruneRateLimits(ctx, t0.Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("PruneRateLimits: %d, %v; want 2 buckets deleted", n, err)
	}
	if ok, err := db.ClaimOutcomeNotice(ctx, "e", t0, t0.Add(-time.Hour)); err != nil || !ok {
		t.Fatalf("ClaimOutcomeNotice: %v, %v; want it claimed", ok, err)
	}
	if after := dataVersion(); after != before {
		t.Fatalf("data_version on the writer went from %d to %d: a write ran on another connection", before, after)
	}
	// The reading pool sees the writes.
	var n int
	if err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM rate_limits`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rate_limits read on the pool: %d rows, %v; want 0", n, err)
	}
}
