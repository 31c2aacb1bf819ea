package status

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"encoding/asn1"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Hand-built requests, so that every field can be wrong on purpose.

var (
	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidMD5    = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}
)

type certID struct {
	hash             asn1.ObjectIdentifier
	nameHash, keyHas []byte
	serial           []byte // INTEGER content octets
}

func sha1Of(s string) []byte { h := sha1.Sum([]byte(s)); return h[:] }

func goodID() certID {
	return certID{hash: oidSHA1, nameHash: sha1Of("name"), keyHas: sha1Of("key"), serial: []byte{0x01, 0x02, 0x03}}
}

type reqSpec struct {
	version    int64 // -1: absent
	ids        []certID
	nonce      []byte // nil: none
	rawNonce   bool   // the nonce without its inner OCTET STRING
	criticalX  bool   // an unknown critical extension
	signature  bool
	trailing   []byte
	innerExtra bool // junk after the requestList inside tbsRequest
}

func (s reqSpec) der() []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			if s.version >= 0 {
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1Int64(s.version) })
			}
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, id := range s.ids {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddASN1ObjectIdentifier(id.hash)
								b.AddASN1NULL()
							})
							b.AddASN1OctetString(id.nameHash)
							b.AddASN1OctetString(id.keyHas)
							b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(id.serial) })
						})
					})
				}
			})
			if s.innerExtra {
				b.AddASN1NULL()
			}
			if s.nonce != nil || s.criticalX {
				b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						if s.nonce != nil {
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddASN1ObjectIdentifier(oidNonce)
								b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
									if s.rawNonce {
										b.AddBytes(s.nonce)
									} else {
										b.AddASN1OctetString(s.nonce)
									}
								})
							})
						}
						if s.criticalX {
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 3, 4})
								b.AddASN1Boolean(true)
								b.AddASN1OctetString([]byte{0x05, 0x00})
							})
						}
					})
				})
			}
		})
		if s.signature {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1NULL() })
			})
		}
	})
	out := b.BytesOrPanic()
	return append(out, s.trailing...)
}

func TestParseRequest(t *testing.T) {
	good := reqSpec{version: -1, ids: []certID{goodID()}}
	r, err := ParseRequest(good.der())
	if err != nil {
		t.Fatal(err)
	}
	if r.HashAlgorithm != crypto.SHA1 || !bytes.Equal(r.IssuerNameHash, sha1Of("name")) || !bytes.Equal(r.IssuerKeyHash, sha1Of("key")) ||
		!bytes.Equal(r.Serial, []byte{1, 2, 3}) || r.Nonce != nil {
		t.Errorf("parsed %+v", r)
	}

	withNonce := good
	withNonce.nonce = bytes.Repeat([]byte{7}, 16)
	withNonce.signature = true
	if r, err := ParseRequest(withNonce.der()); err != nil || !bytes.Equal(r.Nonce, withNonce.nonce) {
		t.Errorf("a signed request with a 16-byte nonce: %+v %v", r, err)
	}
	sha256ID := goodID()
	sha256ID.hash, sha256ID.nameHash, sha256ID.keyHas = oidSHA256, make([]byte, 32), make([]byte, 32)
	sha256ID.serial = []byte{0x00, 0x80} // 128: a leading zero is needed
	if r, err := ParseRequest(reqSpec{version: -1, ids: []certID{sha256ID}}.der()); err != nil || r.HashAlgorithm != crypto.SHA256 ||
		!bytes.Equal(r.Serial, []byte{0x80}) {
		t.Errorf("SHA-256 CertID: %+v %v", r, err)
	}

	malformed := malformedRequests()
	for name, der := range malformed {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseRequest(der); !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseRequest = %v, want ErrMalformed", err)
			}
		})
	}
}

// malformedRequests are requests every one of which must be answered
// malformedRequest, by name.
func malformedRequests() map[string][]byte {
	good := reqSpec{version: -1, ids: []certID{goodID()}}
	with := func(f func(*reqSpec)) []byte {
		s := good
		s.ids = []certID{goodID()}
		f(&s)
		return s.der()
	}
	id := func(f func(*certID)) []byte {
		c := goodID()
		f(&c)
		return reqSpec{version: -1, ids: []certID{c}}.der()
	}
	thousand := make([]certID, 1000)
	for i := range thousand {
		thousand[i] = goodID()
	}
	full := good.der()
	return map[string][]byte{
		"empty":                    nil,
		"truncated DER":            full[:len(full)-3],
		"one byte":                 {0x30},
		"not a SEQUENCE":           {0x04, 0x00},
		"trailing data":            with(func(s *reqSpec) { s.trailing = []byte{0x00} }),
		"wrong version (v2)":       with(func(s *reqSpec) { s.version = 1 }),
		"v1 encoded explicitly":    with(func(s *reqSpec) { s.version = 0 }),
		"junk in tbsRequest":       with(func(s *reqSpec) { s.innerExtra = true }),
		"no request":               with(func(s *reqSpec) { s.ids = nil }),
		"two requests":             with(func(s *reqSpec) { s.ids = []certID{goodID(), goodID()} }),
		"1000 requests in one":     reqSpec{version: -1, ids: thousand}.der(),
		"unknown hash OID (MD5)":   id(func(c *certID) { c.hash = oidMD5; c.nameHash, c.keyHas = make([]byte, 16), make([]byte, 16) }),
		"hash of the wrong length": id(func(c *certID) { c.nameHash = c.nameHash[:19] }),
		"SHA-256 OID, SHA-1 sizes": id(func(c *certID) { c.hash = oidSHA256 }),
		"negative serial":          id(func(c *certID) { c.serial = []byte{0xff, 0x01} }),
		"serial zero":              id(func(c *certID) { c.serial = []byte{0x00} }),
		"serial not minimal":       id(func(c *certID) { c.serial = []byte{0x00, 0x01} }),
		"empty serial":             id(func(c *certID) { c.serial = nil }),
		"serial of 21 octets":      id(func(c *certID) { c.serial = bytes.Repeat([]byte{0x11}, 21) }),
		"nonce of 0 bytes":         with(func(s *reqSpec) { s.nonce = []byte{} }),
		"nonce of 33 bytes":        with(func(s *reqSpec) { s.nonce = make([]byte, 33) }),
		"nonce of 64 bytes":        with(func(s *reqSpec) { s.nonce = make([]byte, 64) }),
		"nonce not an OCTET STRING": with(func(s *reqSpec) {
			s.nonce, s.rawNonce = []byte{0x02, 0x01, 0x05}, true
		}),
		"unknown critical extension": with(func(s *reqSpec) { s.criticalX = true }),
		"1 MB":                       append(full, make([]byte, 1<<20)...),
	}
}

// FuzzParseRequest: no input crashes the parser, and what it accepts it
// reads consistently (hash sizes, serial bounds, nonce bounds).
func FuzzParseRequest(f *testing.F) {
	f.Add(reqSpec{version: -1, ids: []certID{goodID()}}.der())
	f.Add(reqSpec{version: -1, ids: []certID{goodID()}, nonce: make([]byte, 16), signature: true}.der())
	f.Add(reqSpec{version: -1, ids: []certID{goodID(), goodID()}}.der())
	if seeds, err := filepath.Glob("testdata/*.der"); err == nil {
		for _, p := range seeds {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		r, err := ParseRequest(der)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("an error that is not ErrMalformed: %v", err)
			}
			return
		}
		if len(r.IssuerNameHash) != r.HashAlgorithm.Size() || len(r.IssuerKeyHash) != r.HashAlgorithm.Size() {
			t.Fatalf("accepted hashes of %d and %d bytes for %s", len(r.IssuerNameHash), len(r.IssuerKeyHash), r.HashAlgorithm)
		}
		if len(r.Serial) == 0 || len(r.Serial) > 20 || r.Serial[0] == 0 {
			t.Fatalf("accepted serial %x", r.Serial)
		}
		if r.Nonce != nil && (len(r.Nonce) < 1 || len(r.Nonce) > 32) {
			t.Fatalf("accepted a nonce of %d bytes", len(r.Nonce))
		}
	})
}

// TestParseOpenSSLRequests: requests as openssl ocsp -reqout writes them
// (testdata/*.der, made with the dev CA) parse, with the digest and nonce
// asked for; two serials in one request are refused.
func TestParseOpenSSLRequests(t *testing.T) {
	for file, want := range map[string]struct {
		hash  crypto.Hash
		nonce bool
	}{
		"openssl-sha1.der": {crypto.SHA1, false}, "openssl-sha1-nonce.der": {crypto.SHA1, true},
		"openssl-sha256.der": {crypto.SHA256, false}, "openssl-sha256-nonce.der": {crypto.SHA256, true},
		"openssl-sha512-nonce.der": {crypto.SHA512, true},
	} {
		der, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseRequest(der)
		if err != nil || r.HashAlgorithm != want.hash || (r.Nonce != nil) != want.nonce ||
			!bytes.Equal(r.Serial, []byte{0x42, 0xa9, 0xe5, 0x85, 0x93, 0x30, 0xf2, 0x0d, 0xc7, 0x22, 0x16, 0xd6, 0x46, 0x01, 0xb6, 0x35}) {
			t.Errorf("%s: %+v %v", file, r, err)
		}
	}
	der, err := os.ReadFile("testdata/openssl-two-serials.der")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseRequest(der); !errors.Is(err, ErrMalformed) {
		t.Errorf("two serials: %v", err)
	}
}
