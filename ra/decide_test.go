package ra_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/ra"
	"github.com/sanadpki/sanad/ra/jwsauth"
	"github.com/sanadpki/sanad/ra/registry"
)

// clock is the RA's time in these tests: the real time, moved on by hand
// (the CA's certificates start at the real time, which the RA's must not
// fall behind). With a base, it stands at base and moves only by hand.
type clock struct {
	mu     sync.Mutex
	base   time.Time
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.base.IsZero() {
		return c.base.Add(c.offset)
	}
	return time.Now().UTC().Add(c.offset)
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// answer is a status and, for a problem document, its type without the
// urn:sanad:problem: prefix.
type answer struct {
	status  int
	problem string
	state   string
	id      string
}

func (fx *raFixture) answer(t *testing.T, method, path string, header http.Header, body []byte) answer {
	t.Helper()
	code, raw := fx.do(t, method, path, header, body)
	var doc struct {
		Type  string `json:"type"`
		State string `json:"state"`
		ID    string `json:"id"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s %s: %d %s", method, path, code, raw)
	}
	return answer{status: code, problem: strings.TrimPrefix(doc.Type, "urn:sanad:problem:"), state: doc.State, id: doc.ID}
}

// wrongCode is a well-formed code that is not code.
func wrongCode(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

// enroll files an application and returns its id and the one-time code
// the outbox received.
func (fx *raFixture) enroll(t *testing.T, applicant map[string]any, profileName string) (string, string) {
	t.Helper()
	a := fx.answer(t, http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json"}},
		enrollBody(t, applicant, profileName, csrPEM(t, newKey(t))))
	if a.status != http.StatusCreated {
		t.Fatalf("enroll %s: %+v", profileName, a)
	}
	return a.id, fx.code(t, a.id)
}

// code is the one-time code the outbox received for enrollment id.
func (fx *raFixture) code(t *testing.T, id string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fx.outbox, id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m ra.Message
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m.Code
}

func (fx *raFixture) proof(t *testing.T, id, code string) answer {
	t.Helper()
	return fx.answer(t, http.MethodPost, "/api/v1/enrollments/"+id+"/proof", http.Header{"Content-Type": {"application/json"}},
		[]byte(`{"code":"`+code+`"}`))
}

// proved is an enrollment whose code was given: pending_approval.
func (fx *raFixture) proved(t *testing.T, applicant map[string]any, profileName string) string {
	t.Helper()
	id, code := fx.enroll(t, applicant, profileName)
	if a := fx.proof(t, id, code); a.status != http.StatusOK || a.state != store.StatePendingApproval {
		t.Fatalf("proof of %s: %+v", id, a)
	}
	return id
}

func signAction(t *testing.T, who identity, a jwsauth.Action, at time.Time) []byte {
	t.Helper()
	a.Audience = ra.AudienceActions
	s, err := jwsauth.Sign(a, who.cert, who.key, at)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

func (fx *raFixture) act(t *testing.T, jws []byte) answer {
	t.Helper()
	return fx.answer(t, http.MethodPost, "/api/v1/officer/actions", http.Header{"Content-Type": {"application/jose"}}, jws)
}

func approve(id string) jwsauth.Action {
	return jwsauth.Action{Action: jwsauth.ActionApprove, Enrollment: id}
}

func (want answer) check(t *testing.T, what string, got answer) {
	t.Helper()
	if got.status != want.status || got.problem != want.problem || (want.state != "" && got.state != want.state) {
		t.Errorf("%s: got %+v, want %+v", what, got, want)
	}
}

// TestOfficerDecisions: two-officer approval counts people, not
// certificates; no officer decides on their own enrollment or their
// company's; a refused signed request cannot be replayed later; a rejected
// enrollment cannot be approved; a revoked officer is refused; an
// enrollment that lapsed waiting for officers expires instead of being
// approved.
func TestOfficerDecisions(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			clk := &clock{}
			fx := newRAFixture(t, f, driver, func(d *ra.Deps) { d.Now = clk.Now })
			renewed := registerOfficerAs(t, fx.ca, fx.db, "Yerlan Officer (renewed certificate)", yerlan)
			dana := registerOfficerAs(t, fx.ca, fx.db, "Dana Officer", danaPerson)
			aigerim := registerOfficerAs(t, fx.ca, fx.db, "Aigerim Officer", aigerimPerson)
			ayesha := registerOfficerAs(t, fx.ca, fx.db, "Ayesha Officer", profile.Verified{Country: "PK", NationalID: "6110148392762", GivenName: "Ayesha", FamilyName: "Khan"})
			bilal := registerOfficerAs(t, fx.ca, fx.db, "Bilal Officer", profile.Verified{Country: "PK", NationalID: "3520277164593", GivenName: "Muhammad Bilal", FamilyName: "Ahmed"})

			seal := fx.proved(t, business(), "business-seal")
			if reasons := fx.reasons(t, seal); !slices.Contains(reasons, "waiting for approval by 2 RA officer(s)") {
				t.Errorf("the seal before any approval: reasons %q", reasons)
			}
			// The first officer is answered as show answers: one of two.
			status, raw := fx.do(t, http.MethodPost, "/api/v1/officer/actions", http.Header{"Content-Type": {"application/jose"}}, signAction(t, fx.officer, approve(seal), clk.Now()))
			var first ra.QueueItem
			if err := json.Unmarshal(raw, &first); err != nil || status != http.StatusOK || first.State != store.StatePendingApproval ||
				first.Approvals != 1 || first.Needed != 2 || len(first.Decisions) != 1 || first.Decisions[0]["officer"] != "Yerlan Officer" ||
				first.Representative != "IDCPK-6110148392762" || !first.YouApproved {
				t.Errorf("first approval: %d %s", status, raw)
			}
			// The applicant reads that one approved and one more is needed.
			if reasons := fx.reasons(t, seal); !slices.Contains(reasons, "waiting for approval by 1 more RA officer(s): 1 of 2 approved") {
				t.Errorf("the seal after one approval: reasons %q", reasons)
			}
			answer{status: 409, problem: "already-decided"}.check(t, "the same officer with another certificate", fx.act(t, signAction(t, renewed, approve(seal), clk.Now())))
			// Had the second certificate's approval been stored, it would
			// still be one person's: the queue counts people.
			renewedFP := sha256.Sum256(renewed.cert.Raw)
			if err := fx.db.InTx(t.Context(), func(tx *store.Tx) error {
				return tx.InsertApproval(t.Context(), store.Approval{EnrollmentID: seal, OfficerFingerprint: renewedFP[:], Decision: "approve", JWS: "x", DecidedAt: clk.Now()})
			}); err != nil {
				t.Fatal(err)
			}
			if item := fx.show(t, dana, seal, clk.Now()); item.Approvals != 1 || len(item.Decisions) != 2 || item.Decisions[0]["officer"] != "Yerlan Officer" || item.YouApproved {
				t.Errorf("the seal as an officer sees it: %d approvals, decisions %v, you approved %v", item.Approvals, item.Decisions, item.YouApproved)
			}
			if _, err := fx.raw.ExecContext(t.Context(), fx.q(`DELETE FROM approvals WHERE officer_fingerprint = $1`), renewedFP[:]); err != nil {
				t.Fatal(err)
			}
			// Yerlan, with his other certificate, which approved nothing,
			// sees that he approved: the person, not the certificate.
			if item := fx.show(t, renewed, seal, clk.Now()); !item.YouApproved {
				t.Errorf("the seal as the officer who approved it sees it: you_approved false")
			}
			answer{status: 403, problem: "own-enrollment"}.check(t, "the representative as officer", fx.act(t, signAction(t, ayesha, approve(seal), clk.Now())))
			answer{status: 403, problem: "own-enrollment"}.check(t, "another representative of the business as officer", fx.act(t, signAction(t, bilal, approve(seal), clk.Now())))
			answer{status: 200, state: store.StateIssued}.check(t, "a second officer", fx.act(t, signAction(t, dana, approve(seal), clk.Now())))

			own := fx.proved(t, citizen(), "citizen-sign")
			if item := fx.show(t, dana, own, clk.Now()); item.Representative != "" {
				t.Errorf("a citizen's enrollment names a representative: %q", item.Representative)
			}
			answer{status: 403, problem: "own-enrollment"}.check(t, "an officer's own enrollment", fx.act(t, signAction(t, aigerim, approve(own), clk.Now())))

			// Signed while the code is still awaited: refused, and spent.
			early, code := fx.enroll(t, citizen(), "citizen-sign")
			jws := signAction(t, dana, approve(early), clk.Now())
			answer{status: 409, problem: "wrong-state"}.check(t, "approval before proof", fx.act(t, jws))
			if a := fx.proof(t, early, code); a.state != store.StatePendingApproval {
				t.Fatalf("proof: %+v", a)
			}
			answer{status: 409, problem: "replayed-request"}.check(t, "the refused request replayed", fx.act(t, jws))
			approved := signAction(t, dana, approve(early), clk.Now())
			answer{status: 200, state: store.StateIssued}.check(t, "a fresh approval", fx.act(t, approved))
			answer{status: 409, problem: "replayed-request"}.check(t, "an approval replayed", fx.act(t, approved))

			rejected := fx.proved(t, citizen(), "citizen-sign")
			answer{status: 200, state: store.StateRejected}.check(t, "reject", fx.act(t, signAction(t, fx.officer,
				jwsauth.Action{Action: jwsauth.ActionReject, Enrollment: rejected, Reason: "documents do not match"}, clk.Now())))
			answer{status: 409, problem: "wrong-state"}.check(t, "approve a rejected enrollment", fx.act(t, signAction(t, dana, approve(rejected), clk.Now())))

			lapsing := fx.proved(t, citizen(), "citizen-sign")
			clk.Add(73 * time.Hour) // enrollment_ttl is 72h
			answer{status: 410, problem: "enrollment-expired"}.check(t, "approve a lapsed enrollment", fx.act(t, signAction(t, dana, approve(lapsing), clk.Now())))
			if e, err := fx.db.Enrollment(t.Context(), lapsing); err != nil || e.State != store.StateExpired {
				t.Errorf("lapsed enrollment: %+v (%v), want expired", e.State, err)
			}
			// Recorded as lapsed, it is still answered as lapsed.
			answer{status: 410, problem: "enrollment-expired"}.check(t, "approve it again", fx.act(t, signAction(t, fx.officer, approve(lapsing), clk.Now())))
			clk.Add(-73 * time.Hour)

			if err := fx.ca.Revoke(t.Context(), dana.cert.SerialNumber.Bytes(), 1, "test"); err != nil {
				t.Fatal(err)
			}
			answer{status: 403, problem: "certificate-revoked"}.check(t, "a revoked officer", fx.act(t, signAction(t, dana, approve(fx.proved(t, citizen(), "citizen-sign")), clk.Now())))
		})
	}
}

// TestOneKeyIsOnePairOfEyes: a key certified to two officers (lent, or
// certified twice) approves once: a business seal's second approval must
// come from another key as well as another person.
func TestOneKeyIsOnePairOfEyes(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	fx := newRAFixture(t, f, store.DriverSQLite)
	key := newKey(t)
	dana := registerOfficerKey(t, fx.ca, fx.db, "Dana Officer", danaPerson, key)
	aigerim := registerOfficerKey(t, fx.ca, fx.db, "Aigerim Officer", aigerimPerson, key)
	seal := fx.proved(t, business(), "business-seal")
	now := time.Now()
	answer{status: 200, state: store.StatePendingApproval}.check(t, "the first approval", fx.act(t, signAction(t, dana, approve(seal), now)))
	answer{status: 409, problem: "already-decided"}.check(t, "another officer with the same key", fx.act(t, signAction(t, aigerim, approve(seal), now)))
	answer{status: 200, state: store.StateIssued}.check(t, "an officer with a key of their own", fx.act(t, signAction(t, fx.officer, approve(seal), now)))
}

// TestProofRefusals: wrong codes count down and the policy's last one locks
// the enrollment (the right code then too); a code past its TTL and an
// enrollment past its own are refused with their own problem types.
func TestProofRefusals(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	clk := &clock{}
	fx := newRAFixture(t, f, "sqlite", func(d *ra.Deps) { d.Now = clk.Now })
	policy := fx.deps.Policy

	// A profile the RA does not enroll for is refused with those it does.
	if _, raw := fx.do(t, http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json"}},
		enrollBody(t, citizen(), "root", csrPEM(t, newKey(t)))); !strings.Contains(string(raw), `"detail":"\"root\" is not a profile the RA offers (offered: business-auth, business-seal, citizen-auth, citizen-sign, officer)"`) {
		t.Errorf("the root profile: %s", raw)
	}

	id, code := fx.enroll(t, citizen(), "citizen-sign")
	wrong := wrongCode(code)
	for i := 1; i < policy.MaxCodeAttempts; i++ {
		_, raw := fx.do(t, http.MethodPost, "/api/v1/enrollments/"+id+"/proof", http.Header{"Content-Type": {"application/json"}}, []byte(`{"code":"`+wrong+`"}`))
		want := fmt.Sprintf(`"detail":"%d tries left"`, policy.MaxCodeAttempts-i)
		if i == policy.MaxCodeAttempts-1 {
			want = `"detail":"1 try left"`
		}
		if !strings.Contains(string(raw), "urn:sanad:problem:wrong-code") || !strings.Contains(string(raw), want) {
			t.Errorf("wrong code %d: %s, want %s", i, raw, want)
		}
	}
	answer{status: 423, problem: "enrollment-locked"}.check(t, "the last wrong code", fx.proof(t, id, wrong))
	answer{status: 423, problem: "enrollment-locked"}.check(t, "the right code after the lock", fx.proof(t, id, code))
	if e, err := fx.db.Enrollment(t.Context(), id); err != nil || e.State != store.StateRejected {
		t.Errorf("locked enrollment: %s (%v), want rejected", e.State, err)
	}

	id, code = fx.enroll(t, citizen(), "citizen-sign")
	clk.Add(policy.CodeTTL + time.Second)
	answer{status: 410, problem: "code-expired"}.check(t, "an expired code", fx.proof(t, id, code))
	clk.Add(policy.EnrollmentTTL)
	answer{status: 410, problem: "enrollment-expired"}.check(t, "a lapsed enrollment", fx.proof(t, id, code))
	if e, err := fx.db.Enrollment(t.Context(), id); err != nil || e.State != store.StateExpired {
		t.Errorf("lapsed enrollment: %s (%v), want expired", e.State, err)
	}
	// Recorded as lapsed (by the proof above, or the sweep), it is still
	// answered as lapsed, whoever noticed first.
	answer{status: 410, problem: "enrollment-expired"}.check(t, "a lapsed enrollment again", fx.proof(t, id, code))
	answer{status: 410, problem: "enrollment-expired"}.check(t, "a new code for it", fx.answer(t, http.MethodPost, "/api/v1/enrollments/"+id+"/code", nil, nil))
}

// TestIdentifierLimit: the per-identifier limit of enrollments is spent
// only by an enrollment recorded (whose code then goes out), so neither
// malformed requests
// naming someone nor requests that do not match the registry (a stranger
// who knows only the identifier) can lock that person out; past it, a
// retry with the Idempotency-Key of an enrollment made still gets it back.
// Registry lookups are bounded apart, three for each enrollment.
func TestIdentifierLimit(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	clk := &clock{}
	// The fixture's own enrollment (for the same citizen) spends one.
	fx := newRAFixture(t, f, "sqlite", func(d *ra.Deps) {
		d.Now = clk.Now
		d.IdentifierLimit = &store.Bucket{Rate: 4 / time.Hour.Seconds(), Burst: 4}
	})
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	for range 5 {
		for _, tt := range []struct {
			body []byte
			want string
		}{
			{enrollBody(t, citizen(), "no-such-profile", csrPEM(t, newKey(t))), "unknown-profile"},
			{enrollBody(t, citizen(), "citizen-sign", "x"), "invalid-csr"},
		} {
			if a := fx.answer(t, http.MethodPost, "/api/v1/enrollments", jsonHeader, tt.body); a.problem != tt.want {
				t.Fatalf("got %+v, want %s", a, tt.want)
			}
		}
	}
	wrongName := citizen()
	wrongName["family_name"] = "Somebody"
	mismatch := func() {
		t.Helper()
		// One answer for a wrong name or birth date: which one differs
		// is not said.
		code, raw := fx.do(t, http.MethodPost, "/api/v1/enrollments", jsonHeader, enrollBody(t, wrongName, "citizen-sign", csrPEM(t, newKey(t))))
		if code != 422 || !strings.Contains(string(raw), "registry-mismatch") || !strings.Contains(string(raw), "the name or the birth date differs") {
			t.Fatalf("a name the registry does not have: %d %s", code, raw)
		}
	}
	// Lookups: 3 an enrollment, 12 here; the fixture's spent one.
	for range 6 {
		mismatch()
	}
	fx.enroll(t, citizen(), "citizen-sign")
	body := enrollBody(t, citizen(), "citizen-sign", csrPEM(t, newKey(t)))
	keyed := http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {"retry-1"}}
	first := fx.answer(t, http.MethodPost, "/api/v1/enrollments", keyed, body)
	if first.status != http.StatusCreated {
		t.Fatalf("third enrollment: %+v", first)
	}
	fx.enroll(t, citizen(), "citizen-sign")
	answer{status: 429, problem: "rate-limited"}.check(t, "a fifth enrollment", fx.answer(t, http.MethodPost, "/api/v1/enrollments",
		jsonHeader, enrollBody(t, citizen(), "citizen-sign", csrPEM(t, newKey(t)))))
	if again := fx.answer(t, http.MethodPost, "/api/v1/enrollments", keyed, body); again.status/100 != 2 || again.id != first.id {
		t.Errorf("retry with the Idempotency-Key: %+v, want enrollment %s", again, first.id)
	}

	// The limit is the person's, not a node's: a second RA node over the
	// same database refuses too, and the other citizen it still serves.
	node2, err := ra.New(fx.deps)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	node2.Register(mux)
	send := func(applicant map[string]any) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/enrollments", bytes.NewReader(enrollBody(t, applicant, "citizen-sign", csrPEM(t, newKey(t)))))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}
	if rec := send(citizen()); rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "rate-limited") {
		t.Errorf("the same citizen on a second node: %d %s", rec.Code, rec.Body)
	}
	// An hour later the person has their enrollments again, on any node.
	clk.Add(time.Hour)
	if rec := send(citizen()); rec.Code != http.StatusCreated {
		t.Errorf("an hour later, on the second node: %d %s", rec.Code, rec.Body)
	}
	// That spent one of the 12 lookups the hour gave back; after 11
	// mismatches (which spend no enrollment) the registry is not
	// asked about this person again.
	for range 11 {
		mismatch()
	}
	if code, raw := fx.do(t, http.MethodPost, "/api/v1/enrollments", jsonHeader, enrollBody(t, wrongName, "citizen-sign", csrPEM(t, newKey(t)))); code != 429 ||
		!strings.Contains(string(raw), "too many registry lookups") {
		t.Errorf("a thirteenth lookup: %d %s", code, raw)
	}
}

// TestCompromisedKeyRefused: once a certificate is revoked for
// keyCompromise, an enrollment with its key is refused at once
// (invalid-csr, code key-compromised); a key revoked for another reason may
// be certified again.
func TestCompromisedKeyRefused(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	fx := newRAFixture(t, f, "sqlite")
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	for _, tt := range []struct {
		reason  int
		refused bool
	}{{4, false}, {1, true}} { // superseded, keyCompromise
		key := newKey(t)
		id, code := fx.enrollKey(t, key)
		if a := fx.proof(t, id, code); a.state != store.StateIssued {
			t.Fatalf("auto enrollment: %+v", a)
		}
		c, err := fx.db.CertificateOfEnrollment(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if err := fx.ca.Revoke(t.Context(), c.Serial, tt.reason, "test"); err != nil {
			t.Fatal(err)
		}
		code2, raw := fx.do(t, http.MethodPost, "/api/v1/enrollments", jsonHeader, enrollBody(t, citizen(), "citizen-auth", csrPEM(t, key)))
		switch {
		case tt.refused && (code2 != 422 || !strings.Contains(string(raw), `"code":"key-compromised"`)):
			t.Errorf("the key of a certificate revoked for keyCompromise: %d %s", code2, raw)
		case !tt.refused && code2 != http.StatusCreated:
			t.Errorf("the key of a certificate revoked for reason %d: %d %s", tt.reason, code2, raw)
		}
	}
}

// enrollKey files a citizen-auth application for key and returns its id
// and code.
func (fx *raFixture) enrollKey(t *testing.T, key *ecdsa.PrivateKey) (string, string) {
	t.Helper()
	a := fx.answer(t, http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json"}},
		enrollBody(t, citizen(), "citizen-auth", csrPEM(t, key)))
	if a.status != http.StatusCreated {
		t.Fatalf("enroll: %+v", a)
	}
	return a.id, fx.code(t, a.id)
}

// TestRequestMismatchRefusedAtEnrollment: a CSR asking for another
// subject, for names (an otherName too, which crypto/x509 does not parse)
// or for CA rights is refused when the application is filed, before a code
// is sent or an officer sees it, not after the approvals.
func TestRequestMismatchRefusedAtEnrollment(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	fx := newRAFixture(t, f, "sqlite")
	// SubjectAltName with one otherName (UPN 1.3.6.1.4.1.311.20.2.3).
	otherName := []byte{0x30, 0x16, 0xa0, 0x14, 0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x14, 0x02, 0x03,
		0xa0, 0x06, 0x0c, 0x04, 'r', 'o', 'o', 't'}
	for name, tmpl := range map[string]*x509.CertificateRequest{
		"another subject":    {Subject: pkix.Name{CommonName: "Somebody Else"}},
		"a DNS name":         {DNSNames: []string{"evil.example"}},
		"an otherName":       {ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: otherName}}},
		"CA rights":          {ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: []byte{0x30, 0x03, 0x01, 0x01, 0xff}}}},
		"a serialNumber":     {Subject: pkix.Name{SerialNumber: "IDCKZ-700422364275"}},
		"its own subject ok": {Subject: pkix.Name{CommonName: "Aigerim Sadykova", SerialNumber: "IDCKZ-880312448217"}},
	} {
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, newKey(t))
		if err != nil {
			t.Fatal(err)
		}
		csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
		code, raw := fx.do(t, http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json"}},
			enrollBody(t, citizen(), "citizen-sign", csr))
		if name == "its own subject ok" {
			if code != http.StatusCreated {
				t.Errorf("%s: %d %s", name, code, raw)
			}
			continue
		}
		if code != 422 || !strings.Contains(string(raw), `"code":"request-mismatch"`) {
			t.Errorf("%s: %d %s", name, code, raw)
		}
	}
}

// TestWrongCodesBoundedPerPerson: wrong codes are bounded per person
// across all their enrollments, not only by each enrollment's lock: once
// the person's wrong codes reach the identifier limit, no code of theirs
// is checked (not even the right one, which would otherwise tell a
// guesser it was right) until the bucket refills, and the refused attempt
// counts against no enrollment. Wrong codes do not spend the person's
// enrollments.
func TestWrongCodesBoundedPerPerson(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	// The clock stands still but for the minute added below: in real time
	// the bucket would regain a token every 20 s, and a slow run would
	// see the limit lifted early.
	clk := &clock{base: time.Now().UTC()}
	// The fixture's own enrollment spends one of the three enrollments.
	fx := newRAFixture(t, f, "sqlite", func(d *ra.Deps) {
		d.Now = clk.Now
		d.IdentifierLimit = &store.Bucket{Rate: 3 / time.Minute.Seconds(), Burst: 3} // a minute refills it, within a code's life
	})
	first, firstCode := fx.enroll(t, citizen(), "citizen-sign")
	for i := range 3 {
		answer{status: 422, problem: "wrong-code"}.check(t, fmt.Sprintf("wrong code %d", i+1), fx.proof(t, first, wrongCode(firstCode)))
	}
	second, secondCode := fx.enroll(t, citizen(), "citizen-sign") // the wrong codes spent no enrollment
	answer{status: 429, problem: "rate-limited"}.check(t, "the right code of another enrollment, past the limit", fx.proof(t, second, secondCode))
	answer{status: 429, problem: "rate-limited"}.check(t, "a wrong code past the limit", fx.proof(t, second, wrongCode(secondCode)))

	clk.Add(time.Minute)
	answer{status: 200, state: store.StatePendingApproval}.check(t, "the right code, once the bucket refilled", fx.proof(t, second, secondCode))
	// The first enrollment saw three wrong codes, not more: two more are
	// needed to lock it.
	for i := range 2 {
		want := answer{status: 422, problem: "wrong-code"}
		if i == 1 {
			want = answer{status: 423, problem: "enrollment-locked"}
		}
		want.check(t, fmt.Sprintf("wrong code %d of the first", i+4), fx.proof(t, first, wrongCode(firstCode)))
	}
}

// TestWrongCodesBoundedWithoutIdentifierLimit: with the identifier limit
// off, a person's wrong codes are still bounded, at ten an hour: two
// enrollments locked by five wrong codes each spend them, and the right
// code of a third is not checked.
func TestWrongCodesBoundedWithoutIdentifierLimit(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	clk := &clock{base: time.Now().UTC()}
	fx := newRAFixture(t, f, "sqlite", func(d *ra.Deps) {
		d.Now = clk.Now
		d.IdentifierLimit = nil
	})
	for e := range 2 {
		id, code := fx.enroll(t, citizen(), "citizen-sign")
		for i := range 5 {
			want := answer{status: 422, problem: "wrong-code"}
			if i == 4 {
				want = answer{status: 423, problem: "enrollment-locked"}
			}
			want.check(t, fmt.Sprintf("enrollment %d, wrong code %d", e+1, i+1), fx.proof(t, id, wrongCode(code)))
		}
	}
	third, code := fx.enroll(t, citizen(), "citizen-sign")
	answer{status: 429, problem: "rate-limited"}.check(t, "the right code after ten wrong ones", fx.proof(t, third, code))
	clk.Add(6 * time.Minute) // a token back
	answer{status: 200, state: store.StatePendingApproval}.check(t, "the right code, a token later", fx.proof(t, third, code))
	// An auto-approved profile's proof, whose issuance is prepared as the
	// bucket allows.
	auto, autoCode := fx.enroll(t, citizen(), "citizen-auth")
	answer{status: 200, state: store.StateIssued}.check(t, "an auto-approved enrollment's right code", fx.proof(t, auto, autoCode))
}

// TestExpireLapsed: enrollments left waiting for their code or for
// officers past their expiry are expired, each with an audit event; a
// younger one is left alone, and a second sweep finds nothing.
func TestExpireLapsed(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			clk := &clock{}
			fx := newRAFixture(t, f, driver, func(d *ra.Deps) { d.Now = clk.Now })
			waitingCode, _ := fx.enroll(t, citizen(), "citizen-sign")
			waitingOfficers := fx.proved(t, citizen(), "citizen-sign")
			clk.Add(73 * time.Hour) // enrollment_ttl is 72h
			young, _ := fx.enroll(t, citizen(), "citizen-sign")
			n, err := fx.svc.ExpireLapsed(t.Context(), 100)
			if err != nil || n != 3 { // and the fixture's own pending enrollment
				t.Fatalf("ExpireLapsed = %d, %v; want 3", n, err)
			}
			for id, want := range map[string]string{waitingCode: store.StateExpired, waitingOfficers: store.StateExpired,
				fx.pending: store.StateExpired, young: store.StatePendingProof} {
				if e, err := fx.db.Enrollment(t.Context(), id); err != nil || e.State != want {
					t.Errorf("enrollment %s: %s (%v), want %s", id, e.State, err, want)
				}
			}
			var events int
			if err := fx.raw.QueryRowContext(t.Context(), `SELECT count(*) FROM audit_events WHERE action = 'enrollment.expire'`).Scan(&events); err != nil || events != 3 {
				t.Errorf("enrollment.expire events: %d (%v), want 3", events, err)
			}
			if n, err := fx.svc.ExpireLapsed(t.Context(), 100); err != nil || n != 0 {
				t.Errorf("a second sweep: %d, %v", n, err)
			}
		})
	}
}

// TestCodeKey: with a code key, codes are stored as HMAC-SHA256 under it
// (not as a hash anyone can reverse); a code stored before the key was
// configured still proves, and a node without the key cannot check a keyed
// code.
func TestCodeKey(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	key := bytes.Repeat([]byte{7}, 32)
	fx := newRAFixture(t, f, "sqlite", func(d *ra.Deps) { d.CodeKey = key })
	stored := func(id string) string {
		t.Helper()
		e, err := fx.db.Enrollment(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		var pr struct {
			CodeHash string `json:"code_hash"`
		}
		if err := json.Unmarshal(e.Proofing, &pr); err != nil {
			t.Fatal(err)
		}
		return pr.CodeHash
	}
	id, code := fx.enroll(t, citizen(), "citizen-sign")
	m := hmac.New(sha256.New, key)
	m.Write([]byte("sanad-otp-v1\x00" + id + "\x00" + code))
	if h, want := stored(id), "hmac-sha256:"+hex.EncodeToString(m.Sum(nil)); h != want {
		t.Fatalf("stored code hash %q, want %q", h, want)
	}
	answer{status: 200, state: store.StatePendingApproval}.check(t, "a keyed code", fx.proof(t, id, code))

	// An enrollment from before the key: its plain hash still proves.
	d := fx.deps
	d.CodeKey = nil
	plain, err := ra.New(d)
	if err != nil {
		t.Fatal(err)
	}
	e, _, err := plain.Enroll(t.Context(), enrollBody(t, citizen(), "citizen-sign", csrPEM(t, newKey(t))), "")
	if err != nil {
		t.Fatal(err)
	}
	old, oldCode := e.ID, fx.code(t, e.ID)
	if h := stored(old); strings.Contains(h, ":") {
		t.Fatalf("unkeyed code hash %q", h)
	}
	answer{status: 200, state: store.StatePendingApproval}.check(t, "a code stored before the key", fx.proof(t, old, oldCode))

	// A node without the key cannot check a keyed code: its failure, not
	// a wrong attempt of the applicant's.
	keyed, keyedCode := fx.enroll(t, citizen(), "citizen-sign")
	if _, err := plain.Proof(t.Context(), keyed, keyedCode); err == nil {
		t.Error("a node without the code key accepted a keyed code")
	} else if _, refused := ra.ProblemOf(err); refused {
		t.Errorf("a node without the code key answered %v, a refusal of the applicant", err)
	}
	if e, err := fx.db.Enrollment(t.Context(), keyed); err != nil || !strings.Contains(string(e.Proofing), `"attempts":0`) {
		t.Errorf("the node without the key counted an attempt: %s (%v)", e.Proofing, err)
	}
	answer{status: 200, state: store.StatePendingApproval}.check(t, "the keyed code at a node with the key", fx.proof(t, keyed, keyedCode))
}

// changingRegistry is the sample registry with what happened after the
// applicants enrolled: a death, a business closed, signing authority
// withdrawn, or the registry down.
type changingRegistry struct {
	registry.Registry
	mu                        sync.Mutex
	dead, closed, noAuthority map[string]bool // country:identifier
	// gone are persons (country:identifier) the registry no longer has;
	// mute, persons it has no phone or e-mail for.
	gone, mute map[string]bool
	// renamed gives businesses (country:registration) a new name;
	// renamedPersons, persons (country:identifier) a new given and family
	// name.
	renamed        map[string]string
	renamedPersons map[string][2]string
	down           bool
	// downAs answers while down (a real client of a dead registry); nil
	// answers a bare ErrUnavailable.
	downAs registry.Registry
}

// isDown is what answers while the registry is down, if it is.
func (r *changingRegistry) isDown() (registry.Registry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.downAs, r.down
}

func (r *changingRegistry) set(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
}

func (r *changingRegistry) Person(ctx context.Context, country, id string) (registry.Person, registry.Evidence, error) {
	if as, down := r.isDown(); down && as != nil {
		return as.Person(ctx, country, id)
	} else if down {
		return registry.Person{}, registry.Evidence{}, registry.ErrUnavailable
	}
	p, ev, err := r.Registry.Person(ctx, country, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone[country+":"+id] {
		return registry.Person{}, registry.Evidence{}, registry.ErrNotFound
	}
	p.Alive = p.Alive && !r.dead[country+":"+id]
	if name, ok := r.renamedPersons[country+":"+id]; ok {
		p.GivenName, p.FamilyName = name[0], name[1]
	}
	if r.mute[country+":"+id] {
		p.Phone, p.Email = "", ""
	}
	return p, ev, err
}

func (r *changingRegistry) Business(ctx context.Context, country, reg string) (registry.Business, registry.Evidence, error) {
	if as, down := r.isDown(); down && as != nil {
		return as.Business(ctx, country, reg)
	} else if down {
		return registry.Business{}, registry.Evidence{}, registry.ErrUnavailable
	}
	b, ev, err := r.Registry.Business(ctx, country, reg)
	r.mu.Lock()
	defer r.mu.Unlock()
	b.Active = b.Active && !r.closed[country+":"+reg]
	if name, ok := r.renamed[country+":"+reg]; ok {
		b.Name = name
	}
	if r.noAuthority[country+":"+reg] {
		reps := slices.Clone(b.Representatives)
		for i := range reps {
			reps[i].CanSign = false
		}
		b.Representatives = reps
	}
	return b, ev, err
}

// TestRecheckBeforeIssuance: when officers approve, the registry is asked
// again; a subject who died, a business that closed or a representative
// who lost signing authority since the enrollment is not certified (the
// enrollment fails, with the registry's answer kept as evidence), and a
// registry that does not answer leaves the enrollment approved for Resume.
func TestRecheckBeforeIssuance(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	clk := &clock{}
	reg := &changingRegistry{dead: map[string]bool{}, closed: map[string]bool{}, noAuthority: map[string]bool{}}
	fx := newRAFixture(t, f, "sqlite", func(d *ra.Deps) {
		d.Now = clk.Now
		reg.Registry = d.Registry
		d.Registry = reg
	})
	dana := registerOfficerAs(t, fx.ca, fx.db, "Dana Officer", danaPerson)
	evidenceOf := func(id string) int {
		t.Helper()
		var n int
		if err := fx.raw.QueryRowContext(t.Context(), `SELECT count(*) FROM registry_evidence WHERE enrollment_id = ?`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	failed := func(what, id, why string) {
		t.Helper()
		e, err := fx.db.Enrollment(t.Context(), id)
		if err != nil || e.State != store.StateFailed || !strings.Contains(e.StateReason, why) {
			t.Errorf("%s: %s %q (%v), want failed with %q", what, e.State, e.StateReason, err, why)
		}
	}

	died := fx.proved(t, citizen(), "citizen-sign")
	before := evidenceOf(died)
	reg.set(func() { reg.dead["KZ:880312448217"] = true })
	answer{status: 422, problem: "issuance-failed"}.check(t, "a subject who died", fx.act(t, signAction(t, fx.officer, approve(died), clk.Now())))
	failed("a subject who died", died, "deceased")
	if after := evidenceOf(died); after <= before {
		t.Errorf("the re-check left no evidence: %d rows, %d before", after, before)
	}
	reg.set(func() { reg.dead = map[string]bool{} })

	for _, tt := range []struct {
		what, why string
		change    func()
	}{
		{"a business that closed", "inactive", func() { reg.closed["PK:32778761"] = true }},
		{"a representative without authority", "signing authority", func() { reg.noAuthority["PK:32778761"] = true }},
	} {
		seal := fx.proved(t, business(), "business-seal")
		answer{status: 200, state: store.StatePendingApproval}.check(t, tt.what+": first approval", fx.act(t, signAction(t, fx.officer, approve(seal), clk.Now())))
		reg.set(tt.change)
		answer{status: 422, problem: "issuance-failed"}.check(t, tt.what, fx.act(t, signAction(t, dana, approve(seal), clk.Now())))
		failed(tt.what, seal, tt.why)
		reg.set(func() { reg.closed, reg.noAuthority = map[string]bool{}, map[string]bool{} })
	}

	waiting := fx.proved(t, citizen(), "citizen-sign")
	reg.set(func() { reg.down = true })
	answer{status: 200, state: store.StateApproved}.check(t, "the registry down", fx.act(t, signAction(t, fx.officer, approve(waiting), clk.Now())))
	reg.set(func() { reg.down = false })
	clk.Add(2 * time.Minute)
	if n, err := fx.svc.Resume(t.Context(), time.Minute); err != nil || n != 1 {
		t.Fatalf("resume: %d, %v", n, err)
	}
	if e, err := fx.db.Enrollment(t.Context(), waiting); err != nil || e.State != store.StateIssued {
		t.Errorf("after the registry came back: %s (%v), want issued", e.State, err)
	}
}

// TestOfficerReadsAudited: an officer's queue and show, which disclose
// applicants' personal data, are audit events naming the officer and the
// enrollments shown; a replayed read is refused.
func TestOfficerReadsAudited(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	fx := newRAFixture(t, f, "sqlite")
	id := fx.proved(t, citizen(), "citizen-sign")
	read := func(path string, a jwsauth.Action) int {
		t.Helper()
		jws, err := jwsauth.Sign(a, fx.officer.cert, fx.officer.key, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		code, _ := fx.do(t, http.MethodGet, path, http.Header{"Authorization": {"JWS " + jws}}, nil)
		return code
	}
	events := func(action string) (n int, details string) {
		t.Helper()
		if err := fx.raw.QueryRowContext(t.Context(), `SELECT count(*), coalesce(max(details), '') FROM audit_events WHERE action = ?`, action).Scan(&n, &details); err != nil {
			t.Fatal(err)
		}
		return n, details
	}
	if code := read("/api/v1/officer/queue", jwsauth.Action{Action: jwsauth.ActionQueue, Audience: ra.AudienceQueue}); code != 200 {
		t.Fatalf("queue: %d", code)
	}
	if n, details := events("enrollment.queue.view"); n != 1 || !strings.Contains(details, id) || !strings.Contains(details, "Yerlan Officer") {
		t.Errorf("queue: %d events, %s", n, details)
	}
	show := jwsauth.Action{Action: jwsauth.ActionShow, Enrollment: id, Audience: ra.AudienceShow}
	jws, err := jwsauth.Sign(show, fx.officer.cert, fx.officer.key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{200, 409} { // the same signed read again: replayed
		if code, _ := fx.do(t, http.MethodGet, "/api/v1/officer/enrollments/"+id, http.Header{"Authorization": {"JWS " + jws}}, nil); code != want {
			t.Errorf("show %d: %d, want %d", i+1, code, want)
		}
	}
	if n, _ := events("enrollment.view"); n != 1 {
		t.Errorf("show: %d enrollment.view events, want 1", n)
	}
}

// TestUnavailableLogged: a request the RA cannot serve because the
// national registry does not answer (a real HTTP registry client, a closed
// port) is a 503 for the client and a warning, with its cause and without
// the identifier in full, for the operators.
func TestUnavailableLogged(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	reg, err := registry.NewHTTP(registry.HTTPConfig{BaseURL: closed.URL, Timeout: time.Second, Retries: -1, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	changing := &changingRegistry{downAs: reg}
	fx := newRAFixture(t, f, "sqlite", func(d *ra.Deps) {
		changing.Registry, d.Registry = d.Registry, changing
		d.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	changing.set(func() { changing.down = true })
	a := fx.answer(t, http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json"}},
		enrollBody(t, citizen(), "citizen-sign", csrPEM(t, newKey(t))))
	if a.status != 503 || a.problem != "registry-unavailable" {
		t.Fatalf("enrollment with the registry down: %+v", a)
	}
	if out := logs.String(); !strings.Contains(out, "type=registry-unavailable") || !strings.Contains(out, "connection refused") ||
		!strings.Contains(out, "person KZ ****") || strings.Contains(out, "880312448217") {
		t.Errorf("log: %s", out)
	}
}

// TestResendCode: a new code may be asked for a minute after the last; it
// replaces the old one (which no longer proves) without resetting wrong
// attempts; after four codes, or once the enrollment is no longer waiting
// for one, none is sent; each is an audit event.
func TestResendCode(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	clk := &clock{}
	fx := newRAFixture(t, f, "sqlite", func(d *ra.Deps) { d.Now = clk.Now })
	resend := func(id string) answer {
		t.Helper()
		return fx.answer(t, http.MethodPost, "/api/v1/enrollments/"+id+"/code", nil, nil)
	}
	id, first := fx.enroll(t, citizen(), "citizen-sign")
	answer{status: 429, problem: "rate-limited"}.check(t, "a new code at once", resend(id))
	if code, header, _ := fx.send(t, http.MethodPost, "/api/v1/enrollments/"+id+"/code", nil, nil); code != 429 || header.Get("Retry-After") == "" {
		t.Errorf("a new code at once: %d, Retry-After %q", code, header.Get("Retry-After"))
	}
	wrong := "000000"
	if first == wrong {
		wrong = "000001"
	}
	answer{status: 422, problem: "wrong-code"}.check(t, "a wrong code", fx.proof(t, id, wrong))
	clk.Add(61 * time.Second)
	answer{status: 200, state: store.StatePendingProof}.check(t, "a new code a minute later", resend(id))
	if second := fx.code(t, id); second != first { // equal one time in a million
		answer{status: 422, problem: "wrong-code"}.check(t, "the old code", fx.proof(t, id, first))
	} else {
		answer{status: 422, problem: "wrong-code"}.check(t, "another wrong code", fx.proof(t, id, wrong))
	}
	for range 2 {
		clk.Add(61 * time.Second)
		answer{status: 200, state: store.StatePendingProof}.check(t, "another code", resend(id))
	}
	clk.Add(61 * time.Second)
	answer{status: 409, problem: "codes-exhausted"}.check(t, "a fifth code", resend(id))
	e, err := fx.db.Enrollment(t.Context(), id)
	if err != nil || !strings.Contains(string(e.Proofing), `"attempts":2`) || !strings.Contains(string(e.Proofing), `"codes":4`) {
		t.Errorf("proofing after the codes: %s (%v)", e.Proofing, err)
	}
	answer{status: 200, state: store.StatePendingApproval}.check(t, "the latest code", fx.proof(t, id, fx.code(t, id)))
	clk.Add(61 * time.Second)
	answer{status: 409, problem: "wrong-state"}.check(t, "a code for a proved enrollment", resend(id))
	answer{status: 404, problem: "not-found"}.check(t, "an unknown enrollment", resend("AAAAAAAAAAAAAAAAAAAAAA"))
	var events int
	if err := fx.raw.QueryRowContext(t.Context(), `SELECT count(*) FROM audit_events WHERE action = 'enrollment.code.resend'`).Scan(&events); err != nil || events != 3 {
		t.Errorf("enrollment.code.resend events: %d (%v), want 3", events, err)
	}
}

// reasons is what the applicant reads of an enrollment's state.
func (fx *raFixture) reasons(t *testing.T, id string) []string {
	t.Helper()
	code, raw := fx.do(t, http.MethodGet, "/api/v1/enrollments/"+id, nil, nil)
	var v ra.View
	if code != http.StatusOK || json.Unmarshal(raw, &v) != nil {
		t.Fatalf("GET %s: %d %s", id, code, raw)
	}
	return v.Reasons
}

// show is an enrollment as the officer who reviews it sees it.
func (fx *raFixture) show(t *testing.T, who identity, id string, at time.Time) ra.QueueItem {
	t.Helper()
	jws, err := jwsauth.Sign(jwsauth.Action{Action: jwsauth.ActionShow, Enrollment: id, Audience: ra.AudienceShow}, who.cert, who.key, at)
	if err != nil {
		t.Fatal(err)
	}
	code, raw := fx.do(t, http.MethodGet, "/api/v1/officer/enrollments/"+id, http.Header{"Authorization": {"JWS " + jws}}, nil)
	var item ra.QueueItem
	if code != http.StatusOK || json.Unmarshal(raw, &item) != nil {
		t.Fatalf("show %s: %d %s", id, code, raw)
	}
	return item
}

// TestResendCodeLimits: of concurrent requests for a new code one is sent,
// and it is the stored one; a locked or lapsed enrollment gets none; each
// code spends one of the person's enrollments.
func TestResendCodeLimits(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	clk := &clock{}
	counted := &countingNotifier{}
	fx := newRAFixture(t, f, "sqlite", func(d *ra.Deps) {
		d.Now = clk.Now
		counted.Notifier, d.Notifier = d.Notifier, counted
	})
	resend := func(fx *raFixture, id string) answer {
		t.Helper()
		return fx.answer(t, http.MethodPost, "/api/v1/enrollments/"+id+"/code", nil, nil)
	}
	id, _ := fx.enroll(t, citizen(), "citizen-sign")
	locked, lockedCode := fx.enroll(t, citizen(), "citizen-sign")
	lapsing, _ := fx.enroll(t, citizen(), "citizen-sign")
	wrong := "000000"
	if lockedCode == wrong {
		wrong = "000001"
	}
	for range 5 {
		fx.proof(t, locked, wrong)
	}
	clk.Add(61 * time.Second)

	statuses := make([]int, 8)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() { statuses[i], _ = fx.do(t, http.MethodPost, "/api/v1/enrollments/"+id+"/code", nil, nil) })
	}
	wg.Wait()
	sent := 0
	for _, code := range statuses {
		switch code {
		case http.StatusOK:
			sent++
		case http.StatusTooManyRequests:
		default:
			t.Errorf("a concurrent request for a new code: %d", code)
		}
	}
	if n := counted.sent(id); sent != 1 || n != 2 {
		t.Errorf("%d of 8 concurrent requests answered 200, %d codes went out for the enrollment; want 1 and 2 (the first code and one new)", sent, n)
	}
	answer{status: 200, state: store.StatePendingApproval}.check(t, "the code sent", fx.proof(t, id, fx.code(t, id)))
	answer{status: 423, problem: "enrollment-locked"}.check(t, "a new code for a locked enrollment", resend(fx, locked))
	clk.Add(73 * time.Hour)
	answer{status: 410, problem: "enrollment-expired"}.check(t, "a new code for a lapsed enrollment", resend(fx, lapsing))

	// Three of the person's enrollments an hour: the fixture's, this one,
	// and its first new code; a second new code is refused.
	limited := newRAFixture(t, f, "sqlite", func(d *ra.Deps) {
		d.Now = clk.Now
		d.IdentifierLimit = &store.Bucket{Rate: 3 / time.Hour.Seconds(), Burst: 3}
	})
	id, _ = limited.enroll(t, citizen(), "citizen-sign")
	clk.Add(61 * time.Second)
	answer{status: 200, state: store.StatePendingProof}.check(t, "a new code", resend(limited, id))
	clk.Add(61 * time.Second)
	answer{status: 429, problem: "rate-limited"}.check(t, "a new code past the person's limit", resend(limited, id))

	// Concurrent requests for a new code spend one of the person's
	// enrollments, the one that sends: four an hour are the fixture's,
	// this one, its new code, and the next enrollment.
	four := newRAFixture(t, f, "sqlite", func(d *ra.Deps) {
		d.Now = clk.Now
		d.IdentifierLimit = &store.Bucket{Rate: 4 / time.Hour.Seconds(), Burst: 4}
	})
	id, _ = four.enroll(t, citizen(), "citizen-sign")
	clk.Add(61 * time.Second)
	for i := range statuses {
		wg.Go(func() { statuses[i], _ = four.do(t, http.MethodPost, "/api/v1/enrollments/"+id+"/code", nil, nil) })
	}
	wg.Wait()
	if sent := slices.Index(statuses, http.StatusOK); sent < 0 || slices.Index(statuses[sent+1:], http.StatusOK) >= 0 {
		t.Errorf("concurrent requests for a new code: %v; want one 200", statuses)
	}
	if a := four.answer(t, http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json"}},
		enrollBody(t, citizen(), "citizen-sign", csrPEM(t, newKey(t)))); a.status != http.StatusCreated {
		t.Errorf("the person's next enrollment after one new code: %+v; want 201 (the refused requests spent nothing)", a)
	}
}

// countingNotifier counts the messages sent per enrollment.
type countingNotifier struct {
	ra.Notifier
	mu sync.Mutex
	n  map[string]int
}

func (c *countingNotifier) Send(ctx context.Context, m ra.Message) error {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[m.EnrollmentID]++
	c.mu.Unlock()
	return c.Notifier.Send(ctx, m)
}

func (c *countingNotifier) sent(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}

// unavailableRevoker is the fixture's CA on a node where the certificate's
// issuing CA is not in service until available is set.
type unavailableRevoker struct {
	ra.Revoker
	available atomic.Bool
}

func (r *unavailableRevoker) CheckRevocable(context.Context, []byte) error {
	if !r.available.Load() {
		return fmt.Errorf("%w: certificate of issuing CA issuing-2, left out when this node started", ca.ErrIssuerUnavailable)
	}
	return nil
}

// TestRevokeIssuerUnavailable: a revocation this node cannot carry out now
// (the certificate's issuing CA left out when it started, the certificate
// unexpired) is a 503 issuer-unavailable with Retry-After, refused before
// the signed request's nonce is spent: the same request, sent again once
// the CA can, revokes.
func TestRevokeIssuerUnavailable(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	revoker := &unavailableRevoker{}
	fx := newRAFixture(t, f, "sqlite", func(d *ra.Deps) { revoker.Revoker = d.Revoker; d.Revoker = revoker })
	serial := jwsauth.SerialHex(fx.officer.cert.SerialNumber)
	jws, err := jwsauth.Sign(jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: serial, Reason: "keyCompromise", Audience: ra.AudienceRevoke},
		fx.officer.cert, fx.officer.key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	send := func() answer {
		return fx.answer(t, http.MethodPost, "/api/v1/certificates/"+serial+"/revoke", http.Header{"Content-Type": {"application/jose"}}, []byte(jws))
	}
	answer{status: http.StatusServiceUnavailable, problem: "issuer-unavailable"}.check(t, "while the issuing CA is not in service", send())
	revoker.available.Store(true)
	if a := send(); a.status != http.StatusOK {
		t.Errorf("the same request once the CA can revoke: %+v", a)
	}
}

// retiredRevoker is a CA whose issuing CA for the certificate is retired
// (keys gone, everything it issued expired).
type retiredRevoker struct{}

func (retiredRevoker) Revoke(context.Context, []byte, int, string, ...audit.Event) error {
	return fmt.Errorf("%w: certificate of issuing CA issuing-1", ca.ErrIssuerRetired)
}

// TestRevokeIssuerRetired: a revocation no node can carry out any more,
// the certificate's issuing CA being retired, is a 409 issuer-retired that
// says so (a retry would not help), never "no such certificate".
func TestRevokeIssuerRetired(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	fx := newRAFixture(t, f, "sqlite", func(d *ra.Deps) { d.Revoker = retiredRevoker{} })
	serial := jwsauth.SerialHex(fx.officer.cert.SerialNumber)
	jws, err := jwsauth.Sign(jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: serial, Reason: "keyCompromise", Audience: ra.AudienceRevoke},
		fx.officer.cert, fx.officer.key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	answer{status: http.StatusConflict, problem: "issuer-retired"}.check(t, "a holder's revocation",
		fx.answer(t, http.MethodPost, "/api/v1/certificates/"+serial+"/revoke", http.Header{"Content-Type": {"application/jose"}}, []byte(jws)))
}

// TestProofAnswersCertificate: the answer to an auto profile's proof
// carries the certificate just issued (from the CA's hands, not read back),
// the same one GET and the store show.
func TestProofAnswersCertificate(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	fx := newRAFixture(t, f, "sqlite")
	id, code := fx.enrollKey(t, newKey(t))
	status, raw := fx.do(t, http.MethodPost, "/api/v1/enrollments/"+id+"/proof", http.Header{"Content-Type": {"application/json"}}, []byte(`{"code":"`+code+`"}`))
	if status != http.StatusOK {
		t.Fatalf("proof: %d %s", status, raw)
	}
	var proved ra.View
	if err := json.Unmarshal(raw, &proved); err != nil {
		t.Fatal(err)
	}
	got, err := fx.svc.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	c, err := fx.db.CertificateOfEnrollment(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(proved.Certificate))
	switch {
	case proved.State != store.StateIssued:
		t.Fatalf("proof answered %s", proved.State)
	case block == nil || !bytes.Equal(block.Bytes, c.DER):
		t.Errorf("the proof's answer carries another certificate than the stored one:\n%s", proved.Certificate)
	case proved.Serial != strings.ToUpper(hex.EncodeToString(c.Serial)) || proved.Links["certificate"] != "/api/v1/certificates/"+proved.Serial:
		t.Errorf("serial %q, link %q; stored %x", proved.Serial, proved.Links["certificate"], c.Serial)
	case proved.Certificate != got.Certificate || proved.Serial != got.Serial || proved.Chain != got.Chain:
		t.Errorf("the proof's answer and GET differ: %q %q", proved.Serial, got.Serial)
	}
	// The chain is the issuing CA that signed it.
	issued, err := x509.ParseCertificate(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	chain, _ := pem.Decode([]byte(proved.Chain))
	if chain == nil {
		t.Fatalf("no chain: %q", proved.Chain)
	}
	issuer, err := x509.ParseCertificate(chain.Bytes)
	if err != nil || issued.CheckSignatureFrom(issuer) != nil || !issuer.IsCA {
		t.Errorf("the chain does not hold the certificate's issuer: %v", err)
	}
}

// TestIdentifierLimitUnderRace: the identifier's bucket is spent before
// the code goes out, so of enrollments racing for its last token exactly
// one sends a code and is made; the others are refused rate-limited, and
// no code goes to the person for them.
func TestIdentifierLimitUnderRace(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			f := catest.New(t, time.Now().UTC().Truncate(time.Second))
			// The fixture's own enrollment spends one of the two.
			fx := newRAFixture(t, f, driver, perHour(2))
			const racers = 16
			bodies := make([][]byte, racers)
			for i := range bodies {
				bodies[i] = enrollBody(t, citizen(), "citizen-sign", csrPEM(t, newKey(t)))
			}
			statuses := make([]int, racers)
			var wg sync.WaitGroup
			for i := range racers {
				wg.Go(func() {
					resp, err := http.Post(fx.url+"/api/v1/enrollments", "application/json", bytes.NewReader(bodies[i]))
					if err != nil {
						return
					}
					resp.Body.Close()
					statuses[i] = resp.StatusCode
				})
			}
			wg.Wait()
			made, refused := 0, 0
			for _, s := range statuses {
				switch s {
				case http.StatusCreated:
					made++
				case http.StatusTooManyRequests:
					refused++
				}
			}
			if made != 1 || refused != racers-1 {
				t.Errorf("%d racing enrollments for the last token: %v; want one made, the rest 429", racers, statuses)
			}
			if sent := fx.outboxFiles(t); len(sent) != 1 {
				t.Errorf("%d racing enrollments for the last token sent %d codes, want 1", racers, len(sent))
			}
		})
	}
}

// TestLookupLimitUnderRace: requests the registry refuses spend a lookup
// each. Of racing requests with a name the registry does not have, no
// more than the person has lookups left ask the registry and hear
// "registry-mismatch"; the rest are rate-limited and learn nothing of its
// record. Once all the lookups are spent, the registry is not asked.
func TestLookupLimitUnderRace(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			f := catest.New(t, time.Now().UTC().Truncate(time.Second))
			// Two enrollments an hour, so six lookups; the fixture's own
			// enrollment spends one.
			reg := &countingRegistry{}
			fx := newRAFixture(t, f, driver, perHour(2), func(d *ra.Deps) {
				reg.Registry, d.Registry = d.Registry, reg
			})
			wrongName := citizen()
			wrongName["given_name"] = "Somebody"
			const racers = 16
			bodies := make([][]byte, racers)
			for i := range bodies {
				bodies[i] = enrollBody(t, wrongName, "citizen-sign", csrPEM(t, newKey(t)))
			}
			answers := make([]string, racers)
			before := reg.n.Load()
			var wg sync.WaitGroup
			for i := range racers {
				wg.Go(func() {
					code, raw := fx.do(t, http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json"}}, bodies[i])
					switch {
					case code == 422 && strings.Contains(string(raw), "registry-mismatch"):
						answers[i] = "mismatch"
					case code == 429 && strings.Contains(string(raw), "too many registry lookups"):
						answers[i] = "limited"
					default:
						answers[i] = fmt.Sprintf("%d %s", code, raw)
					}
				})
			}
			wg.Wait()
			counts := map[string]int{}
			for _, a := range answers {
				counts[a]++
			}
			// Each that passed the forecast asked the registry and spent a
			// lookup; counted on this node, no more passed than there were
			// lookups. (A forecast may count a racer twice, that left as it
			// read: it then refuses one that could have passed.)
			mismatches := counts["mismatch"]
			if mismatches < 1 || mismatches > 5 || counts["limited"] != racers-mismatches {
				t.Errorf("%d racing requests with a wrong name, 5 lookups left: %v; want at most 5 mismatches, the rest rate-limited", racers, counts)
			}
			if n := reg.n.Load() - before; n != int64(mismatches) {
				t.Errorf("%d racing requests with 5 lookups left asked the registry %d times, %d heard its answer", racers, n, mismatches)
			}
			// One at a time, the rest of the five are heard; then none.
			for range 6 {
				code, raw := fx.do(t, http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json"}},
					enrollBody(t, wrongName, "citizen-sign", csrPEM(t, newKey(t))))
				if code != 422 {
					if code != 429 || !strings.Contains(string(raw), "too many registry lookups") {
						t.Errorf("a wrong name after the race: %d %s", code, raw)
					}
					break
				}
				mismatches++
			}
			if mismatches != 5 || reg.n.Load()-before != 5 {
				t.Errorf("5 lookups left: %d mismatches heard, the registry asked %d times; want 5 and 5", mismatches, reg.n.Load()-before)
			}
			// The lookups are used up: the registry is not asked again, for
			// the right name either.
			asked := reg.n.Load()
			answer{status: 429, problem: "rate-limited"}.check(t, "the right name once the lookups are used up",
				fx.answer(t, http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json"}},
					enrollBody(t, citizen(), "citizen-sign", csrPEM(t, newKey(t)))))
			if n := reg.n.Load() - asked; n != 0 {
				t.Errorf("the registry was asked %d times once the lookups were used up", n)
			}
			if n := fx.count(t, `SELECT count(*) FROM enrollments`); n != 1 {
				t.Errorf("%d enrollments recorded, want the fixture's one", n)
			}
		})
	}
}

// TestCodeNotSent: the code goes out only once its enrollment is
// committed. When it cannot be sent, the applicant hears
// notification-failed, and the enrollment ends failed (audited), its
// Idempotency-Key free for the retry, which makes a new enrollment; the
// failed one stays counted against the person's enrollments (the code may
// have reached them late).
func TestCodeNotSent(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			f := catest.New(t, time.Now().UTC().Truncate(time.Second))
			gateway := &committedNotifier{}
			// Three enrollments an hour; the fixture's spends one.
			fx := newRAFixture(t, f, driver, perHour(3), func(d *ra.Deps) { gateway.Notifier, d.Notifier = d.Notifier, gateway })
			gateway.db.Store(fx.db)
			keyed := http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {"retry-after-gateway"}}
			body := enrollBody(t, citizen(), "citizen-sign", csrPEM(t, newKey(t)))

			gateway.down.Store(true)
			answer{status: 503, problem: "notification-failed"}.check(t, "an enrollment whose code cannot be sent",
				fx.answer(t, http.MethodPost, "/api/v1/enrollments", keyed, body))
			failedID := gateway.last()
			e, err := fx.db.Enrollment(t.Context(), failedID)
			if err != nil {
				t.Fatal(err)
			}
			if e.State != store.StateFailed || !strings.Contains(e.StateReason, "could not be sent") || e.IdempotencyKey != "" {
				t.Errorf("the enrollment whose code was not sent: %s (%q), key %q; want failed, its key freed", e.State, e.StateReason, e.IdempotencyKey)
			}
			if n := fx.count(t, fx.q(`SELECT count(*) FROM audit_events WHERE action = 'enrollment.fail' AND object = $1`), "enrollment/"+failedID); n != 1 {
				t.Errorf("%d enrollment.fail events for it, want 1", n)
			}
			answer{status: 200, state: store.StateFailed}.check(t, "the applicant asks after it",
				fx.answer(t, http.MethodGet, "/api/v1/enrollments/"+failedID, nil, nil))

			gateway.down.Store(false)
			retry := fx.answer(t, http.MethodPost, "/api/v1/enrollments", keyed, body)
			if retry.status != http.StatusCreated || retry.id == failedID || retry.state != store.StatePendingProof {
				t.Fatalf("the retry with the same Idempotency-Key: %+v; want a new enrollment (the failed one is %s)", retry, failedID)
			}
			if fx.code(t, retry.id) == "" {
				t.Error("the retry's code did not reach the outbox")
			}
			// The fixture's, the failed one and the retry: the hour's three.
			answer{status: 429, problem: "rate-limited"}.check(t, "a fourth enrollment", fx.answer(t, http.MethodPost, "/api/v1/enrollments",
				http.Header{"Content-Type": {"application/json"}}, enrollBody(t, citizen(), "citizen-sign", csrPEM(t, newKey(t)))))

			if bad := gateway.uncommitted(); len(bad) > 0 {
				t.Errorf("codes sent for enrollments not committed (or not pending their proof): %v", bad)
			}

			// The gateway reports a failure, but the code reached the
			// person, who proved it at once: the enrollment stands.
			gateway = &committedNotifier{}
			fresh := newRAFixture(t, f, driver, func(d *ra.Deps) { gateway.Notifier, d.Notifier = d.Notifier, gateway })
			gateway.db.Store(fresh.db)
			gateway.down.Store(true)
			gateway.during(func(m ra.Message) {
				if a := fresh.proof(t, m.EnrollmentID, m.Code); a.state != store.StatePendingApproval {
					t.Errorf("proving while the gateway answers: %+v", a)
				}
			})
			answer{status: 201, state: store.StatePendingApproval}.check(t, "an enrollment proven before its gateway answered",
				fresh.answer(t, http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json"}}, enrollBody(t, citizen(), "citizen-sign", csrPEM(t, newKey(t)))))
			// Rejected meanwhile (the registry reported a death, say): the
			// applicant hears where it stands, and a retry with its key
			// finds it.
			gateway.during(func(m ra.Message) {
				err := fresh.db.InTx(t.Context(), func(tx *store.Tx) error {
					e, err := tx.EnrollmentForUpdate(t.Context(), m.EnrollmentID)
					if err != nil {
						return err
					}
					e.State, e.StateReason = store.StateRejected, "deceased"
					return tx.UpdateEnrollment(t.Context(), store.StatePendingProof, e)
				})
				if err != nil {
					t.Error(err)
				}
			})
			rejectedKey := http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {"rejected-meanwhile"}}
			rejectedBody := enrollBody(t, citizen(), "citizen-sign", csrPEM(t, newKey(t)))
			rejected := fresh.answer(t, http.MethodPost, "/api/v1/enrollments", rejectedKey, rejectedBody)
			answer{status: 201, state: store.StateRejected}.check(t, "an enrollment rejected before its gateway answered", rejected)
			gateway.down.Store(false)
			if again := fresh.answer(t, http.MethodPost, "/api/v1/enrollments", rejectedKey, rejectedBody); again.id != rejected.id || again.state != store.StateRejected {
				t.Errorf("a retry with its key: %+v, want the rejected enrollment %s", again, rejected.id)
			}
			if bad := gateway.uncommitted(); len(bad) > 0 {
				t.Errorf("codes sent for enrollments not committed (or not pending their proof): %v", bad)
			}
		})
	}
}

// countingRegistry counts the registry's person lookups.
type countingRegistry struct {
	registry.Registry
	n atomic.Int64
}

func (r *countingRegistry) Person(ctx context.Context, country, nationalID string) (registry.Person, registry.Evidence, error) {
	r.n.Add(1)
	return r.Registry.Person(ctx, country, nationalID)
}

// committedNotifier is a gateway that fails while down, and notes, for
// each code it is given, whether its enrollment was committed by then,
// pending its proof.
type committedNotifier struct {
	switchNotifier
	db       atomic.Pointer[store.DB]
	whileBad atomic.Pointer[func(ra.Message)]
	mu       sync.Mutex
	ids      []string
	bad      []string
}

// during sets what happens while a gateway that is down takes its time
// to answer.
func (n *committedNotifier) during(f func(ra.Message)) { n.whileBad.Store(&f) }

func (n *committedNotifier) Send(ctx context.Context, m ra.Message) error {
	if db := n.db.Load(); db != nil && m.Code != "" {
		e, err := db.Enrollment(ctx, m.EnrollmentID)
		n.mu.Lock()
		n.ids = append(n.ids, m.EnrollmentID)
		if err != nil || e.State != store.StatePendingProof {
			n.bad = append(n.bad, fmt.Sprintf("%s: %s %v", m.EnrollmentID, e.State, err))
		}
		n.mu.Unlock()
	}
	if f := n.whileBad.Load(); f != nil && n.down.Load() {
		(*f)(m)
	}
	return n.switchNotifier.Send(ctx, m)
}

func (n *committedNotifier) last() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.ids) == 0 {
		return ""
	}
	return n.ids[len(n.ids)-1]
}

func (n *committedNotifier) uncommitted() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.bad)
}

// TestIdempotentRetriesAtTheLimit: copies of one request (one
// Idempotency-Key) racing for the person's last enrollment, on two RA
// nodes, all get the one enrollment they made, not a refusal for the
// token the first one took; one code goes out.
func TestIdempotentRetriesAtTheLimit(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			f := catest.New(t, time.Now().UTC().Truncate(time.Second))
			// The fixture's own enrollment spends one of the two.
			fx := newRAFixture(t, f, driver, perHour(2))
			// Half the copies reach a second RA node over the same database.
			node2, err := ra.New(fx.deps)
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			node2.Register(mux)
			srv2 := httptest.NewServer(mux)
			t.Cleanup(srv2.Close)
			body := enrollBody(t, citizen(), "citizen-sign", csrPEM(t, newKey(t)))
			// More copies on each node than the person has lookups left.
			answers := make([]answer, 16)
			var wg sync.WaitGroup
			for i := range answers {
				wg.Go(func() {
					url := fx.url
					if i%2 == 1 {
						url = srv2.URL
					}
					req, err := http.NewRequest(http.MethodPost, url+"/api/v1/enrollments", bytes.NewReader(body))
					if err != nil {
						t.Error(err)
						return
					}
					req.Header = http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {"one-request"}}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					defer resp.Body.Close()
					var doc struct{ ID, Type string }
					if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
						t.Error(err)
					}
					answers[i] = answer{status: resp.StatusCode, id: doc.ID, problem: strings.TrimPrefix(doc.Type, "urn:sanad:problem:")}
				})
			}
			wg.Wait()
			for i, a := range answers {
				if a.status/100 != 2 || a.id == "" || a.id != answers[0].id {
					t.Errorf("copy %d of one request: %+v; want the enrollment %s every copy made", i+1, a, answers[0].id)
				}
			}
			if sent := fx.outboxFiles(t); len(sent) != 1 {
				t.Errorf("%d codes sent for one request, want 1", len(sent))
			}
		})
	}
}

// TestBusinessLimits: a business's enrollment spends an enrollment of the
// business and one of its representative, whose own enrollments as a
// person then count it; once either is used up, the registry is not asked.
func TestBusinessLimits(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	reg := &countingRegistry{}
	// Two enrollments an hour; the fixture's own is Aigerim's, not theirs.
	fx := newRAFixture(t, f, "sqlite", perHour(2), func(d *ra.Deps) {
		reg.Registry, d.Registry = d.Registry, reg
	})
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	post := func(applicant map[string]any, profileName string) answer {
		t.Helper()
		return fx.answer(t, http.MethodPost, "/api/v1/enrollments", jsonHeader, enrollBody(t, applicant, profileName, csrPEM(t, newKey(t))))
	}
	ayesha := business()["representative"].(map[string]any)
	if a := post(business(), "business-seal"); a.status != http.StatusCreated {
		t.Fatalf("the business's first enrollment: %+v", a)
	}
	if a := post(ayesha, "citizen-sign"); a.status != http.StatusCreated {
		t.Fatalf("its representative's own: %+v", a)
	}
	asked := reg.n.Load()
	answer{status: 429, problem: "rate-limited"}.check(t, "the representative's third enrollment, the business's counted", post(ayesha, "citizen-sign"))
	answer{status: 429, problem: "rate-limited"}.check(t, "the business again, its representative's used up", post(business(), "business-seal"))
	if n := reg.n.Load() - asked; n != 0 {
		t.Errorf("the registry was asked %d times for requests past the limits", n)
	}
	// Aigerim's own limit is hers alone.
	if a := post(citizen(), "citizen-sign"); a.status != http.StatusCreated {
		t.Errorf("another person: %+v", a)
	}
}

// TestKeyConflictSpendsLookup: a request that asked the registry and then
// lost its Idempotency-Key to another request (another body, on another
// node) is refused idempotency-conflict, and spends its lookup all the
// same: the conflict tells it the registry matched, so it is heard only
// within the limit.
func TestKeyConflictSpendsLookup(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			f := catest.New(t, time.Now().UTC().Truncate(time.Second))
			reg := &gatedRegistry{entered: make(chan struct{}), gate: make(chan struct{})}
			// Two enrollments an hour, six lookups; the fixture's own
			// enrollment (Aigerim's) spends one of each.
			fx := newRAFixture(t, f, driver, perHour(2), func(d *ra.Deps) {
				reg.Registry, d.Registry = d.Registry, reg
			})
			reg.armed.Store(true)
			keyed := http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {"taken-meanwhile"}}
			lost := make(chan answer, 1)
			go func() {
				lost <- fx.answer(t, http.MethodPost, "/api/v1/enrollments", keyed, enrollBody(t, citizen(), "citizen-sign", csrPEM(t, newKey(t))))
			}()
			<-reg.entered // Aigerim's request is asking the registry
			if a := fx.answer(t, http.MethodPost, "/api/v1/enrollments", keyed, enrollBody(t, business(), "business-seal", csrPEM(t, newKey(t)))); a.status != http.StatusCreated {
				t.Fatalf("the business's request with the key: %+v", a)
			}
			close(reg.gate)
			answer{status: 409, problem: "idempotency-conflict"}.check(t, "the request whose key was taken meanwhile", <-lost)

			// Of Aigerim's five lookups, that request spent one.
			wrongName := citizen()
			wrongName["given_name"] = "Somebody"
			heard := 0
			for range 6 {
				code, _ := fx.do(t, http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json"}},
					enrollBody(t, wrongName, "citizen-sign", csrPEM(t, newKey(t))))
				if code != 422 {
					break
				}
				heard++
			}
			if heard != 4 {
				t.Errorf("%d mismatches heard after the conflict, want 4 of the 5 lookups", heard)
			}
		})
	}
}

// gatedRegistry holds, once armed, the first lookup of Aigerim
// (citizen) until gate closes, saying so on entered.
type gatedRegistry struct {
	registry.Registry
	armed   atomic.Bool
	once    sync.Once
	entered chan struct{}
	gate    chan struct{}
}

func (r *gatedRegistry) Person(ctx context.Context, country, nationalID string) (registry.Person, registry.Evidence, error) {
	if r.armed.Load() && nationalID == citizen()["national_id"] {
		r.once.Do(func() {
			close(r.entered)
			<-r.gate
		})
	}
	return r.Registry.Person(ctx, country, nationalID)
}

// TestReplayedPastTheLimit: a request refused at the rate limits whose
// Idempotency-Key made an enrollment meanwhile, for the same body (a copy
// on another node that took the last token), is answered with it; another
// body, another refusal or no key keep the refusal.
func TestReplayedPastTheLimit(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	fx := newRAFixture(t, f, "sqlite")
	body := enrollBody(t, citizen(), "citizen-sign", csrPEM(t, newKey(t)))
	made := fx.answer(t, http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {"made"}}, body)
	if made.status != http.StatusCreated {
		t.Fatalf("enroll: %+v", made)
	}
	hash := sha256.Sum256(body)
	other := sha256.Sum256([]byte("another body"))
	for _, tt := range []struct {
		name    string
		key     string
		hash    []byte
		limited bool
		want    bool
	}{
		{"the same request, rate-limited", "made", hash[:], true, true},
		{"another body", "made", other[:], true, false},
		{"another refusal", "made", hash[:], false, false},
		{"no key", "", hash[:], true, false},
		{"a key never used", "never", hash[:], true, false},
	} {
		e, replay, err := ra.Replayed(fx.svc, t.Context(), tt.key, tt.hash, tt.limited)
		if got := err == nil && replay && e.ID == made.id; got != tt.want || (!tt.want && err == nil) {
			t.Errorf("%s: %s, %v, %v; want answered with %s: %v", tt.name, e.ID, replay, err, made.id, tt.want)
		}
	}
}

// perHour limits each identifier to n enrollments an hour (and three
// times as many registry lookups).
func perHour(n float64) func(*ra.Deps) {
	return func(d *ra.Deps) { d.IdentifierLimit = &store.Bucket{Rate: n / time.Hour.Seconds(), Burst: n} }
}

// TestNoncesPurged: a used nonce is kept while a replay of its request
// could pass the time check, and purged after: the replay is then refused
// for its time.
func TestNoncesPurged(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	clk := &clock{}
	fx := newRAFixture(t, f, store.DriverSQLite, func(d *ra.Deps) { d.Now = clk.Now })
	id := fx.proved(t, citizen(), "citizen-sign")
	approved := signAction(t, fx.officer, approve(id), clk.Now())
	answer{status: 200, state: store.StateIssued}.check(t, "an approval", fx.act(t, approved))
	if n, err := fx.svc.PurgeNonces(t.Context()); n != 0 || err != nil {
		t.Errorf("PurgeNonces at once: %d, %v; want none purged", n, err)
	}
	answer{status: 409, problem: "replayed-request"}.check(t, "the approval replayed", fx.act(t, approved))
	clk.Add(2 * time.Hour)
	if n, err := fx.svc.PurgeNonces(t.Context()); n != 1 || err != nil {
		t.Errorf("PurgeNonces two hours later: %d, %v; want the approval's purged", n, err)
	}
	answer{status: 401, problem: "stale-request"}.check(t, "the approval replayed after the purge", fx.act(t, approved))
}

// TestRevocationRequestAudited: an officer's revocation keeps, in the
// audit log and the nonce's transaction, the signed request itself and
// who signed it (the certificate's fingerprint, not only the officer's
// name, which another officer may share).
func TestRevocationRequestAudited(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	fx := newRAFixture(t, f, store.DriverSQLite)
	serial := fx.issued(t, citizen())
	jws := signAction(t, fx.officer, jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: serial, Reason: "keyCompromise"}, time.Now())
	if a := fx.act(t, jws); a.status != http.StatusOK {
		t.Fatalf("revoke: %+v", a)
	}
	var actor, object string
	var details []byte
	if err := fx.raw.QueryRowContext(t.Context(), `SELECT actor, object, details FROM audit_events WHERE action = 'certificate.revoke.request'`).Scan(&actor, &object, &details); err != nil {
		t.Fatal(err)
	}
	var d map[string]string
	if err := json.Unmarshal(details, &d); err != nil {
		t.Fatal(err)
	}
	fp := sha256.Sum256(fx.officer.cert.Raw)
	if actor != "officer:Yerlan Officer" || object != "certificate/"+strings.ToLower(serial) || d["jws"] != string(jws) ||
		d["signer_fingerprint"] != hex.EncodeToString(fp[:]) || d["reason"] != "keyCompromise" || d["nonce"] == "" {
		t.Errorf("the request's audit event: %s %s %s", actor, object, details)
	}
}

// TestOfficerRevokesOnTheCertificateRoute: POST
// /api/v1/certificates/{serial}/revoke takes an officer's signed request
// too (DESIGN §4), for that route's audience, as the officers' route
// takes it: an RA officer revokes a subscriber's certificate; the request
// again is a replay; one signed for the officers' route, or by someone
// who is neither the holder nor an officer, revokes nothing.
func TestOfficerRevokesOnTheCertificateRoute(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	fx := newRAFixture(t, f, "sqlite")
	post := func(serial string, who identity, audience string) answer {
		t.Helper()
		jws, err := jwsauth.Sign(jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: serial, Reason: "keyCompromise", Audience: audience}, who.cert, who.key, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return fx.answer(t, http.MethodPost, "/api/v1/certificates/"+serial+"/revoke", http.Header{"Content-Type": {"application/jose"}}, []byte(jws))
	}
	status := func(c *x509.Certificate) string {
		t.Helper()
		row, err := fx.db.Certificate(t.Context(), "issuing", c.SerialNumber.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return row.Status
	}
	held := fx.certified(t, newKey(t), "citizen-auth")
	otherKey := newKey(t)
	other := identity{fx.certified(t, otherKey, "citizen-auth"), otherKey}
	serial := jwsauth.SerialHex(held.SerialNumber)

	answer{status: 401, problem: "unauthorized"}.check(t, "signed by another subscriber", post(serial, other, ra.AudienceRevoke))
	if a := post(serial, fx.officer, ra.AudienceActions); a.status != 401 {
		t.Errorf("an officer's request for the officers' route: %+v, want 401", a)
	}
	if s := status(held); s != store.StatusGood {
		t.Fatalf("after the refused requests: %s", s)
	}
	jws, err := jwsauth.Sign(jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: serial, Reason: "keyCompromise", Audience: ra.AudienceRevoke}, fx.officer.cert, fx.officer.key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	send := func() answer {
		return fx.answer(t, http.MethodPost, "/api/v1/certificates/"+serial+"/revoke", http.Header{"Content-Type": {"application/jose"}}, []byte(jws))
	}
	if a := send(); a.status != 200 || status(held) != store.StatusRevoked {
		t.Errorf("an RA officer's request: %+v, the certificate %s; want 200, revoked", a, status(held))
	}
	answer{status: 409, problem: "replayed-request"}.check(t, "the officer's request again", send())
}
