package csr

import (
	"crypto/rand"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"testing"
)

// testdata/roca-public.pem is a real ROCA-vulnerable key, from the test
// vectors of github.com/titanous/rocacheck (CVE-2017-15361).
func TestInspectSPKIROCAGolden(t *testing.T) {
	b, err := os.ReadFile("testdata/roca-public.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("no PEM block")
	}
	_, err = inspectSPKI(block.Bytes)
	wantRefusal(t, err, CodeRSAROCA, ErrForbiddenKey)
}

func TestFermatFactorable(t *testing.T) {
	prime := func(t *testing.T, bits int) *big.Int {
		p, err := rand.Prime(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	nextPrime := func(x *big.Int) *big.Int {
		p := new(big.Int).SetBit(x, 0, 1)
		for !p.ProbablyPrime(20) {
			p.Add(p, big.NewInt(2))
		}
		return p
	}
	// expected is the round at which Fermat's method finds p and q:
	// a = (p+q)/2 minus the starting point ceil(√n).
	expected := func(p, q *big.Int) int64 {
		n := new(big.Int).Mul(p, q)
		start := new(big.Int).Sqrt(n)
		if new(big.Int).Mul(start, start).Cmp(n) != 0 {
			start.Add(start, big.NewInt(1))
		}
		a := new(big.Int).Add(p, q)
		a.Rsh(a, 1)
		return a.Sub(a, start).Int64()
	}
	tests := []struct {
		name  string
		gap   uint // q ≈ p + 2^gap
		found bool
	}{
		{"adjacent primes", 0, true},
		{"gap 2^500", 500, true},
		{"gap 2^516: found after some rounds", 516, true},
		{"gap 2^520: beyond 100 rounds", 520, false},
		{"independent primes", 1023, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := prime(t, 1024)
			var q *big.Int
			if tt.gap >= 1023 {
				q = prime(t, 1024)
			} else {
				q = nextPrime(new(big.Int).Add(p, new(big.Int).Lsh(big.NewInt(1), tt.gap)))
			}
			n := new(big.Int).Mul(p, q)
			round, found := fermatFactorable(n, FermatRounds)
			if found != tt.found {
				t.Fatalf("found = %v, want %v (expected round %d)", found, tt.found, expected(p, q))
			}
			t.Logf("round %d, expected %d", round, expected(p, q))
			if found && int64(round) != expected(p, q) {
				t.Errorf("round = %d, want %d", round, expected(p, q))
			}
		})
	}
	t.Run("perfect square", func(t *testing.T) {
		p := prime(t, 1024)
		if _, found := fermatFactorable(new(big.Int).Mul(p, p), FermatRounds); !found {
			t.Fatal("p² not found")
		}
	})
}

func TestRSAKeyType(t *testing.T) {
	tests := []struct {
		bits int
		want string
	}{
		{2048, KeyRSA2048},
		{2056, KeyRSA2048},
		{3071, KeyRSA2048},
		{3072, KeyRSA3072},
		{4095, KeyRSA3072},
		{4096, KeyRSA4096},
		{8192, KeyRSA4096},
	}
	for _, tt := range tests {
		if got := rsaKeyType(tt.bits); got != tt.want {
			t.Errorf("rsaKeyType(%d) = %q, want %q", tt.bits, got, tt.want)
		}
	}
}

func TestCheckRSAExponent(t *testing.T) {
	tests := []struct {
		name string
		e    int64
		ok   bool
	}{
		{"65537", 65537, true},
		{"65539", 65539, true},
		{"2^31-1", 1<<31 - 1, true},
		{"1", 1, false},
		{"3", 3, false},
		{"17", 17, false},
		{"65535", 65535, false},
		{"65536", 1 << 16, false},
		{"even", 65538, false},
		{"2^31+1", 1<<31 + 1, false},
		{"2^32+1", 1<<32 + 1, false},
		{"negative", -65537, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkRSAExponent(big.NewInt(tt.e))
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantRefusal(t, err, CodeRSAExponent, ErrForbiddenKey)
		})
	}
}

// Every code belongs to exactly one sentinel, and unknown codes to none.
func TestKeyErrorIs(t *testing.T) {
	sentinels := []error{ErrMalformed, ErrBadSignature, ErrForbiddenKey}
	for code, class := range codeClass {
		e := &KeyError{Code: code, Reason: "test"}
		n := 0
		for _, s := range sentinels {
			if errors.Is(e, s) {
				n++
				if s != class {
					t.Errorf("%s matches %v, want %v", code, s, class)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s matches %d sentinels", code, n)
		}
	}
	if errors.Is(&KeyError{Code: "no-such-code"}, ErrMalformed) {
		t.Error("unknown code matches a sentinel")
	}
	cause := errors.New("cause")
	if !errors.Is(&KeyError{Code: CodeMalformed, Err: cause}, cause) {
		t.Error("KeyError does not unwrap to its cause")
	}
}

func TestSquaresMod64(t *testing.T) {
	var want uint64
	for i := range uint64(64) {
		want |= 1 << (i * i % 64)
	}
	if squaresMod64 != want {
		t.Fatalf("squaresMod64 = %#x, want %#x", uint64(squaresMod64), want)
	}
}
