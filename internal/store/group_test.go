package store_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestGroup: concurrent callers share transactions (fewer commits than
// callers); a caller that fails or panics is rolled back alone, its audit
// head move included; the others' writes, and the audit chain across
// them, are all there.
func TestGroup(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		g := db.NewGroup(64)
		const n = 60
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				errs[i] = g.InTx(ctx, func(tx *store.Tx) error {
					// An audited write: the head is read and moved inside the group.
					head, err := tx.AuditHead(ctx)
					if err != nil {
						return err
					}
					ev := store.AuditEvent{Seq: head.Seq + 1, Time: t0, Actor: "test", Action: "x", Details: []byte("{}"), PrevHash: head.Hash}
					sum := sha256.Sum256(binary.BigEndian.AppendUint64(append([]byte(nil), head.Hash...), uint64(ev.Seq)))
					ev.Hash = sum[:]
					if err := tx.AppendAuditEvent(ctx, ev); err != nil {
						return err
					}
					if err := tx.InsertCertificateIntent(ctx, store.Certificate{IssuerID: "issuing", Serial: []byte{0x10, byte(i)},
						Profile: "citizen-auth", NotBefore: t0, NotAfter: t0.AddDate(1, 0, 0), TBS: []byte{0x30}, CreatedAt: t0}); err != nil {
						return err
					}
					switch i % 20 {
					case 7:
						return errors.New("refused after writing")
					case 13:
						panic("boom")
					}
					return nil
				})
			})
		}
		wg.Wait()
		failed := 0
		for i, err := range errs {
			want := i%20 == 7 || i%20 == 13
			if (err != nil) != want {
				t.Errorf("caller %d: %v", i, err)
			}
			if err != nil {
				failed++
			}
		}
		if c := g.Commits.Load(); c >= n || g.Calls.Load() != n {
			t.Errorf("%d callers took %d transactions", g.Calls.Load(), c)
		}
		var rows int
		if err := raw.QueryRow(`SELECT count(*) FROM certificates`).Scan(&rows); err != nil || rows != n-failed {
			t.Errorf("%d certificate rows, want %d (%v)", rows, n-failed, err)
		}
		head, err := db.AuditHead(ctx)
		if err != nil || head.Seq != int64(n-failed) {
			t.Fatalf("audit head %d, want %d (%v)", head.Seq, n-failed, err)
		}
		// The chain is unbroken across the group's savepoints.
		walkChain(t, db, func(store.AuditEvent) error { return nil })
	})
}

// walkChain reads the audit log in order, checks each event follows the
// one before (seq and prev hash) and hands it to each.
func walkChain(t *testing.T, db *store.DB, each func(store.AuditEvent) error) {
	t.Helper()
	var prev []byte
	seq := int64(0)
	if err := db.ScanAuditEvents(t.Context(), 0, func(e store.AuditEvent) error {
		seq++
		if e.Seq != seq || (prev != nil && string(e.PrevHash) != string(prev)) {
			return fmt.Errorf("event %d does not follow event %d", e.Seq, seq-1)
		}
		prev = e.Hash
		return each(e)
	}); err != nil {
		t.Fatal(err)
	}
}

// testChain links records as internal/audit does in shape (seq, prev hash),
// with a hash of its own: the store only needs them to extend the head.
func testChain(head store.AuditHead, records []store.AuditRecord) []store.AuditEvent {
	out := make([]store.AuditEvent, len(records))
	prev := head.Hash
	for i, r := range records {
		seq := head.Seq + 1 + int64(i)
		sum := sha256.Sum256(binary.BigEndian.AppendUint64(append([]byte(r.Object), prev...), uint64(seq)))
		out[i] = store.AuditEvent{Seq: seq, Time: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), Actor: r.Actor,
			Action: r.Action, Object: r.Object, Details: r.Details, PrevHash: prev, Hash: sum[:]}
		prev = sum[:]
	}
	return out
}

// TestGroupRecordedAudit: audit records join the chain when the group's
// transaction ends, one event per record of each caller that succeeded, in
// the callers' order; a caller that fails or panics takes its records with
// it.
func TestGroupRecordedAudit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		g := db.NewGroup(64)
		const n = 60
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				errs[i] = g.InTx(ctx, func(tx *store.Tx) error {
					for k := range 2 {
						tx.RecordAudit(store.AuditRecord{Actor: "test", Action: "x", Object: fmt.Sprintf("%d/%d", i, k), Details: []byte("{}")}, testChain)
					}
					switch i % 20 {
					case 7:
						return errors.New("refused after recording")
					case 13:
						panic("boom")
					}
					return nil
				})
			})
		}
		wg.Wait()
		want := map[string]bool{}
		for i, err := range errs {
			failing := i%20 == 7 || i%20 == 13
			if (err != nil) != failing {
				t.Errorf("caller %d: %v", i, err)
			}
			if !failing {
				want[fmt.Sprintf("%d/0", i)], want[fmt.Sprintf("%d/1", i)] = true, true
			}
		}
		prevObject := ""
		walkChain(t, db, func(e store.AuditEvent) error {
			if !want[e.Object] {
				return fmt.Errorf("event %d records %q, which was rolled back or logged twice", e.Seq, e.Object)
			}
			delete(want, e.Object)
			// A caller's two records stay together and in order.
			if first, ok := strings.CutSuffix(e.Object, "/1"); ok && prevObject != first+"/0" {
				return fmt.Errorf("event %d (%s) follows %s, not its caller's first record", e.Seq, e.Object, prevObject)
			}
			prevObject = e.Object
			return nil
		})
		if len(want) > 0 {
			t.Errorf("%d records never reached the log", len(want))
		}
	})
}

// TestGroupRerunsWithSavepoints: a group runs its callers without
// savepoints; when one fails, the group is run again with a savepoint per
// caller, so the failing caller's writes go and the others' stay.
func TestGroupRerunsWithSavepoints(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		g := db.NewGroup(64)
		intent := func(tx *store.Tx, serial byte) error {
			return tx.InsertCertificateIntent(ctx, store.Certificate{IssuerID: "issuing", Serial: []byte{0x20, serial},
				Profile: "citizen-auth", NotBefore: t0, NotAfter: t0.AddDate(1, 0, 0), TBS: []byte{0x30}, CreatedAt: t0})
		}
		// batch runs callers 1..n-1 as one group, behind caller 0, which
		// holds the lead until they are all queued. failing says which
		// caller fails after writing; runs counts each function's runs.
		batch := func(base byte, n, failing int) ([]error, []int) {
			errs, runs := make([]error, n), make([]atomic.Int32, n)
			release := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				errs[0] = g.InTx(ctx, func(tx *store.Tx) error { runs[0].Add(1); <-release; return intent(tx, base) })
			})
			for runs[0].Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			// One at a time, so that the queue is in index order.
			for i := 1; i < n; i++ {
				wg.Go(func() {
					errs[i] = g.InTx(ctx, func(tx *store.Tx) error {
						runs[i].Add(1)
						if err := intent(tx, base+byte(i)); err != nil {
							return err
						}
						if i == failing {
							return errors.New("refused after writing")
						}
						return nil
					})
				})
				for g.Queued() < i {
					time.Sleep(time.Millisecond)
				}
			}
			close(release)
			wg.Wait()
			counts := make([]int, n)
			for i := range runs {
				counts[i] = int(runs[i].Load())
			}
			return errs, counts
		}

		errs, runs := batch(0x00, 6, -1)
		for i, err := range errs {
			if err != nil || runs[i] != 1 {
				t.Errorf("all good: caller %d ran %d times: %v", i, runs[i], err)
			}
		}
		if g.Reruns.Load() != 0 || g.Commits.Load() != 2 {
			t.Errorf("all good: %d commits, %d reruns; want 2 and 0", g.Commits.Load(), g.Reruns.Load())
		}

		errs, runs = batch(0x40, 6, 3)
		// Callers 1-3 ran in the first pass (3 failed and stopped it), and
		// all ran in the second; 4 and 5 only in the second.
		wantRuns := []int{1, 2, 2, 2, 1, 1}
		for i, err := range errs {
			if (err != nil) != (i == 3) || runs[i] != wantRuns[i] {
				t.Errorf("one failing: caller %d ran %d times (want %d): %v", i, runs[i], wantRuns[i], err)
			}
		}
		if g.Reruns.Load() != 1 || g.Commits.Load() != 5 {
			t.Errorf("one failing: %d commits, %d reruns; want 5 and 1", g.Commits.Load(), g.Reruns.Load())
		}
		var rows int
		if err := raw.QueryRow(`SELECT count(*) FROM certificates`).Scan(&rows); err != nil || rows != 11 {
			t.Errorf("%d certificate rows, want 11 (%v)", rows, err)
		}

		// The DB sums what all its groups did: this one and another.
		other := db.NewGroup(64)
		if err := other.InTx(ctx, func(tx *store.Tx) error { return intent(tx, 0x80) }); err != nil {
			t.Fatal(err)
		}
		want := store.GroupStats{Commits: g.Commits.Load() + other.Commits.Load(), Calls: g.Calls.Load() + other.Calls.Load(),
			Reruns: g.Reruns.Load() + other.Reruns.Load()}
		got := db.GroupStats()
		if counts := (store.GroupStats{Commits: got.Commits, Calls: got.Calls, Reruns: got.Reruns}); counts != want || got.Commits != 6 || got.Calls != 13 || got.Reruns != 1 {
			t.Errorf("the DB's group stats are %+v, want %+v (6 commits, 13 callers, 1 rerun)", got, want)
		}

		// Busy counts the transactions' time, Wait each caller's: a caller
		// that holds its transaction 20 ms adds at least that to both, and
		// a second caller queued meanwhile waits as long.
		before := db.GroupStats()
		const hold = 20 * time.Millisecond
		started := make(chan struct{})
		var second error
		var wg sync.WaitGroup
		wg.Go(func() {
			<-started
			second = other.InTx(ctx, func(tx *store.Tx) error { return intent(tx, 0x90) })
		})
		if err := other.InTx(ctx, func(tx *store.Tx) error {
			close(started)
			for other.Queued() == 0 {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(hold)
			return intent(tx, 0x81)
		}); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if second != nil {
			t.Fatal(second)
		}
		after := db.GroupStats()
		if busy, wait := after.Busy-before.Busy, after.Wait-before.Wait; busy < hold || wait < 2*hold || wait < busy {
			t.Errorf("a transaction held %s, a caller queued behind it: Busy grew %s, Wait %s; want Busy at least %s and Wait at least %s",
				hold, busy, wait, hold, 2*hold)
		}
	})
}

// TestTryPanicInsideGroup: a grouped caller whose own Try panics (as a CA
// write's Then may) fails alone, with everything it wrote and recorded
// rolled back, when the group reruns its callers in savepoints of the same
// name; the caller beside it commits with its audit record.
func TestTryPanicInsideGroup(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		g := db.NewGroup(64)
		release, started := make(chan struct{}), make(chan struct{})
		first := make(chan error, 1)
		go func() {
			first <- g.InTx(ctx, func(*store.Tx) error { close(started); <-release; return nil })
		}()
		<-started
		errA, errB := make(chan error, 1), make(chan error, 1)
		go func() {
			errA <- g.InTx(ctx, func(tx *store.Tx) error {
				if err := tx.PutIssuer(ctx, testIssuer("written-by-a", "issuing")); err != nil {
					return err
				}
				tx.RecordAudit(store.AuditRecord{Actor: "a", Action: "issuer.add", Details: []byte("{}")}, testChain)
				_, err := tx.Try(ctx, func() error { panic("then panicked") })
				return err
			})
		}()
		for g.Queued() != 1 {
			time.Sleep(time.Millisecond)
		}
		go func() {
			errB <- g.InTx(ctx, func(tx *store.Tx) error {
				tx.RecordAudit(store.AuditRecord{Actor: "b", Action: "b.ok", Details: []byte("{}")}, testChain)
				return nil
			})
		}()
		for g.Queued() != 2 {
			time.Sleep(time.Millisecond)
		}
		close(release)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if err := <-errA; err == nil || !strings.Contains(err.Error(), "then panicked") {
			t.Errorf("caller A = %v, want its panic as its error", err)
		}
		if err := <-errB; err != nil {
			t.Errorf("caller B = %v", err)
		}
		if g.Reruns.Load() != 1 {
			t.Errorf("%d reruns, want 1", g.Reruns.Load())
		}
		count := func(query string) int {
			t.Helper()
			var n int
			if err := raw.QueryRow(query).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := count(`SELECT count(*) FROM issuers WHERE id = 'written-by-a'`); n != 0 {
			t.Errorf("caller A's row committed (%d) though it failed", n)
		}
		if n := count(`SELECT count(*) FROM audit_events WHERE actor = 'a'`); n != 0 {
			t.Errorf("caller A's audit event committed (%d)", n)
		}
		if n := count(`SELECT count(*) FROM audit_events WHERE actor = 'b'`); n != 1 {
			t.Errorf("caller B's audit events: %d, want 1", n)
		}
	})
}
