package ra

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/api"
)

// TestRateLimits: past its burst, a client address gets 429 rate-limited
// with Retry-After. The requests are valid up to the profile (unknown
// here), so every one that passes the limit is refused for that instead.
// (The identifier's limit: TestIdentifierLimit.)
func TestRateLimits(t *testing.T) {
	body := []byte(`{"profile":"citizen-sign","applicant":{"kind":"person","country":"KZ","national_id":"880312448217",` +
		`"given_name":"Aigerim","family_name":"Sadykova","birth_date":"1988-03-12"},"csr":"x"}`)
	now := func() time.Time { return time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC) }

	s := &Service{d: Deps{ClientLimit: api.NewLimiter(3, time.Minute, 3, 100, now), Now: now}}
	mux := http.NewServeMux()
	s.Register(mux)
	for i, want := range []int{422, 422, 422, 429} {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/enrollments", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = "192.0.2.7:40000"
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != want || (want == 429 && rec.Header().Get("Retry-After") == "") {
			t.Fatalf("request %d from one client: %d %s", i+1, rec.Code, rec.Body)
		}
	}
	// The client's share is spent on holder revocations too: anyone holding
	// a key may send them, and each stores a nonce.
	rec0 := httptest.NewRecorder()
	req0 := httptest.NewRequest(http.MethodPost, "/api/v1/certificates/01A2/revoke", strings.NewReader("x.y.z"))
	req0.Header.Set("Content-Type", "application/jose")
	req0.RemoteAddr = "192.0.2.7:40001"
	mux.ServeHTTP(rec0, req0)
	if rec0.Code != 429 {
		t.Errorf("a holder revocation from the client past its share: %d %s", rec0.Code, rec0.Body)
	}
	// Another client is not limited by the first.
	req := httptest.NewRequest(http.MethodPost, "/api/v1/enrollments", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "192.0.2.8:40000"
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != 422 {
		t.Fatalf("another client: %d %s", rec.Code, rec.Body)
	}

	// Behind a trusted load balancer, clients are told apart by the
	// X-Forwarded-For it writes; the header from anyone else is ignored.
	s = &Service{d: Deps{ClientLimit: api.NewLimiter(1, time.Minute, 1, 100, now), Now: now,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	mux = http.NewServeMux()
	s.Register(mux)
	send := func(remote, xff string) int {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/enrollments", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", xff)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec.Code
	}
	for i, tt := range []struct {
		remote, xff string
		want        int
	}{
		{"10.0.0.1:1", "198.51.100.1", 422},
		{"10.0.0.2:1", "198.51.100.2", 422}, // another client through the balancer
		{"10.0.0.1:1", "198.51.100.1", 429}, // the first again
		{"192.0.2.9:1", "198.51.100.3", 422},
		{"192.0.2.9:1", "198.51.100.4", 429}, // not a proxy: its header names no one
	} {
		if got := send(tt.remote, tt.xff); got != tt.want {
			t.Errorf("request %d (%s, X-Forwarded-For %s): %d, want %d", i+1, tt.remote, tt.xff, got, tt.want)
		}
	}
}

// TestSiteLimit: an IPv6 client is one /64, but a site commonly has a
// whole /48 of them: beside each /64's limit, the /48's bounds them all
// (a review got 2000 clients' allowances from one /48). Another site, and
// an IPv4 client, are not limited by it.
func TestSiteLimit(t *testing.T) {
	body := []byte(`{"profile":"citizen-sign","applicant":{"kind":"person","country":"KZ","national_id":"880312448217",` +
		`"given_name":"Aigerim","family_name":"Sadykova","birth_date":"1988-03-12"},"csr":"x"}`)
	now := func() time.Time { return time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC) }
	s := &Service{d: Deps{ClientLimit: api.NewLimiter(1, time.Minute, 1, 100_000, now), SiteLimit: api.NewLimiter(4, time.Minute, 4, 100_000, now), Now: now}}
	mux := http.NewServeMux()
	s.Register(mux)
	send := func(remote string) int {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/enrollments", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec.Code
	}
	allowed := 0
	for i := range 50 { // fifty /64s of 2001:db8:7::/48
		if send(fmt.Sprintf("[2001:db8:7:%x::1]:40000", i)) != http.StatusTooManyRequests {
			allowed++
		}
	}
	if allowed != 4 {
		t.Errorf("one /48's fifty /64s made %d requests, want the site's 4", allowed)
	}
	if got := send("[2001:db8:8::1]:40000"); got == http.StatusTooManyRequests {
		t.Error("another /48 was limited by the first")
	}
	if got := send("192.0.2.7:40000"); got == http.StatusTooManyRequests {
		t.Error("an IPv4 client was limited by an IPv6 site")
	}
}
