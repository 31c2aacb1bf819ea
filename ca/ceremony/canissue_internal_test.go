package ceremony

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/ca/lint"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/policies"
)

// TestCanIssue: before an issuer's key signs, the certificate must be one
// it may issue.
func TestCanIssue(t *testing.T) {
	now := time.Now()
	ca := func(pathLenZero bool, ku x509.KeyUsage) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: "Issuing"}, BasicConstraintsValid: true, IsCA: true,
			MaxPathLenZero: pathLenZero, MaxPathLen: map[bool]int{true: 0, false: -1}[pathLenZero], KeyUsage: ku, NotAfter: now.AddDate(5, 0, 0)}
	}
	leaf := &x509.Certificate{NotAfter: now.AddDate(1, 0, 0)}
	sub := &x509.Certificate{IsCA: true, NotAfter: now.AddDate(1, 0, 0)}
	notCA := &x509.Certificate{Subject: pkix.Name{CommonName: "OCSP signer"}, KeyUsage: x509.KeyUsageDigitalSignature, NotAfter: now.AddDate(5, 0, 0)}
	for _, c := range []struct {
		name         string
		issuer, tmpl *x509.Certificate
		want         string
	}{
		{"a leaf", ca(true, x509.KeyUsageCertSign), leaf, ""},
		{"a sub-CA under path length 0", ca(true, x509.KeyUsageCertSign), sub, "path length 0"},
		{"a sub-CA under no path length", ca(false, x509.KeyUsageCertSign), sub, ""},
		{"no keyCertSign", ca(false, x509.KeyUsageCRLSign), leaf, "no keyCertSign"},
		{"an issuer that is no CA", notCA, leaf, "is not a CA"},
	} {
		err := canIssue(c.issuer, c.tmpl)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// TestLintDraftChecksTheIssuer: what check and run lint before any key is
// made refuses an issuer that may not sign the certificate, or that is not
// valid now, as makeCertificate would once the key was made.
func TestLintDraftChecksTheIssuer(t *testing.T) {
	s, err := Load(filepath.Join("..", "..", "policies", "ceremonies", "3-intermediate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// A key made at this ceremony: the request its script names is made
	// by another one.
	s.Key = &Key{Label: "sanad-issuing-g1", Type: "ecdsa-p256"}
	profiles, err := profile.LoadAll(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	linter, err := lint.New("")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Profiles: profiles, Linter: linter}
	now := time.Now()
	issuer := func(pathLenZero bool, notAfter time.Time) *x509.Certificate {
		t.Helper()
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Root", Organization: []string{"Sanad"}, Country: []string{"KZ"}},
			NotBefore: now.AddDate(-1, 0, 0), NotAfter: notAfter, BasicConstraintsValid: true, IsCA: true,
			MaxPathLenZero: pathLenZero, MaxPathLen: map[bool]int{true: 0, false: -1}[pathLenZero], KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
		return catest.Certify(t, tmpl, nil, key.Public(), key)
	}
	for _, c := range []struct {
		name   string
		issuer *x509.Certificate
		want   string
	}{
		{"a CA under path length 0", issuer(true, now.AddDate(20, 0, 0)), "path length 0"},
		{"an issuer expired", issuer(false, now.AddDate(0, 0, -1)), "not now"},
	} {
		if err := s.LintDraft(c.issuer, now, opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", c.name, err, c.want)
		}
	}
}
