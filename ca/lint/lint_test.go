package lint

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// badCA is a CA certificate without keyCertSign: zlint's
// e_ca_key_cert_sign_not_set fires on it.
func badCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x1234567890), Subject: pkix.Name{CommonName: "Bad CA", Country: []string{"KZ"}, Organization: []string{"X"}},
		NotBefore: time.Now(), NotAfter: time.Now().AddDate(1, 0, 0),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestExclusions(t *testing.T) {
	der := badCA(t)
	all, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	if err := all.Certificate(der); !errors.Is(err, ErrLint) || !strings.Contains(err.Error(), "e_ca_key_cert_sign_not_set") {
		t.Fatalf("without exclusions: %v", err)
	}
	some, err := New("", "e_ca_key_cert_sign_not_set")
	if err != nil {
		t.Fatal(err)
	}
	if err := some.Certificate(der); err != nil && strings.Contains(err.Error(), "e_ca_key_cert_sign_not_set") {
		t.Errorf("an excluded lint still ran: %v", err)
	}
	if _, err := New("", "e_no_such_lint"); err == nil {
		t.Error("an unknown lint name was accepted")
	}
	if _, err := New("[e_crl_next_update_invalid\nbroken"); err == nil {
		t.Error("a broken configuration was accepted")
	}
}

// TestCertificateAgreesWithZlint: Certificate's own loop over the lints
// finds exactly what zlint.LintCertificateEx finds, on certificates that
// trip lints of several sources (RFC 5280, CA/B Forum TLS and S/MIME).
func TestCertificateAgreesWithZlint(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	selfSigned := func(tmpl *x509.Certificate) []byte {
		tmpl.SerialNumber = big.NewInt(0x1234567890)
		tmpl.NotBefore, tmpl.NotAfter = now, now.AddDate(3, 0, 0)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	// issued is tmpl issued by another name than its own: zlint's
	// subscriber certificates are not self-signed.
	issued := func(tmpl *x509.Certificate) []byte {
		tmpl.SerialNumber = big.NewInt(0x1234567891)
		tmpl.NotBefore, tmpl.NotAfter = now, now.AddDate(3, 0, 0)
		parent := &x509.Certificate{Subject: pkix.Name{CommonName: "Test CA", Country: []string{"KZ"}}, SubjectKeyId: []byte{1, 2, 3, 4}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	policy := func(dotted string) x509.OID {
		oid, err := x509.ParseOID(dotted)
		if err != nil {
			t.Fatal(err)
		}
		return oid
	}
	// Each certificate trips a lint of source: the framework filter that
	// Certificate decides once must let that source's lints run.
	certs := map[string]struct {
		der    []byte
		source lint.LintSource
	}{
		"CA without keyCertSign, no EKU": {badCA(t), lint.CABFBaselineRequirements},
		"TLS server without SAN": {selfSigned(&x509.Certificate{Subject: pkix.Name{CommonName: "not a name"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}), lint.CABFBaselineRequirements},
		"S/MIME without e-mail": {selfSigned(&x509.Certificate{Subject: pkix.Name{CommonName: "Someone"},
			Policies:    []x509.OID{policy("2.23.140.1.5.1.1")},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, KeyUsage: x509.KeyUsageDigitalSignature}), lint.CABFSMIMEBaselineRequirements},
		"code signing for three years": {issued(&x509.Certificate{Subject: pkix.Name{CommonName: "Some Company", Country: []string{"PK"}},
			Policies:    []x509.OID{policy("2.23.140.1.4.1")},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, KeyUsage: x509.KeyUsageDigitalSignature}), lint.CABFCSBaselineRequirements},
		// CA/B Forum lints that run whatever the certificate's kind.
		"OCSP responder with a policy": {issued(&x509.Certificate{Subject: pkix.Name{CommonName: "OCSP", Country: []string{"KZ"}},
			Policies:    []x509.OID{policy("1.2.398.3.3.2")},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}, KeyUsage: x509.KeyUsageDigitalSignature}), lint.CABFBaselineRequirements},
		"client auth": {selfSigned(&x509.Certificate{Subject: pkix.Name{CommonName: "Aigerim Sadykova", Country: []string{"KZ"}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
			BasicConstraintsValid: true}), lint.RFC5280},
	}
	l, err := New("", "e_ca_key_cert_sign_not_set")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range certs {
		t.Run(name, func(t *testing.T) {
			zc, err := zx509.ParseCertificate(c.der)
			if err != nil {
				t.Fatal(err)
			}
			rs := zlint.LintCertificateEx(zc, l.registry)
			want := findings(rs)
			got := l.Certificate(c.der)
			ofSource := false
			for name, r := range rs.Results {
				ofSource = ofSource || r.Status >= lint.Warn && l.registry.CertificateLints().ByName(name).Source == c.source
			}
			if !ofSource {
				t.Fatalf("zlint finds nothing of source %s: the case tests nothing (%v)", c.source, want)
			}
			if got == nil || got.Error() != want.Error() {
				t.Errorf("Certificate: %v\nzlint:       %v", got, want)
			}
		})
	}
}
