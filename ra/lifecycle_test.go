package ra_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/ra"
	"github.com/sanadpki/sanad/ra/idnum"
	"github.com/sanadpki/sanad/ra/jwsauth"
	"github.com/sanadpki/sanad/ra/registry"
)

// signEvent is a registry event signed as a national registry would.
func signEvent(t *testing.T, key crypto.Signer, alg jose.SignatureAlgorithm, event map[string]any) []byte {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(mustJSON(t, event))
	if err != nil {
		t.Fatal(err)
	}
	compact, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return []byte(compact)
}

// signRaw signs a payload as given, however it is spelled.
func signRaw(t *testing.T, key crypto.Signer, payload string) []byte {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	compact, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return []byte(compact)
}

// deathOf is the event of Aigerim Sadykova's death (citizen()). Every
// delivery of one id is the same event, so it happened at one time: a
// clock read per call made a redelivery that crossed a second boundary
// another content (event-conflict), and TestRegistryEvents failed once.
func deathOf(id string) map[string]any {
	return map[string]any{"event_id": id, "kind": "death", "country": "KZ", "national_id": "880312448217",
		"occurred_at": deathTime.Format(time.RFC3339)}
}

// deathTime is when the deaths of deathOf happened: an hour before the
// tests started.
var deathTime = time.Now().UTC().Add(-time.Hour)

// postEvent sends a signed event and reads the answer: the result, or
// the problem's name.
func (fx *raFixture) postEvent(t *testing.T, jws []byte) (int, ra.RegistryEventResult, string) {
	t.Helper()
	code, body := fx.do(t, http.MethodPost, "/api/v1/registry/events", http.Header{"Content-Type": {"application/jose"}}, jws)
	var res ra.RegistryEventResult
	var problem struct {
		Type string `json:"type"`
	}
	if code == http.StatusOK {
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatalf("%d %s: %v", code, body, err)
		}
		return code, res, ""
	}
	if err := json.Unmarshal(body, &problem); err != nil {
		t.Fatalf("%d %s: %v", code, body, err)
	}
	return code, res, strings.TrimPrefix(problem.Type, "urn:sanad:problem:")
}

// issued takes an auto enrollment to its certificate and returns the
// serial in hex.
func (fx *raFixture) issued(t *testing.T, applicant map[string]any) string {
	t.Helper()
	id, code := fx.enroll(t, applicant, "citizen-auth")
	if a := fx.proof(t, id, code); a.status != http.StatusOK || a.state != store.StateIssued {
		t.Fatalf("proof of %s: %+v", id, a)
	}
	return fx.serialOf(t, id)
}

// serialOf is the serial (hex) of an issued enrollment's certificate.
func (fx *raFixture) serialOf(t *testing.T, id string) string {
	t.Helper()
	_, body := fx.do(t, http.MethodGet, "/api/v1/enrollments/"+id, nil, nil)
	var v ra.View
	if err := json.Unmarshal(body, &v); err != nil || v.Serial == "" {
		t.Fatalf("enrollment %s: %s", id, body)
	}
	return v.Serial
}

// certStatus is the stored status of the certificate with serial (hex).
func (fx *raFixture) certStatus(t *testing.T, serial string) string {
	t.Helper()
	b, err := hex.DecodeString(serial)
	if err != nil {
		t.Fatal(err)
	}
	c, err := fx.db.SignedCertificateBySerial(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	return c.Status
}

// auditActions counts the audit events by action.
func (fx *raFixture) auditActions(t *testing.T) map[string]int {
	t.Helper()
	rows, err := fx.raw.QueryContext(t.Context(), `SELECT action FROM audit_events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			t.Fatal(err)
		}
		out[a]++
	}
	return out
}

// TestRegistryEvents: a death revokes the person's good certificates and
// rejects their open enrollments, once, audited; a second delivery answers
// the same and changes nothing; the same id with another payload is
// refused; a dissolution rejects the business's open enrollments and an
// authority change only those the representative proved; an event about
// nobody known is recorded and ignored; a refused event changes nothing.
func TestRegistryEvents(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			fx := newRAFixture(t, f, driver)
			key := fx.registryKey

			// Aigerim holds two certificates (one revoked already) and
			// has two enrollments open: the fixture's, waiting for its
			// code, and one waiting for an officer.
			good := fx.issued(t, citizen())
			gone := fx.issued(t, citizen())
			goneSerial, err := hex.DecodeString(gone)
			if err != nil {
				t.Fatal(err)
			}
			if err := fx.ca.Revoke(t.Context(), goneSerial, 4, "test"); err != nil { // superseded
				t.Fatal(err)
			}
			waiting := fx.proved(t, citizen(), "citizen-sign")
			// Nurlan's certificate is not Aigerim's: it stays good.
			nurlans := fx.issued(t, map[string]any{"kind": "person", "country": "KZ", "national_id": "850721313761",
				"given_name": "Nurlan", "family_name": "Bekov", "birth_date": "1985-07-21"})
			before := fx.auditActions(t)

			death := signEvent(t, key, jose.ES256, deathOf("kz-death-0001"))
			code, res, problem := fx.postEvent(t, death)
			if code != http.StatusOK {
				t.Fatalf("death: %d %s", code, problem)
			}
			if res.Outcome != store.OutcomeApplied || res.Subject != "IDCKZ-880312448217" || res.Repeated {
				t.Errorf("death: %+v", res)
			}
			if !slices.Equal(res.Revoked, []string{good}) {
				t.Errorf("revoked %v, want [%s]", res.Revoked, good)
			}
			if got, want := slices.Sorted(slices.Values(res.Ended)), slices.Sorted(slices.Values([]string{fx.pending, waiting})); !slices.Equal(got, want) {
				t.Errorf("ended %v, want %v", got, want)
			}
			var status string
			var reason int
			if err := fx.raw.QueryRowContext(t.Context(), fx.q(`SELECT status, reason FROM certificates WHERE profile = 'citizen-auth' AND status = 'revoked' AND reason = 5`)).Scan(&status, &reason); err != nil {
				t.Errorf("the certificate is not revoked for cessationOfOperation: %v", err)
			}
			for _, id := range []string{fx.pending, waiting} {
				e, err := fx.db.Enrollment(t.Context(), id)
				if err != nil || e.State != store.StateRejected || !strings.Contains(e.StateReason, "death") {
					t.Errorf("enrollment %s: %+v %v", id, e, err)
				}
			}
			ev, err := fx.db.RegistryEvent(t.Context(), "KZ/kz-death-0001")
			if err != nil || ev.Outcome != store.OutcomeApplied || ev.Source != "registry:test" || ev.SubjectID == "" || ev.Payload != string(death) {
				t.Errorf("recorded: %+v %v", ev, err)
			}
			if status := fx.certStatus(t, nurlans); status != store.StatusGood {
				t.Errorf("another person's certificate is %s", status)
			}
			after := fx.auditActions(t)
			for action, n := range map[string]int{"registry.event": 1, "registry.event.applied": 1, "enrollment.reject": 2, "certificate.revoke": 1} {
				if got := after[action] - before[action]; got != n {
					t.Errorf("audit %s: %d new events, want %d", action, got, n)
				}
			}

			// The helpdesk sees why: the event, and the certificate it
			// revoked.
			jws, err := jwsauth.Sign(jwsauth.Action{Action: jwsauth.ActionFind, Subject: "IDCKZ-880312448217", Audience: ra.AudienceFind}, fx.officer.cert, fx.officer.key, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			_, raw := fx.do(t, http.MethodGet, "/api/v1/officer/subjects", http.Header{"Authorization": {"JWS " + jws}}, nil)
			var view ra.SubjectView
			if err := json.Unmarshal(raw, &view); err != nil || len(view.RegistryEvents) != 1 || view.RegistryEvents[0].ID != "KZ/kz-death-0001" ||
				view.RegistryEvents[0].Kind != store.EventDeath || view.RegistryEvents[0].Outcome != store.OutcomeApplied || view.RegistryEvents[0].Source != "registry:test" {
				t.Errorf("the subject as an officer finds it: %s", raw)
			}
			for _, c := range view.Certificates {
				if c.Serial == good && (c.Status != store.StatusRevoked || c.Reason != "cessationOfOperation") {
					t.Errorf("the certificate as an officer finds it: %+v", c)
				}
			}

			// Delivered again, signed again: the same answer, nothing new.
			st := fx.state(t)
			code, again, _ := fx.postEvent(t, signEvent(t, key, jose.ES256, deathOf("kz-death-0001")))
			if code != http.StatusOK || !again.Repeated || !slices.Equal(again.Revoked, res.Revoked) || !slices.Equal(again.Ended, res.Ended) || again.Outcome != res.Outcome {
				t.Errorf("second delivery: %d %+v, first %+v", code, again, res)
			}
			if d := st.diff(fx.state(t)); len(d) > 0 {
				t.Errorf("the second delivery changed the database: %s", strings.Join(d, "; "))
			}
			// The same id, another event.
			other := deathOf("kz-death-0001")
			other["occurred_at"] = time.Now().UTC().Add(-2 * time.Hour).Format(time.RFC3339)
			if code, _, problem := fx.postEvent(t, signEvent(t, key, jose.ES256, other)); code != http.StatusConflict || problem != "event-conflict" {
				t.Errorf("another payload under the same id: %d %s", code, problem)
			}

			// Nobody here: recorded, ignored.
			nobody := map[string]any{"event_id": "kz-death-0002", "kind": "death", "country": "KZ", "national_id": "011126570360",
				"occurred_at": time.Now().UTC().Format(time.RFC3339)}
			if code, res, _ := fx.postEvent(t, signEvent(t, key, jose.ES256, nobody)); code != http.StatusOK || res.Outcome != store.OutcomeIgnored || len(res.Revoked)+len(res.Ended) != 0 {
				t.Errorf("an unknown person: %d %+v", code, res)
			}

			// A business: Ayesha's enrollment for Indus Textiles ends when
			// she loses her authority, its certificate stays; another
			// representative's enrollment does not end, until the business
			// is dissolved, which revokes its certificate.
			sealed := fx.proved(t, business(), "business-auth")
			if a := fx.act(t, signAction(t, fx.officer, approve(sealed), time.Now())); a.status != http.StatusOK || a.state != store.StateIssued {
				t.Fatalf("approve the business certificate: %+v", a)
			}
			bizSerial := fx.serialOf(t, sealed)
			ayeshas := fx.proved(t, business(), "business-auth")
			bilal := business()
			bilal["representative"] = map[string]any{"kind": "person", "country": "PK", "national_id": "3520277164593",
				"given_name": "Muhammad Bilal", "family_name": "Ahmed", "birth_date": "1984-01-03"}
			bilals := fx.proved(t, bilal, "business-auth")
			change := map[string]any{"event_id": "pk-authority-7", "kind": "authority_change", "country": "PK", "registration_number": "32778761",
				"representative": map[string]any{"country": "PK", "national_id": "6110148392762"}, "occurred_at": time.Now().UTC().Format(time.RFC3339)}
			code, res, problem = fx.postEvent(t, signEvent(t, key, jose.ES256, change))
			if code != http.StatusOK || res.Outcome != store.OutcomeApplied || !slices.Equal(res.Ended, []string{ayeshas}) || len(res.Revoked) != 0 {
				t.Errorf("authority change: %d %s %+v", code, problem, res)
			}
			if status := fx.certStatus(t, bizSerial); status != store.StatusGood {
				t.Errorf("after the authority change, the business certificate is %s", status)
			}
			dissolution := map[string]any{"event_id": "pk-dissolution-9", "kind": "dissolution", "country": "PK", "registration_number": "32778761",
				"occurred_at": time.Now().UTC().Format(time.RFC3339)}
			code, res, problem = fx.postEvent(t, signEvent(t, key, jose.ES256, dissolution))
			if code != http.StatusOK || res.Outcome != store.OutcomeApplied || !slices.Equal(res.Ended, []string{bilals}) || !slices.Equal(res.Revoked, []string{bizSerial}) {
				t.Errorf("dissolution: %d %s %+v", code, problem, res)
			}
			if status := fx.certStatus(t, bizSerial); status != store.StatusRevoked {
				t.Errorf("after the dissolution, the business certificate is %s", status)
			}
			// Another registry's event 1001 is not this one's.
			pk := deathOf("kz-death-0001")
			pk["country"], pk["national_id"] = "PK", "6110148392762"
			if code, res, problem := fx.postEvent(t, signEvent(t, key, jose.ES256, pk)); code != http.StatusOK || res.Repeated || res.Outcome != store.OutcomeIgnored {
				t.Errorf("the same event id in another country: %d %s %+v", code, problem, res)
			}
		})
	}
}

// TestRegistryEventsRefused: without a registry key the route refuses
// every event; events that are not the registry's, or not well formed,
// are refused with their own problem type and change nothing.
func TestRegistryEventsRefused(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			fx := newRAFixture(t, f, driver)
			key := fx.registryKey
			valid := func() map[string]any { return deathOf("kz-death-0100") }
			rows := []struct {
				name    string
				body    []byte
				status  int
				problem string
			}{
				{"signed by a stranger", signEvent(t, fx.stranger.key, jose.ES256, valid()), 401, "unauthorized"},
				{"not a JWS", []byte("death of 880312448217"), 400, "invalid-event"},
				{"two signatures' worth of dots", append(signEvent(t, key, jose.ES256, valid()), ".x"...), 400, "invalid-event"},
				{"unknown member", signEvent(t, key, jose.ES256, with(valid(), "cause", "x")), 400, "invalid-event"},
				{"no event id", signEvent(t, key, jose.ES256, without(valid(), "event_id")), 400, "invalid-event"},
				{"event id with a space", signEvent(t, key, jose.ES256, with(valid(), "event_id", "a b")), 400, "invalid-event"},
				{"unknown kind", signEvent(t, key, jose.ES256, with(valid(), "kind", "marriage")), 400, "invalid-event"},
				{"death of a business", signEvent(t, key, jose.ES256, with(without(valid(), "national_id"), "registration_number", "32778761")), 400, "invalid-event"},
				{"in the future", signEvent(t, key, jose.ES256, with(valid(), "occurred_at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))), 400, "invalid-event"},
				{"no time", signEvent(t, key, jose.ES256, without(valid(), "occurred_at")), 400, "invalid-event"},
				{"two objects", func() []byte {
					signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
					obj, _ := signer.Sign(append(mustJSON(t, valid()), mustJSON(t, valid())...))
					c, _ := obj.CompactSerialize()
					return []byte(c)
				}(), 400, "invalid-event"},
				{"a member twice", signRaw(t, key, `{"event_id":"kz-1","kind":"death","kind":"death","country":"KZ","national_id":"880312448217","occurred_at":"2026-11-30T09:00:00Z"}`), 400, "invalid-event"},
				{"a member in capitals", signRaw(t, key, `{"event_id":"kz-1","kind":"death","country":"KZ","NATIONAL_ID":"880312448217","occurred_at":"2026-11-30T09:00:00Z"}`), 400, "invalid-event"},
				{"bad checksum", signEvent(t, key, jose.ES256, with(valid(), "national_id", "880312448218")), 422, "invalid-identifier"},
				{"unsupported country", signEvent(t, key, jose.ES256, with(valid(), "country", "ZZ")), 422, "unsupported-country"},
			}
			before := fx.state(t)
			for _, row := range rows {
				code, _, problem := fx.postEvent(t, row.body)
				if code != row.status || problem != row.problem {
					t.Errorf("%s: %d %s, want %d %s", row.name, code, problem, row.status, row.problem)
				}
			}
			if code, _ := fx.do(t, http.MethodPost, "/api/v1/registry/events", http.Header{"Content-Type": {"application/json"}}, signEvent(t, key, jose.ES256, valid())); code != http.StatusUnsupportedMediaType {
				t.Errorf("application/json: %d", code)
			}
			if d := before.diff(fx.state(t)); len(d) > 0 {
				t.Errorf("refused events changed the database: %s", strings.Join(d, "; "))
			}

			off := newRAFixture(t, f, driver, func(d *ra.Deps) { d.RegistryKeys = nil })
			if code, _, problem := off.postEvent(t, signEvent(t, key, jose.ES256, valid())); code != http.StatusNotFound || problem != "registry-events-off" {
				t.Errorf("without registry keys: %d %s", code, problem)
			}
			// A node that takes no events leaves another's pending ones be.
			ctx := t.Context()
			if err := off.db.InTx(ctx, func(tx *store.Tx) error {
				return tx.InsertRegistryEvent(ctx, store.RegistryEvent{EventID: "KZ/kz-death-0100", Source: "registry:test", Kind: store.EventDeath,
					OccurredAt: time.Now().Add(-time.Hour), ReceivedAt: time.Now().Add(-2 * time.Minute), Payload: string(signEvent(t, key, jose.ES256, valid()))})
			}); err != nil {
				t.Fatal(err)
			}
			if n, err := off.svc.RetryRegistryEvents(ctx); n != 0 || err != nil {
				t.Errorf("retry on a node without registry keys: %d %v", n, err)
			}
			if ev, err := off.db.RegistryEvent(ctx, "KZ/kz-death-0100"); err != nil || ev.Outcome != store.OutcomePending {
				t.Errorf("another node's pending event, after a node without keys retried: %+v %v", ev, err)
			}
		})
	}
}

// failingRevoker fails every revocation while failing is set.
type failingRevoker struct {
	ra.Revoker
	failing atomic.Bool
}

func (r *failingRevoker) Revoke(ctx context.Context, serial []byte, reason int, actor string, also ...audit.Event) error {
	if r.failing.Load() {
		return errors.New("the HSM does not answer")
	}
	return r.Revoker.Revoke(ctx, serial, reason, actor, also...)
}

// failingCA fails every issuance while failing is set, as a CA whose HSM
// does not answer.
type failingCA struct {
	ra.Issuer
	failing atomic.Bool
}

func (c *failingCA) Issue(ctx context.Context, req ca.Request) (*x509.Certificate, error) {
	if c.failing.Load() {
		return nil, errors.New("the HSM does not answer")
	}
	return c.Issuer.Issue(ctx, req)
}

// TestRegistryEventCarriedOn: a death whose revocation the CA cannot make
// now is recorded and answered 503 event-incomplete, pending, and carried
// through by RetryRegistryEvents a minute later; an enrollment approved
// before the event is not issued when the CA is back.
func TestRegistryEventCarriedOn(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			clk := &clock{}
			revoker, issuer := &failingRevoker{}, &failingCA{}
			fx := newRAFixture(t, f, driver, func(d *ra.Deps) {
				d.Now = clk.Now
				revoker.Revoker, d.Revoker = d.Revoker, revoker
				issuer.Issuer, d.CA = d.CA, issuer
			})
			good := fx.issued(t, citizen())
			// Approved while the CA is down: it waits to be issued.
			issuer.failing.Store(true)
			id, code := fx.enroll(t, citizen(), "citizen-auth")
			if a := fx.proof(t, id, code); a.state != store.StateApproved {
				t.Fatalf("proof while the CA is down: %+v", a)
			}

			revoker.failing.Store(true)
			death := signEvent(t, fx.registryKey, jose.ES256, deathOf("kz-death-0200"))
			if code, _, problem := fx.postEvent(t, death); code != http.StatusServiceUnavailable || problem != "event-incomplete" {
				t.Fatalf("death while the CA cannot revoke: %d %s", code, problem)
			}
			ev, err := fx.db.RegistryEvent(t.Context(), "KZ/kz-death-0200")
			if err != nil || ev.Outcome != store.OutcomePending {
				t.Fatalf("recorded: %+v %v", ev, err)
			}
			if status := fx.certStatus(t, good); status != store.StatusGood {
				t.Fatalf("the certificate is %s before the CA could revoke it", status)
			}
			// Not a minute old: a delivery may still be at work on it.
			revoker.failing.Store(false)
			if n, err := fx.svc.RetryRegistryEvents(t.Context()); n != 0 || err != nil {
				t.Errorf("retry within the minute: %d %v", n, err)
			}
			clk.Add(2 * time.Minute)
			if n, err := fx.svc.RetryRegistryEvents(t.Context()); n != 1 || err != nil {
				t.Errorf("retry: %d %v", n, err)
			}
			if status := fx.certStatus(t, good); status != store.StatusRevoked {
				t.Errorf("after the retry, the certificate is %s", status)
			}
			code2, res, _ := fx.postEvent(t, death)
			if code2 != http.StatusOK || !res.Repeated || res.Outcome != store.OutcomeApplied || !slices.Equal(res.Revoked, []string{good}) || !slices.Equal(res.Ended, []string{fx.pending}) {
				t.Errorf("the registry's next delivery: %d %+v", code2, res)
			}

			// The CA is back: the approved enrollment is not issued.
			issuer.failing.Store(false)
			clk.Add(2 * time.Minute)
			if _, err := fx.svc.Resume(t.Context(), time.Minute); err != nil {
				t.Fatal(err)
			}
			e, err := fx.db.Enrollment(t.Context(), id)
			if err != nil || e.State != store.StateFailed || !strings.Contains(e.StateReason, "death") {
				t.Errorf("the enrollment approved before the death: %+v %v", e, err)
			}
			if certs, err := fx.db.CertificatesOfEnrollment(t.Context(), id); err != nil || len(certs) != 0 {
				t.Errorf("certificates of the enrollment approved before the death: %d %v", len(certs), err)
			}
		})
	}
}

// TestParseRegistryKeys: keys and certificates, limited to countries or
// not; what is not a usable key is refused, naming it.
func TestParseRegistryKeys(t *testing.T) {
	now := time.Now()
	pubPEM := func(k crypto.PublicKey, headers map[string]string) string {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: headers, Bytes: der}))
	}
	p256 := newKey(t)
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := func(notAfter time.Time) string {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: now.Add(-time.Hour), NotAfter: notAfter}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, p256.Public(), p256)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	keys, err := ra.ParseRegistryKeys([]byte(pubPEM(p256.Public(), nil)+pubPEM(p256.Public(), map[string]string{"Countries": "KZ, PK"})+certPEM(now.Add(time.Hour))), now)
	if err != nil || len(keys) != 3 {
		t.Fatalf("%d keys, %v", len(keys), err)
	}
	if len(keys[0].Countries) != 0 || !slices.Equal(keys[1].Countries, []string{"KZ", "PK"}) || !strings.HasPrefix(keys[0].Name, "registry:") {
		t.Errorf("keys: %+v", keys)
	}
	for _, c := range []struct{ name, in, want string }{
		{"nothing", "", "no PUBLIC KEY"},
		{"junk after", pubPEM(p256.Public(), nil) + "junk", "not a PEM block"},
		{"a private key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})), "PRIVATE KEY block"},
		{"P-224", pubPEM(p224.Public(), nil), "no accepted algorithm"},
		{"an expired certificate", certPEM(now.Add(-time.Minute)), "not now"},
		{"a bad country", pubPEM(p256.Public(), map[string]string{"Countries": "Kazakhstan"}), "ISO 3166-1"},
		{"another header", pubPEM(p256.Public(), map[string]string{"Comment": "x"}), "only Countries"},
	} {
		if _, err := ra.ParseRegistryKeys([]byte(c.in), now); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.want)
		}
	}

	// A key that speaks for PK does not for KZ.
	fx := newRAFixture(t, catest.New(t, now.UTC().Truncate(time.Second)), "sqlite", func(d *ra.Deps) {
		d.RegistryKeys = []ra.RegistryKey{{Name: "registry:pk", Key: p256.Public(), Countries: []string{"PK"}}}
	})
	if code, _, problem := fx.postEvent(t, signEvent(t, p256, jose.ES256, deathOf("kz-1"))); code != http.StatusUnauthorized || problem != "unauthorized" {
		t.Errorf("a KZ death signed with PK's key: %d %s", code, problem)
	}

	// A key given as a certificate signs what is received within the
	// certificate's validity, not only what came before the keys were
	// read: the RA may run for longer than the certificate.
	if keys[2].NotAfter.IsZero() || !keys[0].NotAfter.IsZero() {
		t.Fatalf("keys' validity: %v, %v", keys[0].NotAfter, keys[2].NotAfter)
	}
	jws := string(signEvent(t, p256, jose.ES256, deathOf("kz-2")))
	if _, _, err := ra.ParseRegistryEvent(jws, keys[2:], now); err != nil {
		t.Errorf("an event received while the key's certificate is valid: %v", err)
	}
	if _, _, err := ra.ParseRegistryEvent(jws, keys[2:], keys[2].NotAfter.Add(time.Second)); err == nil || !strings.Contains(err.Error(), "not valid at") {
		t.Errorf("an event received after the key's certificate expired: %v", err)
	}
}

// racingCA runs before once, after the RA's own checks and before the CA
// signs: what arrives while the CA signs.
type racingCA struct {
	ra.Issuer
	before func()
}

func (c *racingCA) Issue(ctx context.Context, req ca.Request) (*x509.Certificate, error) {
	if f := c.before; f != nil {
		c.before = nil
		f()
	}
	return c.Issuer.Issue(ctx, req)
}

// racingRevoker has another RA node revoke each certificate first, for
// the same event: what this node then gets is already-revoked.
type racingRevoker struct{ ra.Revoker }

func (r racingRevoker) Revoke(ctx context.Context, serial []byte, reason int, actor string, also ...audit.Event) error {
	if err := r.Revoker.Revoke(ctx, serial, reason, actor+" (the other node)", also...); err != nil {
		return err
	}
	return r.Revoker.Revoke(ctx, serial, reason, actor, also...)
}

// TestRegistryEventRaces: a certificate the CA signs as the death arrives
// is revoked once stored; a certificate another node revoked for the same
// event meanwhile is in this node's answer.
func TestRegistryEventRaces(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			racing := &racingCA{}
			fx := newRAFixture(t, f, driver, func(d *ra.Deps) {
				racing.Issuer, d.CA = d.CA, racing
				d.Revoker = racingRevoker{d.Revoker}
			})
			// The death arrives while the CA signs Aigerim's certificate:
			// the event finds nothing to revoke, issue revokes it.
			racing.before = func() {
				code, res, problem := fx.postEvent(t, signEvent(t, fx.registryKey, jose.ES256, deathOf("kz-death-0300")))
				if code != http.StatusOK || len(res.Revoked) != 0 {
					t.Errorf("the death during the issuance: %d %s %+v", code, problem, res)
				}
			}
			serial := fx.issued(t, citizen())
			if status := fx.certStatus(t, serial); status != store.StatusRevoked {
				t.Errorf("the certificate signed as the death arrived is %s", status)
			}
			if racing.before != nil {
				t.Fatal("the event was not sent during the issuance")
			}

			// Another node revokes Ayesha's business certificate for the
			// same dissolution at the same time.
			id := fx.proved(t, business(), "business-auth")
			if a := fx.act(t, signAction(t, fx.officer, approve(id), time.Now())); a.state != store.StateIssued {
				t.Fatalf("approve: %+v", a)
			}
			biz := fx.serialOf(t, id)
			dissolution := map[string]any{"event_id": "pk-dissolution-0301", "kind": "dissolution", "country": "PK", "registration_number": "32778761",
				"occurred_at": time.Now().UTC().Format(time.RFC3339)}
			code, res, problem := fx.postEvent(t, signEvent(t, fx.registryKey, jose.ES256, dissolution))
			if code != http.StatusOK || !slices.Equal(res.Revoked, []string{biz}) {
				t.Errorf("dissolution raced by another node: %d %s %+v", code, problem, res)
			}
		})
	}
}

// TestRecheck: a recheck asks the registry, and does what its event would
// have for a death it records, once; a person it records alive, or no
// longer has, is left as is; the registry down is an error, not a death.
func TestRecheck(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			reg := &changingRegistry{dead: map[string]bool{}, gone: map[string]bool{}}
			fx := newRAFixture(t, f, driver, func(d *ra.Deps) { reg.Registry, d.Registry = d.Registry, reg })
			ctx := t.Context()
			serial := fx.issued(t, citizen())
			nurlan := map[string]any{"kind": "person", "country": "KZ", "national_id": "850721313761",
				"given_name": "Nurlan", "family_name": "Bekov", "birth_date": "1985-07-21"}
			nurlans := fx.issued(t, nurlan)

			if res, err := fx.svc.Recheck(ctx, "IDCKZ-880312448217", true); err != nil || res.Registry != "alive" || res.Event != nil {
				t.Errorf("alive: %+v %v", res, err)
			}
			reg.set(func() { reg.dead["KZ:880312448217"], reg.gone["KZ:850721313761"] = true, true })
			res, err := fx.svc.Recheck(ctx, "IDCKZ-880312448217", true)
			if err != nil || res.Registry != "deceased" || res.Event == nil || res.Event.Outcome != store.OutcomeApplied ||
				!slices.Equal(res.Event.Revoked, []string{serial}) || !slices.Equal(res.Event.Ended, []string{fx.pending}) {
				t.Fatalf("deceased: %+v %v", res, err)
			}
			if !strings.HasPrefix(res.Event.EventID, "recheck.") {
				t.Errorf("event id %q", res.Event.EventID)
			}
			ev, err := fx.db.RegistryEvent(ctx, "KZ/"+res.Event.EventID)
			if err != nil || !strings.HasPrefix(ev.Source, "recheck:") || ev.Outcome != store.OutcomeApplied || ev.Kind != store.EventDeath {
				t.Errorf("recorded: %+v %v", ev, err)
			}
			before := fx.state(t)
			again, err := fx.svc.Recheck(ctx, "IDCKZ-880312448217", true)
			if err != nil || again.Event == nil || !again.Event.Repeated || !slices.Equal(again.Event.Revoked, res.Event.Revoked) {
				t.Errorf("rechecked again: %+v %v", again, err)
			}
			if d := before.diff(fx.state(t)); len(d) > 0 {
				t.Errorf("a second recheck changed the database: %s", strings.Join(d, "; "))
			}

			if res, err := fx.svc.Recheck(ctx, "IDCKZ-850721313761", true); err != nil || res.Registry != "not-in-registry" || res.Event != nil {
				t.Errorf("no longer in the registry: %+v %v", res, err)
			}
			if status := fx.certStatus(t, nurlans); status != store.StatusGood {
				t.Errorf("the certificate of a person the registry no longer has is %s: an officer decides", status)
			}
			reg.set(func() { reg.down = true })
			if _, err := fx.svc.Recheck(ctx, "IDCKZ-850721313761", true); err == nil {
				t.Error("the registry down: no error")
			}
			for key, problem := range map[string]string{"IDCKZ-011126570360": "subject-not-found", "VATKZ-1": "invalid-request", "x": "invalid-request"} {
				_, err := fx.svc.Recheck(ctx, key, true)
				if e, ok := ra.ProblemOf(err); !ok || e.Type != problem {
					t.Errorf("%s: %v, want %s", key, err, problem)
				} else if problem == "subject-not-found" && !strings.Contains(e.Detail, "the RA has no enrollment of "+key) {
					// Not "no such person": the registry may well know them.
					t.Errorf("%s: detail %q", key, e.Detail)
				}
			}
		})
	}
}

// TestRegistryEventHealing: a certificate signed as the death came, whose
// revocation then failed, is revoked by the event reopened and carried on;
// an event that failed (no key verified it any more) is carried on when a
// delivery verifies; a person reported dead by mistake, enrolling again
// once the registry corrected it, keeps the new certificate, also through
// another delivery of the old event.
func TestRegistryEventHealing(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			clk := &clock{}
			racing, revoker := &racingCA{}, &failingRevoker{}
			fx := newRAFixture(t, f, driver, func(d *ra.Deps) {
				d.Now = clk.Now
				racing.Issuer, d.CA = d.CA, racing
				revoker.Revoker, d.Revoker = d.Revoker, revoker
			})
			ctx := t.Context()
			death := signEvent(t, fx.registryKey, jose.ES256, deathOf("kz-death-0400"))
			racing.before = func() {
				if code, res, problem := fx.postEvent(t, death); code != http.StatusOK || res.Outcome != store.OutcomeApplied {
					t.Errorf("the death during the issuance: %d %s %+v", code, problem, res)
				}
				revoker.failing.Store(true) // the revocation after the issuance fails
			}
			serial := fx.issued(t, citizen())
			if status := fx.certStatus(t, serial); status != store.StatusGood {
				t.Fatalf("the revocation failed, yet the certificate is %s", status)
			}
			if ev, err := fx.db.RegistryEvent(ctx, "KZ/kz-death-0400"); err != nil || ev.Outcome != store.OutcomePending {
				t.Fatalf("the event, after a certificate escaped it: %+v %v", ev, err)
			}
			revoker.failing.Store(false)
			clk.Add(2 * time.Minute)
			if n, err := fx.svc.RetryRegistryEvents(ctx); n != 1 || err != nil {
				t.Errorf("retry: %d %v", n, err)
			}
			if status := fx.certStatus(t, serial); status != store.StatusRevoked {
				t.Errorf("after the reopened event was carried on, the certificate is %s", status)
			}

			// The registry corrects itself: Aigerim enrolls again, and
			// keeps her certificate, also when the old event comes again.
			again := fx.issued(t, citizen())
			code, res, problem := fx.postEvent(t, death)
			if code != http.StatusOK || !res.Repeated {
				t.Errorf("the old event again: %d %s %+v", code, problem, res)
			}
			if status := fx.certStatus(t, again); status != store.StatusGood {
				t.Errorf("the certificate of an enrollment made after the corrected report is %s", status)
			}

			// An event whose key was withdrawn while it was pending fails;
			// the registry delivers it again, signed with its key now.
			nurlans := fx.issued(t, map[string]any{"kind": "person", "country": "KZ", "national_id": "850721313761",
				"given_name": "Nurlan", "family_name": "Bekov", "birth_date": "1985-07-21"})
			old := deathOf("kz-death-0401")
			old["national_id"] = "850721313761"
			stale := signEvent(t, newKey(t), jose.ES256, old)
			subj, err := fx.db.SubjectByNationalID(ctx, "person", "IDCKZ-850721313761")
			if err != nil {
				t.Fatal(err)
			}
			if err := fx.db.InTx(ctx, func(tx *store.Tx) error {
				return tx.InsertRegistryEvent(ctx, store.RegistryEvent{EventID: "KZ/kz-death-0401", Source: "registry:withdrawn", SubjectID: subj.ID,
					Kind: store.EventDeath, OccurredAt: clk.Now().Add(-time.Hour), ReceivedAt: clk.Now(), Payload: string(stale)})
			}); err != nil {
				t.Fatal(err)
			}
			clk.Add(2 * time.Minute)
			if n, err := fx.svc.RetryRegistryEvents(ctx); n != 0 || err == nil {
				t.Errorf("retry of an event no key verifies: %d %v", n, err)
			}
			if ev, err := fx.db.RegistryEvent(ctx, "KZ/kz-death-0401"); err != nil || ev.Outcome != store.OutcomeFailed {
				t.Fatalf("an event no key verifies: %+v %v", ev, err)
			}
			code, res, problem = fx.postEvent(t, signEvent(t, fx.registryKey, jose.ES256, old))
			if code != http.StatusOK || res.Outcome != store.OutcomeApplied || res.Repeated || !slices.Equal(res.Revoked, []string{nurlans}) {
				t.Errorf("the failed event delivered again, verifiably: %d %s %+v", code, problem, res)
			}
			if status := fx.certStatus(t, nurlans); status != store.StatusRevoked {
				t.Errorf("the certificate of an enrollment made before the event is %s", status)
			}
		})
	}
}

// revokerFailingFixture is an RA on SQLite on a clock of its own, whose
// revocations fail while the revoker's failing is set (a CA that cannot
// revoke now): what keeps a registry event pending.
func revokerFailingFixture(t *testing.T) (*raFixture, *clock, *failingRevoker) {
	t.Helper()
	clk := &clock{}
	revoker := &failingRevoker{}
	fx := newRAFixture(t, catest.New(t, time.Now().UTC().Truncate(time.Second)), "sqlite", func(d *ra.Deps) {
		d.Now = clk.Now
		revoker.Revoker, d.Revoker = d.Revoker, revoker
	})
	return fx, clk, revoker
}

// TestRetryKeepsLaterEnrollments: an enrollment made after a registry
// event was received is the registry's correction of it (the registry
// answered for the person then), as for certificates (revocable): the
// event carried on later, by RetryRegistryEvents, does not reject it.
func TestRetryKeepsLaterEnrollments(t *testing.T) {
	fx, clk, revoker := revokerFailingFixture(t)
	good := fx.issued(t, citizen())
	revoker.failing.Store(true)
	if code, _, problem := fx.postEvent(t, signEvent(t, fx.registryKey, jose.ES256, deathOf("kz-death-later"))); code != http.StatusServiceUnavailable || problem != "event-incomplete" {
		t.Fatalf("death while the CA cannot revoke: %d %s", code, problem)
	}
	clk.Add(time.Hour)
	later := fx.proved(t, citizen(), "citizen-sign")
	revoker.failing.Store(false)
	clk.Add(2 * time.Minute)
	if n, err := fx.svc.RetryRegistryEvents(t.Context()); n != 1 || err != nil {
		t.Fatalf("retry: %d %v", n, err)
	}
	if status := fx.certStatus(t, good); status != store.StatusRevoked {
		t.Errorf("the certificate from before the event is %s", status)
	}
	if e, err := fx.db.Enrollment(t.Context(), later); err != nil || e.State != store.StatePendingApproval {
		t.Errorf("the enrollment made an hour after the event: %s (%s), %v; want it pending approval", e.State, e.StateReason, err)
	}
}

// overtakingRegistry is the registry with an event delivered while it
// answers a lookup: the registry reports a death while an enrollment is
// asking it about the person.
type overtakingRegistry struct {
	registry.Registry
	mu     sync.Mutex
	during func()
}

func (r *overtakingRegistry) Person(ctx context.Context, country, id string) (registry.Person, registry.Evidence, error) {
	r.mu.Lock()
	during := r.during
	r.during = nil
	r.mu.Unlock()
	if during != nil {
		during()
	}
	return r.Registry.Person(ctx, country, id)
}

// TestFirstEnrollmentOvertakenByEvent: a death reported while the
// person's first enrollment asks the registry finds no subject and is
// ignored; the enrollment's issuance then adopts it: the certificate is
// revoked at once and the event carried out (a review got a dead person's
// certificate issued and kept good). Both databases. The registry reports
// the deaths of people who never enrolled too, more than the issuance reads
// at once (maxUnmatchedEvents) in the meantime: it finds its subject's among
// them by the subject's key.
func TestFirstEnrollmentOvertakenByEvent(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			clk := &clock{}
			reg := &overtakingRegistry{}
			fx := newRAFixture(t, f, driver, func(d *ra.Deps) {
				d.Now = clk.Now
				reg.Registry, d.Registry = d.Registry, reg
			})
			// Aliya Zhaksylykova of the sample registry, who has never
			// enrolled (the fixture's pending enrollment is Aigerim's).
			aliya := map[string]any{"kind": "person", "country": "KZ", "national_id": "920930477121",
				"given_name": "Aliya", "family_name": "Zhaksylykova", "birth_date": "1992-09-30"}
			death := map[string]any{"event_id": "kz-death-overtaking", "kind": "death", "country": "KZ", "national_id": "920930477121",
				"occurred_at": deathTime.Format(time.RFC3339)}
			var res ra.RegistryEventResult
			var evErr error
			reg.during = func() {
				born := time.Date(1950, 1, 2, 0, 0, 0, 0, time.UTC)
				for serial, n := 0, 0; n < 120; serial++ {
					iin, err := idnum.KZIIN(born, true, serial)
					if errors.Is(err, idnum.ErrNoCheckDigit) {
						continue
					} else if err != nil {
						t.Fatal(err)
					}
					other := map[string]any{"event_id": fmt.Sprintf("kz-death-other-%d", n), "kind": "death", "country": "KZ", "national_id": iin,
						"occurred_at": deathTime.Format(time.RFC3339)}
					if r, err := fx.svc.ApplyRegistryEvent(t.Context(), string(signEvent(t, fx.registryKey, jose.ES256, other))); err != nil || r.Outcome != store.OutcomeIgnored {
						t.Fatalf("the death of someone who never enrolled: %+v %v", r, err)
					}
					n++
				}
				res, evErr = fx.svc.ApplyRegistryEvent(t.Context(), string(signEvent(t, fx.registryKey, jose.ES256, death)))
			}
			serial := fx.issued(t, aliya)
			if evErr != nil || res.Outcome != store.OutcomeIgnored {
				t.Fatalf("the event during the lookup: %+v %v; want ignored, no subject yet", res, evErr)
			}
			if status := fx.certStatus(t, serial); status != store.StatusRevoked {
				t.Errorf("the certificate issued on the overtaken enrollment is %s", status)
			}
			ev, err := fx.db.RegistryEvent(t.Context(), "KZ/kz-death-overtaking")
			if err != nil || ev.SubjectID == "" || ev.Outcome != store.OutcomePending {
				t.Fatalf("the event after the issuance: %+v %v; want adopted, pending", ev, err)
			}
			clk.Add(2 * time.Minute)
			if n, err := fx.svc.RetryRegistryEvents(t.Context()); n != 1 || err != nil {
				t.Errorf("retry: %d %v", n, err)
			}
			if ev, err := fx.db.RegistryEvent(t.Context(), "KZ/kz-death-overtaking"); err != nil || ev.Outcome != store.OutcomeApplied {
				t.Errorf("the event after the retry: %+v %v; want applied", ev, err)
			}
		})
	}
}

// TestEventAndIssuanceTakeTurns: the record of a death event and the
// store of a certificate take turns under the subject's lock
// (store.Tx.LockSubject), so neither reads before the other commits and
// misses it, as each could under PostgreSQL's READ COMMITTED. On
// PostgreSQL each test holds the lock in a transaction of its own and sees
// the other party wait for it; on SQLite the database's write lock orders
// them anyway.
func TestEventAndIssuanceTakeTurns(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	const aliyaKey = "IDCKZ-920930477121"
	aliya := map[string]any{"kind": "person", "country": "KZ", "national_id": "920930477121",
		"given_name": "Aliya", "family_name": "Zhaksylykova", "birth_date": "1992-09-30"}
	death := func(id string) map[string]any {
		return map[string]any{"event_id": id, "kind": "death", "country": "KZ", "national_id": "920930477121",
			"occurred_at": deathTime.Format(time.RFC3339)}
	}
	for _, driver := range storetest.Drivers() {
		// The event waits for a transaction that stores Aliya's subject
		// row under her lock, then finds her: applied, not ignored.
		// Before, it read whether she existed before taking a turn.
		t.Run(driver+"/event waits", func(t *testing.T) {
			fx := newRAFixture(t, f, driver)
			locked, release, held := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			go func() {
				held <- fx.db.InTx(t.Context(), func(tx *store.Tx) error {
					if err := tx.LockSubject(t.Context(), "person", aliyaKey); err != nil {
						return err
					}
					close(locked)
					<-release
					now := time.Now().UTC()
					_, err := tx.PutSubject(t.Context(), store.Subject{ID: "subject-aliya", Kind: "person", NationalID: aliyaKey,
						Attributes: []byte(`{}`), CreatedAt: now, UpdatedAt: now})
					return err
				})
			}()
			<-locked
			var res ra.RegistryEventResult
			applied := make(chan error, 1)
			go func() {
				var err error
				res, err = fx.svc.ApplyRegistryEvent(t.Context(), string(signEvent(t, fx.registryKey, jose.ES256, death("kz-death-waits"))))
				applied <- err
			}()
			if err := storetest.AwaitSubjectLockWaiter(fx.raw, driver, "person", aliyaKey, applied); err != nil {
				t.Fatal(err)
			}
			close(release)
			if err := <-held; err != nil {
				t.Fatal(err)
			}
			if err := <-applied; err != nil || res.Outcome != store.OutcomeApplied {
				t.Fatalf("the event: %+v %v; want applied to the subject stored first", res, err)
			}
			if ev, err := fx.db.RegistryEvent(t.Context(), "KZ/kz-death-waits"); err != nil || ev.SubjectID != "subject-aliya" {
				t.Errorf("the event's record: %+v %v; want Aliya's subject", ev, err)
			}
		})
		// Aliya's first issuance waits for a transaction that records her
		// death under her lock, matched to no subject yet (as an event
		// that overtook her enrollment's registry lookup), then sees it and
		// adopts it: the certificate is revoked at once. Before, it read
		// the events before taking a turn and kept the certificate good.
		t.Run(driver+"/issuance waits", func(t *testing.T) {
			clk := &clock{}
			reg := &overtakingRegistry{}
			fx := newRAFixture(t, f, driver, func(d *ra.Deps) {
				d.Now = clk.Now
				reg.Registry, d.Registry = d.Registry, reg
			})
			release, held := make(chan struct{}), make(chan error, 1)
			var once sync.Once
			releaseOnce := func() { once.Do(func() { close(release) }) }
			defer releaseOnce()
			reg.during = func() {
				locked := make(chan struct{})
				go func() {
					held <- fx.db.InTx(t.Context(), func(tx *store.Tx) error {
						if err := tx.LockSubject(t.Context(), "person", aliyaKey); err != nil {
							return err
						}
						err := tx.InsertRegistryEvent(t.Context(), store.RegistryEvent{EventID: "KZ/kz-death-overtakes", Source: "registry:test",
							Kind: store.EventDeath, OccurredAt: deathTime.Truncate(time.Second), ReceivedAt: clk.Now().UTC(),
							Payload: string(signEvent(t, fx.registryKey, jose.ES256, death("kz-death-overtakes"))), Outcome: store.OutcomePending})
						close(locked)
						<-release
						return err
					})
				}()
				<-locked
				if driver == store.DriverSQLite {
					releaseOnce() // the enrollment's writes wait for the database's write lock
				}
			}
			issued, waited := make(chan error, 1), make(chan error, 1)
			go func() {
				waited <- storetest.AwaitSubjectLockWaiter(fx.raw, driver, "person", aliyaKey, issued)
				releaseOnce()
			}()
			serial := fx.issued(t, aliya)
			issued <- nil
			if err := <-waited; err != nil {
				t.Error(err)
			}
			releaseOnce()
			if err := <-held; err != nil {
				t.Fatal(err)
			}
			if status := fx.certStatus(t, serial); status != store.StatusRevoked {
				t.Errorf("the certificate issued as the death was recorded is %s", status)
			}
			if ev, err := fx.db.RegistryEvent(t.Context(), "KZ/kz-death-overtakes"); err != nil || ev.SubjectID == "" {
				t.Errorf("the event after the issuance: %+v %v; want adopted", ev, err)
			}
		})
	}
}

// TestRetryReachesEveryPendingEvent: RetryRegistryEvents takes the pending
// events a page at a time, each call the next page: a full page of events
// that fail for ever (a revocation the CA cannot make) does not keep a
// newer event from being carried out.
func TestRetryReachesEveryPendingEvent(t *testing.T) {
	fx, clk, revoker := revokerFailingFixture(t)
	fx.issued(t, citizen())
	revoker.failing.Store(true)
	clk.Add(2 * time.Hour) // the events come an hour after the certificate
	received := clk.Now().Add(-time.Hour)
	record := func(event map[string]any) {
		t.Helper()
		if err := fx.db.InTx(t.Context(), func(tx *store.Tx) error {
			return tx.InsertRegistryEvent(t.Context(), store.RegistryEvent{EventID: "KZ/" + event["event_id"].(string), Source: "registry:test",
				Kind: store.EventDeath, OccurredAt: deathTime.Truncate(time.Second), ReceivedAt: received, Payload: string(signEvent(t, fx.registryKey, jose.ES256, event)),
				Outcome: store.OutcomePending})
		}); err != nil {
			t.Fatal(err)
		}
		received = received.Add(time.Millisecond)
	}
	for i := range 101 { // Aigerim's death, 101 times: her certificate cannot be revoked
		record(deathOf(fmt.Sprintf("kz-stuck-%03d", i)))
	}
	// Then a death the RA can carry out: a person it has never seen.
	record(map[string]any{"event_id": "kz-newer", "kind": "death", "country": "KZ", "national_id": "920930477121",
		"occurred_at": deathTime.Format(time.RFC3339)})
	for range 2 {
		_, _ = fx.svc.RetryRegistryEvents(t.Context()) // the stuck ones fail each time
	}
	if ev, err := fx.db.RegistryEvent(t.Context(), "KZ/kz-stuck-100"); err != nil || ev.Outcome != store.OutcomePending {
		t.Fatalf("a stuck event after two retries: %s, %v; want it still pending", ev.Outcome, err)
	}
	if ev, err := fx.db.RegistryEvent(t.Context(), "KZ/kz-newer"); err != nil || ev.Outcome == store.OutcomePending {
		t.Errorf("the newer event after two retries: %s, %v; want it carried out", ev.Outcome, err)
	}
}

// gatedCA holds the first issuance it is asked for, once armed, until
// opened: entered is closed as it starts waiting.
type gatedCA struct {
	ra.Issuer
	armed          atomic.Bool
	entered, opens chan struct{}
}

func (g *gatedCA) Issue(ctx context.Context, req ca.Request) (*x509.Certificate, error) {
	if g.armed.CompareAndSwap(true, false) {
		close(g.entered)
		<-g.opens
	}
	return g.Issuer.Issue(ctx, req)
}

// hookedRevoker runs during once, as the event revokes serial; and refuses
// once the first revocation of any other serial, as a CA that does not
// answer.
type hookedRevoker struct {
	ra.Revoker
	serial  []byte
	during  func()
	refused atomic.Bool
}

func (r *hookedRevoker) Revoke(ctx context.Context, serial []byte, reason int, actor string, also ...audit.Event) error {
	if bytes.Equal(serial, r.serial) && r.during != nil {
		during := r.during
		r.during = nil
		during()
	} else if !bytes.Equal(serial, r.serial) && r.refused.CompareAndSwap(false, true) {
		return errors.New("the HSM does not answer")
	}
	return r.Revoker.Revoke(ctx, serial, reason, actor, also...)
}

// TestEventSeesCertificateIssuedMeanwhile: a certificate stored while a
// death event's revocation pass runs, after the pass read the subject's
// certificates, whose own revocation by the issuance then fails once,
// keeps the event pending, and RetryRegistryEvents revokes it. Before,
// the event ended applied and the certificate stayed good.
func TestEventSeesCertificateIssuedMeanwhile(t *testing.T) {
	clk := &clock{}
	gate := &gatedCA{entered: make(chan struct{}), opens: make(chan struct{})}
	rev := &hookedRevoker{}
	fx := newRAFixture(t, catest.New(t, time.Now().UTC().Truncate(time.Second)), store.DriverSQLite, func(d *ra.Deps) {
		d.Now = clk.Now
		gate.Issuer, d.CA = d.CA, gate
		rev.Revoker, d.Revoker = d.Revoker, rev
	})
	old, err := hex.DecodeString(fx.issued(t, citizen()))
	if err != nil {
		t.Fatal(err)
	}
	id, code := fx.enroll(t, citizen(), "citizen-auth")
	gate.armed.Store(true)
	proved := make(chan answer, 1)
	go func() { proved <- fx.proof(t, id, code) }()
	<-gate.entered // the proof's issuance waits at the CA
	rev.serial = old
	rev.during = func() { // the event's pass read the certificates, the old one first
		close(gate.opens)
		if a := <-proved; a.status != http.StatusOK {
			t.Errorf("the proof: %+v", a)
		}
	}
	_, err = fx.svc.ApplyRegistryEvent(t.Context(), string(signEvent(t, fx.registryKey, jose.ES256, deathOf("kz-meanwhile"))))
	if p, ok := ra.ProblemOf(err); !ok || p.Type != "event-incomplete" {
		t.Errorf("the event: %v; want event-incomplete, a certificate issued meanwhile still good", err)
	}
	issued := fx.serialOf(t, id)
	clk.Add(5 * time.Minute)
	if _, err := fx.svc.RetryRegistryEvents(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := fx.certStatus(t, issued); st != store.StatusRevoked {
		t.Errorf("the certificate issued as the death was carried out: %s after the retry, want revoked", st)
	}
	if ev, err := fx.db.RegistryEvent(t.Context(), "KZ/kz-meanwhile"); err != nil || ev.Outcome != store.OutcomeApplied {
		t.Errorf("the event after the retry: %+v %v; want applied", ev.Outcome, err)
	}
}
