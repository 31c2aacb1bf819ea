package ra_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/ra"
	"github.com/sanadpki/sanad/ra/jwsauth"
	"github.com/sanadpki/sanad/ra/registry"
)

// TestRevocationNotice: a holder is told at the registry's contact of each
// revocation of a certificate they received, whoever revoked it, once per
// reason; a notice that cannot be sent is tried again once its claim is
// stale, and one with nobody to tell is audited as such and not retried.
func TestRevocationNotice(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) { testRevocationNotice(t, driver) })
	}
}

func testRevocationNotice(t *testing.T, driver string) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	clock := &clock{}
	gateway := &switchNotifier{}
	reg := &changingRegistry{}
	fx := newRAFixture(t, f, driver, func(d *ra.Deps) {
		gateway.Notifier, d.Notifier = d.Notifier, gateway
		reg.Registry, d.Registry = d.Registry, reg
		d.Now = clock.Now
	})
	ctx := t.Context()
	message := func(c *x509.Certificate) (ra.Message, bool) {
		t.Helper()
		row, err := fx.db.Certificate(ctx, "issuing", c.SerialNumber.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(fx.outbox, row.EnrollmentID+"."+jwsauth.SerialHex(c.SerialNumber)+".json"))
		if errors.Is(err, os.ErrNotExist) {
			return ra.Message{}, false
		}
		var m ra.Message
		if err != nil || json.Unmarshal(raw, &m) != nil || m.EnrollmentID != row.EnrollmentID {
			t.Fatalf("notice of %X: %v %s", c.SerialNumber, err, raw)
		}
		return m, true
	}
	told := func(what string, c *x509.Certificate, reason string) {
		t.Helper()
		m, ok := message(c)
		serial := jwsauth.SerialHex(c.SerialNumber)
		if !ok || m.To != "+77017431862" || m.Channel != "sms" || m.Code != "" || m.Serial != serial ||
			!strings.Contains(m.Notice, serial) || !strings.Contains(m.Notice, "("+reason+")") {
			t.Errorf("%s: notice %+v (written: %v), want one to the registry's phone naming %s and %s", what, m, ok, serial, reason)
		}
	}
	outcome := func(c *x509.Certificate, reason int) string {
		t.Helper()
		got, err := fx.db.RevocationNotice(ctx, "issuing", c.SerialNumber.Bytes(), reason)
		if errors.Is(err, store.ErrNotFound) {
			return "none"
		}
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	events := func(outcome string) int {
		t.Helper()
		var n int
		if err := fx.raw.QueryRowContext(ctx, fx.q(`SELECT count(*) FROM audit_events WHERE action = 'certificate.revoke.notice' AND details LIKE $1`),
			`%"outcome":"`+outcome+`"%`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	holderRevoke := func(c *x509.Certificate, key *ecdsa.PrivateKey, reason string, want int) {
		t.Helper()
		jws, err := jwsauth.Sign(jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: jwsauth.SerialHex(c.SerialNumber), Reason: reason, Audience: ra.AudienceRevoke}, c, key, clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if code, raw := fx.do(t, http.MethodPost, "/api/v1/certificates/"+jwsauth.SerialHex(c.SerialNumber)+"/revoke", joseHeader(), []byte(jws)); code != want {
			t.Fatalf("revoke %X for %s: %d %s, want %d", c.SerialNumber, reason, code, raw, want)
		}
	}
	sweep := func() {
		t.Helper()
		if err := fx.svc.NoticeRevoked(ctx); err != nil {
			t.Fatal(err)
		}
	}
	revokeAtCA := func(c *x509.Certificate) {
		t.Helper()
		if err := fx.ca.Revoke(ctx, c.SerialNumber.Bytes(), 5, "test"); err != nil {
			t.Fatal(err)
		}
	}

	// The holder revokes: told at once.
	aKey := newKey(t)
	a := fx.certified(t, aKey, "citizen-auth")
	holderRevoke(a, aKey, "superseded", http.StatusOK)
	told("the holder's own revocation", a, "superseded")
	if got := outcome(a, 4); got != store.NoticeSent {
		t.Errorf("its notice: %s, want sent", got)
	}
	holderRevoke(a, aKey, "superseded", http.StatusForbidden) // certificate-revoked
	sweep()
	if n := events(store.NoticeSent); n != 1 {
		t.Errorf("after a second request and a sweep: %d notices audited, want 1", n)
	}
	// The key turns out compromised: the raised reason is told too.
	holderRevoke(a, aKey, "keyCompromise", http.StatusOK)
	told("the raise to keyCompromise", a, "keyCompromise")
	if got := outcome(a, 1); got != store.NoticeSent || events(store.NoticeSent) != 2 {
		t.Errorf("the raise's notice: %s, %d audited; want sent, 2", got, events(store.NoticeSent))
	}

	// An officer revokes: told at once.
	b := fx.certified(t, newKey(t), "citizen-auth")
	answer{status: http.StatusOK}.check(t, "an officer's revocation", fx.act(t, signAction(t, fx.officer,
		jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: jwsauth.SerialHex(b.SerialNumber), Reason: "privilegeWithdrawn"}, clock.Now())))
	told("an officer's revocation", b, "privilegeWithdrawn")

	// The CA alone revokes: told by the sweep, once.
	c := fx.certified(t, newKey(t), "citizen-auth")
	revokeAtCA(c)
	if _, ok := message(c); ok {
		t.Fatal("told of a CA revocation before any sweep")
	}
	sweep()
	told("a revocation at the CA alone", c, "cessationOfOperation")
	sweep()
	if n := events(store.NoticeSent); n != 4 {
		t.Errorf("after two sweeps: %d notices audited, want 4", n)
	}

	// waitsOutClaim checks that the notice of c, which could not be sent,
	// stays claimed, is not sent again until its claim is stale, and is
	// then sent by the next sweep: the sent notices audited are then sent.
	waitsOutClaim := func(what string, c *x509.Certificate, code int, reason string, sent int) {
		t.Helper()
		sweep()
		if got := outcome(c, code); got != "" {
			t.Errorf("%s: %q, want claimed (\"\")", what, got)
		}
		if _, ok := message(c); ok {
			t.Errorf("%s: sent again before its claim went stale", what)
		}
		clock.Add(6 * time.Minute)
		sweep()
		told(what+", after its claim", c, reason)
		if n := events(store.NoticeSent); n != sent {
			t.Errorf("%s: %d notices audited, want %d", what, n, sent)
		}
	}
	// The gateway is down: the revocation stands, the notice waits.
	dKey := newKey(t)
	d := fx.certified(t, dKey, "citizen-auth")
	gateway.down.Store(true)
	holderRevoke(d, dKey, "superseded", http.StatusOK)
	gateway.down.Store(false)
	waitsOutClaim("a notice the gateway refused", d, 4, "superseded", 5)
	// The registry is down: the sweep fails, the notice waits.
	g := fx.certified(t, newKey(t), "citizen-auth")
	reg.set(func() { reg.down = true })
	revokeAtCA(g)
	if err := fx.svc.NoticeRevoked(ctx); !errors.Is(err, registry.ErrUnavailable) {
		t.Errorf("a sweep while the registry is down: %v, want ErrUnavailable", err)
	}
	reg.set(func() { reg.down = false })
	waitsOutClaim("a notice the registry could not answer for", g, 5, "cessationOfOperation", 6)

	// The registry no longer has the holder: audited as no-contact, not
	// tried again when it has.
	e := fx.certified(t, newKey(t), "citizen-auth")
	reg.set(func() { reg.gone = map[string]bool{"KZ:880312448217": true} })
	revokeAtCA(e)
	sweep()
	reg.set(func() { reg.gone = nil })
	sweep()
	if got := outcome(e, 5); got != store.NoticeNoContact || events(store.NoticeNoContact) != 1 {
		t.Errorf("a holder the registry forgot: %s, %d audited; want no-contact, 1", got, events(store.NoticeNoContact))
	}
	if _, ok := message(e); ok {
		t.Error("a holder the registry forgot was sent a notice")
	}
	if n := events(store.NoticeSent); n != 6 {
		t.Errorf("%d notices sent, want still 6", n)
	}
}
