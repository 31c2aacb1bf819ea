package api

import (
	"fmt"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestLimiter(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	l := NewLimiter(6, time.Minute, 3, 100, clk.now) // one every 10 s, bursts of 3
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != 10*time.Second {
		t.Fatalf("fourth request: %v, wait %s", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key shares the first one's bucket")
	}
	clk.t = clk.t.Add(10 * time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("no token after the refill time")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("two tokens after one refill")
	}
	var nilLimiter *Limiter
	if ok, _ := nilLimiter.Allow("x"); !ok {
		t.Fatal("a nil Limiter limits")
	}
}

// TestLimiterBoundsItsMemory: many keys never grow the map past maxKeys,
// and an active key keeps its state while idle ones are dropped.
func TestLimiterBoundsItsMemory(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	l := NewLimiter(1, time.Hour, 1, 50, clk.now)
	for i := range 1000 {
		clk.t = clk.t.Add(time.Millisecond)
		l.Allow(fmt.Sprint("key", i))
		if len(l.buckets) > 50 {
			t.Fatalf("%d keys tracked", len(l.buckets))
		}
	}
}
