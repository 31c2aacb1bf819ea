package api

import (
	"math"
	"sync"
	"time"
)

// Limiter is a token bucket per key (a client address, a national
// identifier): each key may spend Burst requests at once and regains Rate
// per second. It is in memory, so each node limits on its own; that bounds
// what one client can make a node do, which is its purpose.
type Limiter struct {
	rate, burst float64
	maxKeys     int
	now         func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// NewLimiter allows burst requests at once and per requests every per, per
// key. At most maxKeys keys are tracked; when that many are, the buckets
// that have refilled (idle keys) are dropped, and if none has, the older
// half — a key forgotten early only gets a fresh burst.
func NewLimiter(n int, per time.Duration, burst, maxKeys int, now func() time.Time) *Limiter {
	return &Limiter{rate: float64(n) / per.Seconds(), burst: float64(burst), maxKeys: maxKeys, now: now, buckets: map[string]*bucket{}}
}

// Allow spends one token of key, or says how long until one is available.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.maxKeys {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

func (l *Limiter) evict(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) < l.maxKeys {
		return
	}
	// Drop the keys last seen at or before the mean time: about half.
	var sum float64
	for _, b := range l.buckets {
		sum += float64(b.at.UnixNano())
	}
	mean := time.Unix(0, int64(sum/float64(len(l.buckets))))
	for k, b := range l.buckets {
		if !b.at.After(mean) {
			delete(l.buckets, k)
		}
	}
}
