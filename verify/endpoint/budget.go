package endpoint

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// budget is the bytes of request bodies the endpoint reads and holds at
// once, all requests together. A request holds its share from the start
// of its read to the end of its verification, waiting for a
// verification slot included: what bounds the memory requests take is
// their bytes, not their count (sixteen requests of 64 MB each held
// gigabytes). A request with a Content-Length takes its share before it
// reads a byte; a chunked one takes it as its bytes arrive.
type budget struct {
	sem  *semaphore.Weighted
	size int64
	held atomic.Int64 // what the requests hold now
}

func newBudget(size int64) *budget {
	return &budget{sem: semaphore.NewWeighted(size), size: size}
}

// errNoBudget is a request's share of the budget not had within the
// wait: the node is busy.
var errNoBudget = errors.New("the bytes this node reads at once are taken")

// take takes n bytes (at most b.size), waiting at most wait; false when
// they did not come (or ctx ended).
func (b *budget) take(ctx context.Context, n int64, wait time.Duration) bool {
	if !b.sem.TryAcquire(n) {
		ctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if b.sem.Acquire(ctx, n) != nil {
			return false
		}
	}
	b.held.Add(n)
	return true
}

func (b *budget) give(n int64) {
	if n > 0 {
		b.held.Add(-n)
		b.sem.Release(n)
	}
}

// share is one request's body and its share of the budget: a body with a
// Content-Length takes all of it before it is read (reserve), a chunked
// one as its bytes are read (Read), each waiting at most wait.
type share struct {
	b     *budget
	ctx   context.Context
	wait  time.Duration
	body  io.Reader
	size  int64 // the Content-Length; -1: unknown (chunked)
	taken int64 // bytes of the budget held
	read  int64 // bytes of the body read
}

// share starts the share of body, of size bytes (-1: unknown), which
// holds nothing yet.
func (b *budget) share(ctx context.Context, wait time.Duration, body io.Reader, size int64) *share {
	return &share{b: b, ctx: ctx, wait: wait, body: body, size: size}
}

// reserve takes the bytes of a body of known size; false when they did
// not come.
func (s *share) reserve() bool {
	if s.size <= 0 {
		return true
	}
	if !s.b.take(s.ctx, s.size, s.wait) {
		return false
	}
	s.taken = s.size
	return true
}

func (s *share) Read(p []byte) (int, error) {
	if s.size < 0 && len(p) > 0 {
		if s.read >= s.b.size {
			// As much as the whole budget read: one byte more (unbudgeted)
			// says whether the body ends here or is larger, which the
			// body's limit (at most the budget) refuses.
			p = p[:1]
		} else {
			if want := min(s.read+int64(len(p)), s.b.size) - s.taken; want > 0 {
				if !s.b.take(s.ctx, want, s.wait) {
					return 0, errNoBudget
				}
				s.taken += want
			}
			p = p[:min(int64(len(p)), s.taken-s.read)]
		}
	}
	n, err := s.body.Read(p)
	s.read += int64(n)
	return n, err
}

// left is how many bytes of the body are still to come, -1 when unknown.
func (s *share) left() int64 {
	if s.size < 0 {
		return -1
	}
	return max(0, s.size-s.read)
}

// release gives back the request's share.
func (s *share) release() {
	s.b.give(s.taken)
	s.taken = 0
}
