package ca_test

import (
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestSerials issues 10 000 certificates through ca.Issue, 64 at a time:
// every serial is unique (in the certificates and in the store), positive,
// at most 16 octets (≤ 20 allowed), and each of the 127 bits below the
// cleared top bit is set in 45–55 % of them — a serial carries 127 random
// bits, well above the 64 that RFC 5280 practice and the CA/B Forum ask
// for.
func TestSerials(t *testing.T) {
	const n, parallel = 10000, 64
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, raw := storetest.Open(t, "sqlite")
	authority := f.CA(t, db, audit.New(time.Now))
	csr := newCSR(t)
	serials := make([]*big.Int, n)
	var wg sync.WaitGroup
	for w := range parallel {
		wg.Go(func() {
			for i := w; i < n; i += parallel {
				c, err := authority.Issue(t.Context(), ca.Request{Profile: "citizen-auth", CSR: csr, Verified: person, Actor: "test"})
				if err != nil {
					t.Error(err)
					return
				}
				serials[i] = c.SerialNumber
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var stored int
	if err := raw.QueryRowContext(t.Context(), `SELECT count(DISTINCT serial) FROM certificates WHERE issuer_id = ?`, f.Issuer.ID).Scan(&stored); err != nil || stored != n {
		t.Fatalf("distinct serials stored: %d (%v), want %d", stored, err, n)
	}
	seen := make(map[string]bool, n)
	var ones [128]int
	for _, s := range serials {
		b := s.Bytes()
		if s.Sign() <= 0 || len(b) > 16 || s.BitLen() > 127 {
			t.Fatalf("serial %x: sign %d, %d octets, %d bits", b, s.Sign(), len(b), s.BitLen())
		}
		if seen[string(b)] {
			t.Fatalf("serial %x issued twice", b)
		}
		seen[string(b)] = true
		for i := range 127 {
			if s.Bit(i) == 1 {
				ones[i]++
			}
		}
	}
	for i := range 127 {
		if f := float64(ones[i]) / n; f < 0.45 || f > 0.55 {
			t.Errorf("bit %d set in %.1f%% of serials", i, 100*f)
		}
	}
}
