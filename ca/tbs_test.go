package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/policies"
)

// TestEncodeTBSMatchesX509: for every end-entity profile, issuer key type
// and subject key type, encodeTBS writes the very bytes
// x509.CreateCertificate puts in RawTBSCertificate, and the certificate
// assembled from them with a signature verifies and parses to the same
// certificate.
func TestEncodeTBSMatchesX509(t *testing.T) {
	profiles, err := profile.LoadAll(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	keys := map[string]crypto.Signer{}
	for name, gen := range map[string]func() (crypto.Signer, error){
		"p256":    func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) },
		"p384":    func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) },
		"rsa2048": func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) },
	} {
		if keys[name], err = gen(); err != nil {
			t.Fatal(err)
		}
	}
	verified := map[string]profile.Verified{
		"person":   {Country: "KZ", NationalID: "900101300123", GivenName: "Aigerim", FamilyName: "Nurlanovna"},
		"business": {Country: "PK", OrganizationName: "Indus Textiles Ltd", RegistrationNumber: "1234567"},
	}
	tested := 0
	for _, issuerKey := range []string{"p256", "p384", "rsa2048"} {
		key := keys[issuerKey]
		caTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test Issuing CA", Country: []string{"KZ"}, Organization: []string{"Sanad"}},
			NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(30, 0, 0), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}}
		der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		caCert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		is := Issuer{ID: "issuing", Certificate: caCert, Signer: key, CRLURL: "http://pki.sanad.example/crl/issuing.crl",
			OCSPURL: "http://pki.sanad.example/ocsp", CAIssuersURL: "http://pki.sanad.example/ca/issuing.crt"}
		alg, err := signatureAlgFor(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		for name, p := range profiles {
			if p.SubjectKind == "" {
				continue // a CA profile: the ceremony's
			}
			subject, err := p.Subject(verified[p.SubjectKind])
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, subjectKey := range []string{"p256", "p384", "rsa2048"} {
				for _, at := range []time.Time{now, time.Date(2049, 6, 1, 0, 0, 0, 0, time.UTC)} { // notAfter past 2049: GeneralizedTime
					tmpl, err := newTemplate(is, p, subject, keys[subjectKey].Public(), at)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					want, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, keys[subjectKey].Public(), key)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					wantCert, err := x509.ParseCertificate(want)
					if err != nil {
						t.Fatal(err)
					}
					got, err := encodeTBS(tmpl, caCert, keys[subjectKey].Public(), alg)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if !bytes.Equal(got, wantCert.RawTBSCertificate) {
						t.Fatalf("%s, issuer %s, subject %s, %s: the TBS differs from x509's\ngot  %x\nwant %x", name, issuerKey, subjectKey, at, got, wantCert.RawTBSCertificate)
					}
					digest := alg.hash.New()
					digest.Write(got)
					sig, err := key.Sign(rand.Reader, digest.Sum(nil), alg.hash)
					if err != nil {
						t.Fatal(err)
					}
					full, err := assemble(got, alg, sig)
					if err != nil {
						t.Fatal(err)
					}
					c, err := x509.ParseCertificate(full)
					if err != nil {
						t.Fatal(err)
					}
					if err := c.CheckSignatureFrom(caCert); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					tested++
				}
			}
		}
	}
	if tested < 30 {
		t.Fatalf("only %d combinations tested", tested)
	}
	// A field the encoder does not write is refused, not dropped.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(5), DNSNames: []string{"example.com"}}
	if _, err := encodeTBS(tmpl, &x509.Certificate{}, keys["p256"].Public(), signatureAlg{}); err == nil {
		t.Error("a template with DNS names was encoded")
	}
}

// TestLintSignature: the signature linted copies carry is, for each issuer
// key type, what a signature of that key's type and algorithm looks like:
// an ECDSA (r, s) with both in [1, n-1] for the issuer's curve (DER, as
// RFC 5480 says) and as long as zlint's e_mp_ecdsa_signature_encoding_correct
// expects of that curve (it tells the curve by the length), or an RSA
// signature as long as the modulus; made by a key other than the issuer's.
// And each CA makes its own: no signature is built into the program.
func TestLintSignature(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []crypto.Signer{p256, p384, rsaKey} {
		alg, err := signatureAlgFor(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		sig, err := newLintSignature(key.Public(), alg)
		if err != nil {
			t.Fatal(err)
		}
		again, err := newLintSignature(key.Public(), alg)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(sig, again) {
			t.Errorf("%T: two lint signatures are the same", key)
		}
		digest := alg.hash.New()
		digest.Write([]byte("sanad: the signature of linted copies"))
		switch k := key.(type) {
		case *ecdsa.PrivateKey:
			var rs struct{ R, S *big.Int }
			if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) > 0 {
				t.Fatalf("%s: not one DER (r, s): %v", k.Curve.Params().Name, err)
			}
			// The lint's bands: at most 72 octets for P-256, 73 to 104
			// for P-384.
			if size := k.Curve.Params().BitSize; size == 256 && len(sig) > 72 || size == 384 && (len(sig) <= 72 || len(sig) > 104) {
				t.Errorf("%s: %d octets, outside the lint's band for the curve", k.Curve.Params().Name, len(sig))
			}
			n := k.Curve.Params().N
			for _, v := range []*big.Int{rs.R, rs.S} {
				if v.Sign() <= 0 || v.Cmp(n) >= 0 {
					t.Errorf("%s: %v is outside [1, n-1]", k.Curve.Params().Name, v)
				}
			}
			if ecdsa.VerifyASN1(&k.PublicKey, digest.Sum(nil), sig) {
				t.Errorf("%s: the issuer's own key verifies the lint signature", k.Curve.Params().Name)
			}
		case *rsa.PrivateKey:
			if len(sig) != k.Size() {
				t.Errorf("RSA: %d octets, want %d", len(sig), k.Size())
			}
			if rsa.VerifyPKCS1v15(&k.PublicKey, alg.hash, digest.Sum(nil), sig) == nil {
				t.Error("RSA: the issuer's own key verifies the lint signature")
			}
		}
	}
}

// TestTemplateWithinIssuer: a certificate is never valid outside its
// issuer's validity: before the issuer's notBefore, or past its notAfter,
// newTemplate refuses, and at its notBefore it issues.
func TestTemplateWithinIssuer(t *testing.T) {
	profiles, err := profile.LoadAll(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	p := profiles["citizen-sign"]
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	until := from.AddDate(5, 0, 0)
	is := Issuer{ID: "issuing", Certificate: &x509.Certificate{NotBefore: from, NotAfter: until}}
	subject := pkix.Name{CommonName: "Aigerim Nurlanovna"}
	for _, c := range []struct {
		at     time.Time
		refuse string
	}{
		{from.Add(-time.Second), "valid only from"},
		{from, ""},
		{until.AddDate(0, 0, -p.ValidityDays).Add(2 * time.Second), "expires at"},
	} {
		tmpl, err := newTemplate(is, p, subject, key.Public(), c.at)
		switch {
		case c.refuse == "" && (err != nil || tmpl.NotBefore.Before(from) || tmpl.NotAfter.After(until)):
			t.Errorf("at %s: %v", c.at, err)
		case c.refuse != "" && (err == nil || !strings.Contains(err.Error(), c.refuse)):
			t.Errorf("at %s: %v, want %q", c.at, err, c.refuse)
		}
	}
}
