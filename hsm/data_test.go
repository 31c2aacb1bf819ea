package hsm_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/sanadpki/sanad/hsm/hsmtest"
)

// TestData: a data object is created, read back, replaced (one object
// left); a label with none reads as nothing; and the object is private:
// pkcs11-tool, without logging in, does not see it, and with the PIN sees
// it as Sanad's.
func TestData(t *testing.T) {
	tok := hsmtest.NewToken(t)
	ctx := t.Context()
	if got, err := tok.Token.ReadData(ctx, "sanad-audit-checkpoint"); err != nil || len(got) != 0 {
		t.Fatalf("ReadData of nothing: %q, %v", got, err)
	}
	for _, v := range []string{"first", "second, longer than the first"} {
		if err := tok.Token.WriteData(ctx, "sanad-audit-checkpoint", []byte(v)); err != nil {
			t.Fatal(err)
		}
		if got, err := tok.Token.ReadData(ctx, "sanad-audit-checkpoint"); err != nil || len(got) != 1 || string(got[0]) != v {
			t.Errorf("ReadData = %q, %v; want %q alone", got, err, v)
		}
	}
	list := func(login bool) string {
		t.Helper()
		args := []string{"--module", tok.ModulePath, "--token-label", tok.Label, "--list-objects", "--type", "data"}
		cmd := exec.Command("pkcs11-tool", args...)
		cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+tok.ConfPath)
		if login {
			cmd.Args = append(cmd.Args, "--login", "--pin", "env:PKCS11_PIN") // not in argv
			cmd.Env = append(cmd.Env, "PKCS11_PIN="+string(tok.PIN.Bytes()))
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pkcs11-tool: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := list(false); strings.Contains(out, "sanad-audit-checkpoint") {
		t.Errorf("pkcs11-tool without login sees the data object:\n%s", out)
	}
	if out := list(true); !strings.Contains(out, "sanad-audit-checkpoint") || !strings.Contains(out, "sanad") {
		t.Errorf("pkcs11-tool with login:\n%s", out)
	}
}
