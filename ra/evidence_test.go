package ra_test

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/ra"
)

// TestIssuedFromItsOwnEvidence: an enrollment's certificate carries what
// the registry answered for that enrollment, the evidence it keeps, even
// when a later enrollment of the same person found the registry's record
// changed (a name changed by marriage) and refreshed the subject's row.
// The evidence is in the enrollment's audit event too, where the hash
// chain fixes it.
func TestIssuedFromItsOwnEvidence(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	reg := &changingRegistry{renamedPersons: map[string][2]string{}}
	fx := newRAFixture(t, f, "sqlite", func(d *ra.Deps) {
		reg.Registry = d.Registry
		d.Registry = reg
	})
	first, code := fx.enroll(t, citizen(), "citizen-auth")
	reg.set(func() { reg.renamedPersons["KZ:880312448217"] = [2]string{"Aigerim", "Nurlanova"} })
	renamed := citizen()
	renamed["family_name"] = "Nurlanova"
	fx.enroll(t, renamed, "citizen-auth")
	if a := fx.proof(t, first, code); a.status != http.StatusOK || a.state != store.StateIssued {
		t.Fatalf("proof of the first enrollment: %+v", a)
	}
	status, raw := fx.do(t, http.MethodGet, "/api/v1/enrollments/"+first, nil, nil)
	var doc struct{ Certificate string }
	if err := json.Unmarshal(raw, &doc); err != nil || status != http.StatusOK {
		t.Fatalf("GET the first enrollment: %d %s", status, raw)
	}
	block, _ := pem.Decode([]byte(doc.Certificate))
	if block == nil {
		t.Fatalf("no certificate in %s", raw)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "Aigerim Sadykova" {
		t.Errorf("the first enrollment's certificate names %q; its evidence is the record of Aigerim Sadykova", cert.Subject.CommonName)
	}

	stored, err := fx.db.RegistryEvidence(t.Context(), first)
	if err != nil || len(stored) != 1 {
		t.Fatalf("the first enrollment's evidence: %v, %v", stored, err)
	}
	events, err := fx.db.ListAuditEvents(t.Context(), store.AuditFilter{Objects: []string{"enrollment/" + first}, Action: "enrollment.create"})
	if err != nil || len(events) != 1 {
		t.Fatalf("enrollment.create events: %v, %v", events, err)
	}
	var details struct {
		Evidence []struct{ Record, Source, SHA256 string }
	}
	if err := json.Unmarshal(events[0].Details, &details); err != nil {
		t.Fatal(err)
	}
	if len(details.Evidence) != 1 || details.Evidence[0].SHA256 != hex.EncodeToString(stored[0].Hash) ||
		details.Evidence[0].Record != stored[0].Record || details.Evidence[0].Source != stored[0].Source {
		t.Errorf("enrollment.create records evidence %+v; the enrollment keeps %+v", details.Evidence, stored[0])
	}
}
