package hsm_test

import (
	"crypto"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/hsm/hsmtest"
)

// BenchmarkSign compares signing through (*hsm.Key).Sign ("signer": session
// pool, checks, DigestInfo or DER conversion) with a bare C_SignInit/C_Sign
// loop on sessions of its own ("bare"), with one goroutine (g1) and with 8
// goroutines signing at once (g8; bare gives each its own session).
//
//	go test -run '^$' -bench BenchmarkSign -benchtime 2s ./hsm/
func BenchmarkSign(b *testing.B) {
	tok := hsmtest.NewToken(b)
	digest := sha256.Sum256([]byte("Sanad benchmark"))
	for _, kc := range []struct {
		name string
		typ  hsm.KeyType
	}{
		{"p256", hsm.ECDSAP256},
		{"rsa3072", hsm.RSA3072},
	} {
		k, err := tok.Token.GenerateKey(b.Context(), hsm.KeySpec{Label: "bench-" + kc.name, Type: kc.typ})
		if err != nil {
			b.Fatal(err)
		}
		// What bare hands to C_Sign: the digest for CKM_ECDSA, DigestInfo
		// || digest for CKM_RSA_PKCS (the signer builds it per call).
		bareInput := digest[:]
		if kc.typ != hsm.ECDSAP256 {
			bareInput = append(hsm.DigestInfoForTest(), digest[:]...)
		}
		for _, goroutines := range []int{1, 8} {
			g := "g1"
			if goroutines == 8 {
				g = "g8"
			}
			b.Run(kc.name+"/signer/"+g, func(b *testing.B) {
				runSigners(b, goroutines, func() (func() error, func()) {
					return func() error {
						_, err := k.Sign(nil, digest[:], crypto.SHA256)
						return err
					}, func() {}
				})
			})
			b.Run(kc.name+"/bare/"+g, func(b *testing.B) {
				runSigners(b, goroutines, func() (func() error, func()) {
					bs, err := hsm.NewBareSignerForTest(k)
					if err != nil {
						b.Fatal(err)
					}
					return func() error {
						_, err := bs.Sign(bareInput)
						return err
					}, func() { bs.Close() }
				})
			})
		}
	}
}

// runSigners runs b.N signatures spread over n goroutines, each with the
// sign func that setup returns, and reports signatures per second.
func runSigners(b *testing.B, n int, setup func() (sign func() error, done func())) {
	signs := make([]func() error, n)
	for i := range signs {
		sign, done := setup()
		defer done()
		signs[i] = sign
	}
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	for _, sign := range signs {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := sign(); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
}
