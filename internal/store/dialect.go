package store

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	sqlite3 "github.com/mattn/go-sqlite3"
	"github.com/pressly/goose/v3"
)

// Driver names accepted in Config.Driver.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// dialect is everything that differs between the two databases. Queries in
// this package are written once, in PostgreSQL's $N placeholder style, and
// pass through q before they run.
type dialect struct {
	name       string        // DriverSQLite or DriverPostgres
	sqlDriver  string        // database/sql driver name
	goose      goose.Dialect // for the migration provider
	lockSuffix string        // appended to a SELECT that must lock the rows it reads
	sqlite     bool
}

func dialectFor(driver string) (dialect, error) {
	switch driver {
	case DriverSQLite:
		return dialect{
			name:      DriverSQLite,
			sqlDriver: "sqlite3",
			goose:     goose.DialectSQLite3,
			// Every transaction is BEGIN IMMEDIATE (see sqliteDSN), so it
			// already holds the database's write lock: nothing to add.
			lockSuffix: "",
			sqlite:     true,
		}, nil
	case DriverPostgres:
		return dialect{
			name:       DriverPostgres,
			sqlDriver:  "pgx",
			goose:      goose.DialectPostgres,
			lockSuffix: " FOR UPDATE",
		}, nil
	default:
		return dialect{}, fmt.Errorf("unknown driver %q (want %q or %q)", driver, DriverSQLite, DriverPostgres)
	}
}

// q rewrites a query of this package for the dialect. SQLite reads "$1" as a
// named parameter numbered by first appearance, not as parameter 1; "?1" is
// its explicitly numbered form. Replacing every "$" is correct because the
// package's queries are constants that use "$" only in placeholders.
func (d *dialect) q(query string) string {
	if d.sqlite {
		return strings.ReplaceAll(query, "$", "?")
	}
	return query
}

// timeArg encodes t for a query argument: UTC, truncated to the microsecond;
// on SQLite as integer microseconds since the Unix epoch, on PostgreSQL as a
// TIMESTAMPTZ. Truncating here rather than letting each database round makes
// both backends keep exactly the same instant.
// ocspUpdatedAt is the updated_at an upsert of ocsp_responses writes: the
// new response's, or, if that is not later than the row's it replaces, the
// row's plus a microsecond. A response signed before another but written
// after it (a revocation's answer, signed before its transaction, behind a
// refresh of the same certificate) must still look newer to the
// responders, which keep an answer only over an older one.
func (d *dialect) ocspUpdatedAt() string {
	if d.sqlite {
		return `max(excluded.updated_at, ocsp_responses.updated_at + 1)` // microseconds
	}
	return `GREATEST(excluded.updated_at, ocsp_responses.updated_at + interval '1 microsecond')`
}

func (d *dialect) timeArg(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if d.sqlite {
		return t.UnixMicro()
	}
	return t
}

// isUniqueViolation reports whether err is a unique or primary key violation.
func (d *dialect) isUniqueViolation(err error) bool {
	if d.sqlite {
		var se sqlite3.Error
		if errors.As(err, &se) {
			return se.ExtendedCode == sqlite3.ErrConstraintUnique ||
				se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
		}
		return false
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" // unique_violation
}

// mapErr turns a driver error the callers branch on into a sentinel, keeping
// the driver's error in the chain for its detail.
func (d *dialect) mapErr(err error) error {
	if d.isUniqueViolation(err) {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}

// timeScan scans a column written by timeArg into a UTC time.Time, whichever
// representation the driver returns.
type timeScan struct{ dst *time.Time }

var _ sql.Scanner = timeScan{}

func (s timeScan) Scan(src any) error {
	switch v := src.(type) {
	case int64: // SQLite: microseconds since the Unix epoch
		*s.dst = time.UnixMicro(v).UTC()
	case time.Time: // PostgreSQL TIMESTAMPTZ
		*s.dst = v.UTC()
	case nil:
		return errors.New("time column is NULL")
	default:
		return fmt.Errorf("time column holds %T, want an integer or a timestamp", src)
	}
	return nil
}

// sqliteDSN turns Config.DSN (a path or a file: URI, optionally with
// go-sqlite3 parameters) into the DSN the store opens. It forces what the
// store's correctness depends on, whatever the DSN says:
//
//   - _txlock=immediate: every transaction takes the write lock at BEGIN. A
//     deferred transaction that reads and then writes can fail with
//     SQLITE_BUSY when another writer got there first, with no wait that
//     could help; taking the lock up front turns that into waiting.
//   - _journal_mode=WAL: readers do not block the writer nor it them.
//   - _foreign_keys=1: SQLite enforces foreign keys only when asked, per
//     connection.
//
// and sets defaults the DSN may override: a 5 s busy timeout (how long BEGIN
// waits for another writer), synchronous=FULL (a committed audit event or
// issuance record survives power loss, not only a crash of the process), and
// a cache of prepared statements on each connection (see sqliteStmtCache).
// sqliteStmtCache is how many prepared statements each SQLite connection
// keeps (go-sqlite3's _stmt_cache_size). Without it every query is compiled
// again (sqlite3_prepare_v2), which cost the enrollment flow about 0.17 ms
// of CPU per enrollment, 6 % of it; the store's queries are a fixed set of
// strings, plus the multi-row statements of group commits, one per batch
// size, which take the least recently used places.
const sqliteStmtCache = 128

func sqliteDSN(dsn string) (string, error) {
	path, query, _ := strings.Cut(dsn, "?")
	if path == "" || path == "file:" {
		return "", errors.New("sqlite DSN has no database path")
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("sqlite DSN parameters: %w", err)
	}
	if path == ":memory:" || path == "file::memory:" || params.Get("mode") == "memory" {
		// Every pooled connection would see its own empty database.
		return "", errors.New("sqlite DSN names an in-memory database; the store needs a file")
	}
	// go-sqlite3 lets a short alias win over the long name; drop the aliases
	// of what is forced so the forced value is the one that applies.
	params.Del("_fk")
	params.Del("_journal")
	params.Set("_foreign_keys", "1")
	params.Set("_journal_mode", "WAL")
	params.Set("_txlock", "immediate")
	if !params.Has("_busy_timeout") && !params.Has("_timeout") {
		params.Set("_busy_timeout", "5000")
	}
	if !params.Has("_synchronous") && !params.Has("_sync") {
		params.Set("_synchronous", "FULL")
	}
	if !params.Has("_stmt_cache_size") {
		params.Set("_stmt_cache_size", strconv.Itoa(sqliteStmtCache))
	}
	return path + "?" + params.Encode(), nil
}

// sqliteFile is the file a SQLite DSN (a path, or a file: URI) names.
func sqliteFile(dsn string) string {
	path, _, _ := strings.Cut(dsn, "?")
	return strings.TrimPrefix(path, "file:")
}

// nullBytes is b, or NULL when b is empty.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// nonNil returns b, or an empty slice when b is nil: the drivers send a nil
// slice as NULL, which NOT NULL byte columns must not receive.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
