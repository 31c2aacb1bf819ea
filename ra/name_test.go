package ra

import "testing"

// TestSameName: case, surrounding space and Unicode composition do not make
// names differ; letters do.
func TestSameName(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"Қайрат", "Қаи\u0306рат", true}, // Й precomposed, and И + combining breve
		{"José", "Jose\u0301", true},
		{"  aigerim ", "Aigerim", true},
		{"ӘЛИЯ", "әлия", true},
		{"Айгерим", "Аигерим", false}, // Й is not И
		{"Sadykova", "Sadykov", false},
	} {
		if got := sameName(tt.a, tt.b); got != tt.same {
			t.Errorf("sameName(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
}
