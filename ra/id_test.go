package ra

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
)

// TestNewID: enrollment IDs are 22 URL-safe characters, distinct, never
// start with "-" (a CLI would read the ID as flags), carry the time they
// were made in their first 6 bytes, so that IDs made in the same
// millisecond share their first 8 characters (and sort next to each
// other), and 80 random bits after it.
func TestNewID(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	// Per random bit position, how many IDs had it set: each should be
	// about half, which a constant or missing random part would not be.
	var ones [80]int
	prev := ""
	const n = 10_000
	for i := range n {
		at := now.Add(time.Duration(i/10) * time.Millisecond) // ten IDs per millisecond
		id, err := newID(at)
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 22 || strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("ID %q is not 22 URL-safe characters", id)
		}
		if id[0] == '-' {
			t.Fatalf("ID %q starts with a dash", id)
		}
		if seen[id] {
			t.Fatalf("ID %q drawn twice", id)
		}
		seen[id] = true
		b, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil {
			t.Fatal(err)
		}
		if ms := int64(binary.BigEndian.Uint64(b[:8]) >> 16); ms != at.UnixMilli() {
			t.Fatalf("ID %q carries %d ms, made at %d", id, ms, at.UnixMilli())
		}
		if i%10 != 0 && id[:8] != prev[:8] {
			t.Fatalf("ID %q made in the same millisecond as %q has another prefix", id, prev)
		}
		prev = id
		for bit := range 80 {
			if b[6+bit/8]&(0x80>>(bit%8)) != 0 {
				ones[bit]++
			}
		}
	}
	for bit, c := range ones {
		if c < n*45/100 || c > n*55/100 {
			t.Errorf("random bit %d was set in %d of %d IDs", bit, c, n)
		}
	}
	// The first character holds the time's top bits: no dash before the
	// year 10 000, nor for a clock before 1970.
	for _, at := range []time.Time{time.Unix(0, 0), time.Unix(-1, 0), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)} {
		id, err := newID(at)
		if err != nil {
			t.Fatal(err)
		}
		if id[0] == '-' {
			t.Errorf("ID %q made at %v starts with a dash", id, at)
		}
	}
}

// TestEndKind: the event an issuance looks for to adopt (endKind) is the
// one that ends its subject's kind, for a person and for a business.
func TestEndKind(t *testing.T) {
	for _, kind := range []string{store.EventDeath, store.EventDissolution} {
		if got := endKind(RegistryEvent{Kind: kind}.subjectKind()); got != kind {
			t.Errorf("a %s ends a %s, whose end is looked for as a %s", kind, RegistryEvent{Kind: kind}.subjectKind(), got)
		}
	}
}
