package csr

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Policy says which keys a profile certifies.
type Policy struct {
	// KeyTypes lists the allowed key types: "ecdsa-p256", "ecdsa-p384",
	// "ecdsa-p521", "rsa-2048", "rsa-3072", "rsa-4096". An RSA entry is a
	// minimum size: "rsa-3072" allows any RSA key of 3072 to MaxRSABits
	// bits. An empty list is an invalid policy: Check fails closed.
	KeyTypes []string
	// Forbidden keys are never certified, typically the CA's own keys. An
	// RSA key is refused if its modulus equals a forbidden RSA modulus,
	// whatever the exponent: a shared modulus is a shared factorisation.
	Forbidden []crypto.PublicKey
	// Proofs, if set, remembers the requests whose signature verified,
	// so that the same request is not verified twice (see Proofs).
	Proofs *Proofs
}

// Request is what Check learned from a CSR. Only PublicKey and SPKI may go
// into a certificate.
type Request struct {
	PublicKey crypto.PublicKey // *rsa.PublicKey or *ecdsa.PublicKey
	// KeyType is "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", or for RSA the
	// largest of "rsa-2048", "rsa-3072", "rsa-4096" not above the modulus
	// size: 2048..3071 bits is "rsa-2048", 3072..4095 "rsa-3072",
	// 4096..8192 "rsa-4096". RSABits has the exact size.
	KeyType string
	RSABits int // 0 for EC keys
	// SPKI is the DER SubjectPublicKeyInfo exactly as in the CSR.
	SPKI []byte

	// Informational only: never copied into a certificate.
	RequestedSubject    pkix.Name
	RequestedExtensions []asn1.ObjectIdentifier
}

// rsaMinimums maps a policy's RSA entry to its minimum modulus size.
var rsaMinimums = map[string]int{KeyRSA2048: 2048, KeyRSA3072: 3072, KeyRSA4096: 4096}

var ecKeyTypes = []string{KeyECDSAP256, KeyECDSAP384, KeyECDSAP521}

// Validate reports every problem with p at once.
func (p Policy) Validate() error {
	var errs []error
	if len(p.KeyTypes) == 0 {
		errs = append(errs, errors.New("no key type allowed"))
	}
	for i, kt := range p.KeyTypes {
		if _, ok := rsaMinimums[kt]; !ok && !slices.Contains(ecKeyTypes, kt) {
			errs = append(errs, fmt.Errorf("KeyTypes[%d]: unknown key type %q", i, kt))
		}
	}
	for i, k := range p.Forbidden {
		switch k := k.(type) {
		case *rsa.PublicKey:
			if k == nil || k.N == nil {
				errs = append(errs, fmt.Errorf("Forbidden[%d]: RSA key without modulus", i))
			}
		case *ecdsa.PublicKey:
			if k == nil || k.X == nil || k.Y == nil || k.Curve == nil {
				errs = append(errs, fmt.Errorf("Forbidden[%d]: incomplete ECDSA key", i))
			}
		case interface{ Equal(x crypto.PublicKey) bool }:
		default:
			errs = append(errs, fmt.Errorf("Forbidden[%d]: %T cannot be compared", i, k))
		}
	}
	if len(errs) != 0 {
		return fmt.Errorf("%w: %w", ErrPolicy, errors.Join(errs...))
	}
	return nil
}

// Check decides whether the key of cr may be certified under p. It trusts
// only cr.Raw: the request is parsed, its key inspected and its signature
// verified again (unless p.Proofs saw these very bytes verify), so a
// CertificateRequest built or altered in memory cannot slip past. Refusals
// are *KeyError; an invalid p yields ErrPolicy.
func Check(cr *x509.CertificateRequest, p Policy) (*Request, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if cr == nil || len(cr.Raw) == 0 {
		return nil, refuse(CodeMalformed, "no request")
	}
	parsed, key, err := parseDER(cr.Raw, p.Proofs)
	if err != nil {
		return nil, err
	}
	return decide(parsed, key, p)
}

// ParseAndCheck is Parse followed by Check, with the request parsed and
// its signature verified once rather than twice: for callers that hold the
// request's bytes, as the RA and the CA do.
func ParseAndCheck(pemOrDER []byte, p Policy) (*x509.CertificateRequest, *Request, error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	der, err := readDER(pemOrDER)
	if err != nil {
		return nil, nil, err
	}
	cr, key, err := parseDER(der, p.Proofs)
	if err != nil {
		return nil, nil, err
	}
	req, err := decide(cr, key, p)
	if err != nil {
		return nil, nil, err
	}
	return cr, req, nil
}

// decide applies p to a request parseDER has read and verified.
func decide(parsed *x509.CertificateRequest, key *publicKey, p Policy) (*Request, error) {
	if err := allowKeyType(key, p.KeyTypes); err != nil {
		return nil, err
	}
	for _, f := range p.Forbidden {
		if sameKey(key.key, f) {
			return nil, refuse(CodeKeyIsCAKey, "the %s key is one the CA must never certify", key.describe())
		}
	}
	req := &Request{
		PublicKey:        key.key,
		KeyType:          key.keyType,
		RSABits:          key.rsaBits,
		SPKI:             bytes.Clone(parsed.RawSubjectPublicKeyInfo),
		RequestedSubject: parsed.Subject,
	}
	for _, ext := range parsed.Extensions {
		req.RequestedExtensions = append(req.RequestedExtensions, ext.Id)
	}
	return req, nil
}

func allowKeyType(key *publicKey, allowed []string) error {
	if key.rsaBits == 0 {
		if slices.Contains(allowed, key.keyType) {
			return nil
		}
		return refuse(CodeKeyTypeNotAllowed, "key type %s is not allowed (allowed: %s)", key.keyType, strings.Join(allowed, ", "))
	}
	minimum := 0
	for _, kt := range allowed {
		if m, ok := rsaMinimums[kt]; ok && (minimum == 0 || m < minimum) {
			minimum = m
		}
	}
	switch {
	case minimum == 0:
		return refuse(CodeKeyTypeNotAllowed, "RSA keys are not allowed (allowed: %s)", strings.Join(allowed, ", "))
	case key.rsaBits < minimum:
		return refuse(CodeRSATooSmall, "RSA modulus of %d bits is below this policy's minimum of %d", key.rsaBits, minimum)
	}
	return nil
}

func sameKey(k, forbidden crypto.PublicKey) bool {
	if a, ok := k.(*rsa.PublicKey); ok {
		if b, ok := forbidden.(*rsa.PublicKey); ok {
			return a.N.Cmp(b.N) == 0
		}
	}
	f, ok := forbidden.(interface{ Equal(x crypto.PublicKey) bool })
	return ok && f.Equal(k)
}
