package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Group runs the transactions of concurrent callers inside one database
// transaction, each in a savepoint of its own, and commits them together.
// Every audited write locks the audit head until commit, so one commit per
// write serializes writers on commit latency (an fsync); grouped, a burst
// of writers shares one.
//
// A caller's function that fails is rolled back to its savepoint and the
// others go on; a failed commit fails every caller in the group. There is
// no goroutine: the caller that finds no commit running leads, runs what
// is queued, commits, and hands the lead to the oldest waiter.
//
// Functions must not keep the *Tx, and a function's writes are visible to
// the functions after it in the same group, as they would be to a
// transaction that started after it committed.
type Group struct {
	db  *DB
	max int

	mu      sync.Mutex
	queue   []*groupCall
	leading bool

	// Commits and Calls count database transactions and callers served.
	Commits, Calls atomic.Int64
}

type groupCall struct {
	ctx  context.Context
	fn   func(*Tx) error
	done chan groupResult
}

type groupResult struct {
	err  error
	lead bool
}

// NewGroup returns a Group of at most max callers per transaction.
func (db *DB) NewGroup(max int) *Group { return &Group{db: db, max: max} }

// InTx runs fn as InTx would, in a transaction shared with concurrent
// callers: its writes commit when fn returns nil and the group commits,
// and are rolled back when fn returns an error (or panics: the panic is
// returned as an error).
func (g *Group) InTx(ctx context.Context, fn func(*Tx) error) error {
	c := &groupCall{ctx: ctx, fn: fn, done: make(chan groupResult, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	for {
		if lead {
			g.runNext(context.WithoutCancel(ctx))
		}
		r := <-c.done
		if !r.lead {
			return r.err
		}
		lead = true
	}
}

func (g *Group) runNext(ctx context.Context) {
	g.mu.Lock()
	n := min(len(g.queue), g.max)
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()

	errs := make([]error, len(batch))
	g.Commits.Add(1)
	g.Calls.Add(int64(len(batch)))
	err := g.db.InTx(ctx, func(tx *Tx) error {
		for i, c := range batch {
			if _, err := tx.tx.ExecContext(ctx, "SAVEPOINT group_call"); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			errs[i] = runCall(c, tx)
			if errs[i] != nil {
				if _, err := tx.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT group_call"); err != nil {
					return fmt.Errorf("rollback to savepoint: %w", err)
				}
			}
			if _, err := tx.tx.ExecContext(ctx, "RELEASE SAVEPOINT group_call"); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
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

	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- groupResult{lead: true}
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	for i, c := range batch {
		c.done <- groupResult{err: errs[i]}
	}
}

// runCall runs one caller's function, turning a panic into its error.
func runCall(c *groupCall, tx *Tx) (err error) {
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
