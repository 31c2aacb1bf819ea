package ocspsign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// TestEncode: x/crypto/ocsp reads what Encode writes, for each responder
// key type and status, checks its signature against the responder
// certificate carried in it, and finds the issuer's CertID; the nonce is in
// the responseExtensions, not the single response's.
func TestEncode(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	caKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := certify(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, caKey.Public(), caKey)
	keys := newTestKeys(t)
	serial := []byte{0x80, 0x01, 0x02, 0x03} // high bit set: needs a leading zero
	for _, key := range []crypto.Signer{keys.p256, keys.p384, keys.rsa} {
		responder := certify(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "OCSP"}, NotBefore: now.Add(-time.Hour),
			NotAfter: now.AddDate(0, 1, 0), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}, ca, key.Public(), caKey)
		r := Responder{IssuerID: "ca", Issuer: ca, Certificate: responder, Signer: key}
		for _, tc := range []Template{
			{Status: ocsp.Good},
			{Status: ocsp.Revoked, RevokedAt: now.Add(-time.Hour), Reason: ocsp.KeyCompromise},
			{Status: ocsp.Revoked, RevokedAt: now.Add(-time.Hour), Reason: -1},
			{Status: ocsp.Good, Nonce: bytes.Repeat([]byte{0xa5}, 16)},
		} {
			tc.Serial, tc.ThisUpdate, tc.NextUpdate, tc.ProducedAt = serial, now, now.Add(4*24*time.Hour), now
			der, err := Encode(r, tc)
			if err != nil {
				t.Fatalf("%T %+v: %v", key.Public(), tc, err)
			}
			p, err := ocsp.ParseResponseForCert(der, &x509.Certificate{SerialNumber: new(big.Int).SetBytes(serial)}, ca)
			if err != nil {
				t.Fatalf("%T %+v: x/crypto: %v", key.Public(), tc, err)
			}
			if p.Status != tc.Status || !p.ThisUpdate.Equal(now) || !p.NextUpdate.Equal(tc.NextUpdate) || !p.ProducedAt.Equal(now) ||
				p.SerialNumber.Cmp(new(big.Int).SetBytes(serial)) != 0 || !bytes.Equal(p.Certificate.Raw, responder.Raw) {
				t.Errorf("%T %+v: parsed %+v", key.Public(), tc, p)
			}
			if tc.Status == ocsp.Revoked {
				wantReason := tc.Reason
				if wantReason < 0 {
					wantReason = ocsp.Unspecified
				}
				if !p.RevokedAt.Equal(tc.RevokedAt) || p.RevocationReason != wantReason {
					t.Errorf("revoked: %s reason %d", p.RevokedAt, p.RevocationReason)
				}
			}
			if len(p.Extensions) != 0 {
				t.Errorf("single extensions %v: the nonce belongs in responseExtensions", p.Extensions)
			}
			if hasNonce := bytes.Contains(der, append([]byte{0x04, 0x12, 0x04, 0x10}, tc.Nonce...)); (tc.Nonce != nil) != hasNonce {
				t.Errorf("nonce %x present: %v", tc.Nonce, hasNonce)
			}
		}
	}
	// A signer that is not the responder's key never yields a response.
	responder := certify(t, &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "OCSP"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.AddDate(0, 1, 0)}, ca, keys.p256.Public(), caKey)
	other := newTestKeys(t).p256
	if _, err := Encode(Responder{Issuer: ca, Certificate: responder, Signer: other},
		Template{Serial: serial, Status: ocsp.Good, ThisUpdate: now, NextUpdate: now.Add(time.Hour), ProducedAt: now}); err == nil {
		t.Error("a signature by another key was returned")
	}
}
