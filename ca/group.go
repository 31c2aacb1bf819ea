package ca

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
)

// group commits the writes of concurrent issuances together (a
// store.Batcher): while one transaction commits, the writes that arrive
// queue up, and the next transaction takes all of them. Every audited
// write locks the audit head until commit, so one transaction per write
// would serialize issuance on commit latency (an fsync on each database);
// grouped, a burst of N issuances costs one commit.
//
// A group's writes are data, not closures, so that the transaction writes
// them with a few multi-row statements (store's batch writes, one audit
// head update) instead of a few round trips per certificate. That
// transaction is one caller of a store.Group (store.DB.Group), which on
// SQLite is the RA's too: one commit carries both, and their failures
// touch each other. An RA caller that fails makes the store.Group run the
// whole transaction again with a savepoint per caller, this batch's
// writes included; a write of this batch that fails (a serial recovery
// revoked, a blocked key, a constraint) makes the RA's callers of that
// transaction run again the same way, and this batch is then retried one
// write per transaction, so the bad write fails alone and the others
// still commit.
type group struct {
	// txs runs the group's transactions (store.DB.Group).
	txs     *store.Group
	audit   *audit.Log
	batcher *store.Batcher[*groupWrite]
	// now stamps the OCSP responses as they are written.
	now func() time.Time

	// commits counts transactions tried, written counts writes committed.
	commits, written atomic.Int64
}

// groupWrite is one caller's write. It is one of: an intent with its audit
// event, or a signed certificate with its OCSP response and audit event.
type groupWrite struct {
	intent *store.Certificate
	// keyIDs are the intent's key (KeyIDs), refused if blocked
	// (keyCompromise).
	keyIDs [][]byte
	signed *store.SignedCertificate
	ocsp   *store.OCSPResponse
	event  audit.Event
	// then runs after the batch's writes (Request.Then), in a savepoint
	// of its own; thenFailed is its error in the write's last run.
	then       func(*store.Tx) error
	thenFailed error
}

// thenError is a write stored without its then, which failed with err.
type thenError struct{ err error }

func (e *thenError) Error() string { return e.err.Error() }

// maxGroup bounds a group: big enough to amortize a commit, small enough
// that one transaction stays short.
const maxGroup = 256

func newGroup(db *store.DB, log *audit.Log, now func() time.Time) *group {
	g := &group{txs: db.Group(), audit: log, now: now}
	g.batcher = store.NewBatcher(maxGroup, g.commit)
	g.batcher.Yield = db.Driver() == store.DriverSQLite
	return g
}

// do commits w in a transaction shared with concurrent callers and returns
// the outcome of its own writes.
func (g *group) do(ctx context.Context, w *groupWrite) error { return g.batcher.Do(ctx, w) }

// commit writes a batch in one transaction, or, if that fails, each write
// in its own.
func (g *group) commit(ctx context.Context, batch []*groupWrite) []error {
	errs := make([]error, len(batch))
	err := g.writeInTx(ctx, batch)
	switch {
	case err == nil:
		for i, w := range batch {
			errs[i] = thenOutcome(w)
		}
	case len(batch) > 1:
		// Some write failed and took the group with it: find out which,
		// one transaction each.
		for i, w := range batch {
			errs[i] = g.alone(ctx, w)
		}
	default:
		errs[0] = g.withoutThen(ctx, batch[0], err)
	}
	for _, err := range errs {
		var stored *thenError
		if err == nil || errors.As(err, &stored) {
			g.written.Add(1)
		}
	}
	return errs
}

// alone makes w in a transaction of its own.
func (g *group) alone(ctx context.Context, w *groupWrite) error {
	if err := g.writeInTx(ctx, []*groupWrite{w}); err != nil {
		return g.withoutThen(ctx, w, err)
	}
	return thenOutcome(w)
}

// thenOutcome is the outcome of a committed write: nil, or a *thenError
// when its then failed and was rolled back alone.
func thenOutcome(w *groupWrite) error {
	if w.thenFailed != nil {
		return &thenError{w.thenFailed}
	}
	return nil
}

// withoutThen answers w's failure err: a write with a then is made again
// without it, so that a signed certificate is stored whatever its caller's
// own records do (a *thenError says so); any other fails with err.
func (g *group) withoutThen(ctx context.Context, w *groupWrite, err error) error {
	if w.then == nil {
		return err
	}
	bare := *w
	bare.then = nil
	if err := g.writeInTx(ctx, []*groupWrite{&bare}); err != nil {
		return err
	}
	return &thenError{err}
}

// writeInTx makes the writes of batch in a transaction of the group's
// store.Group, counted in commits.
func (g *group) writeInTx(ctx context.Context, batch []*groupWrite) error {
	g.commits.Add(1)
	return g.txs.InTx(ctx, func(tx *store.Tx) error { return g.write(ctx, tx, batch) })
}

// write makes the writes of batch in tx, a few statements for all.
func (g *group) write(ctx context.Context, tx *store.Tx, batch []*groupWrite) error {
	var (
		intents []store.Certificate
		keys    [][]byte
		signed  []store.SignedCertificate
		ocsp    []store.OCSPResponse
		events  = make([]audit.Event, 0, len(batch))
	)
	for _, w := range batch {
		if w.intent != nil {
			intents = append(intents, *w.intent)
			keys = append(keys, w.keyIDs...)
		}
		if w.signed != nil {
			signed = append(signed, *w.signed)
		}
		if w.ocsp != nil {
			ocsp = append(ocsp, *w.ocsp)
		}
		events = append(events, w.event)
	}
	if len(keys) > 0 {
		// A key revoked for keyCompromise fails its group, which is then
		// retried one write each: the blocked one alone fails.
		blocked, err := tx.BlockedKeys(ctx, keys)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if b, ok := blocked[string(k)]; ok {
				return keyBlocked(b)
			}
		}
	}
	if err := tx.InsertCertificateIntents(ctx, intents); err != nil {
		return err
	}
	if err := tx.SetCertificateDERs(ctx, signed); err != nil {
		return err
	}
	// The responses were signed before the batch waited for its
	// transaction: stamped as they are written, so that responders, which
	// sync on updated_at with an overlap of seconds, read them however long
	// the wait was (see revoke).
	now := g.now().UTC().Truncate(time.Microsecond)
	for i := range ocsp {
		ocsp[i].UpdatedAt = now
	}
	if err := tx.PutOCSPResponses(ctx, ocsp); err != nil {
		return err
	}
	if err := g.audit.AppendAll(tx, events); err != nil {
		return err
	}
	// Each then in a savepoint: one that fails (a caller's own record)
	// is rolled back alone, and its write stays in the batch.
	for _, w := range batch {
		w.thenFailed = nil
		if w.then == nil {
			continue
		}
		failed, err := tx.Try(ctx, func() error { return w.then(tx) })
		if err != nil {
			return err
		}
		w.thenFailed = failed
	}
	return nil
}
