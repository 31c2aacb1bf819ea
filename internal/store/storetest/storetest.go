// Package storetest gives tests a freshly migrated store on each backend:
// SQLite in t.TempDir(), PostgreSQL in a new schema of the SANAD_TEST_PG
// database. It is imported only by tests.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	// The drivers the raw *sql.DB handles are opened with.
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/mattn/go-sqlite3"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/testenv"
)

// Drivers returns the drivers every store test runs against.
func Drivers() []string { return []string{store.DriverSQLite, store.DriverPostgres} }

// Each runs fn as one subtest per driver, named after the driver, each with
// its own fresh store.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB, raw *sql.DB)) {
	t.Helper()
	for _, driver := range Drivers() {
		t.Run(driver, func(t *testing.T) {
			db, raw := Open(t, driver)
			fn(t, db, raw)
		})
	}
}

// Open returns a freshly migrated store of the driver, and a raw *sql.DB
// connected to the same database for tests that read or tamper with rows as
// an attacker with database access would. Both are closed, and the
// PostgreSQL schema dropped, when the test ends. Without SANAD_TEST_PG the
// postgres case skips, or fails when CI=true (testenv.PostgresDSN).
//
// Raw SQL sees the store's encodings: on SQLite times are INTEGER
// microseconds since the Unix epoch and placeholders are ?N; on PostgreSQL
// times are TIMESTAMPTZ and placeholders $N.
func Open(t testing.TB, driver string) (*store.DB, *sql.DB) {
	t.Helper()
	switch driver {
	case store.DriverSQLite:
		return OpenSQLite(t, "")
	case store.DriverPostgres:
		return openPostgres(t)
	default:
		t.Fatalf("storetest: unknown driver %q (want one of %q)", driver, Drivers())
		return nil, nil
	}
}

// OpenSQLite is Open on SQLite, with go-sqlite3 parameters (query form,
// e.g. "_busy_timeout=60000"; "" for none) added to the store's DSN, for a
// test that needs another setting than the store's default.
func OpenSQLite(t testing.TB, params string) (*store.DB, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sanad.db")
	if strings.ContainsRune(path, '?') {
		t.Fatalf("storetest: temp path %q contains '?', which a sqlite DSN cannot", path)
	}
	dsn := path
	if params != "" {
		dsn += "?" + params
	}
	db := openStore(t, store.Config{Driver: store.DriverSQLite, DSN: dsn})
	raw, err := sql.Open("sqlite3", path+"?_busy_timeout=5000&_foreign_keys=1")
	if err != nil {
		t.Fatalf("storetest: open raw sqlite: %v", err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	return db, raw
}

// PostgresDSN returns a connection string for a fresh, empty schema of the
// test database (SANAD_TEST_PG), dropped when the test ends: for tests that
// hand a database to a sanad process. Without SANAD_TEST_PG the test
// skips, or fails when CI=true.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := testenv.PostgresDSN(t)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("storetest: open postgres: %v", err)
	}
	t.Cleanup(func() { _ = admin.Close() })

	schema := "sanad_test_" + randomHex(t, 8) // hex only: safe to splice into SQL
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("storetest: create schema: %v", err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("storetest: drop schema %s: %v", schema, err)
		}
	})

	dsn, err := withSearchPath(base, schema)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	return dsn
}

func openPostgres(t testing.TB) (*store.DB, *sql.DB) {
	t.Helper()
	dsn := PostgresDSN(t)
	db := openStore(t, store.Config{Driver: store.DriverPostgres, DSN: dsn})
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("storetest: open raw postgres: %v", err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	return db, raw
}

// openStore opens and migrates; cleanups registered here run before those
// registered earlier (the schema drop), as database/sql must let go first.
func openStore(t testing.TB, cfg store.Config) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("storetest: %v", err)
		}
	})
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("storetest: %v", err)
	}
	return db
}

// withSearchPath adds search_path=schema to a pgx connection string, in URL
// or key=value form; pgx sends it as a run-time parameter on every
// connection.
func withSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse SANAD_TEST_PG: %w", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " search_path=" + schema, nil
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("storetest: %v", err)
	}
	return hex.EncodeToString(b)
}

// AwaitSubjectLockWaiter returns nil once a transaction waits for
// store.Tx.LockSubject's lock on the subject in raw's PostgreSQL database,
// and an error if done (the waiting party's end) comes first: it did not
// wait. On SQLite, where the lock is the database's write lock, which no
// view shows waiting, it returns nil at once. It may run outside the
// test's goroutine.
func AwaitSubjectLockWaiter(raw *sql.DB, driver, kind, nationalID string, done <-chan error) error {
	if driver != store.DriverPostgres {
		return nil
	}
	key := uint64(store.SubjectLockKey(kind, nationalID))
	for waiting := 0; waiting == 0; {
		select {
		case err := <-done:
			return fmt.Errorf("storetest: nothing waited for the subject's lock: it ended first (%v)", err)
		default:
		}
		if err := raw.QueryRowContext(context.Background(), `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1 AND classid::bigint = $1 AND objid::bigint = $2
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
			uint32(key>>32), uint32(key)).Scan(&waiting); err != nil {
			return fmt.Errorf("storetest: read pg_locks: %w", err)
		}
	}
	return nil
}
