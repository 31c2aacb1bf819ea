package ca_test

import (
	"crypto/x509"
	"database/sql"
	"errors"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/internal/testenv"
)

// TestRunRecoversFailedIssuance: an issuance that fails in the process
// after the HSM signed (as a failed commit would) leaves its intent, and
// Run resolves it without a restart once it is RecoverGrace old: the
// serial answers revoked (cessationOfOperation) and the CRL lists it.
// Younger, it is left alone, at Run's scans too: the issuance may still be
// in flight.
func TestRunRecoversFailedIssuance(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	errFailed := errors.New("simulated failure after the signature")
	const grace = time.Minute
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		t0 := time.Now().UTC().Truncate(time.Second)
		clk := newClock(t0)
		p := newPublishing(t, f, db, clk, ca.PublishConfig{MinInterval: 10 * time.Millisecond, OCSPScan: 20 * time.Millisecond, RecoverGrace: grace},
			func(point string) error {
				if point == ca.FaultAfterSign {
					return errFailed
				}
				return nil
			})
		if _, err := p.authority.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: newCSR(t), Verified: person, Actor: "test"}); !errors.Is(err, errFailed) {
			t.Fatalf("Issue = %v, want the failure", err)
		}
		unresolved := func() [][]byte {
			t.Helper()
			unsigned, err := db.UnsignedCertificates(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var serials [][]byte
			for _, c := range unsigned {
				serials = append(serials, c.Serial)
			}
			return serials
		}
		intents := unresolved()
		if len(intents) != 1 {
			t.Fatalf("%d intents after the failure, want 1", len(intents))
		}
		serial := intents[0]

		clk.Set(t0.Add(grace - time.Second))
		if n, err := p.pub.RecoverIntents(ctx); err != nil || n != 0 {
			t.Fatalf("RecoverIntents within the grace = %d, %v; want 0", n, err)
		}
		// A signed certificate without a response: its answer shows that
		// Run's first scan, recovery first, has been.
		marker := p.putSigned(t, 1, t0, t0.AddDate(1, 0, 0), false)
		p.run(t)
		testenv.WaitFor(t, "Run's first scan", func() bool { _, err := db.OCSPResponse(ctx, "issuing", marker.Serial); return err == nil })
		if got := unresolved(); len(got) != 1 {
			t.Fatalf("Run resolved an intent within the grace: %d left", len(got))
		}

		clk.Set(t0.Add(grace))
		testenv.WaitFor(t, "Run to resolve the intent", func() bool { return len(unresolved()) == 0 })
		if _, r := p.response(t, serial); r.Status != ocsp.Revoked || r.RevocationReason != ca.ReasonCessationOfOperation {
			t.Errorf("the failed issuance's serial answers status %d reason %d; want revoked, cessationOfOperation", r.Status, r.RevocationReason)
		}
		testenv.WaitFor(t, "a CRL listing the serial", func() bool {
			_, rl := latestCRL(t, db)
			_, ok := listed(rl)[new(big.Int).SetBytes(serial).Text(16)]
			return ok
		})
		if r, err := audit.Verify(ctx, db, "test", nil); err != nil || !r.OK() {
			t.Errorf("audit log: %+v, %v", r, err)
		}
	})
}

// TestRecoverRace: two CA nodes recover the same intent at once, as their
// publishers' scans may. The node that read it first and came second
// leaves it to the other, without an error; it is revoked once.
func TestRecoverRace(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	errCrash := errors.New("simulated crash")
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		t0 := time.Now().UTC().Truncate(time.Second)
		clk := newClock(t0)
		var (
			other          *publishing
			otherRecovered = -1
		)
		p := newPublishing(t, f, db, clk, ca.PublishConfig{}, func(point string) error {
			switch {
			case point == ca.FaultAfterIntent:
				return errCrash
			case point == ca.FaultRecoverRead && other != nil && otherRecovered < 0:
				var err error
				otherRecovered, err = other.pub.RecoverIntents(ctx)
				return err
			}
			return nil
		})
		if _, err := p.authority.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: newCSR(t), Verified: person, Actor: "test"}); !errors.Is(err, errCrash) {
			t.Fatalf("Issue = %v, want the crash", err)
		}
		other = addNode(t, f, db, clk, ca.PublishConfig{}, nil)
		clk.Set(t0.Add(time.Hour))
		n, err := p.pub.RecoverIntents(ctx)
		if err != nil || n != 0 || otherRecovered != 1 {
			t.Fatalf("RecoverIntents = %d, %v with the other node resolving %d; want 0, nil and 1", n, err, otherRecovered)
		}
		recovered := 0
		err = db.ScanAuditEvents(ctx, 0, func(e store.AuditEvent) error {
			if e.Action == "certificate.recover" {
				recovered++
			}
			return nil
		})
		if err != nil || recovered != 1 {
			t.Errorf("%d certificate.recover events (%v), want 1", recovered, err)
		}
		serials := assignedSerials(t, db)
		if len(serials) != 1 || serials[0].Status != store.StatusRevoked || serials[0].Reason != ca.ReasonCessationOfOperation {
			t.Fatalf("serials = %+v", serials)
		}
		if _, r := p.response(t, serials[0].Serial); r.Status != ocsp.Revoked {
			t.Errorf("the intent's serial answers status %d", r.Status)
		}
	})
}

// TestRecoverLeavesCompletedIssuance: an issuance slower than the grace
// records its certificate after recovery read the unresolved intents and
// before it revoked this one. The certificate was issued and handed out,
// so recovery leaves it: good, its OCSP answer good, no certificate.recover
// event, not counted.
func TestRecoverLeavesCompletedIssuance(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		t0 := time.Now().UTC().Truncate(time.Second)
		clk := newClock(t0)
		signed, release := make(chan struct{}), make(chan struct{})
		type issued struct {
			cert *x509.Certificate
			err  error
		}
		done := make(chan issued, 1)
		var recovering atomic.Bool
		p := newPublishing(t, f, db, clk, ca.PublishConfig{}, func(point string) error {
			switch {
			case point == ca.FaultAfterSign:
				// The HSM has signed; the certificate is stored once
				// recovery has read the intent as unresolved.
				close(signed)
				<-release
			case point == ca.FaultRecoverRead && recovering.Load():
				close(release)
				r := <-done
				done <- r
			}
			return nil
		})
		go func() {
			c, err := p.authority.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: newCSR(t), Verified: person, Actor: "test"})
			done <- issued{c, err}
		}()
		<-signed
		clk.Set(t0.Add(2 * time.Minute)) // the issuance outlived the one-minute grace
		recovering.Store(true)
		n, err := p.pub.RecoverIntents(ctx)
		r := <-done
		if r.err != nil || r.cert == nil {
			t.Fatalf("Issue = %v, %v; want the certificate", r.cert, r.err)
		}
		if err != nil || n != 0 {
			t.Fatalf("RecoverIntents = %d, %v; want 0, nil", n, err)
		}
		serials := assignedSerials(t, db)
		if len(serials) != 1 || serials[0].Status != store.StatusGood || serials[0].DER == nil {
			t.Fatalf("serials = %+v; want the one certificate, good and recorded", serials)
		}
		if _, resp := p.response(t, serials[0].Serial); resp.Status != ocsp.Good {
			t.Errorf("the issued certificate answers OCSP status %d, want good", resp.Status)
		}
		err = db.ScanAuditEvents(ctx, 0, func(e store.AuditEvent) error {
			if e.Action == "certificate.recover" {
				t.Errorf("audit event %d: %s %s", e.Seq, e.Action, e.Details)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
