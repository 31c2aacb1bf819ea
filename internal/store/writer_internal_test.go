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
	before := dataVersion()

	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
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
	if after := dataVersion(); after != before {
		t.Fatalf("data_version on the writer went from %d to %d: a write ran on another connection", before, after)
	}
	// The reading pool sees the writes.
	var n int
	if err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM rate_limits`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rate_limits read on the pool: %d rows, %v; want 0", n, err)
	}
}
