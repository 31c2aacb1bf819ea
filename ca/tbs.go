package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// encodeTBS encodes the TBSCertificate (RFC 5280 §4.1) of an end-entity
// template made by CA.template, issued by issuer for pub, byte for byte as
// x509.CreateCertificate encodes it (TestEncodeTBSMatchesX509 holds it to
// that over every profile and key type). Issuance lints these bytes, in a
// copy with a throw-away signature (CA.lint), then has the HSM sign them.
//
// Why not x509.CreateCertificate: it checks every signature it makes with
// the signer's public key, which for a throw-away key proves nothing and
// cost an ECDSA verification per certificate (125 µs here, a sixth of an
// issuance's CPU after the lint itself), and it encodes through reflection.
//
// Only what CA.template sets is encoded; anything else in tmpl is refused,
// so that a later field cannot be silently dropped.
func encodeTBS(tmpl, issuer *x509.Certificate, pub crypto.PublicKey, alg signatureAlg) ([]byte, error) {
	if err := templateFieldsKnown(tmpl); err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode subject public key: %w", err)
	}
	subject, err := asn1.Marshal(tmpl.Subject.ToRDNSequence())
	if err != nil {
		return nil, fmt.Errorf("encode subject: %w", err)
	}
	exts, err := endEntityExtensions(tmpl, issuer.SubjectKeyId)
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1Int64(2) }) // v3
		b.AddASN1BigInt(tmpl.SerialNumber)
		alg.add(b)
		b.AddBytes(issuer.RawSubject)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addTime(b, tmpl.NotBefore)
			addTime(b, tmpl.NotAfter)
		})
		b.AddBytes(subject)
		b.AddBytes(spki)
		b.AddASN1(cbasn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, e := range exts {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(e.id)
						if e.critical {
							b.AddASN1Boolean(true)
						}
						b.AddASN1OctetString(e.value)
					})
				}
			})
		})
	})
	return b.Bytes()
}

// addTime adds a Time (RFC 5280 §4.1.2.5): UTCTime through 2049,
// GeneralizedTime from 2050, always UTC.
func addTime(b *cryptobyte.Builder, t time.Time) {
	t = t.UTC()
	if t.Year() >= 1950 && t.Year() < 2050 {
		b.AddASN1UTCTime(t)
		return
	}
	b.AddASN1GeneralizedTime(t)
}

type extension struct {
	id       asn1.ObjectIdentifier
	critical bool
	value    []byte
}

// endEntityExtensions are the extensions of tmpl in x509.CreateCertificate's
// order: key usage, extended key usage, basic constraints, subject and
// authority key identifiers, authority information access, certificate
// policies, CRL distribution points.
func endEntityExtensions(tmpl *x509.Certificate, authorityKeyID []byte) ([]extension, error) {
	var exts []extension
	add := func(id asn1.ObjectIdentifier, critical bool, f func(b *cryptobyte.Builder)) error {
		var b cryptobyte.Builder
		f(&b)
		v, err := b.Bytes()
		if err != nil {
			return fmt.Errorf("encode extension %s: %w", id, err)
		}
		exts = append(exts, extension{id: id, critical: critical, value: v})
		return nil
	}
	var errs []error
	if tmpl.KeyUsage != 0 {
		// RFC 5280 §4.2.1.3: bit 0 is digitalSignature, the first bit of the
		// first octet; trailing zero bits are not encoded.
		var bits [2]byte
		for i := range 9 {
			if tmpl.KeyUsage&(1<<i) != 0 {
				bits[i/8] |= 0x80 >> (i % 8)
			}
		}
		n := 1
		if bits[1] != 0 {
			n = 2
		}
		errs = append(errs, add(oidKeyUsage, true, func(b *cryptobyte.Builder) { addMinimalBitString(b, bits[:n]) }))
	}
	if len(tmpl.ExtKeyUsage) > 0 || len(tmpl.UnknownExtKeyUsage) > 0 {
		errs = append(errs, add(oidExtKeyUsage, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, u := range tmpl.ExtKeyUsage {
					oid, ok := extKeyUsageOIDs[u]
					if !ok {
						b.SetError(fmt.Errorf("extended key usage %d has no OID here", u))
						return
					}
					b.AddASN1ObjectIdentifier(oid)
				}
				for _, oid := range tmpl.UnknownExtKeyUsage {
					b.AddASN1ObjectIdentifier(oid)
				}
			})
		}))
	}
	if tmpl.BasicConstraintsValid {
		// cA FALSE is the DEFAULT and pathLenConstraint absent: an empty
		// SEQUENCE, critical, as x509 marks it.
		errs = append(errs, add(oidBasicConstraints, true, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {})
		}))
	}
	if len(tmpl.SubjectKeyId) > 0 {
		errs = append(errs, add(oidSubjectKeyID, false, func(b *cryptobyte.Builder) { b.AddASN1OctetString(tmpl.SubjectKeyId) }))
	}
	if len(authorityKeyID) > 0 {
		errs = append(errs, add(oidAuthorityKeyID, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(authorityKeyID) })
			})
		}))
	}
	if len(tmpl.OCSPServer) > 0 || len(tmpl.IssuingCertificateURL) > 0 {
		errs = append(errs, add(oidAuthorityInfoAccess, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, list := range []struct {
					method asn1.ObjectIdentifier
					urls   []string
				}{{oidAccessOCSP, tmpl.OCSPServer}, {oidAccessCAIssuers, tmpl.IssuingCertificateURL}} {
					for _, u := range list.urls {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1ObjectIdentifier(list.method)
							b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u)) })
						})
					}
				}
			})
		}))
	}
	if len(tmpl.Policies) > 0 {
		errs = append(errs, add(oidCertificatePolicies, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, p := range tmpl.Policies {
					der, err := p.MarshalBinary()
					if err != nil || len(der) == 0 {
						b.SetError(fmt.Errorf("policy OID %s: %v", p, err))
						return
					}
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(der) })
					})
				}
			})
		}))
	}
	if len(tmpl.CRLDistributionPoints) > 0 {
		errs = append(errs, add(oidCRLDistributionPoints, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, u := range tmpl.CRLDistributionPoints {
					// DistributionPoint { distributionPoint [0] { fullName [0] { URI [6] } } }
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
							b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
								b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u)) })
							})
						})
					})
				}
			})
		}))
	}
	return exts, errors.Join(errs...)
}

// addMinimalBitString adds a BIT STRING of bits without its trailing zero
// bits (DER, X.690 §11.2.2, as RFC 5280 named bit lists want).
func addMinimalBitString(b *cryptobyte.Builder, bits []byte) {
	unused := 0
	if last := bits[len(bits)-1]; last != 0 {
		for last&1 == 0 {
			last >>= 1
			unused++
		}
	}
	b.AddASN1(cbasn1.BIT_STRING, func(b *cryptobyte.Builder) {
		b.AddUint8(uint8(unused))
		b.AddBytes(bits)
	})
}

// templateFieldsKnown refuses a template with a field encodeTBS would not
// encode.
func templateFieldsKnown(t *x509.Certificate) error {
	switch {
	case t.SerialNumber == nil || t.SerialNumber.Sign() <= 0:
		return errors.New("encode certificate: serial number must be positive")
	case t.IsCA || t.MaxPathLen > 0 || t.MaxPathLenZero:
		return errors.New("encode certificate: only end-entity certificates")
	case len(t.DNSNames)+len(t.EmailAddresses)+len(t.IPAddresses)+len(t.URIs) > 0,
		len(t.PermittedDNSDomains)+len(t.ExcludedDNSDomains)+len(t.PermittedIPRanges)+len(t.ExcludedIPRanges) > 0,
		len(t.PermittedEmailAddresses)+len(t.ExcludedEmailAddresses)+len(t.PermittedURIDomains)+len(t.ExcludedURIDomains) > 0,
		len(t.ExtraExtensions) > 0, len(t.PolicyIdentifiers) > 0, len(t.RawSubject) > 0, len(t.AuthorityKeyId) > 0:
		return errors.New("encode certificate: the template sets a field the encoder does not write")
	}
	return nil
}

var (
	oidKeyUsage              = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage           = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidSubjectKeyID          = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidAuthorityKeyID        = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidAuthorityInfoAccess   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
	oidAccessOCSP            = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1}
	oidAccessCAIssuers       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 2}
	oidCertificatePolicies   = asn1.ObjectIdentifier{2, 5, 29, 32}
	oidCRLDistributionPoints = asn1.ObjectIdentifier{2, 5, 29, 31}
)

// extKeyUsageOIDs are RFC 5280 §4.2.1.12's purposes (and the others x509
// names), by x509's constants.
var extKeyUsageOIDs = map[x509.ExtKeyUsage]asn1.ObjectIdentifier{
	x509.ExtKeyUsageAny:             {2, 5, 29, 37, 0},
	x509.ExtKeyUsageServerAuth:      {1, 3, 6, 1, 5, 5, 7, 3, 1},
	x509.ExtKeyUsageClientAuth:      {1, 3, 6, 1, 5, 5, 7, 3, 2},
	x509.ExtKeyUsageCodeSigning:     {1, 3, 6, 1, 5, 5, 7, 3, 3},
	x509.ExtKeyUsageEmailProtection: {1, 3, 6, 1, 5, 5, 7, 3, 4},
	x509.ExtKeyUsageTimeStamping:    {1, 3, 6, 1, 5, 5, 7, 3, 8},
	x509.ExtKeyUsageOCSPSigning:     {1, 3, 6, 1, 5, 5, 7, 3, 9},
}

// signatureAlg is the AlgorithmIdentifier and hash of an issuer key's
// signatures: what x509 picks for it.
type signatureAlg struct {
	oid        asn1.ObjectIdentifier
	nullParams bool // RSA PKCS #1 v1.5 (RFC 4055 §5); ECDSA has none (RFC 5758 §3.2)
	hash       crypto.Hash
	x509       x509.SignatureAlgorithm
}

func (a signatureAlg) add(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(a.oid)
		if a.nullParams {
			b.AddASN1NULL()
		}
	})
}

// sign has key sign msg with a: msg hashed with a's hash, which is also
// the options (PKCS #1 v1.5 for RSA, what x509 would use).
func (a signatureAlg) sign(key crypto.Signer, msg []byte) ([]byte, error) {
	digest := a.hash.New()
	digest.Write(msg)
	return key.Sign(rand.Reader, digest.Sum(nil), a.hash)
}

func signatureAlgFor(pub crypto.PublicKey) (signatureAlg, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return signatureAlg{oid: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, hash: crypto.SHA256, x509: x509.ECDSAWithSHA256}, nil
		case elliptic.P384():
			return signatureAlg{oid: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}, hash: crypto.SHA384, x509: x509.ECDSAWithSHA384}, nil
		}
	case *rsa.PublicKey:
		return signatureAlg{oid: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, nullParams: true, hash: crypto.SHA256, x509: x509.SHA256WithRSA}, nil
	}
	return signatureAlg{}, fmt.Errorf("unsupported issuer key %T", pub)
}

// assemble is the Certificate (RFC 5280 §4.1) of tbs and its signature.
func assemble(tbs []byte, alg signatureAlg, sig []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		alg.add(b)
		b.AddASN1BitString(sig)
	})
	return b.Bytes()
}
