package verify

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoServerCode holds the package to its promise (doc.go): an
// application that imports verify pulls in no Sanad package but this one
// and the small helper internal/strictjson (the standard library alone),
// and nothing beyond the standard library, x/crypto and go-jose.
func TestImportsNoServerCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(out)) {
		switch {
		case p == "github.com/sanadpki/sanad/verify",
			p == "github.com/sanadpki/sanad/internal/strictjson",
			strings.HasPrefix(p, "golang.org/x/crypto/"),
			strings.HasPrefix(p, "github.com/go-jose/go-jose/v4"):
		default:
			t.Errorf("verify depends on %s", p)
		}
	}
}
