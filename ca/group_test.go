package ca

import (
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestGroupCommitsTogetherAndFailsAlone holds the audit head locked from
// outside while 64 writers queue, so the grouping is certain, not a matter
// of timing: the first writer's transaction waits on the lock, and the
// other 63 must then go in one transaction. One of them reuses a serial:
// that group fails, is retried one write per transaction, and only the bad
// write fails. Every one of those transactions is a caller of a
// store.Group, on SQLite the one the RA's transactions share.
func TestGroupCommitsTogetherAndFailsAlone(t *testing.T) {
	test := func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			return tx.PutIssuer(ctx, store.Issuer{ID: "issuing", Name: "Test", Role: "issuing", CertificateDER: []byte{0x30}, KeyLabel: "k", CreatedAt: now})
		}); err != nil {
			t.Fatal(err)
		}
		log := audit.New(time.Now)
		intent := func(serial int) *groupWrite {
			return &groupWrite{
				intent: &store.Certificate{IssuerID: "issuing", Serial: []byte{0x01, byte(serial)}, Profile: "citizen-auth",
					NotBefore: now, NotAfter: now.AddDate(1, 0, 0), TBS: []byte{0x30}, CreatedAt: now},
				event: audit.Event{Actor: "test", Action: "certificate.intent", Object: "issuing/" + string(rune('a'+serial%26))},
			}
		}
		g := newGroup(db, log, time.Now)
		calls0 := g.txs.Calls.Load()
		// On SQLite, the RA's group; on PostgreSQL, one of the CA's own.
		if shared := g.txs == db.Group(); shared != (db.Driver() == store.DriverSQLite) {
			t.Errorf("%s: the CA's transactions share the RA's group: %v", db.Driver(), shared)
		}

		run := func(writes []*groupWrite) []error {
			lock, err := raw.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lock.ExecContext(ctx, `UPDATE audit_head SET seq = seq WHERE id = 1`); err != nil {
				t.Fatal(err)
			}
			errs := make([]error, len(writes))
			var wg sync.WaitGroup
			waitQueue := func(want int) {
				for {
					queued, leading := g.batcher.Queued()
					if leading && queued == want {
						return
					}
					time.Sleep(time.Millisecond)
				}
			}
			// writes[0] leads: it takes its own write and waits on the lock.
			wg.Go(func() { errs[0] = g.do(ctx, writes[0]) })
			waitQueue(0)
			for i, w := range writes[1:] {
				wg.Go(func() { errs[i+1] = g.do(ctx, w) })
			}
			waitQueue(len(writes) - 1)
			if err := lock.Rollback(); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			return errs
		}

		writes := make([]*groupWrite, 64)
		for i := range writes {
			writes[i] = intent(i)
		}
		for i, err := range run(writes) {
			if err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
		if c, w := g.commits.Load(), g.written.Load(); c != 2 || w != 64 {
			t.Fatalf("64 writes took %d transactions (want 2), %d written", c, w)
		}

		writes = make([]*groupWrite, 32)
		for i := range writes {
			writes[i] = intent(100 + i)
		}
		writes[20] = intent(5) // taken above
		errs := run(writes)
		for i, err := range errs {
			if i == 20 {
				if !errors.Is(err, store.ErrConflict) {
					t.Errorf("the reused serial: %v", err)
				}
			} else if err != nil {
				t.Errorf("write %d failed with the bad one: %v", i, err)
			}
		}
		// 2 + (1 leader alone + 1 failed group + 31 retried one by one).
		if c, w := g.commits.Load(), g.written.Load(); c != 2+1+1+31 || w != 64+31 {
			t.Errorf("after the failing group: %d transactions, %d written", c, w)
		}

		if calls := g.txs.Calls.Load() - calls0; calls != g.commits.Load() {
			t.Errorf("%d transactions, %d of them in the group commit", g.commits.Load(), calls)
		}

		// A write's then runs in its group's transaction, after the
		// writes, in a savepoint: one that fails is rolled back alone (its
		// write is stored without it, a *thenError), in the same one
		// transaction as the others, stored with theirs.
		writes = make([]*groupWrite, 8)
		for i := range writes {
			writes[i] = intent(200 + i)
			writes[i].then = func(tx *store.Tx) error {
				if i == 3 {
					// What it recorded before failing goes with it.
					if err := log.Append(tx, audit.Event{Actor: "test", Action: "then", Object: "rolled back"}); err != nil {
						return err
					}
					return errors.New("the caller's own record failed")
				}
				// It sees its write, and records beside it.
				if _, err := tx.Certificate(ctx, "issuing", writes[i].intent.Serial); err != nil {
					return err
				}
				return log.Append(tx, audit.Event{Actor: "test", Action: "then", Object: fmt.Sprint(i)})
			}
		}
		commits0 := g.commits.Load()
		errs = run(writes)
		if c := g.commits.Load() - commits0; c != 2 { // the leader's own, then the 7 others'
			t.Errorf("8 writes, one of whose then fails, took %d transactions; want 2", c)
		}
		for i, err := range errs {
			var stored *thenError
			switch {
			case i == 3 && !errors.As(err, &stored):
				t.Errorf("the write whose then failed: %v, want a *thenError", err)
			case i != 3 && err != nil:
				t.Errorf("write %d with a then: %v", i, err)
			}
		}
		unsigned, err := db.UnsignedCertificates(ctx)
		if err != nil || len(unsigned) != 64+31+8 {
			t.Fatalf("%d intents stored, %v; want %d", len(unsigned), err, 64+31+8)
		}
		rep, err := audit.Verify(ctx, db, "test", nil)
		// 8 intents' events, and the 7 thens that held.
		if err != nil || rep.Events != 64+31+8+7 || rep.FirstBad != 0 {
			t.Fatalf("audit log: %+v, %v", rep, err)
		}
	}
	// On SQLite the first writer waits on the held lock for up to the
	// busy timeout: a minute here, where the store's 5 s can pass on a
	// loaded machine before the other 63 writers are queued.
	t.Run(store.DriverSQLite, func(t *testing.T) {
		db, raw := storetest.OpenSQLite(t, "_busy_timeout=60000")
		test(t, db, raw)
	})
	t.Run(store.DriverPostgres, func(t *testing.T) {
		db, raw := storetest.Open(t, store.DriverPostgres)
		test(t, db, raw)
	})
}
