package ra

import (
	"bytes"
	"net/http"
	"net/http/httptest"
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
	// Another client is not limited by the first.
	req := httptest.NewRequest(http.MethodPost, "/api/v1/enrollments", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "192.0.2.8:40000"
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != 422 {
		t.Fatalf("another client: %d %s", rec.Code, rec.Body)
	}
}
