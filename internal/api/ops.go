package api

import (
	"context"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness dependency, such as the database or an HSM session.
type Check func(ctx context.Context) error

// Ops serves the operator endpoints.
type Ops struct {
	// Checks are run concurrently, for a /readyz request, at most once a
	// Fresh: requests meanwhile, and those that come while they run, get
	// that run's answer. /readyz is anonymous unless http.ops_addr moves
	// it, and a check may take an HSM session or a database connection:
	// requests for it must not take them from issuance.
	Checks map[string]Check
	// CheckTimeout bounds each check (default 2 s).
	CheckTimeout time.Duration
	// Fresh is how long the checks' answer is given again (default 1 s).
	Fresh time.Duration
	// Now is the clock Fresh is measured by (default time.Now).
	Now func() time.Time
	// Gatherer serves /metrics.
	Gatherer prometheus.Gatherer
	// Log receives why a check failed; nil discards it.
	Log *slog.Logger
}

// Register adds GET /healthz, /readyz and /metrics to mux.
func (o Ops) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", (&readiness{o: o}).serve)
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
}

// readiness runs the checks for /readyz, one run at a time, and keeps
// the last run's answer for Fresh.
type readiness struct {
	o Ops

	mu      sync.Mutex // held by the run: the requests meanwhile wait for it
	at      time.Time  // when the kept answer was made; zero: none yet
	results map[string]string
	failed  []string
}

// serve answers 200 only when every check passes; otherwise a 503 problem
// naming each failing check, "failing", and the log says why: the
// endpoint is anonymous, and why a check failed (a database's user, name
// and host, a resolver's address, a token's label) is for operators, not
// for whoever asks during an outage.
func (rd *readiness) serve(w http.ResponseWriter, _ *http.Request) {
	results, failed := rd.answer()
	if len(failed) == 0 {
		WriteJSON(w, http.StatusOK, map[string]any{"status": "ok", "checks": results})
		return
	}
	p := NewProblem(http.StatusServiceUnavailable, "not-ready", "Not ready", "failing: "+strings.Join(failed, ", "))
	p.Extensions = map[string]any{"checks": results}
	WriteProblem(w, p)
}

// answer is the kept answer if fresh, else a new run's. The run is not
// the request's to cancel: the requests waiting for it share it.
func (rd *readiness) answer() (map[string]string, []string) {
	o := rd.o
	now, fresh, timeout := o.Now, o.Fresh, o.CheckTimeout
	if now == nil {
		now = time.Now
	}
	if fresh <= 0 {
		fresh = time.Second
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if !rd.at.IsZero() && now().Sub(rd.at) < fresh {
		return rd.results, rd.failed
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		results = make(map[string]string, len(o.Checks))
		failed  []string
	)
	for name, check := range o.Checks {
		wg.Go(func() {
			status := "ok"
			if err := check(ctx); err != nil {
				status = "failing"
				if o.Log != nil {
					o.Log.Warn("readiness check failing", "check", name, "err", err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			results[name] = status
			if status != "ok" {
				failed = append(failed, name)
			}
		})
	}
	wg.Wait()
	sort.Strings(failed)
	rd.at, rd.results, rd.failed = now(), results, failed
	return results, failed
}
