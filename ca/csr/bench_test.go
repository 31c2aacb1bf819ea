package csr

import (
	"crypto/elliptic"
	"crypto/rand"
	"math/big"
	"testing"
)

func BenchmarkParse(b *testing.B) {
	benchmarks := []struct {
		name string
		der  func(b *testing.B) []byte
	}{
		{"P-256", func(b *testing.B) []byte { return newCSR(b, mustECDSA(b, elliptic.P256())) }},
		{"RSA-2048", func(b *testing.B) []byte { return newCSR(b, mustRSA(b, 2048)) }},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			der := bm.der(b)
			for b.Loop() {
				if _, err := Parse(der); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInspectRSA8192 is the most work a key can ask of the
// policy-independent checks: the largest modulus, all of them passed.
func BenchmarkInspectRSA8192(b *testing.B) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 8192))
	if err != nil {
		b.Fatal(err)
	}
	n.SetBit(n, 8191, 1)
	n.SetBit(n, 0, 1)
	for smallFactor(n) != 0 {
		n.Add(n, big.NewInt(2))
	}
	spki := rsaSPKI(b, n, big.NewInt(65537))
	for b.Loop() {
		if _, err := inspectSPKI(spki); err != nil {
			b.Fatal(err)
		}
	}
}
