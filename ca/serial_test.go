package ca

import "testing"

// TestSerials draws 10 000 serials: all unique, positive, at most 16 octets
// (≤ 20 allowed), and each of the 127 bits below the cleared top bit is set
// in 45–55 % of them — the serial carries 127 random bits, well above the 64
// that RFC 5280 practice and the CA/B Forum ask for.
func TestSerials(t *testing.T) {
	const n = 10000
	seen := make(map[string]bool, n)
	var ones [128]int
	for range n {
		s, err := RandomSerial()
		if err != nil {
			t.Fatal(err)
		}
		b := s.Bytes()
		if s.Sign() <= 0 || len(b) > 16 || s.BitLen() > 127 {
			t.Fatalf("serial %x: sign %d, %d octets, %d bits", b, s.Sign(), len(b), s.BitLen())
		}
		if seen[string(b)] {
			t.Fatalf("serial %x drawn twice", b)
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
