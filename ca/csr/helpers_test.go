package csr

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"testing"
)

// newCSR signs a CSR for signer with crypto/x509.
func newCSR(t testing.TB, signer crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "applicant.example", Organization: []string{"Sanad Test"}},
		DNSNames: []string{"applicant.example"},
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, signer)
	if err != nil {
		t.Fatalf("create CSR: %v", err)
	}
	return der
}

func toPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func mustECDSA(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// scalarKey is the key pair with private scalar d.
func scalarKey(t testing.TB, c elliptic.Curve, d *big.Int) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.ParseRawPrivateKey(c, d.FillBytes(make([]byte, (c.Params().BitSize+7)/8)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRSA(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// csrOutline splits a CSR into its parts so tests can rebuild it with
// pieces Go would never produce.
type csrOutline struct {
	Info struct {
		Version    int
		Subject    asn1.RawValue
		PublicKey  asn1.RawValue
		Attributes asn1.RawValue
	}
	SignatureAlgorithm asn1.RawValue
	Signature          asn1.BitString
}

func splitCSR(t testing.TB, der []byte) csrOutline {
	t.Helper()
	var o csrOutline
	if rest, err := asn1.Unmarshal(der, &o); err != nil || len(rest) != 0 {
		t.Fatalf("split CSR: %v (%d trailing)", err, len(rest))
	}
	return o
}

func (o csrOutline) marshal(t testing.TB) []byte {
	t.Helper()
	der, err := asn1.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// withSPKI returns der with its subjectPublicKeyInfo replaced and the old
// signature kept: the key checks must refuse it before any signature work.
func withSPKI(t testing.TB, der, spki []byte) []byte {
	t.Helper()
	o := splitCSR(t, der)
	o.Info.PublicKey = asn1.RawValue{FullBytes: spki}
	return o.marshal(t)
}

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

type spkiDER struct {
	Algorithm algorithmIdentifier
	PublicKey asn1.BitString
}

func marshalSPKI(t testing.TB, alg asn1.ObjectIdentifier, params asn1.RawValue, key []byte) []byte {
	t.Helper()
	der, err := asn1.Marshal(spkiDER{
		Algorithm: algorithmIdentifier{Algorithm: alg, Parameters: params},
		PublicKey: asn1.BitString{Bytes: key, BitLength: 8 * len(key)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

var asn1Null = asn1.RawValue{FullBytes: []byte{5, 0}}

func rsaSPKI(t testing.TB, n, e *big.Int) []byte {
	t.Helper()
	key, err := asn1.Marshal(rsaPublicKey{N: n, E: e})
	if err != nil {
		t.Fatal(err)
	}
	return marshalSPKI(t, oidRSAEncryption, asn1Null, key)
}

func ecSPKI(t testing.TB, params asn1.RawValue, point []byte) []byte {
	t.Helper()
	return marshalSPKI(t, oidECPublicKey, params, point)
}

func oidParam(t testing.TB, oid asn1.ObjectIdentifier) asn1.RawValue {
	t.Helper()
	der, err := asn1.Marshal(oid)
	if err != nil {
		t.Fatal(err)
	}
	return asn1.RawValue{FullBytes: der}
}

// explicitP256Params is SEC 1 §C.2 SpecifiedECDomain for P-256, with the
// real curve constants: a well-formed specifiedCurve that RFC 5480 forbids.
func explicitP256Params(t testing.TB) asn1.RawValue {
	t.Helper()
	p := elliptic.P256().Params()
	a := new(big.Int).Sub(p.P, big.NewInt(3))
	g := elliptic.Marshal(elliptic.P256(), p.Gx, p.Gy) //nolint:staticcheck // test vector only
	type fieldID struct {
		FieldType asn1.ObjectIdentifier
		Prime     *big.Int
	}
	type curve struct {
		A, B []byte
	}
	der, err := asn1.Marshal(struct {
		Version  int
		FieldID  fieldID
		Curve    curve
		Base     []byte
		Order    *big.Int
		Cofactor int
	}{
		Version:  1,
		FieldID:  fieldID{asn1.ObjectIdentifier{1, 2, 840, 10045, 1, 1}, p.P},
		Curve:    curve{a.FillBytes(make([]byte, 32)), p.B.FillBytes(make([]byte, 32))},
		Base:     g,
		Order:    p.N,
		Cofactor: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return asn1.RawValue{FullBytes: der}
}

// rsaFromPrimes builds a private key from chosen primes, so tests can sign
// with keys crypto/rsa would never generate.
func rsaFromPrimes(t testing.TB, p, q *big.Int, e int) *rsa.PrivateKey {
	t.Helper()
	d := privateExponent(p, q, int64(e))
	if d == nil {
		t.Fatalf("e=%d is not invertible for these primes", e)
	}
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: e},
		D:         d,
		Primes:    []*big.Int{p, q},
	}
	if err := k.Validate(); err != nil {
		t.Fatalf("hand-built key: %v", err)
	}
	k.Precompute()
	return k
}

// randomPrime returns a prime of exactly bits bits of the form k·m + r.
func randomPrime(t testing.TB, bits int, m, r *big.Int) *big.Int {
	t.Helper()
	lo := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	span := new(big.Int).Div(lo, m) // k in [lo/m, 2·lo/m)
	for range 1 << 20 {
		k, err := rand.Int(rand.Reader, span)
		if err != nil {
			t.Fatal(err)
		}
		k.Add(k, span)
		p := k.Mul(k, m).Add(k, r)
		if p.BitLen() == bits && p.ProbablyPrime(20) {
			return p
		}
	}
	t.Fatal("no prime found")
	return nil
}

// fermatWeakCSR is a CSR, correctly signed, for a key whose primes are
// q = nextprime(p): the weakness of CVE-2022-26320. crypto/rsa refuses to
// sign with such a key, so the signature is computed here by hand.
func fermatWeakCSR(t testing.TB, template []byte) []byte {
	t.Helper()
	k := fermatWeakKey(t)
	key, err := asn1.Marshal(rsaPublicKey{N: k.N, E: big.NewInt(int64(k.E))})
	if err != nil {
		t.Fatal(err)
	}
	o := splitCSR(t, template)
	o.Info.PublicKey = asn1.RawValue{FullBytes: marshalSPKI(t, oidRSAEncryption, asn1Null, key)}
	tbs, err := asn1.Marshal(o.Info)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 8017 §9.2 EMSA-PKCS1-v1_5 with SHA-256, then s = m^d mod n.
	digestInfo := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	sum := sha256.Sum256(tbs)
	size := (k.N.BitLen() + 7) / 8
	em := make([]byte, size)
	em[1] = 1
	tail := append(digestInfo, sum[:]...)
	for i := 2; i < size-len(tail)-1; i++ {
		em[i] = 0xff
	}
	copy(em[size-len(tail):], tail)
	sig := new(big.Int).Exp(new(big.Int).SetBytes(em), k.D, k.N).FillBytes(make([]byte, size))
	algDER, err := asn1.Marshal(algorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, Parameters: asn1Null})
	if err != nil {
		t.Fatal(err)
	}
	o.SignatureAlgorithm = asn1.RawValue{FullBytes: algDER}
	o.Signature = asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}
	der := o.marshal(t)
	// The signature must be genuine, or the test would prove nothing.
	cr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := cr.CheckSignature(); err != nil {
		t.Fatalf("hand-made signature: %v", err)
	}
	return der
}

// fermatWeakKey returns n = p·q with q = nextprime(p) and d; crypto/rsa
// will not validate it, so only N, E and D are set.
func fermatWeakKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	for {
		p := randomPrime(t, 1024, big.NewInt(1), big.NewInt(0))
		q := new(big.Int).Add(p, big.NewInt(2))
		for !q.ProbablyPrime(20) {
			q.Add(q, big.NewInt(2))
		}
		if new(big.Int).Mul(p, q).BitLen() != 2048 || new(big.Int).Mod(p, big.NewInt(65537)).Int64() == 1 || new(big.Int).Mod(q, big.NewInt(65537)).Int64() == 1 {
			continue
		}
		return &rsa.PrivateKey{
			PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 65537},
			D:         privateExponent(p, q, 65537),
		}
	}
}

func privateExponent(p, q *big.Int, e int64) *big.Int {
	one := big.NewInt(1)
	pm1 := new(big.Int).Sub(p, one)
	qm1 := new(big.Int).Sub(q, one)
	gcd := new(big.Int).GCD(nil, nil, pm1, qm1)
	lambda := new(big.Int).Div(new(big.Int).Mul(pm1, qm1), gcd)
	return new(big.Int).ModInverse(big.NewInt(e), lambda)
}

// rocaPrimes are the primes rocacheck fingerprints.
var rocaPrimes = []int64{11, 13, 17, 19, 37, 53, 61, 71, 73, 79, 97, 103, 107, 109, 127, 151, 157}

// rocaWeakKey builds primes the way Infineon RSALib did, p = k·M +
// (65537^a mod M), so the modulus carries the ROCA fingerprint
// (CVE-2017-15361) and we still hold the private key to sign with.
func rocaWeakKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	m := big.NewInt(2) // keep p odd: M even, residue odd
	for _, r := range rocaPrimes {
		m.Mul(m, big.NewInt(r))
	}
	prime := func() *big.Int {
		for {
			a, err := rand.Int(rand.Reader, big.NewInt(1<<20))
			if err != nil {
				t.Fatal(err)
			}
			r := new(big.Int).Exp(big.NewInt(65537), a, m)
			if r.Bit(0) == 0 {
				continue
			}
			p := randomPrime(t, 1024, m, r)
			if new(big.Int).Mod(p, big.NewInt(65537)).Int64() != 1 {
				return p
			}
		}
	}
	for {
		p, q := prime(), prime()
		if new(big.Int).Mul(p, q).BitLen() == 2048 {
			return rsaFromPrimes(t, p, q, 65537)
		}
	}
}
