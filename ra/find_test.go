package ra_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/ra"
	"github.com/sanadpki/sanad/ra/jwsauth"
)

// TestFind: an officer finds a person or business by its semantics
// identifier, with their own enrollments and certificates, newest first;
// every search is audited, one that finds nobody too; a signed search is
// used once, names the subject it is for, and is an officer's.
func TestFind(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) { testFind(t, driver) })
	}
}

func testFind(t *testing.T, driver string) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	fx := newRAFixture(t, f, driver)
	ctx := t.Context()
	const aigerim, indus = "IDCKZ-880312448217", "NTRPK-32778761"

	// Aigerim: a certificate issued (auto), then an enrollment waiting
	// for officers; Indus Textiles: a seal waiting, which its
	// representative's search does not list.
	auto, otp := fx.enrollKey(t, newKey(t))
	if a := fx.proof(t, auto, otp); a.state != store.StateIssued {
		t.Fatalf("auto enrollment: %+v", a)
	}
	waiting := fx.proved(t, citizen(), "citizen-sign")
	seal, _ := fx.enroll(t, business(), "business-seal")
	certs, err := fx.db.CertificatesOfEnrollment(ctx, auto)
	if err != nil || len(certs) != 1 {
		t.Fatalf("certificates of %s: %v %v", auto, certs, err)
	}

	signed := func(who identity, subject string) string {
		t.Helper()
		jws, err := jwsauth.Sign(jwsauth.Action{Action: jwsauth.ActionFind, Subject: subject, Audience: ra.AudienceFind}, who.cert, who.key, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return jws
	}
	find := func(jws string) (int, ra.SubjectView, string) {
		t.Helper()
		code, raw := fx.do(t, http.MethodGet, "/api/v1/officer/subjects", http.Header{"Authorization": {"JWS " + jws}}, nil)
		var v ra.SubjectView
		var p struct{ Type string }
		_ = json.Unmarshal(raw, &v)
		_ = json.Unmarshal(raw, &p)
		return code, v, strings.TrimPrefix(p.Type, "urn:sanad:problem:")
	}
	// searches counts the searches audited, and gives the last one's
	// object and details.
	searches := func() (n int, object, details string) {
		t.Helper()
		rows, err := fx.raw.QueryContext(ctx, fx.q(`SELECT object, details FROM audit_events WHERE action = 'subject.view' ORDER BY seq`))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var d []byte
			if err := rows.Scan(&object, &d); err != nil {
				t.Fatal(err)
			}
			n, details = n+1, string(d)
		}
		return n, object, details
	}

	jws := signed(fx.officer, aigerim)
	code, v, _ := find(jws)
	if code != http.StatusOK {
		t.Fatalf("find %s: %d", aigerim, code)
	}
	var ids []string
	for _, e := range v.Enrollments {
		ids = append(ids, e.ID)
	}
	switch {
	case v.Subject["id"] != aigerim || v.Subject["kind"] != "person" || v.Subject["FamilyName"] != "Sadykova":
		t.Errorf("subject: %v", v.Subject)
	case !slices.Contains(ids, auto) || !slices.Contains(ids, waiting) || !slices.Contains(ids, fx.pending) || slices.Contains(ids, seal):
		t.Errorf("enrollments %v, want %s, %s and %s, not the business's %s", ids, auto, waiting, fx.pending, seal)
	case slices.Index(ids, waiting) > slices.Index(ids, auto):
		t.Errorf("enrollments %v: not newest first", ids)
	case len(v.Certificates) != 1 || v.Certificates[0].Serial != fmt.Sprintf("%X", certs[0].Serial) || v.Certificates[0].Status != store.StatusGood:
		t.Errorf("certificates: %+v, want the one of %s", v.Certificates, auto)
	case v.Truncated:
		t.Error("truncated")
	}
	for _, e := range v.Enrollments {
		if e.ID == auto && (e.State != store.StateIssued || e.Serial != v.Certificates[0].Serial) {
			t.Errorf("the issued enrollment as found: %+v", e)
		}
	}
	// Audited in full: whom, and what was shown (the log masks identifiers;
	// the audit record keeps them).
	if n, object, details := searches(); n != 1 || object != "subject/"+aigerim || !strings.Contains(details, `"found":true`) ||
		!strings.Contains(details, auto) || !strings.Contains(details, fmt.Sprintf("%x", certs[0].Serial)) || !strings.Contains(details, "Yerlan Officer") {
		t.Errorf("searches audited: %d, %s %s", n, object, details)
	}
	// The same signed search again: replayed.
	if code, _, problem := find(jws); code != http.StatusConflict || problem != "replayed-request" {
		t.Errorf("a replayed search: %d %s", code, problem)
	}
	// The business: its own seal enrollment.
	if code, v, _ := find(signed(fx.officer, indus)); code != http.StatusOK || v.Subject["kind"] != "business" ||
		len(v.Enrollments) != 1 || v.Enrollments[0].ID != seal || len(v.Certificates) != 0 {
		t.Errorf("find %s: %d %+v", indus, code, v)
	}
	// Nobody by that identifier: not found, and the search is audited.
	nobody := "IDCKZ-990101300123"
	// The detail says what "nobody" means here, pointing a
	// representative's searcher at the business.
	if code, raw := fx.do(t, http.MethodGet, "/api/v1/officer/subjects", http.Header{"Authorization": {"JWS " + signed(fx.officer, nobody)}}, nil); code != http.StatusNotFound ||
		!strings.Contains(string(raw), "urn:sanad:problem:subject-not-found") || !strings.Contains(string(raw), "no enrollment has "+nobody+" as its subject") ||
		!strings.Contains(string(raw), "NTR identifier") {
		t.Errorf("find nobody: %d %s", code, raw)
	}
	if n, object, details := searches(); n != 3 || object != "subject/"+nobody || !strings.Contains(details, `"found":false`) {
		t.Errorf("after a search that found nobody: %d searches audited, %s %s", n, object, details)
	}
	// A type of identifier the RA never writes; a stranger's key; a
	// deactivated officer.
	if code, _, problem := find(signed(fx.officer, "VATKZ-880312448217")); code != http.StatusBadRequest || problem != "invalid-request" {
		t.Errorf("a VAT identifier: %d %s", code, problem)
	}
	if code, _, problem := find(signed(fx.stranger, aigerim)); code != http.StatusForbidden || problem != "not-an-officer" {
		t.Errorf("a stranger's search: %d %s", code, problem)
	}
	if _, err := fx.raw.ExecContext(ctx, fx.q(`UPDATE officers SET active = false WHERE name = $1`), "Yerlan Officer"); err != nil {
		t.Fatal(err)
	}
	if code, _, problem := find(signed(fx.officer, aigerim)); code != http.StatusForbidden || problem != "not-an-officer" {
		t.Errorf("a deactivated officer's search: %d %s", code, problem)
	}
	if n, _, _ := searches(); n != 3 {
		t.Errorf("%d searches audited, want 3: refused ones are not searches", n)
	}
}
