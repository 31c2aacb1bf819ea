package ocspsign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	encasn1 "encoding/asn1"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

// Template is one response to encode (RFC 6960 §4.2.1): the status of one
// certificate of the Responder's issuer.
type Template struct {
	// Serial is the certificate's serial, big-endian without leading zeros.
	Serial []byte
	// Status is ocsp.Good, ocsp.Revoked or ocsp.Unknown; a revoked answer
	// carries RevokedAt and Reason (RFC 5280 §5.3.1; -1 for none).
	Status    int
	RevokedAt time.Time
	Reason    int
	// ThisUpdate, NextUpdate and ProducedAt are whole seconds, UTC.
	ThisUpdate, NextUpdate, ProducedAt time.Time
	// Nonce, when not nil, is echoed in responseExtensions (RFC 8954): an
	// answer to one request, never to be cached or pre-signed.
	Nonce []byte
	// ArchiveCutoff, when not zero, is put in the singleExtensions (RFC
	// 6960 §4.4.4): the responder keeps status information of every
	// certificate that expired after it (see Signer.Sign).
	ArchiveCutoff time.Time
}

// Encode makes the signed OCSPResponse of t: responderID by key hash (RFC
// 5019 §2.2.3), a SHA-1 CertID (what RFC 5019 clients send), the
// responder's certificate in certs (RFC 6960 §4.2.2.2), nonce in
// responseExtensions. The HSM signs the tbsResponseData bytes encoded here,
// and its signature is checked before the response is returned: a faulty
// signature is never published.
//
// x/crypto/ocsp cannot do this: it puts extra extensions in the
// singleExtensions, where no client looks for a nonce, and names the
// responder by name.
func Encode(r Responder, t Template) ([]byte, error) {
	alg, hash, err := signatureAlgorithm(r.Signer.Public())
	if err != nil {
		return nil, err
	}
	if len(t.Serial) == 0 || t.Serial[0] == 0 {
		return nil, errors.New("ocsp: serial must be positive and minimal")
	}
	issuerKey, err := subjectPublicKeyBits(r.Issuer)
	if err != nil {
		return nil, fmt.Errorf("ocsp: issuer key: %w", err)
	}
	responderKey, err := subjectPublicKeyBits(r.Certificate)
	if err != nil {
		return nil, fmt.Errorf("ocsp: responder key: %w", err)
	}
	nameHash, keyHash, responderHash := sha1.Sum(r.Issuer.RawSubject), sha1.Sum(issuerKey), sha1.Sum(responderKey)

	var tbs cryptobyte.Builder
	tbs.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // ResponseData
		b.AddASN1(asn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { // responderID byKey
			b.AddASN1OctetString(responderHash[:])
		})
		b.AddASN1GeneralizedTime(t.ProducedAt.UTC())
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // responses
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // SingleResponse
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // CertID
					b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidSHA1)
						b.AddASN1NULL()
					})
					b.AddASN1OctetString(nameHash[:])
					b.AddASN1OctetString(keyHash[:])
					b.AddASN1(asn1.INTEGER, func(b *cryptobyte.Builder) {
						if t.Serial[0]&0x80 != 0 {
							b.AddUint8(0)
						}
						b.AddBytes(t.Serial)
					})
				})
				switch t.Status {
				case ocsp.Good:
					b.AddASN1(asn1.Tag(0).ContextSpecific(), func(*cryptobyte.Builder) {})
				case ocsp.Revoked:
					b.AddASN1(asn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
						b.AddASN1GeneralizedTime(t.RevokedAt.UTC().Truncate(time.Second))
						if t.Reason >= 0 {
							b.AddASN1(asn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
								b.AddASN1Enum(int64(t.Reason))
							})
						}
					})
				case ocsp.Unknown:
					b.AddASN1(asn1.Tag(2).ContextSpecific(), func(*cryptobyte.Builder) {})
				default:
					b.SetError(fmt.Errorf("ocsp: status %d", t.Status))
				}
				b.AddASN1GeneralizedTime(t.ThisUpdate.UTC())
				b.AddASN1(asn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1GeneralizedTime(t.NextUpdate.UTC())
				})
				if !t.ArchiveCutoff.IsZero() {
					b.AddASN1(asn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { // singleExtensions
						b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddASN1ObjectIdentifier(oidArchiveCutoff)
								b.AddASN1(asn1.OCTET_STRING, func(b *cryptobyte.Builder) {
									b.AddASN1GeneralizedTime(t.ArchiveCutoff.UTC().Truncate(time.Second))
								})
							})
						})
					})
				}
			})
		})
		if t.Nonce != nil {
			b.AddASN1(asn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { // responseExtensions
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidNonce)
						b.AddASN1(asn1.OCTET_STRING, func(b *cryptobyte.Builder) { b.AddASN1OctetString(t.Nonce) })
					})
				})
			})
		}
	})
	tbsDER, err := tbs.Bytes()
	if err != nil {
		return nil, fmt.Errorf("ocsp: encode: %w", err)
	}
	digest := hash.New()
	digest.Write(tbsDER)
	sig, err := r.Signer.Sign(rand.Reader, digest.Sum(nil), hash)
	if err != nil {
		return nil, fmt.Errorf("ocsp: sign: %w", err)
	}
	if err := r.Certificate.CheckSignature(alg.algorithm, tbsDER, sig); err != nil {
		return nil, fmt.Errorf("ocsp: the signature does not verify: %w", err)
	}

	var basic cryptobyte.Builder
	basic.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbsDER)
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(alg.oid)
			if alg.nullParams {
				b.AddASN1NULL()
			}
		})
		b.AddASN1BitString(sig)
		// A delegated responder's certificate goes with its responses; the
		// issuer's own (IssuerAsResponder) does not: clients verify a
		// certificate given here as the issuer's delegate.
		if !r.isIssuer() {
			b.AddASN1(asn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(r.Certificate.Raw) })
			})
		}
	})
	basicDER, err := basic.Bytes()
	if err != nil {
		return nil, fmt.Errorf("ocsp: encode: %w", err)
	}
	var resp cryptobyte.Builder
	resp.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Enum(0) // successful
		b.AddASN1(asn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidBasicResponse)
				b.AddASN1OctetString(basicDER)
			})
		})
	})
	return resp.Bytes()
}

var (
	oidSHA1          = encasn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidNonce         = encasn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
	oidArchiveCutoff = encasn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 6} // id-pkix-ocsp-archive-cutoff, RFC 6960 §4.4.4
	oidBasicResponse = encasn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1} // id-pkix-ocsp-basic, RFC 6960 §4.2.1
)

type sigAlg struct {
	oid        encasn1.ObjectIdentifier
	algorithm  x509.SignatureAlgorithm
	nullParams bool // RSA PKCS #1 v1.5 (RFC 4055 §5); ECDSA has none (RFC 5758 §3.2)
}

// signatureAlgorithm is what x509 would pick for the responder key.
func signatureAlgorithm(pub crypto.PublicKey) (sigAlg, crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return sigAlg{oid: encasn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, algorithm: x509.ECDSAWithSHA256}, crypto.SHA256, nil
		case elliptic.P384():
			return sigAlg{oid: encasn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}, algorithm: x509.ECDSAWithSHA384}, crypto.SHA384, nil
		}
	case *rsa.PublicKey:
		return sigAlg{oid: encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, algorithm: x509.SHA256WithRSA, nullParams: true}, crypto.SHA256, nil
	}
	return sigAlg{}, 0, fmt.Errorf("ocsp: unsupported responder key %T", pub)
}

// subjectPublicKeyBits are the bits of a certificate's subjectPublicKey,
// what KeyHash and the CertID's issuerKeyHash hash (RFC 6960 §4.1.1).
func subjectPublicKeyBits(c *x509.Certificate) ([]byte, error) {
	var spki struct {
		Algorithm encasn1.RawValue
		PublicKey encasn1.BitString
	}
	if _, err := encasn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, err
	}
	return spki.PublicKey.RightAlign(), nil
}

// WithNonce signs, now, a response that says what presigned says (a
// response of r's issuer) and echoes nonce: the answer to a request that
// asked for a nonce on a node configured to sign them (ocsp.nonce: sign).
// It is produced now, but its thisUpdate is the pre-signed response's: the
// status is known as of then, not fresher for the nonce (RFC 6960
// §4.2.2.1). Its validity ends with the pre-signed response's, or with r's
// certificate if that ends first (the pre-signed response may come from
// another responder, or from before Sign checked); it is refused, wrapping
// ErrResponderValidity, when r's certificate is not valid now.
func (s *Signer) WithNonce(r Responder, presigned, nonce []byte) ([]byte, error) {
	p, err := ocsp.ParseResponse(presigned, nil)
	if err != nil {
		return nil, fmt.Errorf("ocsp: the pre-signed response: %w", err)
	}
	now := s.now().UTC().Truncate(time.Second)
	t := Template{Serial: p.SerialNumber.Bytes(), Status: p.Status, RevokedAt: p.RevokedAt, Reason: -1,
		ThisUpdate: p.ThisUpdate, NextUpdate: p.NextUpdate, ProducedAt: now, Nonce: nonce}
	// x/crypto reads an absent reason as unspecified (0), which Sign
	// always leaves out (RFC 5280 §5.3.1): left out here too.
	if p.Status == ocsp.Revoked && p.RevocationReason != ocsp.Unspecified {
		t.Reason = p.RevocationReason
	}
	if t.ArchiveCutoff, err = archiveCutoffOf(p); err != nil {
		return nil, fmt.Errorf("ocsp: the pre-signed response: %w", err)
	}
	if !now.Before(p.NextUpdate) {
		return nil, errors.New("ocsp: the pre-signed response has expired")
	}
	// Capped, not refused as Sign does: a response signed live is never
	// refreshed, so a shorter validity costs nothing.
	if t.NextUpdate.After(r.Certificate.NotAfter) {
		t.NextUpdate = r.Certificate.NotAfter
	}
	// r signs now, for the rest of the pre-signed response's life.
	if err := r.covers(now, t.NextUpdate); err != nil {
		return nil, fmt.Errorf("ocsp: nonce response: %w", err)
	}
	return Encode(r, t)
}

// archiveCutoffOf is the archiveCutoff singleExtension of a parsed
// response, or zero when it has none.
func archiveCutoffOf(p *ocsp.Response) (time.Time, error) {
	for _, e := range p.Extensions {
		if !e.Id.Equal(oidArchiveCutoff) {
			continue
		}
		var t time.Time
		if rest, err := encasn1.UnmarshalWithParams(e.Value, &t, "generalized"); err != nil || len(rest) != 0 {
			return time.Time{}, fmt.Errorf("archiveCutoff %x is not a GeneralizedTime", e.Value)
		}
		return t, nil
	}
	return time.Time{}, nil
}
