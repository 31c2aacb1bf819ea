package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// cmsSigner is one signer of a test CMS: a tiny SignedData writer, so that
// the tests can shape what openssl would not (a claimed signing time,
// several signers, a subjectKeyIdentifier, hostile attributes). The
// package is also judged against openssl's CMS in openssl_test.go.
type cmsSigner struct {
	cert        *x509.Certificate
	key         crypto.Signer
	signingTime time.Time // zero: none
	ski         bool      // identify by subjectKeyIdentifier
	ess         *x509.Certificate
	extraAttr   func(b *cryptobyte.Builder)
	// bare, when set, is a signature made elsewhere over the content
	// itself, sent with no signed attributes (RFC 5652 §5.4 allows it for
	// id-data): the rest of the signer's fields but cert are unused.
	bare []byte
}

func addOID(b *cryptobyte.Builder, oid asn1.ObjectIdentifier) { b.AddASN1ObjectIdentifier(oid) }

func addAlg(b *cryptobyte.Builder, oid asn1.ObjectIdentifier) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { addOID(b, oid) })
}

var (
	oidSHA256       = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidECDSASHA256  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidRSASHA256    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	tagContext0     = cbasn1.Tag(0).Constructed().ContextSpecific()
	tagContext0Prim = cbasn1.Tag(0).ContextSpecific()
)

// buildCMS writes a SignedData over content, attached unless detached.
func buildCMS(t testing.TB, content []byte, detached bool, certs []*x509.Certificate, signers ...cmsSigner) []byte {
	t.Helper()
	digest := sha256.Sum256(content)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addOID(b, oidSignedData)
		b.AddASN1(tagContext0, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(1)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { addAlg(b, oidSHA256) })
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					addOID(b, oidData)
					if !detached {
						b.AddASN1(tagContext0, func(b *cryptobyte.Builder) { b.AddASN1OctetString(content) })
					}
				})
				b.AddASN1(tagContext0, func(b *cryptobyte.Builder) {
					for _, c := range certs {
						b.AddBytes(c.Raw)
					}
				})
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					for _, s := range signers {
						addSignerInfo(t, b, s, digest[:])
					}
				})
			})
		})
	})
	der, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func addSignerInfo(t testing.TB, b *cryptobyte.Builder, s cmsSigner, digest []byte) {
	var attrs cryptobyte.Builder
	attrs.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		attr := func(oid asn1.ObjectIdentifier, value func(b *cryptobyte.Builder)) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				addOID(b, oid)
				b.AddASN1(cbasn1.SET, value)
			})
		}
		attr(oidContentType, func(b *cryptobyte.Builder) { addOID(b, oidData) })
		if !s.signingTime.IsZero() {
			attr(oidSigningTime, func(b *cryptobyte.Builder) { b.AddASN1UTCTime(s.signingTime.UTC().Truncate(time.Second)) })
		}
		attr(oidMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(digest) })
		if s.ess != nil {
			attr(oidSigningCertV2, func(b *cryptobyte.Builder) {
				h := sha256.Sum256(s.ess.Raw)
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1OctetString(h[:]) })
					})
				})
			})
		}
		if s.extraAttr != nil {
			s.extraAttr(b)
		}
	})
	signedAttrs, err := attrs.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var sig []byte
	if s.bare != nil {
		signedAttrs, sig = nil, s.bare
	} else {
		h := sha256.Sum256(signedAttrs)
		if sig, err = s.key.Sign(rand.Reader, h[:], crypto.SHA256); err != nil {
			t.Fatal(err)
		}
	}
	pub := s.cert.PublicKey
	if s.key != nil {
		pub = s.key.Public()
	}
	sigAlg := oidECDSASHA256
	if _, ok := pub.(*rsa.PublicKey); ok {
		sigAlg = oidRSASHA256
	} else if _, ok := pub.(*ecdsa.PublicKey); !ok {
		t.Fatalf("key %T", pub)
	}
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if s.ski {
			b.AddASN1Int64(3)
			b.AddASN1(tagContext0Prim, func(b *cryptobyte.Builder) { b.AddBytes(s.cert.SubjectKeyId) })
		} else {
			b.AddASN1Int64(1)
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddBytes(s.cert.RawIssuer)
				b.AddASN1BigInt(s.cert.SerialNumber)
			})
		}
		addAlg(b, oidSHA256)
		if signedAttrs != nil {
			signedAttrs[0] = 0xa0 // [0] IMPLICIT
			b.AddBytes(signedAttrs)
		}
		addAlg(b, sigAlg)
		b.AddASN1OctetString(sig)
	})
}
