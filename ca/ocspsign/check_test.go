package ocspsign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// TestCheckSignature: the envelope-only check accepts the responder's
// signature, for each key type, and refuses another key's, a flipped bit,
// and anything that is not a signed basic response.
func TestCheckSignature(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	keys := newTestKeys(t)
	other := newTestKeys(t).p256
	for _, tt := range []struct {
		name string
		key  crypto.Signer
	}{{"P-256", keys.p256}, {"P-384", keys.p384}, {"RSA", keys.rsa}} {
		t.Run(tt.name, func(t *testing.T) {
			c := certify(t, &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "OCSP"},
				NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}},
				nil, tt.key.Public(), tt.key)
			resp := func(key crypto.Signer) []byte {
				der, err := ocsp.CreateResponse(c, c, ocsp.Response{SerialNumber: big.NewInt(42), Status: ocsp.Good,
					ThisUpdate: now, NextUpdate: now.Add(DefaultValidity), Certificate: c}, key)
				if err != nil {
					t.Fatal(err)
				}
				return der
			}
			good := resp(tt.key)
			if err := checkSignature(good, c); err != nil {
				t.Fatalf("the responder's own signature: %v", err)
			}
			// The same cross-check the whole parser makes.
			parsed, err := ocsp.ParseResponse(good, nil)
			if err != nil || parsed.CheckSignatureFrom(c) != nil {
				t.Fatalf("x/crypto/ocsp disagrees: %v", err)
			}
			if err := checkSignature(resp(other), c); err == nil {
				t.Error("another key's signature was accepted")
			}
			// A bit flipped in the signed data or in the signature.
			tbsAt, sigAt := bytes.Index(good, parsed.TBSResponseData), bytes.Index(good, parsed.Signature)
			if tbsAt < 0 || sigAt < 0 {
				t.Fatal("cannot find the signed data and the signature")
			}
			for _, i := range []int{tbsAt + len(parsed.TBSResponseData) - 1, tbsAt + 10, sigAt + len(parsed.Signature) - 1} {
				bad := bytes.Clone(good)
				bad[i] ^= 0x01
				if err := checkSignature(bad, c); err == nil {
					t.Errorf("byte %d flipped, still accepted", i)
				}
			}
			for _, junk := range [][]byte{nil, {0x30, 0x00}, good[:len(good)/2], ocspUnauthorized} {
				if err := checkSignature(junk, c); err == nil {
					t.Errorf("%x accepted", junk)
				}
			}
		})
	}
}

// ocspUnauthorized is RFC 6960's unauthorized(6) answer: no signature at all.
var ocspUnauthorized = []byte{0x30, 0x03, 0x0a, 0x01, 0x06}

// testKeys are software keys of the responder key types.
type testKeys struct {
	p256, p384 *ecdsa.PrivateKey
	rsa        *rsa.PrivateKey
}

func newTestKeys(t *testing.T) testKeys {
	t.Helper()
	var k testKeys
	var err error
	if k.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if k.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	return k
}

// certify signs tmpl with key, under parent (self-signed when nil).
func certify(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
