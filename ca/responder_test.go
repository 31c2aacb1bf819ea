package ca_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestResponderRunsOut: up to SigningEnds the CA is ready and issues;
// after it, a response signed now would outlive the OCSP signer's
// certificate, so the CA is not ready, issues nothing (and leaves no
// intent, which recovery could not answer either), revokes nothing, and
// the refresh pass says why at once. No stored response outlives the
// signer's certificate.
func TestResponderRunsOut(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	ctx := t.Context()
	clk := newClock(time.Now().UTC().Truncate(time.Second))
	p := newPublishing(t, f, db, clk, ca.PublishConfig{}, nil)
	ends := p.deps.OCSP.SigningEnds(f.Responder)
	notAfter := f.Responder.Certificate.NotAfter

	clk.Set(ends)
	if err := p.authority.Ready(ctx); err != nil {
		t.Fatalf("Ready at SigningEnds: %v", err)
	}
	serial := p.issue(t).SerialNumber.Bytes()
	if stored, r := p.response(t, serial); r.NextUpdate.After(notAfter) || stored.NextUpdate.After(notAfter) {
		t.Errorf("response valid until %s, after the signer's notAfter %s", r.NextUpdate, notAfter)
	}

	for _, at := range []time.Time{ends.Add(time.Second), notAfter.Add(time.Hour)} {
		clk.Set(at)
		refused := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, ocspsign.ErrResponderValidity) || errors.Is(err, ca.ErrRequest) {
				t.Errorf("at SigningEnds+%s: %s: %v; want an error wrapping ocspsign.ErrResponderValidity (a CA failure, not ErrRequest)", at.Sub(ends), what, err)
			}
		}
		refused("Ready", p.authority.Ready(ctx))
		_, err := p.authority.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: newCSR(t), Verified: person, Actor: "test"})
		refused("Issue", err)
		refused("Revoke", p.authority.Revoke(ctx, serial, 1, "officer:test"))
		n, err := p.pub.RefreshOCSP(ctx)
		refused("RefreshOCSP", err)
		if n != 0 {
			t.Errorf("RefreshOCSP stored %d responses", n)
		}
	}
	if unsigned, err := db.UnsignedCertificates(ctx); err != nil || len(unsigned) != 0 {
		t.Errorf("refused issuances left %d intents (%v)", len(unsigned), err)
	}
	if c, err := db.Certificate(ctx, "issuing", serial); err != nil || c.Status != store.StatusGood {
		t.Errorf("the refused revocation changed the certificate: %s, %v", c.Status, err)
	}
}
