package status_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/status"
	"github.com/sanadpki/sanad/internal/store"
)

// lagging is a store whose reads alternate between two replicas: one has
// CRL #2, the other (lagging) only #1.
type lagging struct {
	issuer store.Issuer
	mu     sync.Mutex
	n      int
}

func (l *lagging) crl() store.CRL {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	num := int64(2 - (l.n/2)%2) // 2,2 then 1,1 then 2,2 ...: summary and full read hit one replica
	now := time.Now().UTC().Truncate(time.Second)
	return store.CRL{IssuerID: "issuing", Number: num, DER: []byte{byte(num)}, ThisUpdate: now, NextUpdate: now.Add(7 * 24 * time.Hour)}
}
func (l *lagging) Issuers(context.Context) ([]store.Issuer, error) {
	return []store.Issuer{l.issuer}, nil
}
func (l *lagging) OCSPResponse(context.Context, string, []byte) (store.OCSPResponse, error) {
	return store.OCSPResponse{}, store.ErrNotFound
}
func (l *lagging) OCSPResponsesAfter(context.Context, store.OCSPCursor, int) ([]store.OCSPResponse, error) {
	return nil, nil
}
func (l *lagging) LatestOCSPUpdate(context.Context) (time.Time, error)         { return time.Time{}, nil }
func (l *lagging) LatestCRL(context.Context, string) (store.CRL, error)        { return l.crl(), nil }
func (l *lagging) LatestCRLSummary(context.Context, string) (store.CRL, error) { return l.crl(), nil }
func (l *lagging) ListenOCSPChanges(context.Context, func()) error             { return store.ErrNoNotifications }

// serveCRLs serves a responder over st, syncing every interval by the
// clock now, over HTTP until the test ends.
func serveCRLs(t *testing.T, st status.Store, interval time.Duration, now func() time.Time) *httptest.Server {
	t.Helper()
	r, err := status.New(context.Background(), st, status.Config{SyncInterval: interval}, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	r.RegisterRoutes(mux)
	srv := httptest.NewServer(r.Handler(mux))
	t.Cleanup(srv.Close)
	return srv
}

// TestCRLNeverGoesBack: behind replicas that lag by different amounts the
// store answers CRL #2, then #1, in turn; the status tier serves #2 once it
// has seen it, never #1 again.
func TestCRLNeverGoesBack(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	st := &lagging{issuer: store.Issuer{ID: "issuing", Role: "issuing", CertificateDER: f.Issuer.Certificate.Raw}}
	srv := serveCRLs(t, st, time.Millisecond, time.Now)
	var served []byte
	for range 6 {
		resp, err := http.Get(srv.URL + "/crl/issuing.crl")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		served = append(served, b...)
		time.Sleep(5 * time.Millisecond)
	}
	for i := 1; i < len(served); i++ {
		if served[i] < served[i-1] {
			t.Errorf("served CRL #%d after #%d (in turn: %v)", served[i], served[i-1], served)
			break
		}
	}
}

// downCRL is a store holding CRL #1 whose CRL reads fail while down.
type downCRL struct {
	lagging
	down atomic.Bool
	crl1 store.CRL
}

func (d *downCRL) read() (store.CRL, error) {
	if d.down.Load() {
		return store.CRL{}, errors.New("the database does not answer")
	}
	return d.crl1, nil
}
func (d *downCRL) LatestCRL(context.Context, string) (store.CRL, error)        { return d.read() }
func (d *downCRL) LatestCRLSummary(context.Context, string) (store.CRL, error) { return d.read() }

// TestCRLWhileStoreDown: with the store unreachable, the CRL held is served
// while within its nextUpdate, as OCSP answers are; past it, 503.
func TestCRLWhileStoreDown(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	t0 := time.Now().UTC().Truncate(time.Second)
	st := &downCRL{lagging: lagging{issuer: store.Issuer{ID: "issuing", Role: "issuing", CertificateDER: f.Issuer.Certificate.Raw}},
		crl1: store.CRL{IssuerID: "issuing", Number: 1, DER: []byte{1}, ThisUpdate: t0, NextUpdate: t0.Add(time.Hour)}}
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	srv := serveCRLs(t, st, time.Second, now)
	get := func(what string, want int) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/crl/issuing.crl")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: HTTP %d, want %d", what, resp.StatusCode, want)
		}
	}
	get("the store up", http.StatusOK)
	st.down.Store(true)
	clock.Add(int64(10 * time.Second)) // past SyncInterval: the store is asked
	get("the store down, the CRL held within its nextUpdate", http.StatusOK)
	clock.Add(int64(time.Hour))
	get("the store down, the CRL held past its nextUpdate", http.StatusServiceUnavailable)
}
