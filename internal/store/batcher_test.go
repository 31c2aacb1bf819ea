package store_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
)

// TestBatcher: under 2000 concurrent callers every item is run in exactly
// one batch, no batch is larger than the size, one runs at a time, and
// each caller gets its own item's result.
func TestBatcher(t *testing.T) {
	const items, size, parallel = 2000, 16, 1
	var (
		running, most atomic.Int32
		batches       atomic.Int32
		mu            sync.Mutex
		seen          = map[int]int{}
	)
	b := store.NewBatcher(size, func(_ context.Context, batch []int) []error {
		batches.Add(1)
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		defer running.Add(-1)
		if len(batch) > size || len(batch) == 0 {
			t.Errorf("a batch of %d", len(batch))
		}
		mu.Lock()
		for _, it := range batch {
			seen[it]++
		}
		mu.Unlock()
		time.Sleep(100 * time.Microsecond) // a commit
		errs := make([]error, len(batch))
		for i, it := range batch {
			if it%7 == 0 {
				errs[i] = fmt.Errorf("item %d", it)
			}
		}
		return errs
	})
	var wg sync.WaitGroup
	for i := range items {
		wg.Go(func() {
			err := b.Do(t.Context(), i)
			if want := fmt.Sprintf("item %d", i); (i%7 == 0) != (err != nil) || (err != nil && err.Error() != want) {
				t.Errorf("item %d: got %v", i, err)
			}
		})
	}
	wg.Wait()
	for i := range items {
		if seen[i] != 1 {
			t.Errorf("item %d ran %d times", i, seen[i])
		}
	}
	if m := most.Load(); m > parallel {
		t.Errorf("%d batches ran at once, more than %d", m, parallel)
	}
	if n, leading := b.Queued(); n != 0 || leading {
		t.Errorf("after the run: %d queued, leading %v", n, leading)
	}
	t.Logf("%d items in %d batches, at most %d at once", items, batches.Load(), most.Load())
}

// TestBatcherYield: with Yield, a leader lets goroutines ready to run go
// first, so that one about to submit joins its batch; without, it does
// not wait for them. On one P, a goroutine started just before the
// leader's Do can run only when the leader yields. (Under -race the
// scheduler picks among ready goroutines at random, so the leader may
// also run first: with Yield, some of the tries must join.)
func TestBatcherYield(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const tries = 50
	for _, yield := range []bool{true, false} {
		joined := 0
		for range tries {
			var sizes []int
			b := store.NewBatcher(16, func(_ context.Context, batch []int) []error {
				sizes = append(sizes, len(batch)) // one batch at a time
				return make([]error, len(batch))
			})
			b.Yield = yield
			var wg sync.WaitGroup
			wg.Go(func() {
				if err := b.Do(t.Context(), 2); err != nil {
					t.Error(err)
				}
			})
			if err := b.Do(t.Context(), 1); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			switch {
			case slices.Equal(sizes, []int{2}):
				joined++
			case !slices.Equal(sizes, []int{1, 1}):
				t.Fatalf("Yield %v: batches of %v", yield, sizes)
			}
		}
		if yield && joined == 0 {
			t.Errorf("with Yield, the ready caller joined the leader's batch in none of %d tries", tries)
		}
		if !yield && joined > 0 {
			t.Errorf("without Yield, the ready caller joined the leader's batch in %d of %d tries", joined, tries)
		}
	}
}
