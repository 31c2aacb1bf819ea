package ca

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
)

// group commits the writes of concurrent issuances together: while one
// transaction commits, the writes that arrive queue up, and the next
// transaction takes all of them. Every audited write locks the audit head
// until commit, so one transaction per write would serialize issuance on
// commit latency (an fsync on each database); grouped, a burst of N
// issuances costs one commit.
//
// A group's writes are data, not closures, so that the transaction writes
// them with a few multi-row statements (store's batch writes, one audit
// head update) instead of a few round trips per certificate.
//
// There is no goroutine to start or stop: the caller that finds no commit
// running leads, commits what is queued, and hands the lead to the oldest
// waiter if more arrived meanwhile. A failed group is retried one write per
// transaction, so a write that fails (a serial recovery revoked, a
// constraint) fails alone and the others still commit.
type group struct {
	db    *store.DB
	audit *audit.Log
	max   int

	mu      sync.Mutex
	queue   []*groupWrite
	leading bool

	// commits counts transactions tried, written counts writes committed.
	commits, written atomic.Int64
}

// groupWrite is one caller's write and where its outcome goes. It is one
// of: an intent with its audit event, or a signed certificate with its
// OCSP response and audit event.
type groupWrite struct {
	intent *store.Certificate
	signed *store.SignedCertificate
	ocsp   *store.OCSPResponse
	event  audit.Event
	done   chan groupResult
}

type groupResult struct {
	err  error
	lead bool // the caller leads the next commit instead
}

// maxGroup bounds a group: big enough to amortize a commit, small enough
// that one transaction stays short.
const maxGroup = 256

func newGroup(db *store.DB, log *audit.Log) *group {
	return &group{db: db, audit: log, max: maxGroup}
}

// do commits w in a transaction shared with concurrent callers and returns
// the outcome of its own writes. The commit runs without ctx's
// cancellation: once queued, a write is committed or fails on its own
// merits, never half-known to its caller.
func (g *group) do(ctx context.Context, w *groupWrite) error {
	w.done = make(chan groupResult, 1)
	g.mu.Lock()
	g.queue = append(g.queue, w)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	for {
		if lead {
			g.commitNext(context.WithoutCancel(ctx))
		}
		r := <-w.done
		if !r.lead {
			return r.err
		}
		lead = true
	}
}

// commitNext commits the queued writes (up to max) and passes the lead on.
func (g *group) commitNext(ctx context.Context) {
	g.mu.Lock()
	n := min(len(g.queue), g.max)
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()

	errs := make([]error, len(batch))
	g.commits.Add(1)
	err := g.db.InTx(ctx, func(tx *store.Tx) error { return g.write(ctx, tx, batch) })
	if err != nil && len(batch) > 1 {
		// Some write failed and took the group with it: find out which,
		// one transaction each.
		for i, w := range batch {
			g.commits.Add(1)
			errs[i] = g.db.InTx(ctx, func(tx *store.Tx) error { return g.write(ctx, tx, []*groupWrite{w}) })
		}
	} else {
		for i := range errs {
			errs[i] = err
		}
	}

	for _, err := range errs {
		if err == nil {
			g.written.Add(1)
		}
	}

	// Pass the lead before answering, so a waiter never waits on a queue
	// nobody leads.
	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- groupResult{lead: true}
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	for i, w := range batch {
		w.done <- groupResult{err: errs[i]}
	}
}

// write makes the writes of batch in tx, a few statements for all.
func (g *group) write(ctx context.Context, tx *store.Tx, batch []*groupWrite) error {
	var (
		intents []store.Certificate
		signed  []store.SignedCertificate
		ocsp    []store.OCSPResponse
		events  = make([]audit.Event, 0, len(batch))
	)
	for _, w := range batch {
		if w.intent != nil {
			intents = append(intents, *w.intent)
		}
		if w.signed != nil {
			signed = append(signed, *w.signed)
		}
		if w.ocsp != nil {
			ocsp = append(ocsp, *w.ocsp)
		}
		events = append(events, w.event)
	}
	if err := tx.InsertCertificateIntents(ctx, intents); err != nil {
		return err
	}
	if err := tx.SetCertificateDERs(ctx, signed); err != nil {
		return err
	}
	if err := tx.PutOCSPResponses(ctx, ocsp); err != nil {
		return err
	}
	_, err := g.audit.AppendAll(ctx, tx, events)
	return err
}
