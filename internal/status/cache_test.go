package status

import (
	"fmt"
	"hash/maphash"
	"testing"
	"time"
)

// TestCacheKeyChecked: an entry is only ever found under its own key, even
// when another key's hash leads to it, and a newer response replaces an
// older one, never the reverse.
func TestCacheKeyChecked(t *testing.T) {
	c := newCache(1000)
	old := &entry{der: []byte{1}, updatedAt: time.Unix(100, 0)}
	c.put("issuing\x00serial-a", old)
	if e, ok := c.get([]byte("issuing\x00serial-a")); !ok || e != old {
		t.Fatalf("own key: %v %v", e, ok)
	}
	// Another key stored in serial-a's slot, as a hash collision would.
	h := maphash.String(c.seed, "issuing\x00serial-a")
	c.shards[h%cacheShards].m[h] = slot[*entry]{key: "issuing\x00serial-b", v: &entry{der: []byte{2}}}
	if e, ok := c.get([]byte("issuing\x00serial-a")); ok {
		t.Fatalf("serial-a answered with serial-b's entry %v", e)
	}
	c.put("issuing\x00serial-a", old)
	newer := &entry{der: []byte{3}, updatedAt: time.Unix(200, 0)}
	c.put("issuing\x00serial-a", newer)
	c.put("issuing\x00serial-a", old)
	if e, _ := c.get([]byte("issuing\x00serial-a")); e != newer {
		t.Fatalf("the older response replaced the newer one")
	}
}

// TestCacheControlNeverPastNextUpdate: max-age, made once a minute, is at
// every second of that minute at most the time left to nextUpdate (RFC
// 5019 §6.2), and at most two minutes short of it.
func TestCacheControlNeverPastNextUpdate(t *testing.T) {
	next := time.Date(2026, 12, 4, 10, 30, 17, 0, time.UTC)
	e := &entry{nextUpdate: next}
	start := time.Date(2026, 11, 30, 9, 59, 0, 0, time.UTC)
	for s := 0; s < 300; s++ {
		now := start.Add(time.Duration(s) * time.Second)
		var maxAge int64
		if _, err := fmt.Sscanf(e.cacheControl(now)[0], "max-age=%d,", &maxAge); err != nil {
			t.Fatal(err)
		}
		left := int64(next.Sub(now) / time.Second)
		if maxAge > left || maxAge < left-120 {
			t.Fatalf("at %s: max-age %d with %d s left", now.Format(time.TimeOnly), maxAge, left)
		}
	}
	if got := e.cacheControl(next.Add(time.Hour))[0]; got != "max-age=0, public, no-transform, must-revalidate" {
		t.Errorf("past nextUpdate: %q", got)
	}
}

// TestGetCache: a parsed GET request is found only under its own encoded
// form, and the cache keeps no more than its bound.
func TestGetCache(t *testing.T) {
	c := newGetCache(cacheShards * 2)
	req := Request{Serial: []byte{1, 2, 3}}
	c.put("MEkwRzBF", req)
	if got, ok := c.getString("MEkwRzBF"); !ok || string(got.Serial) != "\x01\x02\x03" {
		t.Fatalf("own key: %v %v", got, ok)
	}
	h := maphash.String(c.seed, "MEkwRzBF")
	c.shards[h%cacheShards].m[h] = slot[Request]{key: "other", v: Request{Serial: []byte{9}}}
	if got, ok := c.getString("MEkwRzBF"); ok {
		t.Fatalf("answered with another request's parse %v", got)
	}
	for i := range 10_000 {
		c.put(fmt.Sprintf("req-%d", i), req)
	}
	if n := c.len(); n > cacheShards*2 {
		t.Errorf("%d requests kept, bound %d", n, cacheShards*2)
	}
}
