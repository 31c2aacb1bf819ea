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
// at most 20 octets, starts with the time of issue in 256 ms units, and
// each of the 120 bits after it is set in 45–55 % of them — a serial
// carries 120 random bits, well above the 64 that RFC 5280 practice and
// the CA/B Forum ask for.
func TestSerials(t *testing.T) {
	const n, parallel = 10000, 64
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, raw := storetest.Open(t, "sqlite")
	authority := f.CA(t, db, audit.New(time.Now))
	csr := newCSR(t)
	serials := make([]*big.Int, n)
	start := time.Now()
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
	var ones [120]int
	end := time.Now()
	first, last := uint64(start.UnixMilli())>>8, uint64(end.UnixMilli())>>8
	prefixes := map[uint64]bool{}
	for _, s := range serials {
		b := s.Bytes()
		if s.Sign() <= 0 || len(b) != 20 || b[0] >= 0x80 {
			t.Fatalf("serial %x: sign %d, %d octets: not a 20-octet DER INTEGER", b, s.Sign(), len(b))
		}
		got := new(big.Int).Rsh(s, 120).Uint64()
		if got < first || got > last {
			t.Fatalf("serial %x starts with %x, want the time of issue, %x to %x", b, got, first, last)
		}
		prefixes[got] = true
		if seen[string(b)] {
			t.Fatalf("serial %x issued twice", b)
		}
		seen[string(b)] = true
		for i := range 120 {
			if s.Bit(i) == 1 {
				ones[i]++
			}
		}
	}
	for i := range 120 {
		if f := float64(ones[i]) / n; f < 0.45 || f > 0.55 {
			t.Errorf("bit %d set in %.1f%% of serials", i, 100*f)
		}
	}
	// The time is the clock's, to 256 ms, not the certificate's notBefore
	// (whole seconds): more distinct times than seconds went by.
	if seconds := end.Unix() - start.Unix() + 1; int64(len(prefixes)) <= seconds {
		t.Errorf("%d distinct serial times over %d seconds", len(prefixes), seconds)
	}
}

// TestNewSerialTimes: before 1970 the time is 0 (a 15-octet serial of
// random bits); today's is 20 octets whose DER INTEGER needs no leading
// zero; the last 256 ms unit that fits is taken, and from the year 6429,
// whose serial would need a 21st octet, NewSerial refuses.
func TestNewSerialTimes(t *testing.T) {
	last := time.UnixMilli((1<<39-1)<<8 + 255)
	for _, c := range []struct {
		at      time.Time
		prefix  uint64
		refused bool
	}{
		{time.Unix(-1, 0), 0, false},
		{time.Time{}, 0, false},
		{time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), uint64(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC).UnixMilli()) >> 8, false},
		{last, 1<<39 - 1, false},
		{last.Add(time.Millisecond), 0, true},
		{time.Date(6430, 1, 1, 0, 0, 0, 0, time.UTC), 0, true},
	} {
		s, err := ca.NewSerial(c.at)
		if c.refused {
			if err == nil {
				t.Errorf("%v: serial %x, want a refusal", c.at, s)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", c.at, err)
		}
		if got := new(big.Int).Rsh(s, 120).Uint64(); got != c.prefix || s.Sign() <= 0 || s.BitLen() > 159 {
			t.Errorf("%v: serial %x: time %x (want %x), %d bits", c.at, s, got, c.prefix, s.BitLen())
		}
	}
}
