package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	// The two database/sql drivers the store opens by name.
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/mattn/go-sqlite3"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Errors callers branch on with errors.Is.
var (
	// ErrNotFound: the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a row with the same key exists already (a unique or
	// primary key violation), or the audit head moved.
	ErrConflict = errors.New("conflict")
)

// migrationFS holds migrations/<driver>/NNNNN_name.sql, goose's format.
//
//go:embed migrations
var migrationFS embed.FS

// Config says which database to open.
type Config struct {
	// Driver is DriverSQLite or DriverPostgres.
	Driver string
	// DSN is, for SQLite, a file path (without '?') or a file: URI, with
	// go-sqlite3 parameters if wanted (the store forces WAL, foreign keys and
	// IMMEDIATE transactions; in-memory databases are refused); for PostgreSQL, a pgx connection string (URL or
	// key=value), e.g. with search_path=<schema>.
	DSN string
	// MaxOpenConns caps the connection pool; 0 means the default: 8 on
	// SQLite (readers run beside the one writer under WAL), 16 on
	// PostgreSQL. On SQLite the pool serves reads, and writes have one
	// connection more of their own (see DB.write).
	MaxOpenConns int
	// Logger receives one line per migration applied; nil discards them.
	Logger *slog.Logger
}

// DB is an open store. It is safe for concurrent use.
type DB struct {
	sql    *sql.DB
	d      dialect
	logger *slog.Logger
	// writer, on SQLite, is held by the one write transaction of this
	// process (see lockWriter); nil on PostgreSQL.
	writer chan struct{}
	// write is where writes run: on SQLite a pool of one connection,
	// used only by whoever holds writer, so that its page cache lasts
	// from one transaction to the next (SQLite empties a connection's
	// cache when another connection has written since its last
	// transaction: with writes spread over the pool, each read the
	// pages again); on PostgreSQL, sql.
	write *sql.DB
	// group, on SQLite, is the process's group commit (see Group); nil on
	// PostgreSQL.
	group *Group
	// groups counts what every Group of this DB did (GroupStats); busy
	// and wait are nanoseconds.
	groups struct{ commits, calls, reruns, busy, wait atomic.Int64 }
}

// GroupStats is what the group commits of one DB did since it was opened.
type GroupStats struct {
	// Commits counts the transactions the groups ran, each one commit
	// (or one rollback); Calls the callers they served; Reruns the
	// transactions run again with a savepoint per caller because one
	// caller failed (each also counted in Commits).
	Commits, Calls, Reruns int64
	// Busy is how long the groups' transactions ran, from their wait for
	// SQLite's writer (which a write outside any group may hold: the
	// publisher's, a revocation, a claim) to the end of their commit: on
	// SQLite, over a span of time, about the share of it the one writer
	// spent on them. Wait is how long callers spent in the groups, queued
	// and running, summed over callers: Wait / Calls is what a write waits
	// for its commit. (A caller that batches writes of its own, as the
	// CA's issuance does, is one caller for the batch, and the time its
	// writes queued before is not counted.)
	Busy, Wait time.Duration
}

// GroupStats sums what every Group of db did: Calls / Commits is how many
// callers share a commit, the whole point of grouping them.
func (db *DB) GroupStats() GroupStats {
	g := &db.groups
	return GroupStats{Commits: g.commits.Load(), Calls: g.calls.Load(), Reruns: g.reruns.Load(),
		Busy: time.Duration(g.busy.Load()), Wait: time.Duration(g.wait.Load())}
}

// Tx is one database transaction, valid only inside the function given to
// DB.InTx.
type Tx struct {
	tx *sql.Tx
	d  *dialect
	// records wait for the end of the transaction to join the audit log
	// (RecordAudit), with the chain that links them.
	records []AuditRecord
	chain   Chain
}

// querier is what *sql.DB and *sql.Tx share, so a read can run in either.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Open opens the database and checks it answers. It does not migrate: call
// Migrate (sanad migrate, or start-up in development) for that.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	d, err := dialectFor(cfg.Driver)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if cfg.DSN == "" {
		return nil, fmt.Errorf("open %s store: empty DSN", d.name)
	}
	if cfg.MaxOpenConns < 0 {
		return nil, fmt.Errorf("open %s store: MaxOpenConns %d is negative", d.name, cfg.MaxOpenConns)
	}
	dsn := cfg.DSN
	maxConns := cfg.MaxOpenConns
	switch d.name {
	case DriverSQLite:
		if dsn, err = sqliteDSN(dsn); err != nil {
			return nil, fmt.Errorf("open sqlite store: %w", err)
		}
		// SQLite would create a new database (and its -wal and -shm
		// files, which copy its mode) with the umask's mode, often
		// readable by every local user; it holds personal data and the
		// audit log, so it is created the owner's alone. An existing
		// file keeps its mode; an error is SQLite's to report.
		if f, err := os.OpenFile(sqliteFile(dsn), os.O_RDONLY|os.O_CREATE, 0o600); err == nil {
			f.Close()
		}
		if maxConns == 0 {
			maxConns = 8
		}
	case DriverPostgres:
		// Parsed here first, so that a DSN pgx cannot parse is refused
		// without its text: pgx quotes the DSN in that error, redacting
		// only a password written password=… without spaces.
		pc, err := pgconn.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres store: %w", dsnError(err))
		}
		if err := verifiedTLS(pc); err != nil {
			return nil, fmt.Errorf("open postgres store: %w", err)
		}
		if maxConns == 0 {
			maxConns = 16
		}
	}
	sqlDB, err := sql.Open(d.sqlDriver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", d.name, err)
	}
	sqlDB.SetMaxOpenConns(maxConns)
	sqlDB.SetMaxIdleConns(maxConns)
	if err := sqlDB.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open %s store: ping: %w", d.name, err), sqlDB.Close())
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db := &DB{sql: sqlDB, write: sqlDB, d: d, logger: logger}
	if d.name == DriverSQLite {
		if db.write, err = openSQLiteWriter(ctx, d.sqlDriver, dsn); err != nil {
			return nil, errors.Join(fmt.Errorf("open sqlite store: writer: %w", err), sqlDB.Close())
		}
		db.writer = make(chan struct{}, 1)
		db.group = db.NewGroup(256)
	}
	return db, nil
}

// openSQLiteWriter opens DB.write on SQLite: one connection, kept open.
// Writes take turns anyway (lockWriter), so one connection costs no
// concurrency. Measured with `sanad bench enroll -p 16`: statement time
// in write transactions fell by a quarter, 0.37-0.51 ms to 0.28-0.33 ms
// per enrollment.
func openSQLiteWriter(ctx context.Context, driver, dsn string) (*sql.DB, error) {
	w, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	if err := w.PingContext(ctx); err != nil {
		return nil, errors.Join(err, w.Close())
	}
	return w, nil
}

// lockWriter waits for this process's turn to write and returns the
// function that ends it. SQLite has one writer at a time; a transaction
// that finds the database locked polls it from SQLite's busy handler,
// asleep for 1, 2, 5, 10… ms between tries, so writers of one process
// (the RA's and the CA's group commits) would leave the CPU idle while
// the lock is free. Queued here instead, the next writer starts the moment
// the last one ends, in arrival order. Other processes on the same file
// (a CLI command) still meet the busy timeout. On PostgreSQL, which locks
// rows, not the database, it does nothing.
func (db *DB) lockWriter(ctx context.Context) (unlock func(), err error) {
	if db.writer == nil {
		return func() {}, nil
	}
	select {
	case db.writer <- struct{}{}:
		return func() { <-db.writer }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("begin %s transaction: waiting for the writer: %w", db.d.name, context.Cause(ctx))
	}
}

// Group returns the group commit for one audited writer of the process
// (the RA's transactions, the CA's issuance writes). On SQLite it is
// always the same Group: the database has one writer, which the RA's and
// the CA's transactions took in turns, each paying a commit (an fsync) of
// its own; in one group, one commit serves both (about 20 % fewer commits
// per enrollment, 4-15 % more enrollments/s). On PostgreSQL each call
// returns a new Group: there the RA's and the CA's transactions run side
// by side up to the audit head, and one group for both made them wait in
// one line (310/273/298 enrollments/s against 381/329/321 apart).
//
// The callers of one group must record their audit events with the same
// chain (one audit.Log): a transaction chains its events with the first
// chain recorded in it (RecordAudit).
func (db *DB) Group() *Group {
	if db.group != nil {
		return db.group
	}
	return db.NewGroup(256)
}

// Driver returns DriverSQLite or DriverPostgres.
func (db *DB) Driver() string { return db.d.name }

// Ping checks that the database answers (readiness).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.sql.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s store: %w", db.d.name, err)
	}
	return nil
}

// Close closes the connection pools (on SQLite, the readers' and the writer's).
func (db *DB) Close() error {
	err := db.sql.Close()
	if db.write != db.sql {
		err = errors.Join(err, db.write.Close())
	}
	if err != nil {
		return fmt.Errorf("close %s store: %w", db.d.name, err)
	}
	return nil
}

// Migrate applies the embedded migrations that the database lacks; on an
// up-to-date database it changes nothing. On PostgreSQL a session advisory
// lock (one per database and schema) makes concurrent Migrate calls from
// several nodes take turns. On SQLite run it from one process at a time.
func (db *DB) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrationFS, "migrations/"+db.d.name)
	if err != nil {
		return fmt.Errorf("migrate %s store: %w", db.d.name, err)
	}
	opts := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(db.logger),
	}
	if db.d.name == DriverPostgres {
		id, err := db.migrationLockID(ctx)
		if err != nil {
			return fmt.Errorf("migrate postgres store: %w", err)
		}
		// Poll for the lock every second, for up to five minutes.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(id), lock.WithLockTimeout(1, 300))
		if err != nil {
			return fmt.Errorf("migrate postgres store: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	// The provider does not own db.sql: never call its Close, which would
	// close the pool.
	p, err := goose.NewProvider(db.d.goose, db.sql, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrate %s store: %w", db.d.name, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s store: %w", db.d.name, err)
	}
	return nil
}

// migrationLockID derives the advisory lock key from the database and the
// schema the migrations go into, so that migrating two schemas of one
// database (tests do) does not make one wait for the other.
func (db *DB) migrationLockID(ctx context.Context) (int64, error) {
	var where string
	err := db.sql.QueryRowContext(ctx,
		`SELECT current_database() || '.' || coalesce(current_schema(), '')`).Scan(&where)
	if err != nil {
		return 0, fmt.Errorf("find current schema: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("sanad migrate " + where))
	return int64(h.Sum64()), nil
}

// InTx runs fn in one transaction and commits it when fn returns nil. When
// fn returns an error, or panics, the transaction is rolled back and the
// error (or panic) passed on unchanged. The audit records fn made
// (RecordAudit) are appended to the log after fn returns, before the
// commit. On SQLite every transaction holds the write lock from its start,
// so keep them short.
func (db *DB) InTx(ctx context.Context, fn func(*Tx) error) error {
	unlock, err := db.lockWriter(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin %s transaction: %w", db.d.name, db.d.mapErr(err))
	}
	done := false
	defer func() {
		if !done { // fn panicked
			_ = sqlTx.Rollback() // the panic is the news; a failed rollback ends the tx as well
		}
	}()
	tx := &Tx{tx: sqlTx, d: &db.d}
	err = fn(tx)
	if err == nil {
		err = tx.appendRecords(ctx)
	}
	if err != nil {
		done = true
		if rbErr := sqlTx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("roll back %s transaction: %w", db.d.name, rbErr))
		}
		return err
	}
	done = true
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit %s transaction: %w", db.d.name, db.d.mapErr(err))
	}
	return nil
}

// verifiedTLS refuses a connection to a database on another host that
// could go unencrypted, or encrypted to a server whose certificate is not
// checked (sslmode disable, allow, prefer, require; pgx's default is
// prefer): personal data and the audit log would cross the network open
// to whoever sits on it. sslmode=verify-full (or verify-ca) is needed; a
// Unix socket or a loopback address is this host.
func verifiedTLS(pc *pgconn.Config) error {
	configs := []*pgconn.FallbackConfig{{Host: pc.Host, Port: pc.Port, TLSConfig: pc.TLSConfig}}
	configs = append(configs, pc.Fallbacks...)
	for _, c := range configs {
		if localHost(c.Host) {
			continue
		}
		if t := c.TLSConfig; t == nil || (t.InsecureSkipVerify && t.VerifyPeerCertificate == nil) {
			return fmt.Errorf("the DSN lets the connection to %s go unencrypted or unverified: set sslmode=verify-full (with sslrootcert), or verify-ca", c.Host)
		}
	}
	return nil
}

// localHost reports whether host is this host: a Unix socket's directory,
// localhost, or a loopback address.
func localHost(host string) bool {
	if strings.HasPrefix(host, "/") || host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// dsnError is pgx's error for a DSN it cannot parse, without the DSN: what
// follows the quoted DSN in its message ("cannot parse `…`: failed to
// configure TLS (sslmode is invalid)"), or nothing of it.
func dsnError(err error) error {
	msg := "it does not parse"
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		if text := pe.Error(); strings.HasPrefix(text, "cannot parse `") {
			if i := strings.LastIndex(text, "`: "); i >= 0 && !strings.Contains(text[i+3:], "`") {
				msg = "it does not parse: " + text[i+3:]
			}
		}
	}
	return errors.New("the DSN (not shown: it may hold a password): " + msg)
}
