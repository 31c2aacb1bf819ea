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
	// Checks are run, concurrently, on every /readyz request.
	Checks map[string]Check
	// CheckTimeout bounds each check.
	CheckTimeout time.Duration
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
	mux.HandleFunc("GET /readyz", o.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
}

// ready answers 200 only when every check passes; otherwise a 503 problem
// naming each failing check, "failing", and the log says why: the
// endpoint is anonymous, and why a check failed (a database's user, name
// and host, a resolver's address, a token's label) is for operators, not
// for whoever asks during an outage.
func (o Ops) ready(w http.ResponseWriter, r *http.Request) {
	timeout := o.CheckTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
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
	if len(failed) == 0 {
		WriteJSON(w, http.StatusOK, map[string]any{"status": "ok", "checks": results})
		return
	}
	sort.Strings(failed)
	p := NewProblem(http.StatusServiceUnavailable, "not-ready", "Not ready", "failing: "+strings.Join(failed, ", "))
	p.Extensions = map[string]any{"checks": results}
	WriteProblem(w, p)
}
