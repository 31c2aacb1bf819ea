package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Group runs the transactions of concurrent callers inside one database
// transaction, each in a savepoint of its own, and commits them together
// (a Batcher of calls). Every audited write locks the audit head until
// commit, so one commit per write serializes writers on commit latency (an
// fsync); grouped, a burst of writers shares one.
//
// A caller's function that fails is rolled back to its savepoint and the
// others go on; a failed commit fails every caller in the group.
//
// Savepoints cost two round trips a caller, as many as a typical caller's
// own work, and are needed only when a caller fails. So a group first runs
// without them; if a caller fails (a refusal, a constraint: rare on the
// hot paths), that transaction is rolled back and the group runs again
// with a savepoint per caller. A function may therefore run twice: it must
// derive whatever it reports from its last run (assign, never accumulate).
//
// Functions must not keep the *Tx, and a function's writes are visible to
// the functions after it in the same group, as they would be to a
// transaction that started after it committed.
type Group struct {
	db      *DB
	batcher *Batcher[groupCall]

	// Commits and Calls count database transactions and callers served;
	// Reruns counts groups run again with savepoints after a caller failed.
	Commits, Calls, Reruns atomic.Int64
}

type groupCall struct {
	ctx context.Context
	fn  func(*Tx) error
}

// NewGroup returns a Group of at most max callers per transaction.
func (db *DB) NewGroup(max int) *Group {
	g := &Group{db: db}
	g.batcher = NewBatcher(max, g.run)
	g.batcher.Yield = db.d.sqlite
	return g
}

// InTx runs fn as InTx would, in a transaction shared with concurrent
// callers: its writes commit when fn returns nil and the group commits,
// and are rolled back when fn returns an error (or panics: the panic is
// returned as an error).
func (g *Group) InTx(ctx context.Context, fn func(*Tx) error) error {
	start := time.Now()
	err := g.batcher.Do(ctx, groupCall{ctx: ctx, fn: fn})
	g.db.groups.wait.Add(int64(time.Since(start)))
	return err
}

// Queued is how many callers wait for the next transaction.
func (g *Group) Queued() int {
	n, _ := g.batcher.Queued()
	return n
}

// errCallerFailed stops a group run without savepoints (see Group).
var errCallerFailed = errors.New("a caller in the group failed")

func (g *Group) run(ctx context.Context, batch []groupCall) []error {
	errs := make([]error, len(batch))
	g.count(&g.Calls, &g.db.groups.calls, int64(len(batch)))
	g.count(&g.Commits, &g.db.groups.commits, 1)
	if len(batch) == 1 {
		// The transaction is the caller's own: nothing to protect.
		errs[0] = g.inTx(ctx, func(tx *Tx) error { return runCall(batch[0], tx) })
		return errs
	}
	err := g.inTx(ctx, func(tx *Tx) error {
		for _, c := range batch {
			if runCall(c, tx) != nil {
				return errCallerFailed
			}
		}
		return nil
	})
	if !errors.Is(err, errCallerFailed) {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	g.count(&g.Reruns, &g.db.groups.reruns, 1)
	g.count(&g.Commits, &g.db.groups.commits, 1)
	err = g.inTx(ctx, func(tx *Tx) error {
		for i, c := range batch {
			var err error
			if errs[i], err = tx.Try(ctx, func() error { return runCall(c, tx) }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// The group's own transaction failed (a savepoint statement, the
		// commit): no caller's writes are known to be in; each gets the
		// error unless its function had already failed on its own.
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	return errs
}

// inTx is DB.InTx, its time counted in GroupStats.Busy.
func (g *Group) inTx(ctx context.Context, fn func(*Tx) error) error {
	start := time.Now()
	err := g.db.InTx(ctx, fn)
	g.db.groups.busy.Add(int64(time.Since(start)))
	return err
}

// count adds n to one of the group's counters and to its DB's sum.
func (g *Group) count(own, db *atomic.Int64, n int64) {
	own.Add(n)
	db.Add(n)
}

// runCall runs one caller's function, turning a panic into its error.
func runCall(c groupCall, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in grouped transaction: %v", p)
		}
	}()
	if err := c.ctx.Err(); err != nil {
		return err
	}
	return c.fn(tx)
}

// Try runs fn inside a savepoint of tx. If fn fails, what it wrote (and
// the audit events it recorded) is rolled back, tx goes on without it, and
// failed is fn's error. err is the savepoint's own failure, after which tx
// is no longer usable.
func (tx *Tx) Try(ctx context.Context, fn func() error) (failed, err error) {
	// Savepoints of one name nest: the most recent is the one rolled back
	// to and released (SQLite and PostgreSQL alike), so a Try inside a
	// grouped caller's own is its own.
	if _, err := tx.tx.ExecContext(ctx, "SAVEPOINT try_call"); err != nil {
		return nil, fmt.Errorf("savepoint: %w", err)
	}
	recorded := len(tx.records)
	undo := func() error {
		tx.records = tx.records[:recorded]
		if _, err := tx.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT try_call"); err != nil {
			return fmt.Errorf("rollback to savepoint: %w", err)
		}
		return nil
	}
	release := func() error {
		if _, err := tx.tx.ExecContext(ctx, "RELEASE SAVEPOINT try_call"); err != nil {
			return fmt.Errorf("release savepoint: %w", err)
		}
		return nil
	}
	// A panic in fn is undone here and goes on up: left open, this
	// savepoint would be the one an enclosing Try of the same name rolls
	// back to, and the enclosing caller's writes before it would commit
	// without its audit records.
	defer func() {
		if p := recover(); p != nil {
			if undo() == nil {
				_ = release() // failing, tx is unusable and the panic fails it
			}
			panic(p)
		}
	}()
	if failed = fn(); failed != nil {
		if err := undo(); err != nil {
			return failed, err
		}
	}
	return failed, release()
}
