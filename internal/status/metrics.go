package status

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the responder's aggregate counters: by outcome, never by
// client or serial (see the package doc).
type metrics struct {
	requests                  *prometheus.CounterVec
	cacheHits, cacheMisses    prometheus.Counter
	missesRefused             prometheus.Counter
	syncs, syncErrors         prometheus.Counter
	requestSeconds            prometheus.Histogram
	outcomeCounters           map[outcome]prometheus.Counter
	getRequests, postRequests prometheus.Counter
	nonceSigned               prometheus.Counter
	nonceThrottled            prometheus.Counter
	collectors                []prometheus.Collector
}

func newMetrics() *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanad_ocsp_responses_total",
			Help: "OCSP answers by outcome: good, revoked, unknown, unauthorized, malformed, try_later.",
		}, []string{"outcome"}),
		cacheHits:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sanad_ocsp_cache_hits_total", Help: "OCSP lookups answered from the cache."}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{Name: "sanad_ocsp_cache_misses_total", Help: "OCSP lookups that read the store."}),
		missesRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "sanad_ocsp_store_reads_refused_total",
			Help: "OCSP cache misses answered tryLater: status.max_store_reads were reading the store already."}),
		syncs:      prometheus.NewCounter(prometheus.CounterOpts{Name: "sanad_ocsp_syncs_total", Help: "Completed syncs of OCSP responses from the store."}),
		syncErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "sanad_ocsp_sync_errors_total", Help: "Syncs of OCSP responses that failed."}),
		requestSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sanad_ocsp_request_seconds",
			Help:    "Time to answer an OCSP request, from parse to the last byte written.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .25, 1},
		}),
		outcomeCounters: map[outcome]prometheus.Counter{},
		nonceSigned: prometheus.NewCounter(prometheus.CounterOpts{Name: "sanad_ocsp_nonce_signed_total",
			Help: "OCSP answers signed on request to echo a nonce (ocsp.nonce: sign)."}),
		nonceThrottled: prometheus.NewCounter(prometheus.CounterOpts{Name: "sanad_ocsp_nonce_throttled_total",
			Help: "OCSP requests with a nonce answered with the pre-signed response, past ocsp.nonce_per_second."}),
	}
	method := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sanad_ocsp_requests_total", Help: "OCSP requests by HTTP method."}, []string{"method"})
	m.getRequests, m.postRequests = method.WithLabelValues("GET"), method.WithLabelValues("POST")
	for _, o := range []outcome{outcomeGood, outcomeRevoked, outcomeUnknown, outcomeUnauthorized, outcomeMalformed, outcomeTryLater} {
		m.outcomeCounters[o] = m.requests.WithLabelValues(string(o))
	}
	m.collectors = []prometheus.Collector{m.requests, method, m.nonceSigned, m.nonceThrottled, m.cacheHits, m.cacheMisses, m.missesRefused, m.syncs, m.syncErrors, m.requestSeconds}
	return m
}

// Register adds the responder's metrics to reg, with gauges of its cache
// size, its sync lag and its last successful sync.
func (r *Responder) Register(reg prometheus.Registerer) error {
	cs := append([]prometheus.Collector{}, r.metrics.collectors...)
	cs = append(cs,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sanad_ocsp_cache_entries", Help: "Entries in the OCSP response cache."},
			func() float64 { return float64(r.cache.len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sanad_ocsp_cache_unknown_entries",
			Help: "Serials the OCSP responder remembers are not in the store (kept apart from the responses)."},
			func() float64 { return float64(r.unknown.len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sanad_ocsp_sync_lag_seconds",
			Help: "Age of the newest OCSP response the last sync read, when it read it."},
			func() float64 { return time.Duration(r.lag.Load()).Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sanad_ocsp_last_sync_timestamp_seconds",
			Help: "When the last OCSP sync that succeeded ended (Unix time): alert on its age, as revocations reach this node only through syncs."},
			func() float64 { return float64(r.lastSync.Load()) / 1e9 }))
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
