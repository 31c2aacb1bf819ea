package ra_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/policies"
	"github.com/sanadpki/sanad/ra"
	"github.com/sanadpki/sanad/ra/jwsauth"
)

// TestRenew: a holder renews with a request signed by the old key and
// gets a certificate of the same profile and subject on the new key, over
// real HTTP on both databases. The same request again answers the same
// enrollment; a second renewal of one certificate, the old key again, a
// revoked certificate, an identity proven longer ago than the policy
// allows (renewals pass its age on) and a person the registry now records
// as deceased are each refused with their own problem, leaving no
// enrollment and no spent nonce behind. A profile that needs an officer
// needs one for its renewal too.
func TestRenew(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) { testRenew(t, driver) })
	}
}

func testRenew(t *testing.T, driver string) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	clk := &clock{}
	reg := &changingRegistry{dead: map[string]bool{}, closed: map[string]bool{}, noAuthority: map[string]bool{}}
	notifier := &switchNotifier{}
	fx := newRAFixture(t, f, driver, func(d *ra.Deps) {
		d.Now = clk.Now
		reg.Registry = d.Registry
		d.Registry = reg
		d.Policy.RenewalIdentityAge = 24 * time.Hour
		notifier.Notifier = d.Notifier
		d.Notifier = notifier
	})
	key := newKey(t)
	first := fx.certified(t, key, "citizen-auth")

	newer := newKey(t)
	req := renewJWS(t, identity{first, key}, newer, clk.Now())
	a, v, hdr := fx.renew(t, first, req)
	if a.status != http.StatusCreated || v.State != store.StateIssued {
		t.Fatalf("renewal: %+v", a)
	}
	second := parseCertPEM(t, v.Certificate)
	if second.Subject.String() != first.Subject.String() || !second.PublicKey.(*ecdsa.PublicKey).Equal(newer.Public()) ||
		second.SerialNumber.Cmp(first.SerialNumber) == 0 || second.CheckSignatureFrom(f.Issuer.Certificate) != nil {
		t.Errorf("renewed certificate: subject %q (was %q), serial %X (was %X), new key %v", second.Subject, first.Subject,
			second.SerialNumber, first.SerialNumber, second.PublicKey.(*ecdsa.PublicKey).Equal(newer.Public()))
	}
	if v.Renews != "issuing/"+jwsauth.SerialHex(first.SerialNumber) {
		t.Errorf("the renewal's view renews %q, want the first certificate", v.Renews)
	}
	var notice ra.Message
	if raw, err := os.ReadFile(filepath.Join(fx.outbox, v.ID+".json")); err != nil || json.Unmarshal(raw, &notice) != nil ||
		notice.Code != "" || notice.To == "" || !strings.Contains(notice.Notice, jwsauth.SerialHex(first.SerialNumber)) {
		t.Errorf("the renewal's notice to the registry's contact: %+v (%v)", notice, err)
	}
	if hdr.Get("Location") != "/api/v1/enrollments/"+v.ID || hdr.Get("Idempotent-Replayed") != "" {
		t.Errorf("renewal headers: %v", hdr)
	}
	if c, err := fx.db.CertificateOfEnrollment(t.Context(), v.ID); err != nil || c.Profile != "citizen-auth" || !bytes.Equal(c.Serial, second.SerialNumber.Bytes()) {
		t.Errorf("the renewed certificate's record: %+v, %v", c, err)
	}
	if n := fx.count(t, fx.q(`SELECT count(*) FROM registry_evidence WHERE enrollment_id = $1`), v.ID); n == 0 {
		t.Error("the renewal kept no registry evidence")
	}
	var details string
	if err := fx.raw.QueryRowContext(t.Context(), fx.q(`SELECT details FROM audit_events WHERE action = 'enrollment.renew' AND object = $1`), "enrollment/"+v.ID).Scan(&details); err != nil {
		t.Errorf("the enrollment.renew audit event: %v", err)
	} else if !strings.Contains(details, req) {
		t.Errorf("the enrollment.renew audit event keeps no signed request: %s", details)
	}

	again, av, ahdr := fx.renew(t, first, req)
	if again.status != http.StatusCreated || av.ID != v.ID || ahdr.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the same request again: %+v %v, want the enrollment %s replayed", again, ahdr, v.ID)
	}
	refused := func(what string, want answer, c *x509.Certificate, jws string) {
		t.Helper()
		before := fx.count(t, `SELECT count(*) FROM enrollments`)
		nonces := fx.count(t, `SELECT count(*) FROM signed_request_nonces`)
		got, _, _ := fx.renew(t, c, jws)
		want.check(t, what, got)
		if n, m := fx.count(t, `SELECT count(*) FROM enrollments`), fx.count(t, `SELECT count(*) FROM signed_request_nonces`); n != before || m != nonces {
			t.Errorf("%s: enrollments %d → %d, nonces %d → %d", what, before, n, nonces, m)
		}
	}
	refused("a second renewal of one certificate", answer{status: 409, problem: "already-renewed"}, first, renewJWS(t, identity{first, key}, newKey(t), clk.Now()))
	refused("the old key again", answer{status: 422, problem: "invalid-csr"}, second, renewJWS(t, identity{second, newer}, newer, clk.Now()))
	if _, raw := fx.do(t, http.MethodPost, "/api/v1/certificates/"+jwsauth.SerialHex(second.SerialNumber)+"/renew", joseHeader(),
		[]byte(renewJWS(t, identity{second, newer}, newer, clk.Now()))); !strings.Contains(string(raw), `"code":"same-key"`) {
		t.Errorf("the old key again: %s, want code same-key", raw)
	}
	refused("signed by another certificate's key", answer{status: 401, problem: "unauthorized"}, second,
		renewJWSFor(t, jwsauth.SerialHex(second.SerialNumber), fx.officer, newKey(t), clk.Now()))

	// Renewing the renewal: the identity is still the first enrollment's,
	// 12 hours old, then 25 hours old, over the policy's 24.
	clk.Add(12 * time.Hour)
	third := newKey(t)
	a, v, _ = fx.renew(t, second, renewJWS(t, identity{second, newer}, third, clk.Now()))
	if a.status != http.StatusCreated || v.State != store.StateIssued {
		t.Fatalf("renewal of the renewal: %+v", a)
	}
	thirdCert := parseCertPEM(t, v.Certificate)
	clk.Add(13 * time.Hour)
	refused("an identity proven 25 hours ago", answer{status: 409, problem: "identity-too-old"}, thirdCert, renewJWS(t, identity{thirdCert, third}, newKey(t), clk.Now()))

	fresh := newKey(t)
	freshCert := fx.certified(t, fresh, "citizen-auth")
	notifier.down.Store(true)
	downReq := renewJWS(t, identity{freshCert, fresh}, newKey(t), clk.Now())
	refused("the notice cannot be sent", answer{status: 503, problem: "notification-failed"}, freshCert, downReq)
	notifier.down.Store(false)
	reg.set(func() { reg.dead["KZ:880312448217"] = true })
	deadReq := renewJWS(t, identity{freshCert, fresh}, newKey(t), clk.Now())
	refused("a person since deceased", answer{status: 422, problem: "subject-deceased"}, freshCert, deadReq)
	reg.set(func() { reg.dead = map[string]bool{} })
	// Refused before its nonce was spent: the same request now renews.
	if a, _, _ := fx.renew(t, freshCert, deadReq); a.status != http.StatusCreated {
		t.Errorf("the refused request once the registry confirms the person: %+v", a)
	}

	revokedKey := newKey(t)
	revoked := fx.certified(t, revokedKey, "citizen-auth")
	revoke, err := jwsauth.Sign(jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: jwsauth.SerialHex(revoked.SerialNumber), Reason: "superseded", Audience: ra.AudienceRevoke},
		revoked, revokedKey, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if code, raw := fx.do(t, http.MethodPost, "/api/v1/certificates/"+jwsauth.SerialHex(revoked.SerialNumber)+"/revoke", joseHeader(), []byte(revoke)); code != http.StatusOK {
		t.Fatalf("revoke: %d %s", code, raw)
	}
	refused("a revoked certificate", answer{status: 403, problem: "certificate-revoked"}, revoked, renewJWS(t, identity{revoked, revokedKey}, newKey(t), clk.Now()))

	// The same request four times at once: one enrollment, four answers
	// naming it.
	raceKey := newKey(t)
	raced := fx.certified(t, raceKey, "citizen-auth")
	raceReq := renewJWS(t, identity{raced, raceKey}, newKey(t), clk.Now())
	var wg sync.WaitGroup
	ids, codes := make([]string, 4), make([]int, 4)
	for i := range ids {
		wg.Go(func() {
			resp, err := http.Post(fx.url+"/api/v1/certificates/"+jwsauth.SerialHex(raced.SerialNumber)+"/renew", "application/jose", strings.NewReader(raceReq))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var v ra.View
			codes[i] = resp.StatusCode
			if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
				t.Error(err)
			}
			ids[i] = v.ID
		})
	}
	wg.Wait()
	for i := range ids {
		if codes[i] != http.StatusCreated || ids[i] == "" || ids[i] != ids[0] {
			t.Errorf("the same renewal sent 4 times at once: %v %v, want 201 and one enrollment", codes, ids)
			break
		}
	}

	signKey := newKey(t)
	signCert := fx.certified(t, signKey, "citizen-sign")
	a, v, _ = fx.renew(t, signCert, renewJWS(t, identity{signCert, signKey}, newKey(t), clk.Now()))
	if a.status != http.StatusCreated || v.State != store.StatePendingApproval {
		t.Fatalf("renewal of a citizen-sign certificate: %+v, want pending_approval", a)
	}
	answer{status: 200, state: store.StateIssued}.check(t, "the officer's approval of the renewal", fx.act(t, signAction(t, fx.officer, approve(v.ID), clk.Now())))
}

// TestRenewalOff: renewal_identity_days 0 offers no renewal; the policy
// refuses a number of days out of range.
func TestRenewalOff(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	fx := newRAFixture(t, f, "sqlite", func(d *ra.Deps) { d.Policy.RenewalIdentityAge = 0 })
	key := newKey(t)
	c := fx.certified(t, key, "citizen-auth")
	a, _, _ := fx.renew(t, c, renewJWS(t, identity{c, key}, newKey(t), time.Now()))
	answer{status: 409, problem: "not-renewable"}.check(t, "renewal with renewal_identity_days 0", a)

	profiles, err := profile.LoadAll(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := ra.LoadPolicy(policies.FS, profiles)
	if err != nil || shipped.RenewalIdentityAge != 1825*24*time.Hour {
		t.Errorf("the shipped policy: renewal after %v (%v), want 1825 days", shipped.RenewalIdentityAge, err)
	}
	raw, err := policies.FS.ReadFile("ra.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, days := range []string{"-1", "3651"} {
		bad := strings.Replace(string(raw), "renewal_identity_days: 1825", "renewal_identity_days: "+days, 1)
		if _, err := ra.LoadPolicy(fstest.MapFS{"ra.yaml": {Data: []byte(bad)}}, profiles); err == nil || !strings.Contains(err.Error(), "renewal_identity_days") {
			t.Errorf("renewal_identity_days %s: %v, want refused", days, err)
		}
	}
}

// certified has the holder of key enroll for profileName, prove, and (if
// the profile needs an officer) be approved by the fixture's officer, and
// returns the certificate.
func (fx *raFixture) certified(t *testing.T, key *ecdsa.PrivateKey, profileName string) *x509.Certificate {
	t.Helper()
	return fx.certifiedFor(t, citizen(), key, profileName)
}

// certifiedFor is certified for applicant.
func (fx *raFixture) certifiedFor(t *testing.T, applicant map[string]any, key *ecdsa.PrivateKey, profileName string) *x509.Certificate {
	t.Helper()
	a := fx.answer(t, http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json"}},
		enrollBody(t, applicant, profileName, csrPEM(t, key)))
	if a.status != http.StatusCreated {
		t.Fatalf("enroll for %s: %+v", profileName, a)
	}
	if p := fx.proof(t, a.id, fx.code(t, a.id)); p.state == store.StatePendingApproval {
		fx.act(t, signAction(t, fx.officer, approve(a.id), fx.deps.Now()))
	}
	code, raw := fx.do(t, http.MethodGet, "/api/v1/enrollments/"+a.id, nil, nil)
	var v ra.View
	if code != http.StatusOK || json.Unmarshal(raw, &v) != nil || v.State != store.StateIssued || v.CertificateStatus != store.StatusGood {
		t.Fatalf("enrollment %s: %d %s", a.id, code, raw)
	}
	return parseCertPEM(t, v.Certificate)
}

// renew posts a renewal request for c and returns the answer, its view and
// headers.
func (fx *raFixture) renew(t *testing.T, c *x509.Certificate, jws string) (answer, ra.View, http.Header) {
	t.Helper()
	path := "/api/v1/certificates/" + jwsauth.SerialHex(c.SerialNumber) + "/renew"
	code, hdr, raw := fx.send(t, http.MethodPost, path, joseHeader(), []byte(jws))
	var v ra.View
	var doc struct{ Type string }
	if err := json.Unmarshal(raw, &v); err != nil || json.Unmarshal(raw, &doc) != nil {
		t.Fatalf("POST %s: %d %s", path, code, raw)
	}
	return answer{status: code, problem: strings.TrimPrefix(doc.Type, "urn:sanad:problem:"), state: v.State, id: v.ID}, v, hdr
}

// renewJWS is holder's request to renew its certificate on next's key.
func renewJWS(t *testing.T, holder identity, next *ecdsa.PrivateKey, at time.Time) string {
	t.Helper()
	return renewJWSFor(t, jwsauth.SerialHex(holder.cert.SerialNumber), holder, next, at)
}

// renewJWSFor is signer's request to renew certificate serial on next's key.
func renewJWSFor(t *testing.T, serial string, signer identity, next *ecdsa.PrivateKey, at time.Time) string {
	t.Helper()
	s, err := jwsauth.Sign(jwsauth.Action{Action: jwsauth.ActionRenew, Serial: serial,
		CSR: base64.RawURLEncoding.EncodeToString(csrDER(t, next)), Audience: ra.AudienceRenew}, signer.cert, signer.key, at)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func joseHeader() http.Header { return http.Header{"Content-Type": {"application/jose"}} }

func parseCertPEM(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("no PEM certificate in %q", s)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// count runs a count(*) query on the fixture's database.
func (fx *raFixture) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := fx.raw.QueryRowContext(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestRenewalWithdrawn: a renewal rests on the old key. When the old
// certificate is revoked for keyCompromise (the thief may have renewed it),
// its issued renewals are revoked for privilegeWithdrawn down the chain, and
// a renewal waiting for officers is rejected, which leaves the certificate
// renewable again by nobody (it is revoked) but frees the key for the
// cases where it is not: a renewal the officers rejected does not block
// the next. A holder's superseded withdraws nothing. A revocation that
// reaches the CA without the RA (or races the issuance) is caught by the
// issuance itself, before and after the CA signs.
func TestRenewalWithdrawn(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) { testRenewalWithdrawn(t, driver) })
	}
}

func testRenewalWithdrawn(t *testing.T, driver string) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	racer := &revokingIssuer{}
	fx := newRAFixture(t, f, driver, func(d *ra.Deps) { racer.Issuer = d.CA; d.CA = racer })
	now := time.Now
	status := func(c *x509.Certificate) (string, int) {
		t.Helper()
		row, err := fx.db.Certificate(t.Context(), "issuing", c.SerialNumber.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return row.Status, row.Reason
	}
	holderRevoke := func(c *x509.Certificate, key *ecdsa.PrivateKey, reason string) ra.Revocation {
		t.Helper()
		jws, err := jwsauth.Sign(jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: jwsauth.SerialHex(c.SerialNumber), Reason: reason, Audience: ra.AudienceRevoke}, c, key, now())
		if err != nil {
			t.Fatal(err)
		}
		code, raw := fx.do(t, http.MethodPost, "/api/v1/certificates/"+jwsauth.SerialHex(c.SerialNumber)+"/revoke", joseHeader(), []byte(jws))
		var r ra.Revocation
		if code != http.StatusOK || json.Unmarshal(raw, &r) != nil {
			t.Fatalf("revoke %X: %d %s", c.SerialNumber, code, raw)
		}
		return r
	}
	renewed := func(holder identity) (*x509.Certificate, *ecdsa.PrivateKey) {
		t.Helper()
		next := newKey(t)
		a, v, _ := fx.renew(t, holder.cert, renewJWS(t, holder, next, now()))
		if a.status != http.StatusCreated || v.State != store.StateIssued {
			t.Fatalf("renewal of %X: %+v", holder.cert.SerialNumber, a)
		}
		return parseCertPEM(t, v.Certificate), next
	}

	// A chain A → B → C; A's key compromised.
	aKey := newKey(t)
	a := fx.certified(t, aKey, "citizen-auth")
	b, bKey := renewed(identity{a, aKey})
	c, _ := renewed(identity{b, bKey})
	// The holder is told which renewals went with it.
	if r := holderRevoke(a, aKey, "keyCompromise"); !slices.Equal(r.Withdrawn, []string{jwsauth.SerialHex(b.SerialNumber), jwsauth.SerialHex(c.SerialNumber)}) {
		t.Errorf("the revocation's answer names as withdrawn %q, want the renewal and its renewal", r.Withdrawn)
	}
	for name, cert := range map[string]*x509.Certificate{"the renewal": b, "the renewal's renewal": c} {
		if st, reason := status(cert); st != store.StatusRevoked || reason != 9 {
			t.Errorf("%s after keyCompromise of the first: %s, reason %d; want revoked, privilegeWithdrawn (9)", name, st, reason)
		}
	}

	// superseded withdraws nothing.
	dKey := newKey(t)
	d := fx.certified(t, dKey, "citizen-auth")
	e, _ := renewed(identity{d, dKey})
	holderRevoke(d, dKey, "superseded")
	if st, _ := status(e); st != store.StatusGood {
		t.Errorf("a renewal after the holder's superseded: %s, want good", st)
	}
	// The key then turns out compromised: the reason is raised, and the
	// renewal the key asked for is withdrawn after all.
	holderRevoke(d, dKey, "keyCompromise")
	if st, reason := status(d); st != store.StatusRevoked || reason != 1 {
		t.Errorf("the certificate revoked superseded, then keyCompromise: %s, reason %d; want revoked, 1", st, reason)
	}
	if st, reason := status(e); st != store.StatusRevoked || reason != 9 {
		t.Errorf("its renewal once the reason is keyCompromise: %s, reason %d; want revoked, 9", st, reason)
	}

	// A renewal waiting for officers: rejected by the officers, the next
	// renewal may go on; rejected by keyCompromise, it is withdrawn.
	sKey := newKey(t)
	s := fx.certified(t, sKey, "citizen-sign")
	first, fv, _ := fx.renew(t, s, renewJWS(t, identity{s, sKey}, newKey(t), now()))
	if first.status != http.StatusCreated || fv.State != store.StatePendingApproval {
		t.Fatalf("citizen-sign renewal: %+v", first)
	}
	answer{status: 200, state: store.StateRejected}.check(t, "officers reject the renewal",
		fx.act(t, signAction(t, fx.officer, jwsauth.Action{Action: jwsauth.ActionReject, Enrollment: fv.ID, Reason: "not now"}, now())))
	second, sv, _ := fx.renew(t, s, renewJWS(t, identity{s, sKey}, newKey(t), now()))
	if second.status != http.StatusCreated || sv.State != store.StatePendingApproval || sv.ID == fv.ID {
		t.Fatalf("a renewal after a rejected one: %+v", second)
	}
	holderRevoke(s, sKey, "keyCompromise")
	if got, err := fx.db.Enrollment(t.Context(), sv.ID); err != nil || got.State != store.StateRejected {
		t.Errorf("the pending renewal after keyCompromise: %s (%v), want rejected", got.State, err)
	}
	// It waited for officers: its applicant is told it was rejected.
	if n, err := fx.db.OutcomeNoticeOf(t.Context(), sv.ID); err != nil || n.Event != store.StateRejected {
		t.Errorf("outcome notice of the withdrawn pending renewal: %+v, %v; want rejected", n, err)
	}

	// Revoked at the CA alone, the renewal waiting for officers is failed
	// when approved, before the CA signs.
	tKey := newKey(t)
	tc := fx.certified(t, tKey, "citizen-sign")
	_, tv, _ := fx.renew(t, tc, renewJWS(t, identity{tc, tKey}, newKey(t), now()))
	if err := fx.ca.Revoke(t.Context(), tc.SerialNumber.Bytes(), 1, "test"); err != nil {
		t.Fatal(err)
	}
	answer{status: 422, problem: "issuance-failed"}.check(t, "approving a renewal of a certificate revoked for keyCompromise",
		fx.act(t, signAction(t, fx.officer, approve(tv.ID), now())))
	// So for any reason but the holder's own superseded or
	// cessationOfOperation: the renewal's only proof of who asked was the
	// certificate, which an officer revoked meanwhile.
	for _, reason := range []int{0, 3} {
		k := newKey(t)
		old := fx.certified(t, k, "citizen-sign")
		_, pending, _ := fx.renew(t, old, renewJWS(t, identity{old, k}, newKey(t), now()))
		if err := fx.ca.Revoke(t.Context(), old.SerialNumber.Bytes(), reason, "officer:test"); err != nil {
			t.Fatal(err)
		}
		answer{status: 422, problem: "issuance-failed"}.check(t, fmt.Sprintf("approving a renewal of a certificate an officer revoked for reason %d", reason),
			fx.act(t, signAction(t, fx.officer, approve(pending.ID), now())))
	}

	// Revoked while the CA signs the renewal: the renewal, issued, is
	// revoked at once.
	uKey := newKey(t)
	u := fx.certified(t, uKey, "citizen-auth")
	racer.revoke(fx.ca, u, 1)
	a2, uv, _ := fx.renew(t, u, renewJWS(t, identity{u, uKey}, newKey(t), now()))
	if a2.status != http.StatusCreated || uv.State != store.StateIssued {
		t.Fatalf("the raced renewal: %+v", a2)
	}
	if st, reason := status(parseCertPEM(t, uv.Certificate)); st != store.StatusRevoked || reason != 9 {
		t.Errorf("a renewal whose old certificate was revoked while it was signed: %s, reason %d; want revoked, 9", st, reason)
	}

	// The same race for a renewal the officers approved: withdrawn, and
	// its holder is told of its revocation, not that it was issued.
	vKey := newKey(t)
	v := fx.certified(t, vKey, "citizen-sign")
	_, vv, _ := fx.renew(t, v, renewJWS(t, identity{v, vKey}, newKey(t), now()))
	racer.revoke(fx.ca, v, 1)
	answer{status: 200, state: store.StateIssued}.check(t, "approving a renewal raced by keyCompromise",
		fx.act(t, signAction(t, fx.officer, approve(vv.ID), now())))
	if certs, err := fx.db.CertificatesOfEnrollment(t.Context(), vv.ID); err != nil || len(certs) != 1 || certs[0].Status != store.StatusRevoked {
		t.Errorf("the raced, approved renewal's certificate: %+v, %v; want one, revoked", certs, err)
	}
	if n, err := fx.db.OutcomeNoticeOf(t.Context(), vv.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("outcome notice of a renewal withdrawn as it was issued: %+v, %v; want none", n, err)
	}

	// A stop between the CA's commit and the RA's for an approved
	// renewal, and its old certificate revoked for keyCompromise before
	// Resume finishes it: Resume withdraws it, and tells no "issued".
	yKey := newKey(t)
	y := fx.certified(t, yKey, "citizen-sign")
	_, yv, _ := fx.renew(t, y, renewJWS(t, identity{y, yKey}, newKey(t), now()))
	answer{status: 200, state: store.StateIssued}.check(t, "approving a renewal", fx.act(t, signAction(t, fx.officer, approve(yv.ID), now())))
	for _, undo := range []string{`UPDATE enrollments SET state = 'approved' WHERE id = $1`, `DELETE FROM outcome_notices WHERE enrollment_id = $1`} {
		if _, err := fx.raw.ExecContext(t.Context(), fx.q(undo), yv.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := fx.ca.Revoke(t.Context(), y.SerialNumber.Bytes(), 1, "test"); err != nil {
		t.Fatal(err)
	}
	if n, err := fx.svc.Resume(t.Context(), 0); err != nil || n != 1 {
		t.Fatalf("Resume: %d, %v", n, err)
	}
	if certs, err := fx.db.CertificatesOfEnrollment(t.Context(), yv.ID); err != nil || len(certs) != 1 || certs[0].Status != store.StatusRevoked || certs[0].Reason != 9 {
		t.Errorf("the renewal Resume finished after its old certificate's keyCompromise: %+v, %v; want revoked, privilegeWithdrawn", certs, err)
	}
	if n, err := fx.db.OutcomeNoticeOf(t.Context(), yv.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("outcome notice of a renewal Resume withdrew: %+v, %v; want none", n, err)
	}

	// Revoked at the CA alone once the renewal was issued: the RA's
	// periodic sweep withdraws it, and says so in the audit log.
	wKey := newKey(t)
	w := fx.certified(t, wKey, "citizen-auth")
	wr, _ := renewed(identity{w, wKey})
	if err := fx.ca.Revoke(t.Context(), w.SerialNumber.Bytes(), 1, "test"); err != nil {
		t.Fatal(err)
	}
	if st, _ := status(wr); st != store.StatusGood {
		t.Fatalf("the renewal before the sweep: %s", st)
	}
	events := func() int {
		return fx.count(t, `SELECT count(*) FROM audit_events WHERE action = 'enrollment.withdraw'`)
	}
	before := events()
	if err := fx.svc.SweepWithdrawn(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st, reason := status(wr); st != store.StatusRevoked || reason != 9 {
		t.Errorf("a renewal whose old certificate the CA alone revoked, after the sweep: %s, reason %d; want revoked, 9", st, reason)
	}
	if after := events(); after != before+1 {
		t.Errorf("enrollment.withdraw events: %d → %d, want one more", before, after)
	}
	if err := fx.svc.SweepWithdrawn(t.Context()); err != nil || events() != before+1 {
		t.Errorf("a second sweep: %v, %d withdraw events; want nothing more", err, events())
	}
}

// switchNotifier fails while down, and always for the revocation notices
// of the serials in refused (a number the gateway will not serve).
type switchNotifier struct {
	ra.Notifier
	down    atomic.Bool
	refused sync.Map
}

func (n *switchNotifier) Send(ctx context.Context, m ra.Message) error {
	if n.down.Load() {
		return errors.New("gateway down")
	}
	if _, ok := n.refused.Load(m.Serial); ok && m.Serial != "" {
		return errors.New("gateway refuses the number")
	}
	return n.Notifier.Send(ctx, m)
}

// revokingIssuer is the CA, which, once armed, revokes a certificate as
// its next issuance begins, after the RA checked the certificate a renewal
// replaces and before the new one is stored (with the enrollment's record,
// ca.Request.Then): a revocation racing a renewal.
type revokingIssuer struct {
	ra.Issuer
	mu     sync.Mutex
	ca     ra.Revoker
	serial []byte
	reason int
}

func (r *revokingIssuer) revoke(ca ra.Revoker, c *x509.Certificate, reason int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ca, r.serial, r.reason = ca, c.SerialNumber.Bytes(), reason
}

func (r *revokingIssuer) Issue(ctx context.Context, req ca.Request) (*x509.Certificate, error) {
	r.mu.Lock()
	if r.serial != nil {
		if err := r.ca.Revoke(ctx, r.serial, r.reason, "test"); err != nil {
			r.mu.Unlock()
			return nil, err
		}
		r.serial = nil
	}
	r.mu.Unlock()
	return r.Issuer.Issue(ctx, req)
}

// TestRenewBusiness: a seal renews on its representative's request through
// two officers; a business renamed since, or a representative who lost
// signing authority, renews nothing.
func TestRenewBusiness(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	reg := &changingRegistry{dead: map[string]bool{}, closed: map[string]bool{}, noAuthority: map[string]bool{}, renamed: map[string]string{}}
	fx := newRAFixture(t, f, "sqlite", func(d *ra.Deps) { reg.Registry = d.Registry; d.Registry = reg })
	dana := registerOfficerAs(t, fx.ca, fx.db, "Dana Officer", danaPerson)
	key := newKey(t)
	a := fx.answer(t, http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json"}}, enrollBody(t, business(), "business-seal", csrPEM(t, key)))
	fx.proof(t, a.id, fx.code(t, a.id))
	fx.act(t, signAction(t, fx.officer, approve(a.id), time.Now()))
	answer{status: 200, state: store.StateIssued}.check(t, "the seal's second approval", fx.act(t, signAction(t, dana, approve(a.id), time.Now())))
	_, raw := fx.do(t, http.MethodGet, "/api/v1/enrollments/"+a.id, nil, nil)
	var v ra.View
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	seal := parseCertPEM(t, v.Certificate)

	for _, tt := range []struct {
		what   string
		change func()
		want   answer
	}{
		{"a business renamed", func() { reg.renamed["PK:32778761"] = "Another Name (Pvt) Ltd" }, answer{status: 422, problem: "registry-mismatch"}},
		{"a representative without authority", func() { reg.noAuthority["PK:32778761"] = true }, answer{status: 403, problem: "not-a-representative"}},
		{"a business closed", func() { reg.closed["PK:32778761"] = true }, answer{status: 422, problem: "business-inactive"}},
	} {
		reg.set(tt.change)
		got, _, _ := fx.renew(t, seal, renewJWS(t, identity{seal, key}, newKey(t), time.Now()))
		tt.want.check(t, tt.what, got)
		reg.set(func() {
			reg.renamed, reg.noAuthority, reg.closed = map[string]string{}, map[string]bool{}, map[string]bool{}
		})
	}
	got, rv, _ := fx.renew(t, seal, renewJWS(t, identity{seal, key}, newKey(t), time.Now()))
	if got.status != http.StatusCreated || rv.State != store.StatePendingApproval {
		t.Fatalf("the seal's renewal: %+v", got)
	}
	fx.act(t, signAction(t, fx.officer, approve(rv.ID), time.Now()))
	answer{status: 200, state: store.StateIssued}.check(t, "the renewal's second approval", fx.act(t, signAction(t, dana, approve(rv.ID), time.Now())))
}

// TestExpiredCertificateWithdrawsItsRenewals: the holder of a certificate
// whose key a thief used to renew it can still revoke it for
// keyCompromise once it has expired, as the renewal's notice tells them
// to, and so withdraw the thief's renewal, which would otherwise renew
// itself for years. Any other reason for an expired certificate is
// refused, as before.
func TestExpiredCertificateWithdrawsItsRenewals(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	clk := &clock{}
	fx := newRAFixture(t, f, "sqlite", func(d *ra.Deps) { d.Now = clk.Now })
	aKey := newKey(t)
	a := fx.certified(t, aKey, "citizen-auth")
	time.Sleep(1100 * time.Millisecond) // the renewal ends a second after a, at least
	thief := newKey(t)
	r, v, _ := fx.renew(t, a, renewJWS(t, identity{a, aKey}, thief, clk.Now()))
	if r.status != http.StatusCreated || v.State != store.StateIssued {
		t.Fatalf("the thief's renewal: %+v", r)
	}
	b := parseCertPEM(t, v.Certificate)
	clk.mu.Lock()
	clk.base = a.NotAfter.Add(500 * time.Millisecond) // a expired, b still good
	clk.mu.Unlock()
	revoke := func(reason string) (int, []byte) {
		jws, err := jwsauth.Sign(jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: jwsauth.SerialHex(a.SerialNumber), Reason: reason, Audience: ra.AudienceRevoke}, a, aKey, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		return fx.do(t, http.MethodPost, "/api/v1/certificates/"+jwsauth.SerialHex(a.SerialNumber)+"/revoke", joseHeader(), []byte(jws))
	}
	if code, raw := revoke("superseded"); code != http.StatusForbidden || !strings.Contains(string(raw), "certificate-not-valid") {
		t.Errorf("superseded of an expired certificate: %d %s", code, raw)
	}
	code, raw := revoke("keyCompromise")
	var rev ra.Revocation
	if code != http.StatusOK || json.Unmarshal(raw, &rev) != nil || !slices.Equal(rev.Withdrawn, []string{jwsauth.SerialHex(b.SerialNumber)}) {
		t.Fatalf("keyCompromise of the expired certificate: %d %s; want the thief's renewal withdrawn", code, raw)
	}
	if row, err := fx.db.Certificate(t.Context(), "issuing", b.SerialNumber.Bytes()); err != nil || row.Status != store.StatusRevoked {
		t.Errorf("the thief's renewal: %+v %v; want revoked", row.Status, err)
	}

	// An expired certificate this CA signed but does not record is no
	// holder's, as a valid one is not: 401, not the officers' 403.
	ghostKey := newKey(t)
	ghost := catest.Certify(t, &x509.Certificate{SerialNumber: big.NewInt(0x7e57ab1e), Subject: pkix.Name{CommonName: "ghost"},
		NotBefore: a.NotBefore, NotAfter: a.NotAfter.Add(-time.Second), KeyUsage: x509.KeyUsageDigitalSignature}, f.Issuer.Certificate, ghostKey.Public(), f.CAKey)
	jws, err := jwsauth.Sign(jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: jwsauth.SerialHex(ghost.SerialNumber), Reason: "keyCompromise", Audience: ra.AudienceRevoke}, ghost, ghostKey, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if code, raw := fx.do(t, http.MethodPost, "/api/v1/certificates/"+jwsauth.SerialHex(ghost.SerialNumber)+"/revoke", joseHeader(), []byte(jws)); code != http.StatusUnauthorized || !strings.Contains(string(raw), "unauthorized") {
		t.Errorf("keyCompromise by an expired certificate not in the CA's records: %d %s; want 401 unauthorized", code, raw)
	}
}

// TestCompromisedKeyEverywhere: a key reported compromised through one
// certificate is compromised in the holder's others: they are revoked for
// keyCompromise with it (same_key), and a request signed with one of them
// that revocation missed (here: made good again behind the RA's back) is
// refused, so a thief holding the key cannot renew onto a key of theirs.
func TestCompromisedKeyEverywhere(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	fx := newRAFixture(t, f, store.DriverSQLite)
	key := newKey(t)
	auth := fx.certified(t, key, "citizen-auth")
	sign := fx.certified(t, key, "citizen-sign")
	other := fx.certified(t, newKey(t), "citizen-auth") // the holder's, another key
	if rev := fx.holderRevokes(t, sign, key, "keyCompromise"); !slices.Equal(rev.SameKey, []string{jwsauth.SerialHex(auth.SerialNumber)}) {
		t.Fatalf("the holder's keyCompromise: %+v; want the other certificate of the key revoked with it", rev)
	}
	for c, want := range map[*x509.Certificate]string{auth: store.StatusRevoked, other: store.StatusGood} {
		if got := fx.certStatus(t, jwsauth.SerialHex(c.SerialNumber)); got != want {
			t.Errorf("certificate %s after the keyCompromise: %s, want %s", jwsauth.SerialHex(c.SerialNumber), got, want)
		}
	}
	if c, err := fx.db.SignedCertificateBySerial(t.Context(), auth.SerialNumber.Bytes()); err != nil || c.Reason != 1 {
		t.Errorf("the other certificate's reason: %d %v, want keyCompromise", c.Reason, err)
	}
	// Good again (a revocation missed, a restore): the blocked key still
	// signs nothing.
	if _, err := fx.raw.ExecContext(t.Context(), fx.q(`UPDATE certificates SET status = 'good', revoked_at = NULL, reason = NULL WHERE serial = $1`), auth.SerialNumber.Bytes()); err != nil {
		t.Fatal(err)
	}
	a, _, _ := fx.renew(t, auth, renewJWS(t, identity{auth, key}, newKey(t), time.Now()))
	answer{status: 403, problem: "certificate-revoked"}.check(t, "a renewal signed with the compromised key", a)

	// A keyCompromise made at the CA, without the RA: the sweep revokes
	// the key's other certificates.
	key2 := newKey(t)
	auth2, sign2 := fx.certified(t, key2, "citizen-auth"), fx.certified(t, key2, "citizen-sign")
	if err := fx.ca.Revoke(t.Context(), sign2.SerialNumber.Bytes(), 1, "test"); err != nil {
		t.Fatal(err)
	}
	if err := fx.svc.SweepWithdrawn(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := fx.certStatus(t, jwsauth.SerialHex(auth2.SerialNumber)); got != store.StatusRevoked {
		t.Errorf("the other certificate of a key revoked at the CA, after the sweep: %s", got)
	}

	// A certificate the store holds only as its intent (the HSM may have
	// signed it, a crash kept it from the store): its key, read from the
	// TBS, is compromised in the holder's other certificates too.
	key3 := newKey(t)
	auth3, sign3 := fx.certified(t, key3, "citizen-auth"), fx.certified(t, key3, "citizen-sign")
	if _, err := fx.raw.ExecContext(t.Context(), fx.q(`UPDATE certificates SET der = NULL WHERE serial = $1`), sign3.SerialNumber.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := fx.ca.Revoke(t.Context(), sign3.SerialNumber.Bytes(), 1, "test"); err != nil {
		t.Fatal(err)
	}
	if err := fx.svc.SweepWithdrawn(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := fx.certStatus(t, jwsauth.SerialHex(auth3.SerialNumber)); got != store.StatusRevoked {
		t.Errorf("the other certificate of a key compromised in an intent, after the sweep: %s", got)
	}
	// The same reported by an officer: the answer names the key's other
	// certificate, revoked with it, without waiting for the sweep.
	key4 := newKey(t)
	auth4, sign4 := fx.certified(t, key4, "citizen-auth"), fx.certified(t, key4, "citizen-sign")
	if _, err := fx.raw.ExecContext(t.Context(), fx.q(`UPDATE certificates SET der = NULL WHERE serial = $1`), sign4.SerialNumber.Bytes()); err != nil {
		t.Fatal(err)
	}
	code, raw := fx.do(t, http.MethodPost, "/api/v1/officer/actions", joseHeader(),
		signAction(t, fx.officer, jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: jwsauth.SerialHex(sign4.SerialNumber), Reason: "keyCompromise"}, time.Now()))
	var rev ra.Revocation
	if err := json.Unmarshal(raw, &rev); err != nil || code != http.StatusOK || !slices.Equal(rev.SameKey, []string{jwsauth.SerialHex(auth4.SerialNumber)}) {
		t.Errorf("an officer's keyCompromise of a certificate held as its intent: %d %s; want the key's other certificate revoked with it", code, raw)
	}
	if got := fx.certStatus(t, jwsauth.SerialHex(auth4.SerialNumber)); got != store.StatusRevoked {
		t.Errorf("the other certificate of a key an officer reported compromised in an intent: %s", got)
	}
}

// TestCompromisedKeyAcrossSubjects: a key reported compromised is
// compromised in every certificate of it, whoever's: a person's key also
// certified for another person (or for the business they represent) is
// revoked there too, at once, an intent the HSM is signing included, each
// revocation audited with the certificate the compromise was reported in;
// one revoked before for another reason has its reason raised; an expired
// one is left. The answer names the subject's own certificates and counts
// the others'. A certificate stored before certificates recorded their key
// is found among the holder's own at once, and under another subject once
// ca.FillKeyIDs has read its key, by SweepBlockedKeys, however old the
// compromise.
func TestCompromisedKeyAcrossSubjects(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			f := catest.New(t, time.Now().UTC().Truncate(time.Second))
			fx := newRAFixture(t, f, driver)
			nurlan := map[string]any{"kind": "person", "country": "KZ", "national_id": "850721313761",
				"given_name": "Nurlan", "family_name": "Bekov", "birth_date": "1985-07-21"}
			madina := map[string]any{"kind": "person", "country": "KZ", "national_id": "901105450936",
				"given_name": "Madina", "family_name": "Omarova", "birth_date": "1990-11-05"}
			key := newKey(t)
			sign := fx.certifiedFor(t, citizen(), key, "citizen-sign")
			theirs := fx.certifiedFor(t, nurlan, key, "citizen-auth")
			superseded := fx.certifiedFor(t, nurlan, key, "citizen-sign")
			inFlight := fx.certifiedFor(t, madina, key, "citizen-sign")
			expired := fx.certifiedFor(t, madina, key, "citizen-sign")
			legacyOwn := fx.certifiedFor(t, citizen(), key, "citizen-auth")
			legacyTheirs := fx.certifiedFor(t, madina, key, "citizen-auth")
			unrelated := fx.certifiedFor(t, madina, newKey(t), "citizen-sign")
			if err := fx.ca.Revoke(t.Context(), superseded.SerialNumber.Bytes(), 4, "test"); err != nil {
				t.Fatal(err)
			}
			exec := func(query string, args ...any) {
				t.Helper()
				if _, err := fx.raw.ExecContext(t.Context(), fx.q(query), args...); err != nil {
					t.Fatal(err)
				}
			}
			// Stored before certificates recorded their key.
			for _, c := range []*x509.Certificate{legacyOwn, legacyTheirs} {
				exec(`UPDATE certificates SET spki_sha256 = NULL WHERE serial = $1`, c.SerialNumber.Bytes())
			}
			// The HSM is signing it: an intent.
			exec(`UPDATE certificates SET der = NULL WHERE serial = $1`, inFlight.SerialNumber.Bytes())
			past := func(d time.Duration) any {
				if driver == store.DriverSQLite {
					return time.Now().Add(-d).UnixMicro()
				}
				return time.Now().Add(-d).UTC()
			}
			exec(`UPDATE certificates SET not_before = $1, not_after = $2 WHERE serial = $3`, past(2*time.Hour), past(time.Hour), expired.SerialNumber.Bytes())

			rev := fx.holderRevokes(t, sign, key, "keyCompromise")
			if !slices.Equal(rev.SameKey, []string{jwsauth.SerialHex(legacyOwn.SerialNumber)}) || rev.SameKeyElsewhere != 3 {
				t.Errorf("same_key %v, same_key_elsewhere %d; want the holder's own certificate stored without its key, and 3 of others", rev.SameKey, rev.SameKeyElsewhere)
			}
			row := func(c *x509.Certificate) store.Certificate {
				t.Helper()
				r, err := fx.db.CertificateBySerial(t.Context(), c.SerialNumber.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			for _, c := range []*x509.Certificate{theirs, superseded, inFlight, legacyOwn} {
				if r := row(c); r.Status != store.StatusRevoked || r.Reason != 1 {
					t.Errorf("certificate %s: %s, reason %d; want revoked for keyCompromise", jwsauth.SerialHex(c.SerialNumber), r.Status, r.Reason)
				}
			}
			for _, c := range []*x509.Certificate{expired, legacyTheirs, unrelated} {
				if r := row(c); r.Status != store.StatusGood {
					t.Errorf("certificate %s (expired, not read yet, another key's): %s, want good", jwsauth.SerialHex(c.SerialNumber), r.Status)
				}
			}
			// The HSM's signature of the intent, landing now, is refused.
			if err := fx.db.InTx(t.Context(), func(tx *store.Tx) error {
				return tx.SetCertificateDER(t.Context(), f.Issuer.ID, inFlight.SerialNumber.Bytes(), inFlight.Raw, time.Now())
			}); !errors.Is(err, store.ErrConflict) {
				t.Errorf("the intent signed after the compromise: %v, want ErrConflict", err)
			}
			// Each revocation says why, in its own transaction's events.
			events, err := fx.db.ListAuditEvents(t.Context(), store.AuditFilter{Objects: []string{ca.SerialObject(f.Issuer.ID, theirs.SerialNumber.Bytes())}})
			if err != nil {
				t.Fatal(err)
			}
			var why string
			for _, e := range events {
				if e.Action == "certificate.revoke.same_key" {
					why = string(e.Details)
				}
			}
			if !strings.Contains(why, ca.SerialObject(f.Issuer.ID, sign.SerialNumber.Bytes())) {
				t.Errorf("the other person's certificate's revocation: details %q, want the certificate the compromise was reported in", why)
			}

			// The keys of certificates stored before are read; every key
			// ever blocked is then swept, the sweep of the last day's
			// revocations aside.
			filled, unreadable, err := ca.FillKeyIDs(t.Context(), fx.db)
			if err != nil || filled != 2 || unreadable != 0 {
				t.Fatalf("FillKeyIDs: %d filled, %d unreadable, %v; want the 2 without a key", filled, unreadable, err)
			}
			if n, err := fx.svc.SweepBlockedKeys(t.Context()); err != nil || n != 1 {
				t.Errorf("SweepBlockedKeys: %d revoked, %v; want the one found since", n, err)
			}
			if r := row(legacyTheirs); r.Status != store.StatusRevoked || r.Reason != 1 {
				t.Errorf("another person's certificate of the key stored without it, after the sweep: %s, reason %d", r.Status, r.Reason)
			}
			if n, err := fx.svc.SweepBlockedKeys(t.Context()); err != nil || n != 0 {
				t.Errorf("SweepBlockedKeys again: %d revoked, %v; want nothing", n, err)
			}
			for _, c := range []*x509.Certificate{expired, unrelated} {
				if r := row(c); r.Status != store.StatusGood {
					t.Errorf("certificate %s after the sweeps: %s, want good", jwsauth.SerialHex(c.SerialNumber), r.Status)
				}
			}
		})
	}
}

// TestForbiddenKeysFollowTheCA: the RA refuses at enrollment a request for
// a key the CA took as its OCSP signer after it started
// (ca.CA.UseResponder), as it refuses the issuing CA's own: the RA asks
// the CA for its keys each time, where it had a list made at start.
func TestForbiddenKeysFollowTheCA(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	fx := newRAFixture(t, f, store.DriverSQLite)
	signer, key := f.NewResponder(t, 90, time.Now().Add(-time.Hour), 60, nil)
	enroll := func() answer {
		t.Helper()
		return fx.answer(t, http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json"}},
			enrollBody(t, citizen(), "citizen-auth", csrPEM(t, key)))
	}
	if a := enroll(); a.status != http.StatusCreated {
		t.Fatalf("before the CA took the key: %+v", a)
	}
	if err := fx.ca.UseResponder(signer); err != nil {
		t.Fatal(err)
	}
	if a := enroll(); a.status != http.StatusUnprocessableEntity || a.problem != "invalid-csr" {
		t.Errorf("a request for the key the CA now signs with: %+v; want 422 invalid-csr", a)
	}
}

// holderRevokes posts the holder's own revocation of c for reason, signed
// with key, and returns the answer, which must be 200.
func (fx *raFixture) holderRevokes(t *testing.T, c *x509.Certificate, key *ecdsa.PrivateKey, reason string) ra.Revocation {
	t.Helper()
	serial := jwsauth.SerialHex(c.SerialNumber)
	jws, err := jwsauth.Sign(jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: serial, Reason: reason, Audience: ra.AudienceRevoke}, c, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	code, raw := fx.do(t, http.MethodPost, "/api/v1/certificates/"+serial+"/revoke", joseHeader(), []byte(jws))
	var rev ra.Revocation
	if err := json.Unmarshal(raw, &rev); err != nil || code != http.StatusOK {
		t.Fatalf("the holder's %s of %s: %d %s", reason, serial, code, raw)
	}
	return rev
}
