package ra

import (
	"strings"
	"testing"
)

// TestNewID: enrollment IDs are 22 URL-safe characters, distinct, and
// never start with "-" (a CLI would read the ID as flags). 10 000 draws
// would meet about 156 leading dashes without the rule.
func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 10_000 {
		id, err := newID()
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
	}
}
