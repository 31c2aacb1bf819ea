package store_test

import (
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestTakeToken: a bucket starts full, refuses past its burst with the
// wait until its next token, refills at its rate (never past its burst),
// keeps keys apart, is shared by concurrent takers (as by several nodes:
// exactly the burst succeeds), and is pruned once full again.
func TestTakeToken(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		b := store.Bucket{Rate: 3.0 / 3600, Burst: 3} // 3 an hour
		take := func(key string, at time.Time) (bool, time.Duration) {
			t.Helper()
			ok, wait, err := db.TakeToken(ctx, []byte(key), b, at)
			if err != nil {
				t.Fatal(err)
			}
			return ok, wait
		}
		for i := range 3 {
			if ok, _ := take("a", t0); !ok {
				t.Fatalf("token %d of a full bucket refused", i+1)
			}
		}
		if ok, wait := take("a", t0); ok || wait != 20*time.Minute {
			t.Fatalf("past the burst: %v, wait %s; want a refusal and 20m", ok, wait)
		}
		// TokenWait reads the same bucket and spends nothing; outside a
		// transaction it says the same.
		peek := func(key string, at time.Time) time.Duration {
			t.Helper()
			var wait time.Duration
			if err := db.InTx(ctx, func(tx *store.Tx) (err error) { wait, err = tx.TokenWait(ctx, []byte(key), b, at); return err }); err != nil {
				t.Fatal(err)
			}
			if outside, err := db.TokenWait(ctx, []byte(key), b, at); err != nil || outside != wait {
				t.Fatalf("TokenWait of %q outside a transaction: %s (%v), in one: %s", key, outside, err, wait)
			}
			return wait
		}
		if w := peek("a", t0.Add(5*time.Minute)); (w - 15*time.Minute).Abs() > time.Millisecond {
			t.Fatalf("TokenWait of the empty bucket: %s, want 15m", w)
		}
		if w := peek("never seen", t0); w != 0 {
			t.Fatalf("TokenWait of a new bucket: %s, want 0", w)
		}
		for range 5 {
			if w := peek("a", t0.Add(20*time.Minute)); w != 0 {
				t.Fatalf("TokenWait 20 minutes later: %s, want 0", w)
			}
		}
		if ok, _ := take("b", t0); !ok {
			t.Fatal("another key shares the first's bucket")
		}
		if ok, wait := take("a", t0.Add(15*time.Minute)); ok || wait != 5*time.Minute {
			t.Fatalf("a quarter hour later: %v, wait %s", ok, wait)
		}
		if ok, _ := take("a", t0.Add(20*time.Minute)); !ok {
			t.Fatal("one token regained after 20 minutes was refused")
		}
		// A day later the bucket holds its burst, not more.
		day := t0.Add(24 * time.Hour)
		for i := range 3 {
			if ok, _ := take("a", day); !ok {
				t.Fatalf("a day later, token %d refused", i+1)
			}
		}
		if ok, _ := take("a", day); ok {
			t.Fatal("a day later, a bucket gave more than its burst")
		}

		// Concurrent takers of a new key: exactly the burst succeeds.
		var granted atomic.Int64
		var wg sync.WaitGroup
		for range 12 {
			wg.Go(func() {
				ok, _, err := db.TakeToken(ctx, []byte("c"), b, t0)
				if err != nil {
					t.Error(err)
				}
				if ok {
					granted.Add(1)
				}
			})
		}
		wg.Wait()
		if granted.Load() != 3 {
			t.Errorf("12 concurrent takers of a burst of 3: %d granted", granted.Load())
		}

		// Pruning: b refilled an hour after t0 (one token spent at t0, one
		// regained per 20 minutes); a and c have not at t0 + 30m.
		if n, err := db.PruneRateLimits(ctx, t0.Add(30*time.Minute)); err != nil || n != 1 {
			t.Fatalf("prune at t0+30m: %d, %v; want b alone", n, err)
		}
		var left int
		if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM rate_limits`).Scan(&left); err != nil || left != 2 {
			t.Fatalf("%d buckets left, %v", left, err)
		}
		if n, err := db.PruneRateLimits(ctx, day.Add(time.Hour)); err != nil || n != 2 {
			t.Fatalf("prune a day later: %d, %v", n, err)
		}
		if _, _, err := db.TakeToken(ctx, nil, b, t0); err == nil {
			t.Error("an empty key was accepted")
		}

		// TokensWait asks for n tokens: a new bucket holds its burst, never
		// more (the wait is then one token's time).
		tokensWait := func(key string, at time.Time, n int) time.Duration {
			t.Helper()
			w, err := db.TokensWait(ctx, []byte(key), b, at, n)
			if err != nil {
				t.Fatal(err)
			}
			return w
		}
		for n, want := range map[int]time.Duration{0: 0, 1: 0, 3: 0, 4: 20 * time.Minute} {
			if w := tokensWait("w", t0, n); w != want {
				t.Errorf("TokensWait of a new bucket for %d: %s, want %s", n, w, want)
			}
		}
		take("w", t0)
		take("w", t0)
		for n, want := range map[int]time.Duration{1: 0, 2: 20 * time.Minute, 3: 40 * time.Minute, 9: 40 * time.Minute} {
			if w := tokensWait("w", t0, n); w != want {
				t.Errorf("TokensWait of a bucket holding one for %d: %s, want %s", n, w, want)
			}
		}

		// A node whose clock is behind neither regains tokens nor moves
		// the bucket's time back for a node ahead to regain.
		ahead := t0.Add(time.Hour)
		for i, at := range []time.Time{ahead, t0, ahead} {
			if ok, _ := take("skew", at); !ok {
				t.Fatalf("skew: token %d refused", i+1)
			}
		}
		if ok, _ := take("skew", t0); ok {
			t.Error("a node an hour behind was given a token from an empty bucket")
		}
		if ok, wait := take("skew", ahead); ok || wait != 20*time.Minute {
			t.Errorf("after a node behind took: %v, wait %s; want 20m", ok, wait)
		}

		// Pruning while nodes take: every take finds its bucket.
		var wg2 sync.WaitGroup
		stop := make(chan struct{})
		wg2.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.PruneRateLimits(ctx, t0.AddDate(1, 0, 0)); err != nil {
					t.Error(err)
					return
				}
			}
		})
		for i := range 1000 {
			// Existing buckets: the prune may delete one between any two
			// statements of a take.
			if _, _, err := db.TakeToken(ctx, []byte{'p', byte(i % 4)}, b, t0.Add(time.Duration(i)*time.Hour)); err != nil {
				t.Errorf("take %d while pruning: %v", i, err)
				break
			}
		}
		close(stop)
		wg2.Wait()
	})
}

// BenchmarkTakeToken is what the per-identifier limit adds to an
// enrollment: one transaction on the bucket, per database.
//
//	go test -run '^$' -bench BenchmarkTakeToken ./internal/store/
func BenchmarkTakeToken(b *testing.B) {
	for _, driver := range storetest.Drivers() {
		b.Run(driver, func(b *testing.B) {
			db, _ := storetest.Open(b, driver)
			bucket := store.Bucket{Rate: 1e9, Burst: 1e9}
			var i atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := []byte{'k', byte(i.Add(1) % 64)}
					if _, _, err := db.TakeToken(b.Context(), key, bucket, time.Now()); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestTokenWaitLocks: a transaction that read a bucket's last token with
// Tx.TokenWait holds it until it ends, so another transaction checking the
// same bucket meanwhile waits, then finds it spent: two checks (two RA
// nodes' proofs, on PostgreSQL) cannot both use the last token.
func TestTokenWaitLocks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		ctx := t.Context()
		t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		b := store.Bucket{Rate: 1.0 / 3600, Burst: 2}
		key := []byte("the last token")
		if ok, _, err := db.TakeToken(ctx, key, b, t0); err != nil || !ok {
			t.Fatalf("first token: %v %v", ok, err)
		}
		checked := make(chan struct{})
		first := make(chan error, 1)
		go func() {
			first <- db.InTx(ctx, func(tx *store.Tx) error {
				wait, err := tx.TokenWait(ctx, key, b, t0)
				if err != nil || wait != 0 {
					return fmt.Errorf("the first check: wait %s, %v", wait, err)
				}
				close(checked)
				time.Sleep(300 * time.Millisecond) // the second check comes meanwhile
				if ok, _, err := tx.TakeToken(ctx, key, b, t0); err != nil || !ok {
					return fmt.Errorf("the first take: %v %v", ok, err)
				}
				return nil
			})
		}()
		<-checked
		var wait time.Duration
		if err := db.InTx(ctx, func(tx *store.Tx) (err error) { wait, err = tx.TokenWait(ctx, key, b, t0); return err }); err != nil {
			t.Fatal(err)
		}
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if wait == 0 {
			t.Error("a check while another transaction held the last token found it free")
		}
	})
}
