package profile

import (
	"crypto/x509"
	"strings"
	"testing"

	"github.com/sanadpki/sanad/policies"
)

func TestShippedProfilesLoad(t *testing.T) {
	all, err := LoadAll(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"root", "intermediate", "ocsp-signer", "audit"} {
		if _, ok := all[name]; !ok {
			t.Errorf("profile %s missing", name)
		}
	}
	if ocsp := all["ocsp-signer"]; !ocsp.OCSPNoCheck || ocsp.CA || ocsp.ExtKeyUsage[0] != x509.ExtKeyUsageOCSPSigning {
		t.Errorf("ocsp-signer profile = %+v", ocsp)
	}
	if root := all["root"]; root.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign || !root.CA {
		t.Errorf("root profile = %+v", root)
	}
}

func TestParseRejects(t *testing.T) {
	base := "name: x\nkey_usage: [digitalSignature]\nkey_types: [ecdsa-p256]\nmax_validity_days: 10\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown field", base + "colour: blue\n", []string{"field colour not found"}},
		{"unknown key usage", "name: x\nkey_usage: [signEverything]\nkey_types: [ecdsa-p256]\nmax_validity_days: 10\n", []string{`key_usage: unknown usage "signEverything"`}},
		{"certSign without ca", "name: x\nkey_usage: [keyCertSign]\nkey_types: [ecdsa-p256]\nmax_validity_days: 10\n", []string{"keyCertSign must be present exactly when ca is true"}},
		{"nocheck without ocspSigning", base + "ocsp_no_check: true\n", []string{"ocsp_no_check"}},
		{"impossible validity and bad key type, together", "name: x\nkey_usage: [digitalSignature]\nkey_types: [dsa-1024]\nmax_validity_days: 0\n",
			[]string{"key_types", "max_validity_days: 0 is outside"}},
		{"unknown requirement", base + "require: [colour]\n", []string{`require: unknown field "colour"`}},
		{"end-entity fields", base + "subject_kind: robot\nvalidity_days: 20\npolicy_oids: [x.y]\n",
			[]string{`subject_kind: "robot" is neither person nor business`, "revocation_reasons: required", `policy_oids: "x.y" is not a dotted OID`}},
		{"validity above maximum", base + "subject_kind: person\nvalidity_days: 20\nrevocation_reasons: [certificateHold]\n",
			[]string{"validity_days: 20 is outside 1..max_validity_days (10)", `revocation_reasons: "certificateHold" is not a reason offered here`}},
		{"a CA's reason", base + "subject_kind: person\nvalidity_days: 5\nrevocation_reasons: [keyCompromise, cACompromise, aACompromise]\n",
			[]string{`revocation_reasons: "cACompromise" is not a reason for a subscriber's certificate`, `"aACompromise" is not a reason`}},
		{"validity without a subject", base + "validity_days: 5\n", []string{"validity_days: only for an end-entity profile"}},
		{"a subscriber's OCSP signing or CRL signing", "name: x\nkey_usage: [digitalSignature, cRLSign]\next_key_usage: [ocspSigning]\nkey_types: [ecdsa-p256]\nmax_validity_days: 10\nsubject_kind: person\nvalidity_days: 5\nrevocation_reasons: [keyCompromise]\n",
			[]string{"ext_key_usage: ocspSigning is for the CA's OCSP signer", "key_usage: cRLSign is for the CA"}},
		{"no keyCompromise", base + "subject_kind: person\nvalidity_days: 5\nrevocation_reasons: [superseded]\n", []string{"revocation_reasons: must include keyCompromise"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append(tt.want, "profile test.yaml") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestNoProfileClaimsNCPPlus: ETSI EN 319 411-1 NCP+ promises the subject's
// key is on a secure cryptographic device. The CA takes keys from CSRs with
// no evidence of where they were made, so no shipped profile may assert it;
// every end-entity profile asserts NCP.
func TestNoProfileClaimsNCPPlus(t *testing.T) {
	all, err := LoadAll(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	ncp, ncpPlus := mustOID(t, "0.4.0.2042.1.1"), mustOID(t, "0.4.0.2042.1.2")
	for name, p := range all {
		hasNCP := false
		for _, oid := range p.PolicyOIDs {
			if oid.Equal(ncpPlus) {
				t.Errorf("profile %s asserts NCP+ without evidence of the key's device", name)
			}
			hasNCP = hasNCP || oid.Equal(ncp)
		}
		if p.SubjectKind != "" && !hasNCP {
			t.Errorf("end-entity profile %s does not assert NCP: %v", name, p.PolicyOIDs)
		}
	}
}

func mustOID(t *testing.T, dotted string) x509.OID {
	t.Helper()
	oid, err := x509.ParseOID(dotted)
	if err != nil {
		t.Fatal(err)
	}
	return oid
}
