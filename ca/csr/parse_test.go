package csr

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
)

// parseFixtures are the keys and CSRs the Parse cases share; RSA key
// generation is too slow to repeat per case.
type parseFixtures struct {
	ecDER, rsaDER []byte
	rsa           *rsa.PrivateKey
}

func newParseFixtures(t *testing.T) *parseFixtures {
	t.Helper()
	rk := mustRSA(t, 2048)
	return &parseFixtures{
		ecDER:  newCSR(t, mustECDSA(t, elliptic.P256())),
		rsaDER: newCSR(t, rk),
		rsa:    rk,
	}
}

// wantRefusal checks that err is a *KeyError with code and that it
// matches the sentinel its code belongs to.
func wantRefusal(t *testing.T, err error, code string, sentinel error) {
	t.Helper()
	var ke *KeyError
	if !errors.As(err, &ke) {
		t.Fatalf("err = %v, want *KeyError %s", err, code)
	}
	if ke.Code != code {
		t.Fatalf("code = %q (%v), want %q", ke.Code, err, code)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("errors.Is(%v, %v) = false", err, sentinel)
	}
	for _, other := range []error{ErrMalformed, ErrBadSignature, ErrForbiddenKey, ErrPolicy} {
		if other != sentinel && errors.Is(err, other) {
			t.Fatalf("errors.Is(%v, %v) = true, want only %v", err, other, sentinel)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	fx := newParseFixtures(t)
	tests := []struct {
		name  string
		input func(t *testing.T) []byte
		der   []byte
	}{
		{"ecdsa DER", func(*testing.T) []byte { return fx.ecDER }, fx.ecDER},
		{"rsa DER", func(*testing.T) []byte { return fx.rsaDER }, fx.rsaDER},
		{"PEM", func(*testing.T) []byte { return toPEM(fx.ecDER) }, fx.ecDER},
		{"legacy PEM label", func(*testing.T) []byte {
			return pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: fx.ecDER})
		}, fx.ecDER},
		{"PEM with surrounding whitespace", func(*testing.T) []byte {
			return append(append([]byte("\r\n  \n"), toPEM(fx.ecDER)...), "\n\n\t "...)
		}, fx.ecDER},
		{"PEM with CRLF line ends", func(*testing.T) []byte {
			return bytes.ReplaceAll(toPEM(fx.ecDER), []byte("\n"), []byte("\r\n"))
		}, fx.ecDER},
		{"P-384", func(t *testing.T) []byte { return newCSR(t, mustECDSA(t, elliptic.P384())) }, nil},
		{"P-521 (policy decides)", func(t *testing.T) []byte { return newCSR(t, mustECDSA(t, elliptic.P521())) }, nil},
		{"rsa exponent 65539", func(t *testing.T) []byte {
			return newCSR(t, rsaFromPrimes(t, fx.rsa.Primes[0], fx.rsa.Primes[1], 65539))
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr, err := Parse(tt.input(t))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.der != nil && !bytes.Equal(cr.Raw, tt.der) {
				t.Fatal("Raw differs from the DER given")
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	fx := newParseFixtures(t)
	ecPoint := func(t *testing.T) []byte {
		t.Helper()
		var spki subjectPublicKeyInfo
		if _, err := asn1.Unmarshal(splitCSR(t, fx.ecDER).Info.PublicKey.FullBytes, &spki); err != nil {
			t.Fatal(err)
		}
		return spki.PublicKey.Bytes
	}
	n := fx.rsa.N
	tests := []struct {
		name     string
		input    func(t *testing.T) []byte
		code     string
		sentinel error
	}{
		// Framing.
		{"empty", func(*testing.T) []byte { return nil }, CodeMalformed, ErrMalformed},
		{"garbage", func(*testing.T) []byte { return []byte("hello, CA") }, CodeMalformed, ErrMalformed},
		{"too large", func(*testing.T) []byte { return make([]byte, MaxSize+1) }, CodeTooLarge, ErrMalformed},
		{"too large PEM", func(*testing.T) []byte {
			return append(toPEM(fx.ecDER), bytes.Repeat([]byte("\n"), MaxSize)...)
		}, CodeTooLarge, ErrMalformed},
		{"DER trailing byte", func(*testing.T) []byte { return append(bytes.Clone(fx.ecDER), 0) }, CodeTrailingData, ErrMalformed},
		{"DER followed by a second CSR", func(*testing.T) []byte {
			return append(bytes.Clone(fx.ecDER), fx.rsaDER...)
		}, CodeTrailingData, ErrMalformed},
		{"DER truncated", func(*testing.T) []byte { return fx.ecDER[:len(fx.ecDER)-1] }, CodeMalformed, ErrMalformed},
		{"PEM trailing text", func(*testing.T) []byte { return append(toPEM(fx.ecDER), "junk\n"...) }, CodeTrailingData, ErrMalformed},
		{"PEM leading text", func(*testing.T) []byte { return append([]byte("junk\n"), toPEM(fx.ecDER)...) }, CodeMalformed, ErrMalformed},
		{"two PEM blocks", func(*testing.T) []byte { return append(toPEM(fx.ecDER), toPEM(fx.rsaDER)...) }, CodeMultipleBlocks, ErrMalformed},
		{"broken PEM block then a good one", func(*testing.T) []byte {
			return append([]byte("-----BEGIN CERTIFICATE REQUEST-----\n!!\n"), toPEM(fx.ecDER)...)
		}, CodeMultipleBlocks, ErrMalformed},
		{"PEM without END", func(*testing.T) []byte {
			p := toPEM(fx.ecDER)
			return p[:bytes.Index(p, []byte("-----END"))]
		}, CodeMalformed, ErrMalformed},
		{"PEM of a certificate", func(*testing.T) []byte {
			return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fx.ecDER})
		}, CodeMalformed, ErrMalformed},
		{"PEM with headers", func(*testing.T) []byte {
			return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: fx.ecDER})
		}, CodeMalformed, ErrMalformed},
		{"PEM with trailing DER byte inside", func(*testing.T) []byte { return toPEM(append(bytes.Clone(fx.ecDER), 0)) }, CodeTrailingData, ErrMalformed},
		{"version 1", func(t *testing.T) []byte {
			o := splitCSR(t, fx.ecDER)
			o.Info.Version = 1
			return o.marshal(t)
		}, CodeMalformed, ErrMalformed},

		// Proof of possession.
		{"flipped signature byte (ecdsa)", func(*testing.T) []byte {
			b := bytes.Clone(fx.ecDER)
			b[len(b)-1] ^= 0x01
			return b
		}, CodeBadSignature, ErrBadSignature},
		{"flipped signature byte (rsa)", func(*testing.T) []byte {
			b := bytes.Clone(fx.rsaDER)
			b[len(b)-1] ^= 0x80
			return b
		}, CodeBadSignature, ErrBadSignature},
		{"flipped subject byte", func(t *testing.T) []byte {
			b := bytes.Clone(fx.ecDER)
			i := bytes.Index(b, []byte("applicant.example"))
			b[i] ^= 0x20
			return b
		}, CodeBadSignature, ErrBadSignature},
		{"signed by another key", func(t *testing.T) []byte {
			other := newCSR(t, mustECDSA(t, elliptic.P256()))
			return withSPKI(t, fx.ecDER, splitCSR(t, other).Info.PublicKey.FullBytes)
		}, CodeBadSignature, ErrBadSignature},
		{"sha1WithRSAEncryption", func(t *testing.T) []byte {
			return resign(t, fx.rsaDER, fx.rsa, crypto.SHA1, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5})
		}, CodeSignatureAlgorithm, ErrBadSignature},

		// Keys no policy can allow.
		{"ed25519", func(t *testing.T) []byte {
			_, k, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			return newCSR(t, k)
		}, CodeKeyTypeNotAllowed, ErrForbiddenKey},
		{"unknown algorithm", func(t *testing.T) []byte {
			return withSPKI(t, fx.ecDER, marshalSPKI(t, asn1.ObjectIdentifier{1, 2, 3, 4}, asn1Null, []byte{1, 2, 3}))
		}, CodeKeyTypeNotAllowed, ErrForbiddenKey},
		{"rsa 1024", func(t *testing.T) []byte { return newCSR(t, mustRSA(t, 1024)) }, CodeRSATooSmall, ErrForbiddenKey},
		{"rsa 2047", func(t *testing.T) []byte {
			return withSPKI(t, fx.rsaDER, rsaSPKI(t, new(big.Int).Rsh(n, 1), big.NewInt(65537)))
		}, CodeRSATooSmall, ErrForbiddenKey},
		{"rsa 8200", func(t *testing.T) []byte {
			big8200 := new(big.Int).Lsh(n, 8200-2048)
			big8200.SetBit(big8200, 0, 1)
			return withSPKI(t, fx.rsaDER, rsaSPKI(t, big8200, big.NewInt(65537)))
		}, CodeRSATooLarge, ErrForbiddenKey},
		{"rsa negative modulus", func(t *testing.T) []byte {
			return withSPKI(t, fx.rsaDER, rsaSPKI(t, new(big.Int).Neg(n), big.NewInt(65537)))
		}, CodeRSAModulus, ErrForbiddenKey},
		{"rsa even modulus", func(t *testing.T) []byte {
			return withSPKI(t, fx.rsaDER, rsaSPKI(t, new(big.Int).Add(n, big.NewInt(1)), big.NewInt(65537)))
		}, CodeRSAModulus, ErrForbiddenKey},
		{"rsa modulus divisible by 751", func(t *testing.T) []byte {
			m := new(big.Int).Div(n, big.NewInt(751))
			m.Mul(m, big.NewInt(751))
			if m.Bit(0) == 0 {
				m.Add(m, big.NewInt(751))
			}
			return withSPKI(t, fx.rsaDER, rsaSPKI(t, m, big.NewInt(65537)))
		}, CodeRSAModulus, ErrForbiddenKey},
		{"rsa without NULL parameters", func(t *testing.T) []byte {
			key, _ := asn1.Marshal(rsaPublicKey{N: n, E: big.NewInt(65537)})
			return withSPKI(t, fx.rsaDER, marshalSPKI(t, oidRSAEncryption, asn1.RawValue{}, key))
		}, CodeMalformed, ErrMalformed},
		{"rsa exponent 1", rsaExp(fx, n, big.NewInt(1)), CodeRSAExponent, ErrForbiddenKey},
		{"rsa exponent 3", rsaExp(fx, n, big.NewInt(3)), CodeRSAExponent, ErrForbiddenKey},
		{"rsa exponent 65535", rsaExp(fx, n, big.NewInt(65535)), CodeRSAExponent, ErrForbiddenKey},
		{"rsa exponent 65536 (even)", rsaExp(fx, n, big.NewInt(65536)), CodeRSAExponent, ErrForbiddenKey},
		{"rsa exponent 65538 (even)", rsaExp(fx, n, big.NewInt(65538)), CodeRSAExponent, ErrForbiddenKey},
		{"rsa exponent 0", rsaExp(fx, n, big.NewInt(0)), CodeRSAExponent, ErrForbiddenKey},
		{"rsa exponent -65537", rsaExp(fx, n, big.NewInt(-65537)), CodeRSAExponent, ErrForbiddenKey},
		{"rsa exponent 2^31+1", rsaExp(fx, n, big.NewInt(1<<31+1)), CodeRSAExponent, ErrForbiddenKey},
		{"rsa exponent 2^32+1", rsaExp(fx, n, big.NewInt(1<<32+1)), CodeRSAExponent, ErrForbiddenKey},
		{"rsa exponent 2^256+1", rsaExp(fx, n, new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))), CodeRSAExponent, ErrForbiddenKey},
		{"rsa ROCA", func(t *testing.T) []byte { return newCSR(t, rocaWeakKey(t)) }, CodeRSAROCA, ErrForbiddenKey},
		{"rsa close primes (Fermat)", func(t *testing.T) []byte { return fermatWeakCSR(t, fx.rsaDER) }, CodeRSAFermat, ErrForbiddenKey},
		{"P-224", func(t *testing.T) []byte { return newCSR(t, mustECDSA(t, elliptic.P224())) }, CodeECCurve, ErrForbiddenKey},
		{"secp256k1 OID", func(t *testing.T) []byte {
			return withSPKI(t, fx.ecDER, ecSPKI(t, oidParam(t, asn1.ObjectIdentifier{1, 3, 132, 0, 10}), ecPoint(t)))
		}, CodeECCurve, ErrForbiddenKey},
		{"explicit P-256 parameters", func(t *testing.T) []byte {
			return withSPKI(t, fx.ecDER, ecSPKI(t, explicitP256Params(t), ecPoint(t)))
		}, CodeECExplicitParams, ErrForbiddenKey},
		{"implicitCurve parameters", func(t *testing.T) []byte {
			return withSPKI(t, fx.ecDER, ecSPKI(t, asn1Null, ecPoint(t)))
		}, CodeECExplicitParams, ErrForbiddenKey},
		{"EC without parameters", func(t *testing.T) []byte {
			return withSPKI(t, fx.ecDER, ecSPKI(t, asn1.RawValue{}, ecPoint(t)))
		}, CodeMalformed, ErrMalformed},
		{"EC point off the curve", func(t *testing.T) []byte {
			p := bytes.Clone(ecPoint(t))
			p[len(p)-1] ^= 0x01 // y+1 or y-1: not on the curve for this x
			return withSPKI(t, fx.ecDER, ecSPKI(t, oidParam(t, oidCurveP256), p))
		}, CodeECPoint, ErrForbiddenKey},
		{"EC point at infinity", func(t *testing.T) []byte {
			return withSPKI(t, fx.ecDER, ecSPKI(t, oidParam(t, oidCurveP256), []byte{0}))
		}, CodeECPoint, ErrForbiddenKey},
		{"EC point all zero", func(t *testing.T) []byte {
			p := make([]byte, 65)
			p[0] = 4
			return withSPKI(t, fx.ecDER, ecSPKI(t, oidParam(t, oidCurveP256), p))
		}, CodeECPoint, ErrForbiddenKey},
		{"EC point compressed", func(t *testing.T) []byte {
			p := ecPoint(t)
			c := append([]byte{2 | p[64]&1}, p[1:33]...)
			return withSPKI(t, fx.ecDER, ecSPKI(t, oidParam(t, oidCurveP256), c))
		}, CodeECPoint, ErrForbiddenKey},
		{"EC point truncated", func(t *testing.T) []byte {
			return withSPKI(t, fx.ecDER, ecSPKI(t, oidParam(t, oidCurveP256), ecPoint(t)[:64]))
		}, CodeECPoint, ErrForbiddenKey},
		{"P-256 private key 1", func(t *testing.T) []byte { return newCSR(t, scalarKey(t, elliptic.P256(), big.NewInt(1))) }, CodeECSmallKey, ErrForbiddenKey},
		{"P-384 private key 2^16", func(t *testing.T) []byte { return newCSR(t, scalarKey(t, elliptic.P384(), big.NewInt(SmallKeyBound))) }, CodeECSmallKey, ErrForbiddenKey},
		{"P-256 private key n-1000", func(t *testing.T) []byte {
			d := new(big.Int).Sub(elliptic.P256().Params().N, big.NewInt(1000))
			return newCSR(t, scalarKey(t, elliptic.P256(), d))
		}, CodeECSmallKey, ErrForbiddenKey},
		{"P-256 point labelled P-384", func(t *testing.T) []byte {
			return withSPKI(t, fx.ecDER, ecSPKI(t, oidParam(t, oidCurveP384), ecPoint(t)))
		}, CodeECPoint, ErrForbiddenKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.input(t)
			cr, err := Parse(in)
			if cr != nil {
				t.Errorf("Parse returned a request with error %v", err)
			}
			wantRefusal(t, err, tt.code, tt.sentinel)
			if tt.code != CodeTooLarge && !bytes.HasPrefix(bytes.TrimSpace(in), []byte("-----")) {
				// Check refuses the same DER the same way.
				_, err := Check(&x509.CertificateRequest{Raw: in}, Policy{KeyTypes: []string{KeyECDSAP256, KeyRSA2048}})
				wantRefusal(t, err, tt.code, tt.sentinel)
			}
		})
	}
}

func rsaExp(fx *parseFixtures, n, e *big.Int) func(t *testing.T) []byte {
	return func(t *testing.T) []byte { return withSPKI(t, fx.rsaDER, rsaSPKI(t, n, e)) }
}

// resign replaces the signature algorithm and signature of der, signing
// with a hash crypto/x509 would not choose.
func resign(t *testing.T, der []byte, key *rsa.PrivateKey, h crypto.Hash, alg asn1.ObjectIdentifier) []byte {
	t.Helper()
	o := splitCSR(t, der)
	tbs, err := asn1.Marshal(o.Info)
	if err != nil {
		t.Fatal(err)
	}
	if h != crypto.SHA1 {
		t.Fatal("resign only does SHA-1")
	}
	sum := sha1.Sum(tbs)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, h, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	algDER, _ := asn1.Marshal(algorithmIdentifier{Algorithm: alg, Parameters: asn1Null})
	o.SignatureAlgorithm = asn1.RawValue{FullBytes: algDER}
	o.Signature = asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}
	return o.marshal(t)
}

func TestKeyErrorMessage(t *testing.T) {
	_, err := Parse([]byte("x"))
	if !strings.HasPrefix(err.Error(), "csr: malformed: ") {
		t.Fatalf("message %q", err)
	}
}
