package ca_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/internal/testenv"
)

// TestResponderRunsOut: up to SigningEnds the CA is ready and issues;
// after it, a response signed now would outlive the OCSP signer's
// certificate, so the CA is not ready, issues nothing (and leaves no
// intent) and the refresh pass says why at once. No stored response
// outlives the signer's certificate. A revocation still goes through: the
// issuing CA signs the revoked answer itself (RFC 6960 §4.2.2.2), which
// OpenSSL verifies, and the audit event says so; a revocation refused
// there left a compromised certificate good until the operators restarted
// every node with a new signer.
func TestResponderRunsOut(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
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
		n, err := p.pub.RefreshOCSP(ctx)
		refused("RefreshOCSP", err)
		if n != 0 {
			t.Errorf("RefreshOCSP stored %d responses", n)
		}
	}
	if unsigned, err := db.UnsignedCertificates(ctx); err != nil || len(unsigned) != 0 {
		t.Errorf("refused issuances left %d intents (%v)", len(unsigned), err)
	}
	if err := p.authority.Revoke(ctx, serial, 1, "officer:test"); err != nil {
		t.Fatalf("a revocation past the OCSP signer's end: %v", err)
	}
	stored, r := p.response(t, serial) // verified with the issuing CA's key
	if r.Status != ocsp.Revoked || r.RevocationReason != 1 || r.Certificate != nil {
		t.Errorf("the revoked answer: status %d, reason %d, certificate %v; want revoked, keyCompromise, none (the issuer signs)", r.Status, r.RevocationReason, r.Certificate != nil)
	}
	path := filepath.Join(t.TempDir(), "resp.der")
	if err := os.WriteFile(path, stored.DER, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(openssl, "ocsp", "-respin", path, "-issuer", f.CAPEM, "-CAfile", f.RootPEM, "-verify_other", f.CAPEM,
		"-resp_text").CombinedOutput(); err != nil || !strings.Contains(string(out), "Response verify OK") || !strings.Contains(string(out), "Cert Status: revoked") {
		t.Errorf("openssl ocsp: %v\n%s", err, out)
	}
	events, err := db.ListAuditEvents(ctx, store.AuditFilter{Action: "certificate.revoke"})
	if err != nil || len(events) != 1 || !strings.Contains(string(events[0].Details), "ocsp_signed_by") {
		t.Errorf("the revocation's audit event: %v, %v; want it to say the issuing CA signed", events, err)
	}
}
