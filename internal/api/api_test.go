package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func newTestServer(t *testing.T, checks map[string]Check, extra func(*http.ServeMux)) *httptest.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	Ops{Checks: checks, Gatherer: reg}.Register(mux)
	if extra != nil {
		extra(mux)
	}
	srv := httptest.NewServer(m.Wrap(mux, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestReadyz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("connection refused") }
	tests := []struct {
		name       string
		checks     map[string]Check
		wantStatus int
		wantType   string
		wantBody   []string
	}{
		{"all pass", map[string]Check{"database": ok, "hsm": ok}, 200, "application/json", []string{`"database":"ok"`, `"hsm":"ok"`}},
		{"hsm down", map[string]Check{"database": ok, "hsm": down}, 503, "application/problem+json",
			[]string{`"type":"urn:sanad:problem:not-ready"`, `"detail":"failing: hsm"`, `"hsm":"failing"`, `"status":503`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, tt.checks, nil)
			resp, body := get(t, srv.URL+"/readyz")
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Content-Type") != tt.wantType {
				t.Fatalf("got %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("Cache-Control %q, X-Content-Type-Options %q; want no-store, nosniff", resp.Header.Get("Cache-Control"), resp.Header.Get("X-Content-Type-Options"))
			}
			for _, w := range tt.wantBody {
				if !strings.Contains(body, w) {
					t.Errorf("body %s lacks %s", body, w)
				}
			}
			// Why a check fails is the log's, not an anonymous caller's.
			if strings.Contains(body, "connection refused") {
				t.Errorf("body %s tells why the check failed", body)
			}
		})
	}
}

// TestReadyzRunsChecksOncePerFresh: requests for /readyz, at once or one
// after another, run the checks (an HSM session, a database query) once a
// Fresh, and share that run's answer; a check that starts failing shows
// from the next run.
func TestReadyzRunsChecksOncePerFresh(t *testing.T) {
	var runs atomic.Int32
	var down atomic.Bool
	hsm := func(context.Context) error {
		runs.Add(1)
		if down.Load() {
			return errors.New("session closed")
		}
		return nil
	}
	var mu sync.Mutex
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	mux := http.NewServeMux()
	Ops{Checks: map[string]Check{"hsm": hsm}, Gatherer: prometheus.NewRegistry(), Now: clock}.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if resp, body := get(t, srv.URL+"/readyz"); resp.StatusCode != 200 {
				t.Errorf("readyz: %d %s", resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Errorf("20 requests at once ran the checks %d times, want 1", n)
	}
	down.Store(true)
	if resp, _ := get(t, srv.URL+"/readyz"); resp.StatusCode != 200 || runs.Load() != 1 {
		t.Errorf("within the second: %d after %d runs; want the kept answer", resp.StatusCode, runs.Load())
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if resp, body := get(t, srv.URL+"/readyz"); resp.StatusCode != 503 || !strings.Contains(body, `"hsm":"failing"`) || runs.Load() != 2 {
		t.Errorf("a second later: %d %s after %d runs; want a new run, failing", resp.StatusCode, body, runs.Load())
	}
}

func TestMetricsLabelByPatternAndRecoverPanics(t *testing.T) {
	srv := newTestServer(t, nil, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /boom/{id}", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
		mux.HandleFunc("GET /refuse", func(w http.ResponseWriter, _ *http.Request) {
			WriteProblem(w, NewProblem(http.StatusUnprocessableEntity, "wrong-code", "The one-time code is wrong", ""))
		})
	})
	for range 2 {
		if resp, _ := get(t, srv.URL+"/refuse"); resp.StatusCode != 422 {
			t.Fatalf("refuse: %d", resp.StatusCode)
		}
	}
	resp, body := get(t, srv.URL+"/boom/secret-serial-1234")
	if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("panic gave %d %q", resp.StatusCode, body)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(body), &p); err != nil || p["type"] != "urn:sanad:problem:internal" {
		t.Fatalf("problem = %s (%v)", body, err)
	}
	if resp, _ := get(t, srv.URL+"/healthz"); resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	_, metrics := get(t, srv.URL+"/metrics")
	for _, w := range []string{
		`sanad_http_requests_total{code="500",route="GET /boom/{id}"} 1`,
		`sanad_http_requests_total{code="200",route="GET /healthz"} 1`,
		`sanad_http_problems_total{route="GET /boom/{id}",type="internal"} 1`,
		`sanad_http_problems_total{route="GET /refuse",type="wrong-code"} 2`,
	} {
		if !strings.Contains(metrics, w) {
			t.Errorf("metrics lack %s", w)
		}
	}
	if strings.Contains(metrics, "secret-serial-1234") {
		t.Error("metrics carry a raw request path")
	}
}

// TestWithProblems: an unknown path is a 404 problem, a wrong method a 405
// problem with Allow, a known route is served as it is.
func TestWithProblems(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("thing")) })
	h := WithProblems(mux)
	for _, tc := range []struct {
		method, path string
		status       int
		ctype, allow string
	}{
		{"GET", "/things/1", 200, "", ""},
		{"GET", "/nothing", 404, "application/problem+json", ""},
		{"POST", "/things/1", 405, "application/problem+json", "GET, HEAD"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status || (tc.ctype != "" && rec.Header().Get("Content-Type") != tc.ctype) || rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %q allow %q: %s", tc.method, tc.path, rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Allow"), rec.Body)
		}
	}
}
