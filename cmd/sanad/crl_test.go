package main

import (
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCRLImport: after sanad dev (which stored the root's CRL number 1),
// an offline ceremony signs root CRL number 2 with the dev token's root key
// and `sanad crl import` stores it, audited; the same CRL again, a CRL for
// another issuer, an unknown issuer and a file that is no CRL are refused.
func TestCRLImport(t *testing.T) {
	requireSoftHSM(t)
	dir := filepath.Join(t.TempDir(), "var")
	env := sanadEnv()
	startDevEnv(t, dir, env).stop(t)
	cfg := filepath.Join(dir, "sanad.yaml")

	// The ceremony for CRL 2.
	runDevCeremonyVariant(t, env, dir, "5-root-crl.yaml", "6-root-crl.yaml", "number: 1", "number: 2", "root-1.crl", "root-2.crl",
		"5-root-crl.transcript", "6-root-crl.transcript", "CRL number 1", "CRL number 2")
	crl2 := filepath.Join(dir, "pki", "root-2.crl")

	refused := map[string][]string{
		"the stored CRL again": {"--issuer", "root", filepath.Join(dir, "pki", "root-1.crl")},
		"another issuer's":     {"--issuer", "issuing", crl2},
		"an unknown issuer":    {"--issuer", "nope", crl2},
		"not a CRL":            {"--issuer", "root", filepath.Join(dir, "pki", "root.pem")},
	}
	events := func() int64 {
		t.Helper()
		code, out := runSanadEnv(t, env, "audit", "verify", "--config", cfg, "--json")
		var r struct {
			Events int64 `json:"events"`
		}
		if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &r); code != 0 || err != nil {
			t.Fatalf("audit verify: exit %d, %v\n%s", code, err, out)
		}
		return r.Events
	}
	before := events()
	for name, args := range refused {
		if code, out := runSanadEnv(t, env, append([]string{"crl", "import", "--config", cfg}, args...)...); code != 1 {
			t.Errorf("%s: exit %d\n%s", name, code, out)
		}
	}
	if code, out := runSanadEnv(t, env, "crl", "import", "--config", cfg, "--issuer", "root", crl2); code != 0 || !strings.Contains(out, "stored CRL number 2 of root") {
		t.Fatalf("import CRL 2: exit %d\n%s", code, out)
	}
	if got := events() - before; got != 1 {
		t.Errorf("%d audit events for the refused imports and the import, want 1 (crl.import)", got)
	}
	// Served by the status role, and the audit log holds the import.
	p := startDevEnv(t, dir, env)
	defer p.stop(t)
	code, body := httpGet(t, p.url+"/crl/root.crl")
	rl, err := x509.ParseRevocationList([]byte(body))
	if code != 200 || err != nil || rl.Number.Int64() != 2 {
		t.Fatalf("GET /crl/root.crl: %d, %v", code, err)
	}
}

// runDevCeremonyVariant runs, with `sanad ceremony run` on the dev token
// of dir, a copy (named to) of the dev ceremony script from with the
// replacements (old, new, …) made: the custodians' share is a one-of-one
// split of the dev PIN.
func runDevCeremonyVariant(t *testing.T, env []string, dir, from, to string, replacements ...string) {
	t.Helper()
	shares := t.TempDir()
	if code, out := runSanadEnv(t, env, "ceremony", "split-pin", "--token-label", "sanad-dev", "--shares", "1", "--threshold", "1",
		"--custodians", "Dev", "--pin-file", filepath.Join(dir, "hsm-pin"), "--out", shares); code != 0 {
		t.Fatalf("split-pin: exit %d\n%s", code, out)
	}
	shareFiles, err := filepath.Glob(filepath.Join(shares, "*.json"))
	if err != nil || len(shareFiles) != 1 {
		t.Fatalf("share files %v, %v", shareFiles, err)
	}
	script, err := os.ReadFile(filepath.Join(dir, "ceremonies", from))
	if err != nil {
		t.Fatal(err)
	}
	scriptPath := filepath.Join(dir, "ceremonies", to)
	if err := os.WriteFile(scriptPath, []byte(strings.NewReplacer(replacements...).Replace(string(script))), 0o600); err != nil {
		t.Fatal(err)
	}
	ceremonyEnv := append(env[:len(env):len(env)], "SOFTHSM2_CONF="+filepath.Join(dir, "softhsm2.conf"))
	if code, out := runSanadEnv(t, ceremonyEnv, "ceremony", "run", scriptPath, "--share", shareFiles[0]); code != 0 {
		t.Fatalf("ceremony run %s: exit %d\n%s", to, code, out)
	}
}
