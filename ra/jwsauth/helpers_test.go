package jwsauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// testNow is the server's clock in these tests.
var testNow = time.Unix(1_800_000_000, 0)

const (
	testAudience = "/api/v1/officer/actions"
	testSkew     = 5 * time.Minute
	testNonce    = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX" // 24 bytes
)

// identity is a key and its self-signed certificate.
type identity struct {
	name string
	key  crypto.Signer
	cert *x509.Certificate
}

var (
	idOnce sync.Once
	ids    map[string]identity
)

// identities makes, once per test binary, one identity of each kind the
// tests use (RSA key generation is slow).
func identities(t testing.TB) map[string]identity {
	t.Helper()
	idOnce.Do(func() {
		ids = map[string]identity{}
		p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		rsa3072, _ := rsa.GenerateKey(rand.Reader, 3072)
		rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		for name, k := range map[string]crypto.Signer{
			"P-256": p256, "P-384": p384, "P-521": p521, "RSA-3072": rsa3072,
			"RSA-1024": rsa1024, "Ed25519": ed, "other-P-256": other,
		} {
			ids[name] = identity{name: name, key: k, cert: selfSigned(k, name)}
		}
	})
	return ids
}

func selfSigned(key crypto.Signer, name string) *x509.Certificate {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x0a1b2c),
		Subject:      pkix.Name{CommonName: "officer " + name},
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     testNow.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return cert
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func kidOf(cert *x509.Certificate) string {
	fp := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(fp[:])
}

// header is the protected header Sign makes, for a test to alter.
func headerFor(cert *x509.Certificate, alg string) map[string]any {
	return map[string]any{
		"alg": alg,
		"kid": kidOf(cert),
		"x5c": []string{base64.StdEncoding.EncodeToString(cert.Raw)},
	}
}

// validAction is an approve request that passes Parse at testNow.
func validAction() Action {
	return Action{Action: ActionApprove, Enrollment: "q3J8yq0mTnOE2w_Zc1Vf-A", Nonce: testNonce, IssuedAt: testNow.Unix(), Audience: testAudience}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// forge builds a compact JWS by hand, without go-jose, so the tests do not
// only check go-jose against itself. hdr is a map or raw JSON bytes; the
// signature is made with key under alg (as named in hdr or not), or with
// secret for HS256.
func forge(t testing.TB, hdr any, payload []byte, alg string, key crypto.Signer, secret []byte) string {
	t.Helper()
	var hb []byte
	switch h := hdr.(type) {
	case []byte:
		hb = h
	case string:
		hb = []byte(h)
	default:
		hb = mustJSON(h)
	}
	input := b64(hb) + "." + b64(payload)
	return input + "." + b64(rawSign(t, input, alg, key, secret))
}

func rawSign(t testing.TB, input, alg string, key crypto.Signer, secret []byte) []byte {
	t.Helper()
	h256 := sha256.Sum256([]byte(input))
	h384 := sha512.Sum384([]byte(input))
	switch alg {
	case "HS256":
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(input))
		return m.Sum(nil)
	case "ES256", "ES384":
		k := key.(*ecdsa.PrivateKey)
		digest, size := h256[:], 32
		if alg == "ES384" {
			digest, size = h384[:], 48
		}
		r, s, err := ecdsa.Sign(rand.Reader, k, digest)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out
	case "PS256":
		sig, err := rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, h256[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			t.Fatal(err)
		}
		return sig
	case "RS256":
		sig, err := rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, h256[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	case "none":
		return []byte{0}
	}
	t.Fatalf("rawSign: no algorithm %q", alg)
	return nil
}

// parts splits a compact JWS and decodes its parts.
func parts(t testing.TB, compact string) (hdr, payload, sig []byte) {
	t.Helper()
	p := strings.Split(compact, ".")
	if len(p) != 3 {
		t.Fatalf("%d parts", len(p))
	}
	var out [3][]byte
	for i := range p {
		b, err := base64.RawURLEncoding.DecodeString(p[i])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out[0], out[1], out[2]
}

// asn1Sig turns the r||s halves of a JWS ECDSA signature into the DER
// Ecdsa-Sig-Value openssl reads.
func asn1Sig(r, s []byte) ([]byte, error) {
	return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)})
}

// write creates path with exactly mode (whatever the umask).
func write(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
