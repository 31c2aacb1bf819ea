package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWriteRenewed: sanad holder renew --out writes the certificate the RA
// answers only if it is the one asked for (the CSR's key, the old
// certificate's subject and issuer), and a renewal still waiting for
// officers writes nothing and is no error.
func TestWriteRenewed(t *testing.T) {
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, oldKey, newKey, otherKey := key(), key(), key(), key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Issuing CA"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(cn string, k *ecdsa.PrivateKey) (*x509.Certificate, string) {
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	old, _ := issue("Aigerim Sadykova", oldKey)
	_, good := issue("Aigerim Sadykova", newKey)
	_, otherKeyPEM := issue("Aigerim Sadykova", otherKey)
	_, otherName := issue("Somebody Else", newKey)
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, newKey)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(csrDER)
	answer := func(state, cert, chain string) []byte {
		b, _ := json.Marshal(map[string]string{"id": "e1", "state": state, "certificate": cert, "chain": chain})
		return b
	}
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	otherCADER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &otherKey.PublicKey, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	otherCA := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: otherCADER})) // the same name, another key
	for _, tt := range []struct {
		name, state, cert, chain string
		withChain                bool
		want                     string // "" written, "-" nothing written and no error, else the error
	}{
		{"issued", "issued", good, caPEM, false, ""},
		{"issued, with its chain", "issued", good, caPEM, true, ""},
		{"waiting for officers", "pending_approval", "", "", true, "-"},
		{"another key", "issued", otherKeyPEM, caPEM, false, "not for the CSR's key"},
		{"another subject", "issued", otherName, caPEM, false, "Somebody Else"},
		{"two certificates", "issued", good + good, caPEM, false, "certificate is not one PEM CERTIFICATE"},
		{"not PEM", "issued", "hello", caPEM, false, "certificate is not one PEM CERTIFICATE"},
		{"a chain that did not sign it", "issued", good, otherCA, true, "the chain did not sign the certificate"},
		{"no chain", "issued", good, "", true, "chain is not one PEM CERTIFICATE"},
	} {
		path, chainPath := filepath.Join(t.TempDir(), "new.pem"), ""
		if tt.withChain {
			chainPath = filepath.Join(t.TempDir(), "chain.pem")
		}
		var stderr bytes.Buffer
		err := writeRenewed(&stderr, path, chainPath, answer(tt.state, tt.cert, tt.chain), old, csr)
		written, _ := os.ReadFile(path)
		var chainWritten []byte
		if chainPath != "" {
			chainWritten, _ = os.ReadFile(chainPath)
		}
		switch tt.want {
		case "":
			if err != nil || string(written) != good || (tt.withChain && string(chainWritten) != caPEM) {
				t.Errorf("%s: %v, wrote %q and %q", tt.name, err, written, chainWritten)
			}
		case "-":
			if err != nil || written != nil || !strings.Contains(stderr.String(), "renewal e1 is pending_approval") {
				t.Errorf("%s: %v, wrote %q, said %q", tt.name, err, written, stderr.String())
			}
		default:
			if err == nil || !strings.Contains(err.Error(), tt.want) || written != nil || chainWritten != nil {
				t.Errorf("%s: %v, wrote %q and %q; want an error naming %q and nothing written", tt.name, err, written, chainWritten, tt.want)
			}
		}
	}
}
