package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sanadpki/sanad/internal/store"
)

// TestOfficerAdmin: a person enrolls with the officer profile and two
// officers approve; until `sanad officer register` their signed requests
// are refused, after it they are served; `officer list` shows them, and
// after `officer deactivate` they are refused again. A certificate of
// another profile is not registered, and the audit log verifies.
func TestOfficerAdmin(t *testing.T) {
	requireSoftHSM(t)
	env := sanadEnv()
	dir := filepath.Join(t.TempDir(), "var")
	c := newRAClient(t, startDevEnv(t, dir, env), dir, env)
	config := filepath.Join(dir, "sanad.yaml")

	bilal := newApplicant(t, "officer", person("PK", "3520277164593", "Muhammad Bilal", "Ahmed", "1984-01-03"))
	code, e := c.enroll(bilal)
	if code != 200 || e["state"] != "pending_approval" {
		t.Fatalf("officer enrollment after proof: %d %v", code, e)
	}
	id := e["id"].(string)
	// sanad dev stores codes under its own key (ra.code_key_file).
	if fi, err := os.Stat(filepath.Join(dir, "ra-code-key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("var/ra-code-key: %v, %v", fi, err)
	}
	body, _ := json.Marshal(newApplicant(t, "citizen-sign", person("KZ", "880312448217", "Aigerim", "Sadykova", "1988-03-12")).body)
	if code, e := c.do(http.MethodPost, "/api/v1/enrollments", "application/json", body, nil); code != http.StatusCreated {
		t.Errorf("enrollment: %d %v", code, e)
	} else if stored, err := openStoreOf(t, dir, store.DriverSQLite, "").Enrollment(t.Context(), e["id"].(string)); err != nil ||
		!strings.Contains(string(stored.Proofing), `"code_hash":"hmac-sha256:`) {
		t.Errorf("stored proofing %s (%v), want the code under the key", stored.Proofing, err)
	}
	for _, o := range []string{"Dana Officer", "Yerlan Officer"} {
		if code, out := c.officer(o, "approve", id); code != 0 {
			t.Fatalf("%s approves: %d %s", o, code, out)
		}
	}
	code, e = c.do(http.MethodGet, "/api/v1/enrollments/"+id, "", nil, nil)
	if code != 200 || e["state"] != "issued" {
		t.Fatalf("officer enrollment: %d %v", code, e)
	}
	certPath, keyPath := filepath.Join(t.TempDir(), "bilal.pem"), filepath.Join(t.TempDir(), "bilal.key")
	if err := os.WriteFile(certPath, []byte(e["certificate"].(string)), 0o644); err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(bilal.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	queue := func() (int, string) {
		t.Helper()
		return runSanadEnv(t, env, "officer", "queue", "--key", keyPath, "--cert", certPath, "--url", c.dev.url)
	}
	admin := func(args ...string) (int, string) {
		t.Helper()
		return runSanadEnv(t, env, append(append([]string{"officer"}, args...), "--config", config)...)
	}

	if code, out := queue(); code != 1 || !strings.Contains(out, "not-an-officer") {
		t.Fatalf("queue before registration: %d %s", code, out)
	}
	if code, out := admin("register", certPath); code != 2 {
		t.Errorf("register without --name: %d %s", code, out)
	}
	if code, out := admin("register", certPath, "--name", "Bilal Officer"); code != 0 || !strings.Contains(out, "registered officer Bilal Officer") {
		t.Fatalf("register: %d %s", code, out)
	}
	if code, out := queue(); code != 0 {
		t.Fatalf("queue after registration: %d %s", code, out)
	}
	if code, out := admin("list"); code != 0 || !strings.Contains(out, "Bilal Officer") || !strings.Contains(out, "IDCPK-3520277164593") {
		t.Errorf("list: %d %s", code, out)
	}

	// A citizen's certificate is not an officer's.
	citizen := newApplicant(t, "citizen-auth", person("KZ", "880312448217", "Aigerim", "Sadykova", "1988-03-12"))
	if code, e = c.enroll(citizen); code != 200 || e["state"] != "issued" {
		t.Fatalf("citizen-auth: %d %v", code, e)
	}
	citizenPath := filepath.Join(t.TempDir(), "citizen.pem")
	if err := os.WriteFile(citizenPath, []byte(e["certificate"].(string)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := admin("register", citizenPath, "--name", "Aigerim"); code != 1 || !strings.Contains(out, "profile citizen-auth, not officer") {
		t.Errorf("register a citizen-auth certificate: %d %s", code, out)
	}

	if code, out := admin("deactivate", certPath, "--reason", "left the RA"); code != 0 {
		t.Fatalf("deactivate: %d %s", code, out)
	}
	if code, out := queue(); code != 1 || !strings.Contains(out, "not-an-officer") {
		t.Errorf("queue after deactivation: %d %s", code, out)
	}
	if code, out := admin("deactivate", certPath, "--reason", "again"); code != 1 || !strings.Contains(out, "already inactive") {
		t.Errorf("deactivate twice: %d %s", code, out)
	}
	if code, out := runSanadEnv(t, env, "audit", "verify", "--config", config); code != 0 {
		t.Errorf("audit verify: %d %s", code, out)
	}
}

func TestOfficerSerial(t *testing.T) {
	for in, want := range map[string]string{
		"serial=67C3183EE91CE639": "67C3183EE91CE639",
		"0x67c3183ee91ce639":      "67C3183EE91CE639",
		"7C3183EE91CE639":         "07C3183EE91CE639",
	} {
		if got := officerSerial(in); got != want {
			t.Errorf("officerSerial(%q) = %q, want %q", in, got, want)
		}
	}
}
