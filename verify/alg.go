package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	encasn1 "encoding/asn1"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// unsupportedError is an algorithm or key this package does not accept:
// CRYPTO_CONSTRAINTS_FAILURE, not a broken signature.
type unsupportedError struct{ msg string }

func (e unsupportedError) Error() string { return e.msg }

func unsupported(format string, args ...any) error {
	return unsupportedError{fmt.Sprintf(format, args...)}
}

// minRSABits is the smallest RSA modulus accepted for a signature
// (ETSI TS 119 312: 1900+ bits; the CA issues 2048 and up).
const minRSABits = 2048

// maxRSABits is the largest: the CA certifies no RSA key above 8192 bits
// (ca/csr.MaxRSABits), and checking a signature costs the cube of the
// modulus's size, so a made-up key of 262144 bits in a signature anyone
// may send costs seconds of CPU per signer. Such keys are refused before
// any arithmetic.
const maxRSABits = 8192

// maxCARSABits is the largest RSA key of a CA certificate that a signature
// carries, or a caIssuers URL gives, for it to join a path: building one
// path checks a signature with every candidate issuer, up to 100 times
// (x509's bound), and a made-up 8192-bit key with a large exponent costs
// three times what a 4096-bit one does. Sanad's CA keys are at most 4096
// bits (hsm.KeyTypes); a CA with a larger key joins paths when configured
// (Config.Intermediates, Config.Roots, Config.ForeignRoots).
const maxCARSABits = 4096

// rsaSizeProblem says why pub is refused for its size, or "" when it is
// not an RSA key or its size is within bounds.
func rsaSizeProblem(pub crypto.PublicKey) string {
	k, ok := pub.(*rsa.PublicKey)
	switch {
	case !ok:
		return ""
	case k.N.BitLen() < minRSABits:
		return fmt.Sprintf("RSA key of %d bits, below %d", k.N.BitLen(), minRSABits)
	case k.N.BitLen() > maxRSABits:
		return fmt.Sprintf("RSA key of %d bits, above %d", k.N.BitLen(), maxRSABits)
	}
	return ""
}

// withoutOversizedRSA is a copy of certs (which may be shared, as the
// caIssuers cache's are) without those whose RSA key is above
// maxCARSABits.
func withoutOversizedRSA(certs []*x509.Certificate) []*x509.Certificate {
	return slices.DeleteFunc(slices.Clone(certs), func(c *x509.Certificate) bool {
		k, ok := c.PublicKey.(*rsa.PublicKey)
		return ok && k.N.BitLen() > maxCARSABits
	})
}

var digests = map[string]struct {
	h    crypto.Hash
	name string
}{
	"2.16.840.1.101.3.4.2.1": {crypto.SHA256, "SHA-256"},
	"2.16.840.1.101.3.4.2.2": {crypto.SHA384, "SHA-384"},
	"2.16.840.1.101.3.4.2.3": {crypto.SHA512, "SHA-512"},
}

// digestFor maps a digest algorithm OID to its hash. SHA-1 and MD5 are
// refused (ETSI TS 119 312 no longer allows them for signatures).
func digestFor(oid encasn1.ObjectIdentifier) (crypto.Hash, string, error) {
	if d, ok := digests[oid.String()]; ok {
		return d.h, d.name, nil
	}
	switch oid.String() {
	case "1.3.14.3.2.26":
		return 0, "SHA-1", unsupported("digest SHA-1 is no longer accepted for signatures")
	case "1.2.840.113549.2.5":
		return 0, "MD5", unsupported("digest MD5 is not accepted")
	}
	return 0, oid.String(), unsupported("unknown digest algorithm %s", oid)
}

// Signature algorithm OIDs (RFC 5754, RFC 4055, RFC 5758, RFC 8419).
const (
	oidRSAEncryption = "1.2.840.113549.1.1.1"
	oidRSAPSS        = "1.2.840.113549.1.1.10"
	oidSHA256WithRSA = "1.2.840.113549.1.1.11"
	oidSHA384WithRSA = "1.2.840.113549.1.1.12"
	oidSHA512WithRSA = "1.2.840.113549.1.1.13"
	oidECPublicKey   = "1.2.840.10045.2.1"
	oidECDSAWithS256 = "1.2.840.10045.4.3.2"
	oidECDSAWithS384 = "1.2.840.10045.4.3.3"
	oidECDSAWithS512 = "1.2.840.10045.4.3.4"
	oidEd25519       = "1.3.101.112"
	oidMGF1          = "1.2.840.113549.1.1.8"
)

// hashOfSigAlg is the hash a signature algorithm OID names, if any.
var hashOfSigAlg = map[string]crypto.Hash{
	oidSHA256WithRSA: crypto.SHA256, oidSHA384WithRSA: crypto.SHA384, oidSHA512WithRSA: crypto.SHA512,
	oidECDSAWithS256: crypto.SHA256, oidECDSAWithS384: crypto.SHA384, oidECDSAWithS512: crypto.SHA512,
}

// checkSignature verifies sig over signed with pub, for a CMS
// signatureAlgorithm (RFC 5652 §5.3) and the signer's digest algorithm h.
// It returns the algorithm's name.
func checkSignature(pub crypto.PublicKey, sigAlg encasn1.ObjectIdentifier, params []byte, h crypto.Hash, signed, sig []byte) (string, error) {
	alg := sigAlg.String()
	if named, ok := hashOfSigAlg[alg]; ok && named != h {
		return alg, unsupported("signature algorithm %s names %v but the digest algorithm is %v", alg, named, h)
	}
	switch alg {
	case oidECPublicKey, oidECDSAWithS256, oidECDSAWithS384, oidECDSAWithS512:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return "ECDSA", fmt.Errorf("ECDSA signature but a %T key", pub)
		}
		name := fmt.Sprintf("ECDSA %s with %v", k.Curve.Params().Name, h)
		if !ecdsa.VerifyASN1(k, digest(h, signed), sig) {
			return name, errors.New("ECDSA verification failed")
		}
		return name, nil
	case oidRSAEncryption, oidSHA256WithRSA, oidSHA384WithRSA, oidSHA512WithRSA:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return "RSA", fmt.Errorf("RSA signature but a %T key", pub)
		}
		name := fmt.Sprintf("RSA-%d PKCS#1 v1.5 with %v", k.N.BitLen(), h)
		if why := rsaSizeProblem(k); why != "" {
			return name, unsupported("%s", why)
		}
		return name, rsa.VerifyPKCS1v15(k, h, digest(h, signed), sig)
	case oidRSAPSS:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return "RSASSA-PSS", fmt.Errorf("RSA-PSS signature but a %T key", pub)
		}
		salt, err := pssSalt(params, h)
		name := fmt.Sprintf("RSA-%d PSS with %v", k.N.BitLen(), h)
		if err != nil {
			return name, err
		}
		if why := rsaSizeProblem(k); why != "" {
			return name, unsupported("%s", why)
		}
		return name, rsa.VerifyPSS(k, h, digest(h, signed), sig, &rsa.PSSOptions{SaltLength: salt, Hash: h})
	case oidEd25519:
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return "Ed25519", fmt.Errorf("Ed25519 signature but a %T key", pub)
		}
		if !ed25519.Verify(k, signed, sig) {
			return "Ed25519", errors.New("Ed25519 verification failed")
		}
		return "Ed25519", nil
	}
	return alg, unsupported("unknown signature algorithm %s", alg)
}

// pssSalt reads RSASSA-PSS-params (RFC 4055 §3.1) and insists the hash
// and the MGF1 hash are the signer's digest algorithm.
//
//	RSASSA-PSS-params ::= SEQUENCE {
//	   hashAlgorithm      [0] HashAlgorithm    DEFAULT sha1,
//	   maskGenAlgorithm   [1] MaskGenAlgorithm DEFAULT mgf1SHA1,
//	   saltLength         [2] INTEGER          DEFAULT 20,
//	   trailerField       [3] TrailerField     DEFAULT trailerFieldBC }
func pssSalt(params []byte, h crypto.Hash) (int, error) {
	in := cryptobyte.String(params)
	var p cryptobyte.String
	if !in.ReadASN1(&p, asn1.SEQUENCE) {
		return 0, unsupported("RSASSA-PSS without parameters")
	}
	readHash := func(s cryptobyte.String) (crypto.Hash, error) {
		var alg cryptobyte.String
		var oid encasn1.ObjectIdentifier
		if !s.ReadASN1(&alg, asn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
			return 0, errors.New("malformed RSASSA-PSS hash")
		}
		hh, _, err := digestFor(oid)
		return hh, err
	}
	hash, mgfHash, salt := crypto.SHA1, crypto.SHA1, int64(20)
	var field cryptobyte.String
	var present bool
	var err error
	if !p.ReadOptionalASN1(&field, &present, asn1.Tag(0).Constructed().ContextSpecific()) {
		return 0, errors.New("malformed RSASSA-PSS parameters")
	}
	if present {
		if hash, err = readHash(field); err != nil {
			return 0, err
		}
	}
	if !p.ReadOptionalASN1(&field, &present, asn1.Tag(1).Constructed().ContextSpecific()) {
		return 0, errors.New("malformed RSASSA-PSS parameters")
	}
	if present {
		var mgf cryptobyte.String
		var oid encasn1.ObjectIdentifier
		if !field.ReadASN1(&mgf, asn1.SEQUENCE) || !mgf.ReadASN1ObjectIdentifier(&oid) || oid.String() != oidMGF1 {
			return 0, unsupported("RSASSA-PSS mask generation other than MGF1")
		}
		if mgfHash, err = readHash(mgf); err != nil {
			return 0, err
		}
	}
	if !p.ReadOptionalASN1(&field, &present, asn1.Tag(2).Constructed().ContextSpecific()) {
		return 0, errors.New("malformed RSASSA-PSS parameters")
	}
	if present && !field.ReadASN1Int64WithTag(&salt, asn1.INTEGER) {
		return 0, errors.New("malformed RSASSA-PSS salt length")
	}
	if hash != h || mgfHash != h {
		return 0, unsupported("RSASSA-PSS with hash %v and MGF1 %v, not the digest algorithm %v", hash, mgfHash, h)
	}
	if salt < 0 || salt > 1024 {
		return 0, errors.New("RSASSA-PSS salt length out of range")
	}
	return int(salt), nil
}
