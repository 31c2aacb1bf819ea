package verify

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// TestCheckCertID: the ResponseData must carry exactly one answer about
// the serial, and that one must name the issuer by the hashes of its name
// and key, in a hash the verifier takes; answers about other serials are
// passed over.
func TestCheckCertID(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	leaf := p.leaf(t, newKey(t), citizenSign())
	keyBits, err := subjectPublicKeyBits(p.ca.RawSubjectPublicKeyInfo)
	if err != nil {
		t.Fatal(err)
	}
	type certID struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		NameHash      []byte
		KeyHash       []byte
		Serial        *big.Int
	}
	type single struct {
		CertID     certID
		Good       asn1.RawValue
		ThisUpdate time.Time `asn1:"generalized"`
	}
	type responseData struct {
		ResponderID asn1.RawValue
		ProducedAt  time.Time `asn1:"generalized"`
		Responses   []single
	}
	sha1OID, md5OID := asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}
	answer := func(oid asn1.ObjectIdentifier, issuer *x509.Certificate, serial *big.Int) single {
		bits, err := subjectPublicKeyBits(issuer.RawSubjectPublicKeyInfo)
		if err != nil {
			t.Fatal(err)
		}
		return single{CertID: certID{HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue},
			NameHash: digest(crypto.SHA1, issuer.RawSubject), KeyHash: digest(crypto.SHA1, bits), Serial: serial},
			Good: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0}, ThisUpdate: now.UTC().Truncate(time.Second)}
	}
	ours := answer(sha1OID, p.ca, leaf.SerialNumber)
	for _, c := range []struct {
		name      string
		responses []single
		want      string // "" for accepted
	}{
		{"ours", []single{ours}, ""},
		{"ours beside another serial's", []single{answer(sha1OID, p.ca, big.NewInt(1)), ours}, ""},
		{"ours twice", []single{ours, ours}, "2 answers"},
		{"ours and another issuer's", []single{ours, answer(sha1OID, p.root, leaf.SerialNumber)}, "another issuer"},
		{"none about it", []single{answer(sha1OID, p.ca, big.NewInt(1))}, "0 answers"},
		{"an MD5 CertID", []single{answer(md5OID, p.ca, leaf.SerialNumber)}, "does not take"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tbs, err := asn1.Marshal(responseData{
				ResponderID: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, IsCompound: true, Bytes: mustMarshal(t, digest(crypto.SHA1, keyBits))},
				ProducedAt:  now.UTC().Truncate(time.Second), Responses: c.responses})
			if err != nil {
				t.Fatal(err)
			}
			err = checkCertID(tbs, leaf, p.ca)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("checkCertID: %v, want %q", err, c.want)
			}
			if err := checkCertID(append(tbs[:len(tbs):len(tbs)], 0), leaf, p.ca); err == nil || !strings.Contains(err.Error(), "malformed") {
				t.Errorf("with a byte after the ResponseData: %v", err)
			}
		})
	}
	if err := checkCertID([]byte{0x30, 0x03, 0x02, 0x01, 0x00}, leaf, p.ca); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("a ResponseData without a responder: %v", err)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzCheckCertID feeds OCSP ResponseData to checkCertID, from seeds that
// answer about the certificate once, twice, for another serial and for
// another issuer. Whatever it accepts names the issuer: its name's hash,
// in one of the hashes a CertID may use, is in the input.
func FuzzCheckCertID(f *testing.F) {
	p := newTestPKI(f)
	leaf := p.leaf(f, newKey(f), citizenSign())
	for _, issuer := range []*x509.Certificate{p.ca, p.root} {
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			der, err := ocsp.CreateResponse(issuer, p.ocspCert, ocsp.Response{Status: ocsp.Good, SerialNumber: leaf.SerialNumber, IssuerHash: h,
				ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour)}, p.ocspKey)
			if err != nil {
				f.Fatal(err)
			}
			resp, err := ocsp.ParseResponse(der, nil)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(resp.TBSResponseData)
		}
	}
	f.Fuzz(func(t *testing.T, tbs []byte) {
		if checkCertID(tbs, leaf, p.ca) != nil {
			return
		}
		for _, c := range certIDHashes {
			if bytes.Contains(tbs, digest(c.hash, p.ca.RawSubject)) {
				return
			}
		}
		t.Fatalf("accepted an answer that does not name the issuer: %x", tbs)
	})
}
