package ca_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/ca/crl"
	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/internal/audit"
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

// TestUseResponder: a running CA takes an OCSP signer certified after it
// started (UseResponder) and signs the next answers with it, without a
// restart; the new signer's key joins the keys it never certifies, the
// old one's staying there. A signer that is not this issuing CA's, lacks
// the OCSPSigning EKU or whose key is not its certificate's is refused,
// the current one staying. Retired (RetireResponder: its certificate was
// revoked, and none replaces it), the signer signs nothing: the CA is not
// ready, issues nothing and leaves no intent, the refresh pass stops, and
// a revocation still goes through with the issuing CA's own answer, its
// audit event saying why. Given a signer again, the CA issues again.
func TestUseResponder(t *testing.T) {
	ctx := t.Context()
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	p := newPublishing(t, f, db, newClock(time.Now().UTC().Truncate(time.Second)), ca.PublishConfig{}, nil)
	signedBy := func(cert *x509.Certificate) *x509.Certificate {
		t.Helper()
		_, r := p.response(t, cert.SerialNumber.Bytes())
		return r.Certificate
	}
	first := p.issue(t)
	if got := signedBy(first); !got.Equal(f.Responder.Certificate) {
		t.Fatalf("first answer signed by %v, want the fixture's signer", got.Subject)
	}

	next, nextKey := f.NewResponder(t, 40, f.Now.AddDate(0, 0, -1), 80, nil)
	foreign := next
	foreign.IssuerID = "other"
	rootSigned := next
	rootSigned.Certificate = catest.Certify(t, &x509.Certificate{SerialNumber: big.NewInt(41), Subject: pkix.Name{CommonName: "Root-signed responder"},
		NotBefore: f.Now.AddDate(0, 0, -1), NotAfter: f.Now.AddDate(0, 0, 80), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}, f.Root, nextKey.Public(), f.RootKey)
	noEKU, _ := f.NewResponder(t, 42, f.Now.AddDate(0, 0, -1), 80, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} })
	otherKey := next
	otherKey.Signer = f.Responder.Signer
	for name, r := range map[string]ocspsign.Responder{"another issuer's id": foreign, "signed by the root": rootSigned, "no OCSPSigning EKU": noEKU, "another key": otherKey} {
		if err := p.authority.UseResponder(r); err == nil {
			t.Errorf("UseResponder with %s: accepted", name)
		}
	}
	if got := signedBy(p.issue(t)); !got.Equal(f.Responder.Certificate) {
		t.Errorf("after the refused signers, the answer is signed by %v; want the fixture's signer", got.Subject)
	}

	if err := p.authority.UseResponder(next); err != nil {
		t.Fatal(err)
	}
	if r, ok := p.authority.Responder(); !ok || !r.Certificate.Equal(next.Certificate) {
		t.Errorf("Responder: %v, %v; want the new signer in service", r.Certificate.Subject, ok)
	}
	second := p.issue(t)
	if got := signedBy(second); !got.Equal(next.Certificate) {
		t.Errorf("answer after UseResponder signed by %v, want the new signer", got.Subject)
	}
	for name, key := range map[string]crypto.Signer{"the new signer's key": nextKey, "the first signer's key": f.Responder.Signer} {
		_, err := p.authority.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: csrFor(t, key, nil), Verified: person, Actor: "test"})
		if !errors.Is(err, ca.ErrRequest) {
			t.Errorf("a request for %s: %v; want it refused (ErrRequest)", name, err)
		}
	}

	p.authority.RetireResponder(errors.New("its certificate was revoked"))
	if _, ok := p.authority.Responder(); ok {
		t.Error("Responder: still in service after RetireResponder")
	}
	retired := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ca.ErrResponderRetired) {
			t.Errorf("retired: %s: %v; want ErrResponderRetired", what, err)
		}
	}
	retired("Ready", p.authority.Ready(ctx))
	_, err := p.authority.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: newCSR(t), Verified: person, Actor: "test"})
	retired("Issue", err)
	_, err = p.pub.RefreshOCSP(ctx)
	retired("RefreshOCSP", err)
	if unsigned, err := db.UnsignedCertificates(ctx); err != nil || len(unsigned) != 0 {
		t.Errorf("issuance refused while retired left %d intents (%v)", len(unsigned), err)
	}
	if err := p.authority.Revoke(ctx, second.SerialNumber.Bytes(), 1, "officer:test"); err != nil {
		t.Fatalf("a revocation while the signer is retired: %v", err)
	}
	if _, r := p.response(t, second.SerialNumber.Bytes()); r.Status != ocsp.Revoked || r.Certificate != nil {
		t.Errorf("the revoked answer: status %d, certificate %v; want revoked, signed by the issuing CA (no certificate)", r.Status, r.Certificate != nil)
	}
	events, err := db.ListAuditEvents(ctx, store.AuditFilter{Action: "certificate.revoke"})
	if err != nil || len(events) != 1 || !strings.Contains(string(events[0].Details), "retired") {
		t.Errorf("the revocation's audit event: %v, %v; want it to say the signer was retired", events, err)
	}
	if at, err := db.OCSPResignBefore(ctx, "issuing"); err != nil || !at.IsZero() {
		t.Errorf("after revoking a subscriber's certificate, the answers are to be signed again before %s (%v); want never", at, err)
	}

	if err := p.authority.UseResponder(next); err != nil {
		t.Fatal(err)
	}
	if err := p.authority.Ready(ctx); err != nil {
		t.Errorf("Ready with a signer in service again: %v", err)
	}
	if got := signedBy(p.issue(t)); !got.Equal(next.Certificate) {
		t.Errorf("answer after a signer was given again signed by %v", got.Subject)
	}

	// The signer in service revoked here: its own revoked answer is signed
	// by the issuing CA, and it signs nothing more.
	catest.Record(t, db, "issuing", "ocsp-signer", next.Certificate)
	if err := p.authority.Revoke(ctx, next.Certificate.SerialNumber.Bytes(), 1, "officer:test"); err != nil {
		t.Fatalf("revoking the signer in service: %v", err)
	}
	if _, r := p.response(t, next.Certificate.SerialNumber.Bytes()); r.Status != ocsp.Revoked || r.Certificate != nil {
		t.Errorf("the signer's own revoked answer: status %d, certificate %v; want revoked, signed by the issuing CA", r.Status, r.Certificate != nil)
	}
	if _, ok := p.authority.Responder(); ok {
		t.Error("the signer whose certificate was revoked is still in service")
	}
	retired("Ready after the signer's own revocation", p.authority.Ready(ctx))
	// What it signed is to be signed again by its successor, from the
	// time recorded with the revocation.
	revoked, err := db.Certificate(ctx, "issuing", next.Certificate.SerialNumber.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if at, err := db.OCSPResignBefore(ctx, "issuing"); err != nil || !at.Equal(revoked.RevokedAt) {
		t.Errorf("after revoking the signer in service, the answers are to be signed again before %s (%v); want its revocation time %s", at, err, revoked.RevokedAt)
	}
}

// TestResignBefore: once a revoked OCSP signer is replaced
// (Publisher.ResignBefore, from cmd/sanad's signer check), the refresh passes
// sign again every answer signed before, live and expired, not only those
// due. The time is in the store, with an ocsp.resign audit event: another
// node over the store, or this one restarted, does the same, an answer
// signed before and stored after a pass (in flight) included. An answer
// signed since is not signed again, and an earlier time changes nothing. A
// time ahead of a node's clock is taken once the clock gets there.
func TestResignBefore(t *testing.T) {
	ctx := t.Context()
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, raw := storetest.Open(t, store.DriverSQLite)
	t0 := time.Now().UTC().Truncate(time.Second)
	clk := newClock(t0)
	p := newPublishing(t, f, db, clk, ca.PublishConfig{}, nil)
	signedBy := func(serial []byte) *x509.Certificate {
		t.Helper()
		_, r := p.response(t, serial)
		return r.Certificate
	}
	refresh := func(p *publishing) {
		t.Helper()
		if _, err := p.pub.RefreshOCSP(ctx); err != nil {
			t.Fatal(err)
		}
	}
	resignEvents := func() int {
		t.Helper()
		var n int
		if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM audit_events WHERE action = 'ocsp.resign'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	live := p.issue(t).SerialNumber.Bytes()
	expired := p.putSigned(t, 0x42, t0.AddDate(-2, 0, 0), t0.AddDate(0, 0, -1), true).Serial
	second, _ := f.NewResponder(t, 50, t0.AddDate(0, 0, -1), 80, nil)
	if err := p.authority.UseResponder(second); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(5 * time.Second))
	refresh(p)
	if got := signedBy(live); !got.Equal(f.Responder.Certificate) {
		t.Fatalf("an answer not due was signed again by %v without ResignBefore", got.Subject)
	}
	if err := p.pub.ResignBefore(ctx, clk.Now(), map[string]any{"revoked_signer": "01"}); err != nil {
		t.Fatal(err)
	}
	if n := resignEvents(); n != 1 {
		t.Errorf("ocsp.resign events: %d; want 1", n)
	}
	clk.Set(t0.Add(10 * time.Second))
	refresh(p)
	for what, serial := range map[string][]byte{"live": live, "expired": expired} {
		if got := signedBy(serial); !got.Equal(second.Certificate) {
			t.Errorf("after ResignBefore, the %s certificate's answer is signed by %v; want the new signer", what, got.Subject)
		}
	}

	// Another node over the store (or this one restarted), with a signer
	// of its own: what the time covers, it signs again too.
	q := addNode(t, f, db, clk, ca.PublishConfig{}, nil)
	clk.Set(t0.Add(2 * time.Second))
	inFlight := p.issue(t).SerialNumber.Bytes() // signed by second, before the time
	third, _ := f.NewResponder(t, 51, t0.AddDate(0, 0, -1), 85, nil)
	if err := q.authority.UseResponder(third); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(3 * time.Minute))
	refresh(q)
	if got := signedBy(inFlight); !got.Equal(third.Certificate) {
		t.Errorf("an answer signed before the time, stored after: signed by %v on another node; want it signed again", got.Subject)
	}
	if got := signedBy(live); !got.Equal(second.Certificate) {
		t.Errorf("an answer signed again since the time was signed again by %v", got.Subject)
	}
	// An earlier time recorded changes nothing, and says nothing.
	if err := q.pub.ResignBefore(ctx, t0.Add(-time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	if got, err := db.OCSPResignBefore(ctx, f.Issuer.ID); err != nil || !got.Equal(t0.Add(5*time.Second)) || resignEvents() != 1 {
		t.Errorf("after an earlier ResignBefore: %s, %v, %d events; want the first time kept, one event", got, err, resignEvents())
	}
	// A time ahead of this node's clock (recorded by a node whose clock
	// is ahead): passes before it sign nothing more, passes after it sign
	// again what is dated before it.
	ahead := clk.Now().Add(time.Hour)
	if err := q.pub.ResignBefore(ctx, ahead, nil); err != nil {
		t.Fatal(err)
	}
	for pass := range 2 {
		clk.Set(t0.Add(4*time.Minute + time.Duration(pass)*time.Second))
		if n, err := q.pub.RefreshOCSP(ctx); n != 0 || err != nil {
			t.Errorf("pass %d before a time ahead of the clock: %d signed again, %v; want none", pass+1, n, err)
		}
	}
	clk.Set(ahead.Add(time.Second))
	if n, err := q.pub.RefreshOCSP(ctx); n < 3 || err != nil {
		t.Errorf("the pass once the clock is past that time: %d signed again, %v; want the live and expired answers", n, err)
	}
}

// TestRefreshPageOfReplacedSigner: a refresh page signed by an OCSP signer
// replaced before the page is stored is thrown away: the answers stay as
// they were, due, and the next pass signs them with the new signer. (What
// the page signed before the check is dated before the time a replacement
// records, ResignBefore.)
func TestRefreshPageOfReplacedSigner(t *testing.T) {
	ctx := t.Context()
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	t0 := time.Now().UTC().Truncate(time.Second)
	clk := newClock(t0)
	var (
		p        *publishing
		switchTo *ocspsign.Responder
	)
	p = newPublishing(t, f, db, clk, ca.PublishConfig{}, func(point string) error {
		if point == ca.FaultRefreshSigned && switchTo != nil {
			next := *switchTo
			switchTo = nil
			return p.authority.UseResponder(next)
		}
		return nil
	})
	serial := p.issue(t).SerialNumber.Bytes()
	second, _ := f.NewResponder(t, 60, t0.AddDate(0, 0, -1), 80, nil)
	switchTo = &second
	clk.Set(t0.Add(3 * 24 * time.Hour)) // the answer is due
	if n, err := p.pub.RefreshOCSP(ctx); n != 0 || err != nil {
		t.Errorf("the pass whose signer was replaced before storing: %d stored, %v; want none", n, err)
	}
	if _, r := p.response(t, serial); !r.Certificate.Equal(f.Responder.Certificate) || !r.ThisUpdate.Before(t0.Add(time.Hour)) {
		t.Errorf("after the page was thrown away: signed by %v at %s; want the first answer kept", r.Certificate.Subject, r.ThisUpdate)
	}
	if n, err := p.pub.RefreshOCSP(ctx); n != 1 || err != nil {
		t.Errorf("the next pass: %d stored, %v; want the answer signed again", n, err)
	}
	if _, r := p.response(t, serial); !r.Certificate.Equal(second.Certificate) {
		t.Errorf("after the next pass: signed by %v; want the new signer", r.Certificate.Subject)
	}
}

// TestRevokedAnswersKeptWithoutSigner: while no OCSP signer can sign (the
// one in service ends within a response's validity), the refresh pass
// still re-signs the revoked answers, with the issuing CA itself, so that
// none runs out; it says why it signed nothing else.
func TestRevokedAnswersKeptWithoutSigner(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := context.Background()
		var mu sync.Mutex
		now := time.Now().UTC()
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		log := audit.New(clock)
		f.PutIssuer(t, db)
		deps := f.Deps(db, log)
		deps.Now = clock
		signer, err := ocspsign.New(0, 0, clock)
		if err != nil {
			t.Fatal(err)
		}
		deps.OCSP = signer
		authority, err := ca.New(deps)
		if err != nil {
			t.Fatal(err)
		}
		revoked := issueSign(t, authority)
		good := issueSign(t, authority)
		// A signer that ends in 3 days, less than a response's 4.
		short, _ := f.NewResponder(t, 77, now.Add(-time.Hour), 3, nil)
		if err := authority.UseResponder(short); err != nil {
			t.Fatal(err)
		}
		if err := authority.Revoke(ctx, revoked.SerialNumber.Bytes(), 1, "officer:test"); err != nil {
			t.Fatal(err)
		}
		answer := func(c *x509.Certificate) store.OCSPResponse {
			t.Helper()
			r, err := db.OCSPResponse(ctx, "issuing", c.SerialNumber.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		revokedBefore, goodBefore := answer(revoked), answer(good)
		builder, err := crl.New(db, log, f.Linter, crl.Config{}, clock)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := ca.NewPublisher(authority, builder, ca.PublishConfig{})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		now = now.Add(3*24*time.Hour + time.Hour)
		mu.Unlock()
		n, err := pub.RefreshOCSP(ctx)
		if n != 1 || err == nil || !strings.Contains(err.Error(), "only the revoked answers, signed by the issuing CA") {
			t.Errorf("refresh without a signer: %d stored, %v; want 1 and why", n, err)
		}
		after := answer(revoked)
		parsed, perr := ocsp.ParseResponse(after.DER, f.Issuer.Certificate)
		if !after.ThisUpdate.After(revokedBefore.ThisUpdate) || perr != nil || parsed.Status != ocsp.Revoked || parsed.Certificate != nil {
			t.Errorf("the revoked answer: thisUpdate %s (was %s), %v; want re-signed by the issuing CA itself", after.ThisUpdate, revokedBefore.ThisUpdate, perr)
		}
		if g := answer(good); !g.ThisUpdate.Equal(goodBefore.ThisUpdate) {
			t.Errorf("the good answer was re-signed without a signer: %s", g.ThisUpdate)
		}
	})
}
