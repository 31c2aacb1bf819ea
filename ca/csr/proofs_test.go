package csr

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"sync"
	"testing"
)

func TestProofs(t *testing.T) {
	p256 := mustECDSA(t, elliptic.P256())
	good := newCSR(t, p256)
	policy := func(proofs *Proofs) Policy {
		return Policy{KeyTypes: []string{KeyECDSAP256}, Proofs: proofs}
	}

	t.Run("a request that verified is remembered", func(t *testing.T) {
		proofs := NewProofs(8)
		if _, _, err := ParseAndCheck(toPEM(good), policy(proofs)); err != nil {
			t.Fatal(err)
		}
		// PEM or DER, what is remembered is the DER.
		if !proofs.seen(sha256.Sum256(good)) {
			t.Fatal("the request that verified is not remembered")
		}
		if _, _, err := ParseAndCheck(good, policy(proofs)); err != nil {
			t.Fatalf("the same request again: %v", err)
		}
	})

	t.Run("a seen request is not verified again", func(t *testing.T) {
		// Only a Proofs that skips the verification can let this one
		// through: its digest is planted, its signature is broken.
		broken := bytes.Clone(good)
		broken[len(broken)-1] ^= 1
		proofs := NewProofs(8)
		if _, _, err := ParseAndCheck(broken, policy(proofs)); err == nil {
			t.Fatal("a broken signature verified")
		}
		proofs.add(sha256.Sum256(broken))
		if _, _, err := ParseAndCheck(broken, policy(proofs)); err != nil {
			t.Fatalf("a seen request was verified again: %v", err)
		}
		if _, _, err := ParseAndCheck(broken, policy(nil)); err == nil {
			t.Fatal("without Proofs, a broken signature verified")
		}
	})

	t.Run("a request that failed is not remembered", func(t *testing.T) {
		proofs := NewProofs(8)
		broken := bytes.Clone(good)
		broken[len(broken)-1] ^= 1
		rsaKey := mustRSA(t, 2048)
		sha1 := resign(t, newCSR(t, rsaKey), rsaKey, crypto.SHA1, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5})
		for _, tt := range []struct {
			name string
			der  []byte
			code string
		}{
			{"broken signature", broken, CodeBadSignature},
			{"SHA-1", sha1, CodeSignatureAlgorithm},
		} {
			for try := range 2 {
				_, _, err := ParseAndCheck(tt.der, Policy{KeyTypes: []string{KeyECDSAP256, KeyRSA2048}, Proofs: proofs})
				wantRefusal(t, err, tt.code, ErrBadSignature)
				if proofs.seen(sha256.Sum256(tt.der)) {
					t.Fatalf("%s, try %d: remembered", tt.name, try)
				}
			}
		}
	})

	t.Run("the policy is decided every time", func(t *testing.T) {
		proofs := NewProofs(8)
		if _, _, err := ParseAndCheck(good, policy(proofs)); err != nil {
			t.Fatal(err)
		}
		_, _, err := ParseAndCheck(good, Policy{KeyTypes: []string{KeyECDSAP384}, Proofs: proofs})
		wantRefusal(t, err, CodeKeyTypeNotAllowed, ErrForbiddenKey)
		_, _, err = ParseAndCheck(good, Policy{KeyTypes: []string{KeyECDSAP256}, Forbidden: []crypto.PublicKey{p256.Public()}, Proofs: proofs})
		wantRefusal(t, err, CodeKeyIsCAKey, ErrForbiddenKey)
		cr, err := x509.ParseCertificateRequest(good)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Check(cr, Policy{KeyTypes: []string{KeyECDSAP384}, Proofs: proofs})
		wantRefusal(t, err, CodeKeyTypeNotAllowed, ErrForbiddenKey)
	})

	t.Run("two generations", func(t *testing.T) {
		proofs := NewProofs(2)
		sums := make([][sha256.Size]byte, 5)
		for i := range sums {
			sums[i] = sha256.Sum256([]byte{byte(i)})
		}
		for _, s := range sums[:3] {
			proofs.add(s)
		}
		// 0 and 1 filled the first generation, 2 started the second.
		for i, want := range []bool{true, true, true, false, false} {
			if got := proofs.seen(sums[i]); got != want {
				t.Errorf("after 3: seen(%d) = %v, want %v", i, got, want)
			}
		}
		proofs.add(sums[3])
		proofs.add(sums[4])
		// 2 and 3 filled the second, 4 started the third: 0 and 1 are gone.
		for i, want := range []bool{false, false, true, true, true} {
			if got := proofs.seen(sums[i]); got != want {
				t.Errorf("after 5: seen(%d) = %v, want %v", i, got, want)
			}
		}
		if n := len(proofs.cur) + len(proofs.prev); n > 4 {
			t.Errorf("%d entries, want at most twice the size", n)
		}
	})

	t.Run("nil and zero remember nothing", func(t *testing.T) {
		for _, proofs := range []*Proofs{nil, {}} {
			if _, _, err := ParseAndCheck(good, policy(proofs)); err != nil {
				t.Fatal(err)
			}
			if proofs.seen(sha256.Sum256(good)) {
				t.Errorf("%#v remembered a request", proofs)
			}
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		proofs := NewProofs(4)
		csrs := make([][]byte, 8)
		for i := range csrs {
			csrs[i] = newCSR(t, mustECDSA(t, elliptic.P256()))
		}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 40 {
					if _, _, err := ParseAndCheck(csrs[(g+i)%len(csrs)], policy(proofs)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}
