package csr

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"fmt"
	"math/big"

	"github.com/titanous/rocacheck"
)

// Key types as policies and Request name them.
const (
	KeyECDSAP256 = "ecdsa-p256"
	KeyECDSAP384 = "ecdsa-p384"
	KeyECDSAP521 = "ecdsa-p521"
	KeyRSA2048   = "rsa-2048"
	KeyRSA3072   = "rsa-3072"
	KeyRSA4096   = "rsa-4096"
)

// Limits on RSA keys that no policy can relax.
const (
	// MinRSABits: NIST SP 800-131A Rev. 2 §2 disallows smaller moduli.
	MinRSABits = 2048
	// MaxRSABits bounds the work an applicant can make us do (signature
	// verification, Fermat rounds) and matches what relying parties verify.
	MaxRSABits = 8192
	// FermatRounds is how many candidates a = ceil(√N)+i, i < FermatRounds,
	// are tried. A modulus is refused if any a² − N is a perfect square,
	// i.e. |p − q| is small enough that Fermat's method factors N at once
	// (CVE-2022-26320 keys fall to the first round).
	FermatRounds = 100
	// smallFactorBound: zlint w_rsa_mod_factors_smaller_than_752.
	smallFactorBound = 752
)

// Algorithm and curve identifiers (RFC 3279 §2.3, RFC 5480 §2.1.1,
// RFC 8410 §3, RFC 4055 §1.2).
var (
	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidECPublicKey   = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidCurveP256     = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidCurveP384     = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	oidCurveP521     = asn1.ObjectIdentifier{1, 3, 132, 0, 35}
)

// refusedAlgorithms names public key algorithms we recognise but never
// certify, so the applicant is told what was refused.
var refusedAlgorithms = []struct {
	oid  asn1.ObjectIdentifier
	name string
}{
	{asn1.ObjectIdentifier{1, 3, 101, 110}, "X25519"},
	{asn1.ObjectIdentifier{1, 3, 101, 111}, "X448"},
	{asn1.ObjectIdentifier{1, 3, 101, 112}, "Ed25519"},
	{asn1.ObjectIdentifier{1, 3, 101, 113}, "Ed448"},
	{asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1}, "DSA"},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}, "RSASSA-PSS"},
	{asn1.ObjectIdentifier{1, 2, 840, 10046, 2, 1}, "DH"},
}

// namedCurves are the curves a key may be on; anything else is refused
// whatever the policy says. P-521 still needs the policy to list it.
var namedCurves = []struct {
	oid     asn1.ObjectIdentifier
	keyType string
	ecdsa   func() elliptic.Curve
	ecdh    func() ecdh.Curve
}{
	{oidCurveP256, KeyECDSAP256, elliptic.P256, ecdh.P256},
	{oidCurveP384, KeyECDSAP384, elliptic.P384, ecdh.P384},
	{oidCurveP521, KeyECDSAP521, elliptic.P521, ecdh.P521},
}

// knownCurveNames lets a refusal name the curve it refused.
var knownCurveNames = []struct {
	oid  asn1.ObjectIdentifier
	name string
}{
	{asn1.ObjectIdentifier{1, 3, 132, 0, 33}, "P-224"},
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 1}, "P-192"},
	{asn1.ObjectIdentifier{1, 3, 132, 0, 10}, "secp256k1"},
	{asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 7}, "brainpoolP256r1"},
	{asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 11}, "brainpoolP384r1"},
	{asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 13}, "brainpoolP512r1"},
}

// rsaBuckets maps a modulus size to the key type reported: the largest
// entry not above the size. 2048..3071 bits is "rsa-2048", 3072..4095 is
// "rsa-3072", 4096..8192 is "rsa-4096".
var rsaBuckets = []struct {
	bits    int
	keyType string
}{
	{4096, KeyRSA4096},
	{3072, KeyRSA3072},
	{2048, KeyRSA2048},
}

// subjectPublicKeyInfo is RFC 5280 §4.1.
type subjectPublicKeyInfo struct {
	Algorithm struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters asn1.RawValue `asn1:"optional"`
	}
	PublicKey asn1.BitString
}

// rsaPublicKey is RFC 8017 §A.1.1, with a big exponent so that a huge one
// is refused precisely rather than failing to decode.
type rsaPublicKey struct {
	N *big.Int
	E *big.Int
}

// publicKey is a key that passed every policy-independent check.
type publicKey struct {
	key     crypto.PublicKey // *rsa.PublicKey or *ecdsa.PublicKey
	keyType string
	rsaBits int // 0 for EC keys
}

// inspectSPKI parses a DER SubjectPublicKeyInfo with its own parser and
// refuses any key no policy could allow. It runs before crypto/x509 sees the
// key, so that every refusal carries our precise code rather than a
// generic parse failure.
func inspectSPKI(der []byte) (*publicKey, error) {
	var spki subjectPublicKeyInfo
	rest, err := asn1.Unmarshal(der, &spki)
	if err != nil {
		return nil, refuseWrap(CodeMalformed, err, "subjectPublicKeyInfo does not parse")
	}
	if len(rest) != 0 {
		return nil, refuse(CodeMalformed, "%d bytes after subjectPublicKeyInfo", len(rest))
	}
	if spki.PublicKey.BitLength%8 != 0 {
		return nil, refuse(CodeMalformed, "subjectPublicKey is not a whole number of bytes")
	}
	alg := spki.Algorithm.Algorithm
	params := spki.Algorithm.Parameters
	switch {
	case alg.Equal(oidRSAEncryption):
		return inspectRSA(params, spki.PublicKey.Bytes)
	case alg.Equal(oidECPublicKey):
		return inspectEC(params, spki.PublicKey.Bytes)
	}
	for _, a := range refusedAlgorithms {
		if alg.Equal(a.oid) {
			return nil, refuse(CodeKeyTypeNotAllowed, "%s keys are not certified", a.name)
		}
	}
	return nil, refuse(CodeKeyTypeNotAllowed, "public key algorithm %s is not certified", alg)
}

func isNull(v asn1.RawValue) bool {
	return v.Class == asn1.ClassUniversal && v.Tag == asn1.TagNull && !v.IsCompound && len(v.Bytes) == 0
}

func inspectRSA(params asn1.RawValue, keyBytes []byte) (*publicKey, error) {
	// RFC 3279 §2.3.1: the parameters field MUST be NULL.
	if !isNull(params) {
		return nil, refuse(CodeMalformed, "rsaEncryption parameters must be NULL")
	}
	var k rsaPublicKey
	rest, err := asn1.Unmarshal(keyBytes, &k)
	if err != nil {
		return nil, refuseWrap(CodeMalformed, err, "RSAPublicKey does not parse")
	}
	if len(rest) != 0 {
		return nil, refuse(CodeMalformed, "%d bytes after RSAPublicKey", len(rest))
	}
	if k.N.Sign() <= 0 {
		return nil, refuse(CodeRSAModulus, "RSA modulus is not positive")
	}
	bits := k.N.BitLen()
	if bits < MinRSABits {
		return nil, refuse(CodeRSATooSmall, "RSA modulus of %d bits is below the minimum of %d", bits, MinRSABits)
	}
	if bits > MaxRSABits {
		return nil, refuse(CodeRSATooLarge, "RSA modulus of %d bits is above the maximum of %d", bits, MaxRSABits)
	}
	if err := checkRSAExponent(k.E); err != nil {
		return nil, err
	}
	if k.N.Bit(0) == 0 {
		return nil, refuse(CodeRSAModulus, "RSA modulus is even")
	}
	if f := smallFactor(k.N); f != 0 {
		return nil, refuse(CodeRSAModulus, "RSA modulus has the small prime factor %d", f)
	}
	pub := &rsa.PublicKey{N: k.N, E: int(k.E.Int64())}
	// CVE-2017-15361: Infineon RSALib primes have a structure that lets the
	// modulus be factored.
	if rocacheck.IsWeak(pub) {
		return nil, refuse(CodeRSAROCA, "RSA modulus has the ROCA fingerprint (CVE-2017-15361)")
	}
	if round, ok := fermatFactorable(k.N, FermatRounds); ok {
		return nil, refuse(CodeRSAFermat, "RSA modulus factors by Fermat's method in round %d: its primes are too close", round)
	}
	return &publicKey{key: pub, keyType: rsaKeyType(bits), rsaBits: bits}, nil
}

// checkRSAExponent applies FIPS 186-5 §5.5(e) (an odd e with 2^16 < e) and
// an upper bound of 2^31 − 1: crypto/rsa, and many other verifiers, cannot
// use a larger exponent, and a CSR whose signature no one can verify is no
// proof of possession.
func checkRSAExponent(e *big.Int) error {
	switch {
	case e.Sign() <= 0:
		return refuse(CodeRSAExponent, "RSA public exponent is not positive")
	case e.Bit(0) == 0:
		return refuse(CodeRSAExponent, "RSA public exponent %s is even", e)
	case e.Cmp(big.NewInt(1<<16)) <= 0:
		return refuse(CodeRSAExponent, "RSA public exponent %s is below 65537", e)
	case e.Cmp(big.NewInt(1<<31-1)) > 0:
		return refuse(CodeRSAExponent, "RSA public exponent %s is above 2^31-1", e)
	}
	return nil
}

// smallFactor returns a prime below smallFactorBound that divides n, or 0.
func smallFactor(n *big.Int) int64 {
	var sieve [smallFactorBound]bool
	m := new(big.Int)
	for p := 2; p < smallFactorBound; p++ {
		if sieve[p] {
			continue
		}
		for q := p * p; q < smallFactorBound; q += p {
			sieve[q] = true
		}
		if m.Mod(n, big.NewInt(int64(p))).Sign() == 0 {
			return int64(p)
		}
	}
	return 0
}

// fermatFactorable tries Fermat's factorisation of n for the given number of
// rounds: for a = ceil(√n), ceil(√n)+1, …, it reports whether a² − n is a
// perfect square b², in which case n = (a−b)(a+b). It returns the round that
// succeeded.
func fermatFactorable(n *big.Int, rounds int) (int, bool) {
	a := new(big.Int).Sqrt(n)
	if new(big.Int).Mul(a, a).Cmp(n) == 0 {
		return 0, true // n is a square: p = q
	}
	a.Add(a, big.NewInt(1))
	b2 := new(big.Int).Mul(a, a)
	b2.Sub(b2, n)
	b := new(big.Int)
	bb := new(big.Int)
	step := new(big.Int)
	for round := range rounds {
		// Only 12 of the 64 residues mod 64 are squares: skip the square
		// root for most candidates.
		if squaresMod64&(1<<(lowBits(b2)&63)) != 0 {
			b.Sqrt(b2)
			if bb.Mul(b, b).Cmp(b2) == 0 {
				return round, true
			}
		}
		// (a+1)² − n = a² − n + 2a + 1
		step.Lsh(a, 1)
		step.Add(step, big.NewInt(1))
		b2.Add(b2, step)
		a.Add(a, big.NewInt(1))
	}
	return 0, false
}

// squaresMod64 has bit r set iff r is a square modulo 64.
const squaresMod64 = 1<<0 | 1<<1 | 1<<4 | 1<<9 | 1<<16 | 1<<17 | 1<<25 | 1<<33 | 1<<36 | 1<<41 | 1<<49 | 1<<57

// lowBits returns the least significant word of a non-negative x.
func lowBits(x *big.Int) uint64 {
	w := x.Bits()
	if len(w) == 0 {
		return 0
	}
	return uint64(w[0])
}

func rsaKeyType(bits int) string {
	for _, b := range rsaBuckets {
		if bits >= b.bits {
			return b.keyType
		}
	}
	return ""
}

func inspectEC(params asn1.RawValue, point []byte) (*publicKey, error) {
	// RFC 5480 §2.1.1: ECParameters MUST be a namedCurve; implicitCurve
	// (NULL) and specifiedCurve (a SEQUENCE of explicit parameters) MUST
	// NOT be used.
	if params.Class == asn1.ClassUniversal {
		switch params.Tag {
		case asn1.TagSequence:
			return nil, refuse(CodeECExplicitParams, "EC key has explicit curve parameters (specifiedCurve); only a named curve is accepted")
		case asn1.TagNull:
			return nil, refuse(CodeECExplicitParams, "EC key has implicitCurve parameters; only a named curve is accepted")
		}
	}
	if params.Class != asn1.ClassUniversal || params.Tag != asn1.TagOID || params.IsCompound {
		return nil, refuse(CodeMalformed, "EC key parameters are not a named curve OID")
	}
	var curveOID asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(params.FullBytes, &curveOID); err != nil || len(rest) != 0 {
		return nil, refuseWrap(CodeMalformed, err, "EC named curve OID does not parse")
	}
	for _, c := range namedCurves {
		if !curveOID.Equal(c.oid) {
			continue
		}
		if len(point) == 0 {
			return nil, refuse(CodeECPoint, "EC point is empty")
		}
		// RFC 5480 §2.2: the uncompressed form MUST be supported; we accept
		// nothing else, like crypto/x509.
		if point[0] != 4 {
			return nil, refuse(CodeECPoint, "EC point is not in uncompressed form (first byte %#02x)", point[0])
		}
		// crypto/ecdh checks the length, that the point is on the curve
		// and that it is not the point at infinity.
		if _, err := c.ecdh().NewPublicKey(point); err != nil {
			return nil, refuseWrap(CodeECPoint, err, "EC point is not a valid point on %s", c.ecdsa().Params().Name)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(c.ecdsa(), point)
		if err != nil {
			return nil, refuseWrap(CodeECPoint, err, "EC point is not a valid point on %s", c.ecdsa().Params().Name)
		}
		if smallScalar(c.keyType, c.ecdh(), point) {
			return nil, refuse(CodeECSmallKey, "the EC private key (or its negation) is at most 2^16: anyone can compute it from the public key")
		}
		return &publicKey{key: pub, keyType: c.keyType}, nil
	}
	for _, c := range knownCurveNames {
		if curveOID.Equal(c.oid) {
			return nil, refuse(CodeECCurve, "curve %s is not accepted", c.name)
		}
	}
	return nil, refuse(CodeECCurve, "curve %s is not accepted", curveOID)
}

// describe is a short, key-material-free description for refusals.
func (k *publicKey) describe() string {
	if k.rsaBits != 0 {
		return fmt.Sprintf("RSA %d-bit", k.rsaBits)
	}
	return k.keyType
}
