package ca_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/internal/testenv"
)

// TestCRLCatchesRevocationDatedBeforeIt: a revocation dated before the
// latest CRL but committed after that CRL's build read the revocations (it
// is dated before its HSM signature and its transaction), made by a process
// whose publisher does not run (sanad registry recheck), is not in that
// CRL. The serving node's publisher finds it missing at its next check and
// publishes a CRL that lists it, not a day later at the republish.
func TestCRLCatchesRevocationDatedBeforeIt(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		t0 := time.Now().UTC().Truncate(time.Second)
		clk := newClock(t0)
		p := newPublishing(t, f, db, clk, ca.PublishConfig{MinInterval: 10 * time.Millisecond, CRLCheck: 20 * time.Millisecond, OCSPScan: time.Hour, UnansweredScan: time.Hour}, nil)
		cert := p.issue(t)

		// The CRL built at t0+11s, before the revocation committed; the
		// revocation dated t0+10s by the other process's clock.
		clk.Set(t0.Add(11 * time.Second))
		if _, err := p.pub.PublishCRL(ctx); err != nil {
			t.Fatal(err)
		}
		other := addNode(t, f, db, newClock(t0.Add(10*time.Second)), ca.PublishConfig{}, nil)
		if err := other.authority.Revoke(context.Background(), cert.SerialNumber.Bytes(), 5, "recheck:test"); err != nil {
			t.Fatal(err)
		}
		latest, rl := latestCRL(t, db)
		if _, ok := listed(rl)[cert.SerialNumber.Text(16)]; ok || !latest.CreatedAt.After(t0.Add(10*time.Second)) {
			t.Fatalf("the setup: CRL #%d created %s, listing the certificate: %v", latest.Number, latest.CreatedAt, ok)
		}

		p.run(t)
		testenv.WaitFor(t, "a CRL listing the revocation", func() bool {
			_, rl := latestCRL(t, db)
			_, ok := listed(rl)[cert.SerialNumber.Text(16)]
			return ok
		})
	})
}
