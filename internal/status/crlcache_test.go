package status_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
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

// TestCRLNeverGoesBack: behind replicas that lag by different amounts the
// store answers CRL #2, then #1, in turn; the status tier serves #2 once it
// has seen it, never #1 again.
func TestCRLNeverGoesBack(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	st := &lagging{issuer: store.Issuer{ID: "issuing", Role: "issuing", CertificateDER: f.Issuer.Certificate.Raw}}
	r, err := status.New(context.Background(), st, status.Config{SyncInterval: time.Millisecond}, nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	r.RegisterRoutes(mux)
	srv := httptest.NewServer(r.Handler(mux))
	defer srv.Close()
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
