package ra_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"slices"
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
	"github.com/sanadpki/sanad/ra/idnum"
	"github.com/sanadpki/sanad/ra/jwsauth"
)

// TestCARevocationTakesTwoCAOfficers: a CA certificate (an OCSP signer's,
// recorded as sanad issuer add records it) is not revoked by one officer.
// An RA officer is refused; a CA officer's request is recorded and
// answered 202 pending; the same person again, another person with the
// same key, or another reason, or a request older than a day, makes no
// second officer, nor does the request of an officer since deactivated; a
// second CA officer with the same reason has it revoked, and the CA's
// event names both. The signer's own key (the holder route) cannot revoke
// it either, and a CA officer alone decides on no enrollment and revokes
// no subscriber's certificate. An issuing CA's certificate, which the
// offline root revokes at a ceremony, is refused with that said.
func TestCARevocationTakesTwoCAOfficers(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			clk := &clock{}
			fx := newRAFixture(t, f, driver, func(d *ra.Deps) { d.Now = clk.Now })
			responder, responderKey := f.NewResponder(t, 0x0c5e, time.Now().Add(-time.Hour), 60, nil)
			catest.Record(t, fx.db, f.Issuer.ID, "ocsp-signer", responder.Certificate)
			serial := jwsauth.SerialHex(responder.Certificate.SerialNumber)

			dana := registerOfficerAs(t, fx.ca, fx.db, "Dana Officer", danaPerson)
			fx.putOfficer(t, dana, "Dana Officer", true, "ca-officer")
			aigerim := registerOfficerAs(t, fx.ca, fx.db, "Aigerim Officer", aigerimPerson)
			fx.putOfficer(t, aigerim, "Aigerim Officer", true, "ra-officer", "ca-officer")
			// Another person certified on Dana's key: one pair of eyes.
			twinID, err := idnum.KZIIN(time.Date(1991, 2, 3, 0, 0, 0, 0, time.UTC), true, 4242)
			if err != nil {
				t.Fatal(err)
			}
			twin := registerOfficerKey(t, fx.ca, fx.db, "Twin Officer", profile.Verified{Country: "KZ", NationalID: twinID, GivenName: "Asel", FamilyName: "Serikova"}, dana.key.(*ecdsa.PrivateKey))
			fx.putOfficer(t, twin, "Twin Officer", true, "ca-officer")

			var last []byte // the last request revoke sent
			post := func(path string, jws []byte) (int, ra.Revocation, string) {
				t.Helper()
				code, raw := fx.do(t, http.MethodPost, path, joseHeader(), jws)
				var out ra.Revocation
				var problem struct {
					Type string `json:"type"`
				}
				if code/100 != 2 {
					out.Status = "refused"
					if err := json.Unmarshal(raw, &problem); err != nil {
						t.Fatalf("answer %d %s: %v", code, raw, err)
					}
				} else if err := json.Unmarshal(raw, &out); err != nil {
					t.Fatalf("answer %d %s: %v", code, raw, err)
				}
				return code, out, problem.Type
			}
			queue := func(who identity) ra.OfficerQueue {
				t.Helper()
				jws, err := jwsauth.Sign(jwsauth.Action{Action: jwsauth.ActionQueue, Audience: ra.AudienceQueue}, who.cert, who.key, clk.Now())
				if err != nil {
					t.Fatal(err)
				}
				code, raw := fx.do(t, http.MethodGet, "/api/v1/officer/queue", http.Header{"Authorization": {"JWS " + jws}}, nil)
				var q ra.OfficerQueue
				if err := json.Unmarshal(raw, &q); err != nil || code != http.StatusOK || q.Enrollments == nil || q.Revocations == nil {
					t.Fatalf("queue: %d %s (%v); want both lists", code, raw, err)
				}
				return q
			}
			revoke := func(who identity, reason string) (int, ra.Revocation, string) {
				t.Helper()
				last = signAction(t, who, jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: serial, Reason: reason}, clk.Now())
				return post("/api/v1/officer/actions", last)
			}
			status := func() string {
				t.Helper()
				c, err := fx.db.Certificate(t.Context(), f.Issuer.ID, responder.Certificate.SerialNumber.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				return c.Status
			}
			requests := func() int {
				return fx.count(t, `SELECT count(*) FROM revocation_requests`)
			}
			pending := func(what string, who identity, reason string, wantRequests int) {
				t.Helper()
				code, r, typ := revoke(who, reason)
				if code != http.StatusAccepted || r.Status != "pending" || r.Requests != wantRequests || r.Needed != 2 || r.Reason != reason || typ != "" {
					t.Errorf("%s: %d %+v %s; want 202 pending with %d of 2 requests", what, code, r, typ, wantRequests)
				}
				if s := status(); s != store.StatusGood {
					t.Errorf("%s: the signer's certificate is %s; want good", what, s)
				}
			}

			// An RA officer alone: refused, nothing kept.
			if code, _, typ := revoke(fx.officer, "keyCompromise"); code != http.StatusForbidden || typ != "urn:sanad:problem:ca-officer-required" {
				t.Errorf("an RA officer revoking the OCSP signer: %d %s; want 403 ca-officer-required", code, typ)
			}
			if n := requests(); n != 0 {
				t.Errorf("revocation requests after an RA officer's: %d; want 0", n)
			}
			// Nor the signer's own key, which whoever may use the CA's
			// token holds.
			own, err := jwsauth.Sign(jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: serial, Reason: "keyCompromise", Audience: ra.AudienceRevoke},
				responder.Certificate, responderKey, clk.Now())
			if err != nil {
				t.Fatal(err)
			}
			if code, _, typ := post("/api/v1/certificates/"+serial+"/revoke", []byte(own)); code != http.StatusForbidden || typ != "urn:sanad:problem:ca-officer-required" {
				t.Errorf("the OCSP signer's key revoking its own certificate: %d %s; want 403 ca-officer-required", code, typ)
			}
			// A CA officer alone is no RA officer: it decides on no
			// enrollment and revokes no subscriber's certificate.
			seal := fx.proved(t, business(), "business-seal")
			answer{status: 403, problem: "not-an-officer"}.check(t, "a CA officer approving", fx.act(t, signAction(t, dana, approve(seal), clk.Now())))
			subscriber := fx.certified(t, newKey(t), "citizen-auth")
			answer{status: 403, problem: "not-an-officer"}.check(t, "a CA officer revoking a subscriber's certificate",
				fx.act(t, signAction(t, dana, jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: jwsauth.SerialHex(subscriber.SerialNumber), Reason: "keyCompromise"}, clk.Now())))

			pending("the first CA officer", dana, "keyCompromise", 1)
			if code, _, typ := post("/api/v1/officer/actions", last); code != http.StatusConflict || typ != "urn:sanad:problem:replayed-request" {
				t.Errorf("the first CA officer's request again: %d %s; want 409 replayed-request", code, typ)
			}
			pending("the same officer again", dana, "keyCompromise", 1)
			// What waits is in the CA officers' queue, and only theirs.
			q := queue(aigerim)
			if len(q.Revocations) != 1 || len(q.Enrollments) != 1 {
				t.Fatalf("an RA and CA officer's queue: %+v; want the seal and the revocation", q)
			}
			pr := q.Revocations[0]
			if pr.Serial != serial || pr.Issuer != f.Issuer.ID || pr.Profile != "ocsp-signer" || pr.Subject != responder.Certificate.Subject.String() ||
				pr.Reason != "keyCompromise" || !slices.Equal(pr.Officers, []string{"Dana Officer"}) || pr.Requests != 1 || pr.Needed != 2 ||
				!pr.ExpiresAt.Equal(pr.RequestedAt.Add(24*time.Hour)) || pr.YouRequested {
				t.Errorf("the pending revocation in the queue: %+v", pr)
			}
			if q := queue(dana); len(q.Revocations) != 1 || !q.Revocations[0].YouRequested || len(q.Enrollments) != 0 {
				t.Errorf("a CA officer's own queue: %+v; want the revocation they asked for, no enrollment", q)
			}
			if q := queue(fx.officer); len(q.Revocations) != 0 || len(q.Enrollments) != 1 {
				t.Errorf("an RA officer's queue: %+v; want the seal alone", q)
			}
			pending("another person on the same key", twin, "keyCompromise", 1)
			pending("a second officer with another reason", aigerim, "superseded", 1)
			if n := requests(); n != 4 {
				t.Errorf("revocation requests kept: %d; want 4, one per request", n)
			}
			clk.Add(25 * time.Hour)
			pending("a second officer a day later", aigerim, "keyCompromise", 1)
			// A request stands only while its officer does.
			fx.putOfficer(t, aigerim, "Aigerim Officer", false, "ra-officer", "ca-officer")
			pending("the second officer with the first deactivated", dana, "keyCompromise", 1)
			fx.putOfficer(t, aigerim, "Aigerim Officer", true, "ra-officer", "ca-officer")

			code, r, typ := revoke(dana, "keyCompromise")
			if code != http.StatusOK || r.Status != "revoked" || r.Requests != 2 || r.Needed != 2 || typ != "" {
				t.Fatalf("the second CA officer within a day: %d %+v %s; want 200 revoked by 2 of 2", code, r, typ)
			}
			c, err := fx.db.Certificate(t.Context(), f.Issuer.ID, responder.Certificate.SerialNumber.Bytes())
			if err != nil || c.Status != store.StatusRevoked || c.Reason != 1 {
				t.Errorf("the signer's certificate after two CA officers: %+v, %v; want revoked for keyCompromise", c, err)
			}
			var actor string
			if err := fx.raw.QueryRowContext(t.Context(), `SELECT actor FROM audit_events WHERE action = 'certificate.revoke' ORDER BY seq DESC LIMIT 1`).Scan(&actor); err != nil ||
				actor != "officers:Aigerim Officer, Dana Officer" {
				t.Errorf("the CA's revocation event's actor: %q, %v; want both officers", actor, err)
			}
			if n := fx.auditActions(t)["certificate.revoke.request"]; n != 7 {
				t.Errorf("certificate.revoke.request events: %d; want 7, one per request recorded", n)
			}
			if q := queue(aigerim); len(q.Revocations) != 0 {
				t.Errorf("the queue once revoked: %+v; want no revocation", q.Revocations)
			}
			if code, _, typ := revoke(aigerim, "keyCompromise"); code != http.StatusConflict || typ != "urn:sanad:problem:already-revoked" {
				t.Errorf("a third request once revoked: %d %s; want 409 already-revoked", code, typ)
			}

			// The issuing CA's own certificate is the offline root's to
			// revoke, at a CRL ceremony: said so, before anything is kept.
			if err := fx.db.InTx(t.Context(), func(tx *store.Tx) error {
				return tx.PutIssuer(t.Context(), store.Issuer{ID: "root", Name: "Test Root", Role: "root", CertificateDER: f.Root.Raw, KeyLabel: "root", CreatedAt: time.Now().UTC()})
			}); err != nil {
				t.Fatal(err)
			}
			catest.Record(t, fx.db, "root", "issuing", f.Issuer.Certificate)
			before := requests()
			code, _, typ = post("/api/v1/officer/actions", signAction(t, dana,
				jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: jwsauth.SerialHex(f.Issuer.Certificate.SerialNumber), Reason: "keyCompromise"}, clk.Now()))
			if code != http.StatusUnprocessableEntity || typ != "urn:sanad:problem:offline-issuer" || requests() != before {
				t.Errorf("a CA officer revoking the issuing CA's certificate: %d %s, %d requests kept; want 422 offline-issuer, none", code, typ, requests()-before)
			}
		})
	}
}

// putOfficer records the officer of who (registered as name), active or
// not, with roles alone.
func (fx *raFixture) putOfficer(t *testing.T, who identity, name string, active bool, roles ...string) {
	t.Helper()
	ctx := t.Context()
	fp := sha256.Sum256(who.cert.Raw)
	if err := fx.db.InTx(ctx, func(tx *store.Tx) error {
		return tx.PutOfficer(ctx, store.Officer{Fingerprint: fp[:], CertificateDER: who.cert.Raw, Name: name, Roles: roles, Active: active, CreatedAt: time.Now().UTC()})
	}); err != nil {
		t.Fatal(err)
	}
}

// TestCARevocationQuorum: ra.yaml's ca_revocation sets how many CA
// officers revoke a CA certificate (never fewer than two, by default two
// within a day): with three, two CA officers leave it pending, and the RA
// refuses a policy of one.
func TestCARevocationQuorum(t *testing.T) {
	profiles, err := profile.LoadAll(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := policies.FS.ReadFile("ra.yaml")
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := ra.LoadPolicy(policies.FS, profiles)
	if err != nil || shipped.CARevocationOfficers != 2 || shipped.CARevocationWithin != 24*time.Hour {
		t.Errorf("the shipped policy: %d CA officers within %s (%v); want 2 within a day", shipped.CARevocationOfficers, shipped.CARevocationWithin, err)
	}
	for rule, want := range map[string]string{
		"{officers: 3, within: 48h}": "",
		"{officers: 1, within: 24h}": "ca_revocation.officers",
		"{officers: 6, within: 24h}": "ca_revocation.officers",
		"{officers: 2, within: 1m}":  "ca_revocation.within",
	} {
		p, err := ra.LoadPolicy(fstest.MapFS{"ra.yaml": {Data: append(raw, "ca_revocation: "+rule+"\n"...)}}, profiles)
		switch {
		case want == "" && (err != nil || p.CARevocationOfficers != 3 || p.CARevocationWithin != 48*time.Hour):
			t.Errorf("%s: %+v %v", rule, p, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v, want %s refused", rule, err, want)
		}
	}

	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	fx := newRAFixture(t, f, store.DriverSQLite, func(d *ra.Deps) { d.Policy.CARevocationOfficers = 3 })
	one := fx.deps
	one.Policy.CARevocationOfficers = 1
	if _, err := ra.New(one); err == nil {
		t.Error("ra.New took a policy where one CA officer revokes a CA certificate")
	}
	responder, _ := f.NewResponder(t, 0x0c5f, time.Now().Add(-time.Hour), 60, nil)
	catest.Record(t, fx.db, f.Issuer.ID, "ocsp-signer", responder.Certificate)
	dana := registerOfficerAs(t, fx.ca, fx.db, "Dana Officer", danaPerson)
	fx.putOfficer(t, dana, "Dana Officer", true, "ca-officer")
	aigerim := registerOfficerAs(t, fx.ca, fx.db, "Aigerim Officer", aigerimPerson)
	fx.putOfficer(t, aigerim, "Aigerim Officer", true, "ca-officer")
	for i, who := range []identity{dana, aigerim} {
		code, raw := fx.do(t, http.MethodPost, "/api/v1/officer/actions", joseHeader(),
			signAction(t, who, jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: jwsauth.SerialHex(responder.Certificate.SerialNumber), Reason: "keyCompromise"}, time.Now()))
		var r ra.Revocation
		if err := json.Unmarshal(raw, &r); err != nil || code != http.StatusAccepted || r.Requests != i+1 || r.Needed != 3 {
			t.Errorf("CA officer %d of 3: %d %s; want 202 pending, %d of 3", i+1, code, raw, i+1)
		}
	}
	if c, err := fx.db.Certificate(t.Context(), f.Issuer.ID, responder.Certificate.SerialNumber.Bytes()); err != nil || c.Status != store.StatusGood {
		t.Errorf("the signer's certificate after two of three CA officers: %s %v; want good", c.Status, err)
	}
}
