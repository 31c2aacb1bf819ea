package crl

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

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/sanadpki/sanad/internal/store"
)

// TestEncodeMatchesCreateRevocationList: for every issuer key type, with no
// entries and with entries of every reason, serial lengths and both time
// forms, the TBS encodeTBS writes is byte for byte the one
// x509.CreateRevocationList writes, and the signed CRL parses back to the
// same entries and verifies.
func TestEncodeMatchesCreateRevocationList(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]crypto.Signer{"rsa-2048": rsaKey}
	for name, curve := range map[string]elliptic.Curve{"p256": elliptic.P256(), "p384": elliptic.P384(), "p521": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = k
	}
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	entrySets := map[string][]store.CRLEntry{
		"empty": nil,
		"mixed": {
			{Serial: []byte{0x01}, RevokedAt: t0, Reason: 0},
			{Serial: []byte{0x7f, 0xff}, RevokedAt: t0.Add(time.Second), Reason: 1},
			{Serial: []byte{0x80}, RevokedAt: t0.Add(time.Hour), Reason: 4}, // needs a leading zero octet
			{Serial: bytes.Repeat([]byte{0xa5}, 16), RevokedAt: t0, Reason: 5},
			{Serial: append([]byte{0x4f}, bytes.Repeat([]byte{0xff}, 19)...), RevokedAt: t0, Reason: 10},
			{Serial: []byte{0x02}, RevokedAt: time.Date(2051, 1, 2, 3, 4, 5, 0, time.UTC), Reason: 9}, // GeneralizedTime
			{Serial: []byte{0x03}, RevokedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("UTC+5", 5*3600)), Reason: 3},
		},
	}
	for keyName, key := range keys {
		issuer := issuerFor(t, key, t0)
		sa, err := signatureAlgorithmFor(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		for setName, entries := range entrySets {
			for _, number := range []*big.Int{big.NewInt(1), big.NewInt(128), new(big.Int).Lsh(big.NewInt(1), 150)} {
				next := t0.Add(7 * 24 * time.Hour)
				if number.BitLen() > 100 {
					next = time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC) // the other time form
				}
				tbs, err := encodeTBS(sa, issuer, number, t0, next, entries)
				if err != nil {
					t.Fatal(err)
				}
				tmpl := &x509.RevocationList{Number: number, ThisUpdate: t0, NextUpdate: next}
				for _, e := range entries {
					tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
						SerialNumber: new(big.Int).SetBytes(e.Serial), RevocationTime: e.RevokedAt, ReasonCode: e.Reason})
				}
				want, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer, key)
				if err != nil {
					t.Fatal(err)
				}
				if got := tbsOf(t, want); !bytes.Equal(tbs, got) {
					t.Fatalf("%s/%s/#%s: TBS differs from x509's\n ours %x\nx509 %x", keyName, setName, number, tbs, got)
				}
				der, err := sign(sa, tbs, issuer, key)
				if err != nil {
					t.Fatal(err)
				}
				parsed, err := x509.ParseRevocationList(der)
				if err != nil {
					t.Fatal(err)
				}
				if err := parsed.CheckSignatureFrom(issuer); err != nil {
					t.Errorf("%s/%s: %v", keyName, setName, err)
				}
				if len(parsed.RevokedCertificateEntries) != len(entries) || parsed.Number.Cmp(number) != 0 {
					t.Errorf("%s/%s: parsed %d entries, number %s", keyName, setName, len(parsed.RevokedCertificateEntries), parsed.Number)
				}
			}
		}
	}
}

// TestSignRefusesAKeyThatIsNotTheIssuers: a CRL signed by any other key
// fails before anything is returned.
func TestSignRefusesAKeyThatIsNotTheIssuers(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	t0 := time.Now()
	issuer := issuerFor(t, k1, t0)
	sa, _ := signatureAlgorithmFor(k1.Public())
	tbs, err := encodeTBS(sa, issuer, big.NewInt(1), t0, t0.Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sign(sa, tbs, issuer, k2); err == nil {
		t.Fatal("a CRL signed by another key was accepted")
	}
}

func issuerFor(t *testing.T, key crypto.Signer, now time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Test Issuing CA", Organization: []string{"Sanad"}, Country: []string{"KZ"}},
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(30, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tbsOf returns the TBSCertList of a DER CRL.
func tbsOf(t *testing.T, der []byte) []byte {
	t.Helper()
	s := cryptobyte.String(der)
	var outer, tbs cryptobyte.String
	if !s.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.ReadASN1Element(&tbs, cbasn1.SEQUENCE) {
		t.Fatal("not a CRL")
	}
	return tbs
}
