package ra_test

import (
	"crypto"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/ra"
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

// deathOf is the event of Aigerim Sadykova's death (citizen()).
func deathOf(id string) map[string]any {
	return map[string]any{"event_id": id, "kind": "death", "country": "KZ", "national_id": "880312448217",
		"occurred_at": time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)}
}

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
	_, body := fx.do(t, http.MethodGet, "/api/v1/enrollments/"+id, nil, nil)
	var v ra.View
	if err := json.Unmarshal(body, &v); err != nil || v.Serial == "" {
		t.Fatalf("enrollment %s: %s", id, body)
	}
	return v.Serial
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
			ev, err := fx.db.RegistryEvent(t.Context(), "kz-death-0001")
			if err != nil || ev.Outcome != store.OutcomeApplied || ev.Source != "registry:test" || ev.SubjectID == "" || ev.Payload != string(death) {
				t.Errorf("recorded: %+v %v", ev, err)
			}
			after := fx.auditActions(t)
			for action, n := range map[string]int{"registry.event": 1, "registry.event.applied": 1, "enrollment.reject": 2, "certificate.revoke": 1} {
				if got := after[action] - before[action]; got != n {
					t.Errorf("audit %s: %d new events, want %d", action, got, n)
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
			// she loses her authority; another representative's does not,
			// until the business is dissolved.
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
			dissolution := map[string]any{"event_id": "pk-dissolution-9", "kind": "dissolution", "country": "PK", "registration_number": "32778761",
				"occurred_at": time.Now().UTC().Format(time.RFC3339)}
			code, res, problem = fx.postEvent(t, signEvent(t, key, jose.ES256, dissolution))
			if code != http.StatusOK || res.Outcome != store.OutcomeApplied || !slices.Equal(res.Ended, []string{bilals}) {
				t.Errorf("dissolution: %d %s %+v", code, problem, res)
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
		})
	}
}
