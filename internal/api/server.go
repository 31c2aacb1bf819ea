package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics instruments HTTP handlers by route pattern, never by raw path: an
// OCSP GET path is the request itself and would both leak it and explode the
// label space.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	problems *prometheus.CounterVec
}

// NewMetrics registers the HTTP metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanad_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sanad_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		// Refusals by their stable problem type (a bounded set): a burst of
		// wrong-code or registry-mismatch is how probing shows.
		problems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanad_http_problems_total",
			Help: "Problem documents answered, by route pattern and problem type.",
		}, []string{"route", "type"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.problems} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register http metrics: %w", err)
		}
	}
	return m, nil
}

// Wrap counts and times every request served by mux, answers what mux has
// no route for with a problem document (WithProblems), and turns a handler
// panic into a 500 problem instead of a dropped connection.
func (m *Metrics) Wrap(mux *http.ServeMux, log *slog.Logger) http.Handler {
	served := WithProblems(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("handler panic", "route", r.Pattern, "panic", fmt.Sprint(v))
				if !sw.wrote {
					WriteProblem(sw, NewProblem(http.StatusInternalServerError, "internal", "Internal error", ""))
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			m.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
			if sw.problem != "" {
				m.problems.WithLabelValues(route, sw.problem).Inc()
			}
			m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}()
		served.ServeHTTP(sw, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status  int
	wrote   bool
	problem string // the problem type written, if any
}

func (w *statusWriter) noteProblem(typ string) { w.problem = typ }

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Limits bound a listener's connections and the phases of each; zero
// values take the defaults.
type Limits struct {
	ReadHeader time.Duration // default 10 s
	Read       time.Duration // the whole request; default 30 s
	Write      time.Duration // default 60 s
	Idle       time.Duration // between keep-alive requests; default 120 s
	Shutdown   time.Duration // the graceful stop; default 10 s
	MaxConns   int           // open at once; default MaxConnsFor(0)
}

func (t Limits) withDefaults() Limits {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.ReadHeader, 10*time.Second)
	def(&t.Read, 30*time.Second)
	def(&t.Write, 60*time.Second)
	def(&t.Idle, 120*time.Second)
	def(&t.Shutdown, 10*time.Second)
	t.MaxConns = MaxConnsFor(t.MaxConns)
	return t
}

// Serve listens on addr and serves h until ctx is done, then shuts down
// gracefully within shutdownTimeout. ready, if not nil, receives the bound
// address once the listener is open (useful with port 0).
func Serve(ctx context.Context, addr string, h http.Handler, t Limits, log *slog.Logger, ready func(net.Addr)) error {
	raw, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	t = t.withDefaults()
	ln := newCapListener(raw, t.MaxConns, everyMinute(func() {
		log.Warn("at the cap on open connections: closing idle ones, new clients wait", "addr", raw.Addr().String(), "max_connections", t.MaxConns)
	}))
	// Every phase of a connection is bounded, so that clients that trickle
	// their headers, stall mid-body or idle forever are cut off and hold
	// nothing but their own goroutine meanwhile.
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    64 << 10,
		ConnState:         ln.connState,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	shutdownTimeout := t.Shutdown
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	// Operators see a stop asked for, and that it ended, apart from a crash.
	log.Info("stopping: finishing the requests in flight", "addr", ln.Addr().String(), "within", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	log.Info("stopped", "addr", ln.Addr().String())
	return nil
}
