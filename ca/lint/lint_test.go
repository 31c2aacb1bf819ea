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
