package csr

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	mrand "math/rand/v2"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	_ "github.com/zmap/zlint/v3" // registers the lints
	"github.com/zmap/zlint/v3/lint"
)

// TestSmallKeyTables pins the generated tables (go generate rewrites the
// same bytes) and checks entries against j·G computed by crypto/ecdh: the
// first and last ones and 512 at random per curve.
func TestSmallKeyTables(t *testing.T) {
	for _, tt := range []struct {
		file, sha256 string
		curve        ecdh.Curve
		size         int
	}{
		{"p256", "f46cea890b9ea15ae5824195ca620e6d2750aaef497da1dae1e6df9ca7cce70c", ecdh.P256(), 32},
		{"p384", "c48bd12ed455048ed6b2d75faa088759ae30dfe8de6901c80c22df6f13d083f4", ecdh.P384(), 48},
		{"p521", "bcd98bdec0ec4379b0321b46a4c971c956317f495c33987f9d005377b670c6ff", ecdh.P521(), 66},
	} {
		raw, err := smallKeyFiles.ReadFile("smallkeys/" + tt.file + ".bin")
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != tt.sha256 {
			t.Errorf("%s: digest %x; regenerate with go generate or update the pin after checking why", tt.file, sum)
		}
		js := []uint64{1, 2, 3, 16, SmallKeyBound - 1, SmallKeyBound}
		rng := mrand.New(mrand.NewPCG(1, 2)) // fixed: a failure repeats
		for range 512 {
			js = append(js, 1+rng.Uint64N(SmallKeyBound))
		}
		for _, j := range js {
			k, err := tt.curve.NewPrivateKey(new(big.Int).SetUint64(j).FillBytes(make([]byte, tt.size)))
			if err != nil {
				t.Fatal(err)
			}
			x := k.PublicKey().Bytes()[1 : 1+tt.size]
			want := binary.BigEndian.Uint32(x[len(x)-4:])
			if got := binary.LittleEndian.Uint32(raw[4*(j-1):]); got != want {
				t.Fatalf("%s: entry %d is %#x, want %#x", tt.file, j, got, want)
			}
		}
	}
}

// TestSmallKeyAgreesWithZlint holds smallScalar to the zlint lint it
// replaces in issuance (ca.lintExclusions): on each curve, scalars at and
// around both ends of the bound and random ones get the same verdict.
func TestSmallKeyAgreesWithZlint(t *testing.T) {
	zl := lint.GlobalRegistry().ByName("e_ecdsa_small_private_key")
	if zl == nil {
		t.Fatal("zlint has no e_ecdsa_small_private_key")
	}
	issuerKey := mustECDSA(t, elliptic.P256())
	issuer := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign,
	}
	for _, c := range []struct {
		keyType string
		curve   elliptic.Curve
		ecdh    ecdh.Curve
	}{
		{KeyECDSAP256, elliptic.P256(), ecdh.P256()},
		{KeyECDSAP384, elliptic.P384(), ecdh.P384()},
		{KeyECDSAP521, elliptic.P521(), ecdh.P521()},
	} {
		n := c.curve.Params().N
		var scalars []*big.Int
		for _, d := range []int64{1, 2, 3, 255, 4097, SmallKeyBound - 1, SmallKeyBound, SmallKeyBound + 1, SmallKeyBound + 2, 1 << 20} {
			scalars = append(scalars, big.NewInt(d), new(big.Int).Sub(n, big.NewInt(d)))
		}
		for range 8 {
			k := mustECDSA(t, c.curve)
			scalars = append(scalars, new(big.Int).SetBytes(mustBytes(t, k)))
		}
		for _, d := range scalars {
			key := scalarKey(t, c.curve, d)
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "leaf"},
				NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), issuerKey)
			if err != nil {
				t.Fatal(err)
			}
			zc, err := zx509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			zlintSays := zl.Execute(zc, lint.NewEmptyConfig()).Status == lint.Error
			point, err := key.PublicKey.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if got := smallScalar(c.keyType, c.ecdh, point); got != zlintSays {
				t.Errorf("%s d=%v: smallScalar %v, zlint %v", c.keyType, d, got, zlintSays)
			}
		}
	}
}

func mustBytes(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	b, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
