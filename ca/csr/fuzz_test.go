package csr

import (
	"bytes"
	"crypto/elliptic"
	"errors"
	"testing"
)

// FuzzParse: Parse never panics, refuses only with a *KeyError of a known
// code, and anything it accepts re-parses identically, as DER and as PEM,
// and passes Check under a policy allowing every key type.
func FuzzParse(f *testing.F) {
	ec := newCSR(f, mustECDSA(f, elliptic.P256()))
	rsa := newCSR(f, mustRSA(f, 2048))
	f.Add(ec)
	f.Add(toPEM(ec))
	f.Add(rsa)
	f.Add(toPEM(rsa))
	f.Add(append(toPEM(ec), toPEM(rsa)...))
	f.Add(append(bytes.Clone(ec), 0))
	all := Policy{KeyTypes: []string{KeyECDSAP256, KeyECDSAP384, KeyECDSAP521, KeyRSA2048}}
	f.Fuzz(func(t *testing.T, in []byte) {
		cr, err := Parse(in)
		if err != nil {
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("error is not a *KeyError: %v", err)
			}
			if _, ok := codeClass[ke.Code]; !ok {
				t.Fatalf("unknown code %q", ke.Code)
			}
			if cr != nil {
				t.Fatal("request returned with an error")
			}
			return
		}
		for name, again := range map[string][]byte{"DER": cr.Raw, "PEM": toPEM(cr.Raw)} {
			cr2, err := Parse(again)
			if err != nil {
				t.Fatalf("accepted request does not re-parse as %s: %v", name, err)
			}
			if !bytes.Equal(cr2.Raw, cr.Raw) || !bytes.Equal(cr2.RawSubjectPublicKeyInfo, cr.RawSubjectPublicKeyInfo) {
				t.Fatalf("%s re-parse differs", name)
			}
		}
		req, err := Check(cr, all)
		if err != nil {
			t.Fatalf("Check refuses what Parse accepted: %v", err)
		}
		if !bytes.Equal(req.SPKI, cr.RawSubjectPublicKeyInfo) {
			t.Fatal("Request.SPKI differs from the request's")
		}
	})
}
