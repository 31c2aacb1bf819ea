package ra_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/policies"
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

// outboxMessage reads the outbox's message <name>.json, if it was written.
func (fx *raFixture) outboxMessage(t *testing.T, name string) (ra.Message, bool) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fx.outbox, name+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return ra.Message{}, false
	}
	var m ra.Message
	if err != nil || json.Unmarshal(raw, &m) != nil || !strings.HasPrefix(name, m.EnrollmentID+".") {
		t.Fatalf("outbox %s: %v %s", name, err, raw)
	}
	return m, true
}

// enrollmentOf is the id of the enrollment certificate c was issued for.
func (fx *raFixture) enrollmentOf(t *testing.T, c *x509.Certificate) string {
	t.Helper()
	row, err := fx.db.Certificate(t.Context(), "issuing", c.SerialNumber.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return row.EnrollmentID
}

// newNoticeFixture is the RA fixture with a clock that tests move on, a
// gateway they can take down, and a registry they can change.
func newNoticeFixture(t *testing.T, driver string) (*raFixture, *clock, *switchNotifier, *changingRegistry) {
	t.Helper()
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	clock := &clock{}
	gateway := &switchNotifier{}
	reg := &changingRegistry{}
	fx := newRAFixture(t, f, driver, func(d *ra.Deps) {
		gateway.Notifier, d.Notifier = d.Notifier, gateway
		reg.Registry, d.Registry = d.Registry, reg
		d.Now = clock.Now
		d.PublicURL = "https://ra.example.kz"
	})
	return fx, clock, gateway, reg
}

func testRevocationNotice(t *testing.T, driver string) {
	fx, clock, gateway, reg := newNoticeFixture(t, driver)
	ctx := t.Context()
	message := func(c *x509.Certificate, reason string) (ra.Message, bool) {
		t.Helper()
		return fx.outboxMessage(t, fx.enrollmentOf(t, c)+"."+jwsauth.SerialHex(c.SerialNumber)+"."+reason)
	}
	told := func(what string, c *x509.Certificate, reason string) {
		t.Helper()
		m, ok := message(c, reason)
		serial := jwsauth.SerialHex(c.SerialNumber)
		if !ok || m.To != "+77017431862" || m.Channel != "sms" || m.Code != "" || m.Event != ra.EventRevoked || m.Serial != serial || m.Reason != reason ||
			!strings.Contains(m.Notice, serial) || !strings.Contains(m.Notice, "("+reason+")") {
			t.Errorf("%s: notice %+v (written: %v), want one to the registry's phone naming %s and %s", what, m, ok, serial, reason)
		}
	}
	// notice is the latest notice of c's revocation: "<reason> <outcome>".
	notice := func(c *x509.Certificate) string {
		t.Helper()
		reason, outcome, err := fx.db.RevocationNotice(ctx, "issuing", c.SerialNumber.Bytes())
		if errors.Is(err, store.ErrNotFound) {
			return "none"
		}
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d %s", reason, outcome)
	}
	// events are the audited notices with outcome, their details.
	events := func(outcome string) []string {
		t.Helper()
		rows, err := fx.raw.QueryContext(ctx, fx.q(`SELECT details FROM audit_events WHERE action = 'certificate.revoke.notice' AND details LIKE $1 ORDER BY seq`),
			`%"outcome":"`+outcome+`"%`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
		}
		return out
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
	officerRevoke := func(c *x509.Certificate, reason string) answer {
		t.Helper()
		return fx.act(t, signAction(t, fx.officer, jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: jwsauth.SerialHex(c.SerialNumber), Reason: reason}, clock.Now()))
	}
	sweep := func() int {
		t.Helper()
		n, err := fx.svc.NoticeRevoked(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	revokeAtCA := func(c *x509.Certificate) {
		t.Helper()
		if err := fx.ca.Revoke(ctx, c.SerialNumber.Bytes(), 5, "test"); err != nil {
			t.Fatal(err)
		}
	}

	// The holder revokes: told at once; the audit event names the masked
	// contact, never the national identifier.
	aKey := newKey(t)
	a := fx.certified(t, aKey, "citizen-auth")
	holderRevoke(a, aKey, "superseded", http.StatusOK)
	told("the holder's own revocation", a, "superseded")
	// The holder is named by the serial as the API and openssl write it,
	// leading zero included (big.Int's %X drops it).
	var actor string
	if err := fx.raw.QueryRowContext(ctx, fx.q(`SELECT actor FROM audit_events WHERE action = 'certificate.revoke' AND object LIKE $1`),
		"%/"+strings.ToLower(jwsauth.SerialHex(a.SerialNumber))).Scan(&actor); err != nil {
		t.Fatal(err)
	}
	if want := "holder:" + jwsauth.SerialHex(a.SerialNumber); actor != want || !strings.HasPrefix(want, "holder:0") {
		t.Errorf("the holder's revocation is audited as done by %q, want %q", actor, want)
	}
	// The enrollment stays issued; its view says the certificate is not.
	enrollmentView := func(c *x509.Certificate) ra.View {
		t.Helper()
		var id string
		if err := fx.raw.QueryRowContext(ctx, fx.q(`SELECT enrollment_id FROM certificates WHERE serial = $1`), c.SerialNumber.Bytes()).Scan(&id); err != nil {
			t.Fatal(err)
		}
		code, raw := fx.do(t, http.MethodGet, "/api/v1/enrollments/"+id, nil, nil)
		var v ra.View
		if code != http.StatusOK || json.Unmarshal(raw, &v) != nil {
			t.Fatalf("GET %s: %d %s", id, code, raw)
		}
		return v
	}
	if v := enrollmentView(a); v.State != store.StateIssued || v.CertificateStatus != store.StatusRevoked || v.RevocationReason != "superseded" || v.RevokedAt.IsZero() {
		t.Errorf("the enrollment after the holder revoked: state %s, certificate %s at %s (%s)", v.State, v.CertificateStatus, v.RevokedAt, v.RevocationReason)
	}
	if got := notice(a); got != "4 sent" {
		t.Errorf("its notice: %s, want 4 sent", got)
	}
	if ev := events(store.NoticeSent); len(ev) != 1 || !strings.Contains(ev[0], `"to":"+77*******62"`) || !strings.Contains(ev[0], `"channel":"sms"`) ||
		strings.Contains(ev[0], "880312448217") || strings.Contains(ev[0], "7431862") {
		t.Errorf("audited notices: %q, want one with the phone masked and no identifier", ev)
	}
	holderRevoke(a, aKey, "superseded", http.StatusForbidden) // certificate-revoked
	if n := sweep(); n != 0 || len(events(store.NoticeSent)) != 1 {
		t.Errorf("after a second request and a sweep: %d told, %d audited; want 0, 1", n, len(events(store.NoticeSent)))
	}
	// The key turns out compromised: the raised reason is told too, beside
	// the first notice.
	holderRevoke(a, aKey, "keyCompromise", http.StatusOK)
	told("the raise to keyCompromise", a, "keyCompromise")
	if v := enrollmentView(a); v.CertificateStatus != store.StatusRevoked || v.RevocationReason != "keyCompromise" {
		t.Errorf("the enrollment after the raise: certificate %s (%s)", v.CertificateStatus, v.RevocationReason)
	}
	told("the first notice, after the raise", a, "superseded")
	if got := notice(a); got != "1 sent" || len(events(store.NoticeSent)) != 2 {
		t.Errorf("the raise's notice: %s, %d audited; want 1 sent, 2", got, len(events(store.NoticeSent)))
	}

	// An officer revokes: told at once.
	b := fx.certified(t, newKey(t), "citizen-auth")
	answer{status: http.StatusOK}.check(t, "an officer's revocation", officerRevoke(b, "privilegeWithdrawn"))
	told("an officer's revocation", b, "privilegeWithdrawn")

	// The CA alone revokes: told by the sweep, once.
	c := fx.certified(t, newKey(t), "citizen-auth")
	revokeAtCA(c)
	if _, ok := message(c, "cessationOfOperation"); ok {
		t.Fatal("told of a CA revocation before any sweep")
	}
	if n := sweep(); n != 1 {
		t.Errorf("the sweep told %d, want 1", n)
	}
	told("a revocation at the CA alone", c, "cessationOfOperation")
	if n := sweep(); n != 0 || len(events(store.NoticeSent)) != 4 {
		t.Errorf("a second sweep told %d, %d audited in all; want 0, 4", n, len(events(store.NoticeSent)))
	}

	// waitsOutClaim checks that the notice of c, which could not be sent,
	// stays claimed, is not sent again until its claim is stale, and is
	// then sent by the next sweep, the sent-th audited.
	waitsOutClaim := func(what string, c *x509.Certificate, code int, reason string, sent int) {
		t.Helper()
		sweep()
		if got, want := notice(c), fmt.Sprintf("%d ", code); got != want {
			t.Errorf("%s: %q, want claimed (%q)", what, got, want)
		}
		if _, ok := message(c, reason); ok {
			t.Errorf("%s: sent again before its claim went stale", what)
		}
		clock.Add(6 * time.Minute)
		sweep()
		told(what+", after its claim", c, reason)
		if n := len(events(store.NoticeSent)); n != sent {
			t.Errorf("%s: %d notices audited, want %d", what, n, sent)
		}
	}
	// The gateway is down: the revocation stands, the notice waits.
	dKey := newKey(t)
	d := fx.certified(t, dKey, "citizen-auth")
	gateway.down.Store(true)
	holderRevoke(d, dKey, "superseded", http.StatusOK)
	gateway.down.Store(false)
	// For a minute after, a revocation does not wait on the gateway: its
	// notice is left to the sweep.
	d2Key := newKey(t)
	d2 := fx.certified(t, d2Key, "citizen-auth")
	holderRevoke(d2, d2Key, "superseded", http.StatusOK)
	if _, ok := message(d2, "superseded"); ok || notice(d2) != "none" {
		t.Errorf("a revocation within a minute of a notice refused: told %v, %s; want left to the sweep", ok, notice(d2))
	}
	waitsOutClaim("a notice the gateway refused", d, 4, "superseded", 6)
	told("a notice left to the sweep", d2, "superseded")
	// The registry is down: the sweep stops at the first notice, which
	// waits; the next is not even tried, and goes with the next sweep.
	g := fx.certified(t, newKey(t), "citizen-auth")
	g2 := fx.certified(t, newKey(t), "citizen-auth")
	reg.set(func() { reg.down = true })
	revokeAtCA(g)
	revokeAtCA(g2)
	if _, err := fx.svc.NoticeRevoked(ctx); !errors.Is(err, registry.ErrUnavailable) {
		t.Errorf("a sweep while the registry is down: %v, want ErrUnavailable", err)
	}
	if notice(g) == "none" { // the CA's clock stands still: the serial decides the order
		g, g2 = g2, g
	}
	if got := notice(g) + ", " + notice(g2); got != "5 , none" {
		t.Errorf("two notices while the registry is down: %s, want the first claimed and the second not tried (5 , none)", got)
	}
	reg.set(func() { reg.down = false })
	waitsOutClaim("a notice the registry could not answer for", g, 5, "cessationOfOperation", 8)
	told("the notice after it", g2, "cessationOfOperation")
	// The gateway was down when the holder revoked; an officer's revocation
	// of the same certificate, refused as already made, sends the notice
	// once the claim is stale.
	hKey := newKey(t)
	h := fx.certified(t, hKey, "citizen-auth")
	gateway.down.Store(true)
	holderRevoke(h, hKey, "superseded", http.StatusOK)
	gateway.down.Store(false)
	clock.Add(6 * time.Minute)
	// Refused with the reason named, as the API names reasons.
	status, raw := fx.do(t, http.MethodPost, "/api/v1/officer/actions", joseHeader(),
		signAction(t, fx.officer, jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: jwsauth.SerialHex(h.SerialNumber), Reason: "superseded"}, clock.Now()))
	if status != http.StatusConflict || !strings.Contains(string(raw), "already-revoked") || !strings.Contains(string(raw), "(superseded)") {
		t.Errorf("an officer's revocation of a revoked certificate: %d %s, want 409 already-revoked naming superseded", status, raw)
	}
	told("a notice sent by a repeated revocation", h, "superseded")

	// A notice the gateway refuses every time holds up no other: neither a
	// new one, nor, when it is tried again, another retry.
	pk := fx.certified(t, newKey(t), "citizen-auth")
	q := fx.certified(t, newKey(t), "citizen-auth")
	gateway.refused.Store(jwsauth.SerialHex(pk.SerialNumber), true)
	revokeAtCA(pk)
	if _, err := fx.svc.NoticeRevoked(ctx); err == nil {
		t.Error("a sweep whose notice the gateway refused: no error")
	}
	clock.Add(6 * time.Minute)
	revokeAtCA(q)
	if n, err := fx.svc.NoticeRevoked(ctx); n != 1 || err == nil {
		t.Errorf("a sweep with a new notice and a stale one the gateway refuses: %d told (%v), want 1 and an error", n, err)
	}
	told("a new notice behind one refused every time", q, "cessationOfOperation")
	if got := notice(pk); got != "5 " {
		t.Errorf("the notice refused every time: %q, want claimed", got)
	}

	// Nobody to tell: the registry no longer has the holder, or has no
	// phone or e-mail for them. Audited as no-contact, never tried again.
	e := fx.certified(t, newKey(t), "citizen-auth")
	m := fx.certified(t, newKey(t), "citizen-auth")
	reg.set(func() { reg.gone = map[string]bool{"KZ:880312448217": true} })
	revokeAtCA(e)
	sweep()
	reg.set(func() { reg.gone, reg.mute = nil, map[string]bool{"KZ:880312448217": true} })
	revokeAtCA(m)
	sweep()
	reg.set(func() { reg.mute = nil })
	sweep()
	if got, ev := notice(e)+", "+notice(m), events(store.NoticeNoContact); got != "5 no-contact, 5 no-contact" || len(ev) != 2 ||
		!strings.Contains(ev[0], "the registry no longer has the holder") || !strings.Contains(ev[1], "no phone or e-mail") {
		t.Errorf("holders nobody can tell: %s, audited %q; want no-contact twice, each saying why", got, ev)
	}
	// Records that name nobody the registry could know: no-contact, saying
	// why, the identifier masked.
	corrupt := func(proofing string) *x509.Certificate {
		t.Helper()
		c := fx.certified(t, newKey(t), "citizen-auth")
		row, err := fx.db.Certificate(ctx, "issuing", c.SerialNumber.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fx.raw.ExecContext(ctx, fx.q(`UPDATE enrollments SET proofing = $1 WHERE id = $2`), proofing, row.EnrollmentID); err != nil {
			t.Fatal(err)
		}
		revokeAtCA(c)
		return c
	}
	unreadable, unknown := corrupt(`{"person": `), corrupt(`{"person": "IDCKZ880312448217"}`)
	sweep()
	if got, ev := notice(unreadable)+", "+notice(unknown), events(store.NoticeNoContact); got != "5 no-contact, 5 no-contact" || len(ev) != 4 ||
		!strings.Contains(strings.Join(ev[2:], " "), "proofing record cannot be read") ||
		!strings.Contains(strings.Join(ev[2:], " "), "no person the registry knows") || strings.Contains(strings.Join(ev[2:], " "), "880312448217") {
		t.Errorf("records that name nobody: %s, audited %q; want no-contact twice, saying why, the identifier masked", got, ev)
	}
	for _, c := range []*x509.Certificate{e, m, unreadable, unknown} {
		if _, ok := message(c, "cessationOfOperation"); ok {
			t.Errorf("%X: a holder nobody could tell was sent a notice", c.SerialNumber)
		}
	}
	if n := len(events(store.NoticeSent)); n != 10 {
		t.Errorf("%d notices sent, want still 10", n)
	}
}

// TestOutcomeNotice: the applicant of an enrollment that waited for
// officers is told how it ended (issued with its serial, rejected with the
// officers' reason, failed, lapsed), in the outbox beside the code, and each
// notice is audited; an auto enrollment, answered in the request, is not
// told; a notice the gateway refused is kept, and the sweep sends it.
func TestOutcomeNotice(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) { testOutcomeNotice(t, driver) })
	}
}

func testOutcomeNotice(t *testing.T, driver string) {
	fx, clock, gateway, reg := newNoticeFixture(t, driver)
	ctx := t.Context()
	told := func(id, event string) (ra.Message, bool) {
		t.Helper()
		m, ok := fx.outboxMessage(t, id+"."+event)
		if ok && (m.Event != event || m.To != "+77017431862" || m.Code != "" || !strings.Contains(m.Notice, id)) {
			t.Fatalf("%s notice of %s: %+v", event, id, m)
		}
		return m, ok
	}
	audited := func() int {
		t.Helper()
		var n int
		if err := fx.raw.QueryRowContext(ctx, fx.q(`SELECT count(*) FROM audit_events WHERE action = 'enrollment.notice'`)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	decide := func(a jwsauth.Action) answer {
		t.Helper()
		return fx.act(t, signAction(t, fx.officer, a, clock.Now()))
	}

	// stopBeforeRA undoes the RA's last transaction of an issued
	// enrollment, as a stop between the CA's commit and the RA's leaves it.
	stopBeforeRA := func(id string) {
		t.Helper()
		for _, undo := range []string{`UPDATE enrollments SET state = 'approved' WHERE id = $1`, `DELETE FROM outcome_notices WHERE enrollment_id = $1`} {
			if _, err := fx.raw.ExecContext(ctx, fx.q(undo), id); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Approved: issued, told with the serial.
	issued := fx.proved(t, citizen(), "citizen-sign")
	answer{status: http.StatusOK, state: store.StateIssued}.check(t, "approval", decide(approve(issued)))
	certs, err := fx.db.CertificatesOfEnrollment(ctx, issued)
	if err != nil || len(certs) != 1 {
		t.Fatalf("certificates of %s: %v %v", issued, certs, err)
	}
	// The notice links the enrollment where the applicant reads it.
	if m, ok := told(issued, ra.EventIssued); !ok || m.Serial != fmt.Sprintf("%X", certs[0].Serial) || !strings.Contains(m.Notice, m.Serial) ||
		!strings.HasSuffix(m.Notice, " is issued: https://ra.example.kz/api/v1/enrollments/"+issued) {
		t.Errorf("issued notice: %+v (%v), want the serial %X", m, ok, certs[0].Serial)
	}
	// A stop between the CA's commit and the RA's (which would have
	// recorded the notice): Resume finds the certificate, and tells the
	// applicant then.
	if err := os.Remove(filepath.Join(fx.outbox, issued+".issued.json")); err != nil {
		t.Fatal(err)
	}
	stopBeforeRA(issued)
	clock.Add(2 * time.Minute)
	if n, err := fx.svc.Resume(ctx, time.Minute); err != nil || n != 1 {
		t.Fatalf("Resume: %d, %v", n, err)
	}
	if m, ok := told(issued, ra.EventIssued); !ok || m.Serial != fmt.Sprintf("%X", certs[0].Serial) {
		t.Errorf("issued notice after Resume: %+v (%v), want the serial %X", m, ok, certs[0].Serial)
	}
	// The same stop, and the certificate revoked before Resume (at the CA
	// alone, say): its revocation notice tells the holder, not "issued".
	withdrawn := fx.proved(t, citizen(), "citizen-sign")
	answer{status: http.StatusOK, state: store.StateIssued}.check(t, "approval", decide(approve(withdrawn)))
	wcerts, err := fx.db.CertificatesOfEnrollment(ctx, withdrawn)
	if err != nil || len(wcerts) != 1 {
		t.Fatalf("certificates of %s: %v %v", withdrawn, wcerts, err)
	}
	stopBeforeRA(withdrawn)
	if err := fx.ca.Revoke(ctx, wcerts[0].Serial, 9, "test"); err != nil { // privilegeWithdrawn
		t.Fatal(err)
	}
	clock.Add(2 * time.Minute)
	if n, err := fx.svc.Resume(ctx, time.Minute); err != nil || n != 1 {
		t.Fatalf("Resume: %d, %v", n, err)
	}
	if n, err := fx.db.OutcomeNoticeOf(ctx, withdrawn); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("outcome notice of a certificate revoked before Resume: %+v, %v; want none", n, err)
	}
	// Rejected: told with the officers' reason.
	rejected := fx.proved(t, citizen(), "citizen-sign")
	answer{status: http.StatusOK, state: store.StateRejected}.check(t, "rejection",
		decide(jwsauth.Action{Action: jwsauth.ActionReject, Enrollment: rejected, Reason: "the photo does not match"}))
	if m, ok := told(rejected, ra.EventRejected); !ok || !strings.HasSuffix(m.Notice, "was rejected: the photo does not match") {
		t.Errorf("rejected notice: %+v (%v), want the officers' reason", m, ok)
	}
	answer{status: http.StatusConflict, problem: "wrong-state"}.check(t, "a second rejection",
		decide(jwsauth.Action{Action: jwsauth.ActionReject, Enrollment: rejected, Reason: "again"}))
	// Auto: answered in the request, not told.
	auto, code := fx.enroll(t, citizen(), "citizen-auth")
	if a := fx.proof(t, auto, code); a.state != store.StateIssued {
		t.Fatalf("auto enrollment: %+v", a)
	}
	if _, ok := told(auto, ra.EventIssued); ok {
		t.Error("an auto enrollment was told it was issued")
	}
	if n := audited(); n != 4 {
		t.Errorf("%d notices audited, want 4 (issued twice, again after Resume, rejected)", n)
	}
	// The gateway down: the approval stands, the notice keeps its claim,
	// nothing is audited; for a minute after, no notice is tried at once
	// (not waiting on a gateway down), then they are again. Neither is
	// lost: the sweep sends the one never tried first, and the other once
	// its claim is stale.
	sweep := func(want int) {
		t.Helper()
		if n, err := fx.svc.NoticeOutcomes(ctx); err != nil || n != want {
			t.Errorf("NoticeOutcomes: %d, %v; want %d", n, err, want)
		}
	}
	notice := func(id string) store.OutcomeNotice {
		t.Helper()
		n, err := fx.db.OutcomeNoticeOf(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	down := fx.proved(t, citizen(), "citizen-sign")
	gateway.down.Store(true)
	answer{status: http.StatusOK, state: store.StateIssued}.check(t, "approval with the gateway down", decide(approve(down)))
	gateway.down.Store(false)
	quiet := fx.proved(t, citizen(), "citizen-sign")
	answer{status: http.StatusOK, state: store.StateIssued}.check(t, "approval just after", decide(approve(quiet)))
	if _, ok := told(down, ra.EventIssued); ok || audited() != 4 {
		t.Errorf("with the gateway down: told %v, %d audited; want not, 4", ok, audited())
	}
	if n := notice(down); n.Event != store.StateIssued || !n.Claimed || n.Outcome != "" || len(n.Serial) == 0 {
		t.Errorf("the notice the gateway refused: %+v, want issued, claimed, not ended, with its serial", n)
	}
	if _, ok := told(quiet, ra.EventIssued); ok {
		t.Error("a notice was tried within a minute of one the gateway refused")
	}
	if n := notice(quiet); n.Claimed || n.Outcome != "" {
		t.Errorf("the notice left to the sweep: %+v, want not tried", n)
	}
	if unsent, err := fx.db.UnsentOutcomeNotices(ctx); err != nil || unsent != 2 {
		t.Errorf("unsent outcome notices: %d, %v; want 2", unsent, err)
	}
	clock.Add(2 * time.Minute)
	again := fx.proved(t, citizen(), "citizen-sign")
	answer{status: http.StatusOK, state: store.StateIssued}.check(t, "approval two minutes later", decide(approve(again)))
	if _, ok := told(again, ra.EventIssued); !ok || audited() != 5 {
		t.Errorf("two minutes after: told %v, %d audited; want told, 5", ok, audited())
	}
	sweep(1) // the one never tried; the refused one's claim is not stale yet
	if _, ok := told(quiet, ra.EventIssued); !ok {
		t.Error("the sweep did not send the notice left to it")
	}
	if _, ok := told(down, ra.EventIssued); ok {
		t.Error("the sweep took over a claim that is not stale")
	}
	clock.Add(4 * time.Minute)
	sweep(1)
	if m, ok := told(down, ra.EventIssued); !ok || m.Serial != fmt.Sprintf("%X", notice(down).Serial) {
		t.Errorf("the notice the gateway refused, after its claim went stale: %+v (%v)", m, ok)
	}
	sweep(0)
	if n := notice(down); n.Outcome != store.NoticeSent || audited() != 7 {
		t.Errorf("after the sweeps: %+v, %d audited; want sent, 7", n, audited())
	}
	// Lapsed while the officers did not decide.
	lapsed := fx.proved(t, citizen(), "citizen-sign")
	clock.Add(fx.deps.Policy.EnrollmentTTL + time.Hour)
	if n, err := fx.svc.ExpireLapsed(ctx, 100); err != nil || n != 2 {
		t.Fatalf("ExpireLapsed: %d, %v; want 2 (and the fixture's, waiting for its code)", n, err)
	}
	if _, ok := told(lapsed, ra.EventExpired); !ok {
		t.Error("a lapsed enrollment was not told")
	}
	if _, ok := told(fx.pending, ra.EventExpired); ok {
		t.Error("an enrollment that lapsed waiting for its code was told")
	}
	// A lapse an officer's decision finds: told as well.
	late := fx.proved(t, citizen(), "citizen-sign")
	clock.Add(fx.deps.Policy.EnrollmentTTL + time.Hour)
	answer{status: http.StatusGone, problem: "enrollment-expired"}.check(t, "approval after the lapse", decide(approve(late)))
	if _, ok := told(late, ra.EventExpired); !ok {
		t.Error("a lapse found by an officer's decision was not told")
	}
	// Approved, but the registry records the person as dead since: failed.
	failed := fx.proved(t, citizen(), "citizen-sign")
	reg.set(func() { reg.dead = map[string]bool{"KZ:880312448217": true} })
	answer{status: 422, problem: "issuance-failed"}.check(t, "approval of a person since deceased", decide(approve(failed)))
	if _, ok := told(failed, ra.EventFailed); !ok {
		t.Error("a failed enrollment was not told")
	}
	if n := audited(); n != 10 {
		t.Errorf("%d notices audited, want 10", n)
	}
	if unsent, err := fx.db.UnsentOutcomeNotices(ctx); err != nil || unsent != 0 {
		t.Errorf("unsent outcome notices: %d, %v; want 0", unsent, err)
	}
}

// TestExpiryReminder: a holder is reminded once, at the registry's
// contact, when a certificate they received comes within
// expiry_notice_days of its expiry; not before, not for one renewed or
// revoked, and not at all with the policy at 0.
func TestExpiryReminder(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) { testExpiryReminder(t, driver) })
	}
}

func testExpiryReminder(t *testing.T, driver string) {
	fx, clock, gateway, _ := newNoticeFixture(t, driver)
	ctx := t.Context()
	reminded := func(c *x509.Certificate) (ra.Message, bool) {
		t.Helper()
		return fx.outboxMessage(t, fx.enrollmentOf(t, c)+"."+ra.EventExpiring)
	}
	sweep := func() int {
		t.Helper()
		n, err := fx.svc.NoticeExpiring(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	outcome := func(c *x509.Certificate) string {
		t.Helper()
		got, err := fx.db.ExpiryNotice(ctx, "issuing", c.SerialNumber.Bytes())
		if errors.Is(err, store.ErrNotFound) {
			return "none"
		}
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	aKey, bKey := newKey(t), newKey(t)
	a := fx.certified(t, aKey, "citizen-auth")
	b := fx.certified(t, bKey, "citizen-auth")
	renewed, rv, _ := fx.renew(t, b, renewJWS(t, identity{b, bKey}, newKey(t), clock.Now()))
	if renewed.status != http.StatusCreated || rv.State != store.StateIssued {
		t.Fatalf("renewal: %+v", renewed)
	}
	b2 := parseCertPEM(t, rv.Certificate) // expires with the others: the CA's clock stands still
	revoked := fx.certified(t, newKey(t), "citizen-auth")
	if err := fx.ca.Revoke(ctx, revoked.SerialNumber.Bytes(), 4, "test"); err != nil {
		t.Fatal(err)
	}
	// A citizen-sign certificate whose renewal waits for officers.
	sKey := newKey(t)
	sc := fx.certified(t, sKey, "citizen-sign")
	pending, pv, _ := fx.renew(t, sc, renewJWS(t, identity{sc, sKey}, newKey(t), clock.Now()))
	if pending.status != http.StatusCreated || pv.State != store.StatePendingApproval {
		t.Fatalf("citizen-sign renewal: %+v", pending)
	}
	if n := sweep(); n != 0 {
		t.Errorf("three years before expiry: %d reminded, want 0", n)
	}
	// Within the policy's 30 days of a's expiry (the CA's certificates all
	// expire within the same second): a is reminded, the renewed b is
	// ended as renewed without a message, the revoked one is left alone.
	clock.Add(time.Until(a.NotAfter) - 20*24*time.Hour)
	gateway.down.Store(true)
	first, err := fx.svc.NoticeExpiring(ctx) // ends b's, if before the first it cannot send
	if err == nil {
		t.Error("a sweep with the gateway down: no error")
	}
	gateway.down.Store(false)
	clock.Add(6 * time.Minute)
	if n := first + sweep(); n != 3 {
		t.Errorf("within 30 days: %d reminders ended, want 3 (a and b's renewal sent, b renewed)", n)
	}
	m, ok := reminded(a)
	serial := jwsauth.SerialHex(a.SerialNumber)
	if !ok || m.Event != ra.EventExpiring || m.Serial != serial || m.To != "+77017431862" || m.Code != "" ||
		!strings.Contains(m.Notice, serial) || !strings.Contains(m.Notice, a.NotAfter.UTC().Format("2006-01-02")+" UTC") ||
		!strings.Contains(m.Notice, "/api/v1/certificates/"+serial+"/renew") {
		t.Errorf("a's reminder: %+v (%v)", m, ok)
	}
	if _, ok := reminded(b); ok || outcome(b) != store.NoticeRenewed || outcome(a) != store.NoticeSent || outcome(b2) != store.NoticeSent || outcome(revoked) != "none" {
		t.Errorf("b reminded %v; outcomes a %s, b %s, b's renewal %s, revoked %s; want a sent, b renewed, b's renewal sent, revoked none",
			ok, outcome(a), outcome(b), outcome(b2), outcome(revoked))
	}
	if n := sweep(); n != 0 {
		t.Errorf("a second sweep reminded %d, want 0", n)
	}
	// The renewal waiting for officers held the reminder back; lapsed (as
	// it has, years later), it lets the reminder go.
	if _, ok := reminded(sc); ok || outcome(sc) != "" {
		t.Errorf("a certificate whose renewal waits: reminded %v, %q; want not, claimed", ok, outcome(sc))
	}
	if _, err := fx.svc.ExpireLapsed(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if got, err := fx.db.Enrollment(ctx, pv.ID); err != nil || got.State != store.StateExpired {
		t.Fatalf("the renewal after ExpireLapsed: %s (%v), want expired", got.State, err)
	}
	clock.Add(6 * time.Minute)
	if n := sweep(); n != 1 || outcome(sc) != store.NoticeSent {
		t.Errorf("after the renewal was rejected: %d reminded, %q; want 1, sent", n, outcome(sc))
	}
	var audited int
	if err := fx.raw.QueryRowContext(ctx, fx.q(`SELECT count(*) FROM audit_events WHERE action = 'certificate.expiry.notice'`)).Scan(&audited); err != nil || audited != 4 {
		t.Errorf("%d reminders audited (%v), want 4", audited, err)
	}
	// Expired: no reminder for what is past.
	c := fx.certified(t, newKey(t), "citizen-auth")
	clock.Add(40 * 24 * time.Hour)
	if n := sweep(); n != 0 || outcome(c) != "none" {
		t.Errorf("after expiry: %d reminded, %s", n, outcome(c))
	}
}

// TestExpiryReminderOff: expiry_notice_days 0 sends no reminder; the
// shipped policy reminds 30 days before, and days out of 0..365 are
// refused.
func TestExpiryReminderOff(t *testing.T) {
	profiles, err := profile.LoadAll(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	if shipped, err := ra.LoadPolicy(policies.FS, profiles); err != nil || shipped.ExpiryNotice != 30*24*time.Hour {
		t.Errorf("the shipped policy: reminders %v before (%v), want 30 days", shipped.ExpiryNotice, err)
	}
	raw, err := policies.FS.ReadFile("ra.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, days := range []string{"-1", "366"} {
		bad := strings.Replace(string(raw), "expiry_notice_days: 30", "expiry_notice_days: "+days, 1)
		if _, err := ra.LoadPolicy(fstest.MapFS{"ra.yaml": {Data: []byte(bad)}}, profiles); err == nil || !strings.Contains(err.Error(), "expiry_notice_days") {
			t.Errorf("expiry_notice_days %s: %v, want refused", days, err)
		}
	}

	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	clock := &clock{}
	fx := newRAFixture(t, f, storetest.Drivers()[0], func(d *ra.Deps) {
		d.Policy.ExpiryNotice = 0
		d.Now = clock.Now
	})
	a := fx.certified(t, newKey(t), "citizen-auth")
	ahead := time.Until(a.NotAfter) - 24*time.Hour
	clock.Add(ahead)
	if n, err := fx.svc.NoticeExpiring(t.Context()); n != 0 || err != nil {
		t.Errorf("with expiry_notice_days 0: %d reminded, %v", n, err)
	}

	// With renewal off, the reminder says to enroll again.
	noRenewal := newRAFixture(t, f, storetest.Drivers()[0], func(d *ra.Deps) {
		d.Policy.RenewalIdentityAge = 0
		d.Now = clock.Now
	})
	clock.Add(-ahead) // back to now
	b := noRenewal.certified(t, newKey(t), "citizen-auth")
	clock.Add(time.Until(b.NotAfter) - 24*time.Hour)
	if n, err := noRenewal.svc.NoticeExpiring(t.Context()); n != 1 || err != nil {
		t.Fatalf("with renewal off: %d reminded, %v", n, err)
	}
	if m, ok := noRenewal.outboxMessage(t, noRenewal.enrollmentOf(t, b)+"."+ra.EventExpiring); !ok ||
		!strings.HasSuffix(m.Notice, "UTC. Enroll again before then.") || strings.Contains(m.Notice, "renew") {
		t.Errorf("the reminder with renewal off: %+v (%v)", m, ok)
	}
}
