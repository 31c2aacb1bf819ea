package ra

import (
	"encoding/json"
	"testing"
)

// FuzzParseEnrollRequest: any body is either refused with an *Error of a
// known problem type or accepted as a request that passes its own checks
// again after a JSON round trip.
func FuzzParseEnrollRequest(f *testing.F) {
	for _, seed := range []string{
		`{"profile":"citizen-sign","applicant":{"kind":"person","country":"KZ","national_id":"880312448217","given_name":"Aigerim","family_name":"Sadykova","birth_date":"1988-03-12"},"csr":"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"}`,
		`{"profile":"business-seal","applicant":{"kind":"business","country":"PK","registration_number":"32778761","representative":{"kind":"person","country":"PK","national_id":"6110148392762","given_name":"Ayesha","family_name":"Khan","birth_date":"1987-06-14"}},"csr":"x"}`,
		`{"profile":"citizen-sign","applicant":{"kind":"business","representative":{"kind":"business"}}}`,
		`{"profile":"a","applicant":{},"csr":"x","extra":1}`,
		`[]`, `null`, `{}`, `{"profile":"a"} {}`, "{\"profile\":\"\u202e\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseEnrollRequest(body)
		if err != nil {
			e, ok := ProblemOf(err)
			if !ok {
				t.Fatalf("refusal is not an *Error: %v", err)
			}
			if _, known := problems[e.Type]; !known || e.Status < 400 || e.Status > 499 {
				t.Fatalf("refusal %q with status %d", e.Type, e.Status)
			}
			return
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseEnrollRequest(again); err != nil {
			t.Fatalf("accepted %q, but not its own re-encoding %q: %v", body, again, err)
		}
	})
}
