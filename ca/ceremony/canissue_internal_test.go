package ceremony

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"testing"
	"time"
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
