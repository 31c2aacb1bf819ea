package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sanadpki/sanad/hsm/hsmtest"
	"github.com/sanadpki/sanad/policies"
)

// TestCeremonyCommands is what a CA officer does, through the binary:
// split the PIN, check the script, run it with three custodians' share
// files, and verify the transcript.
func TestCeremonyCommands(t *testing.T) {
	tok := hsmtest.NewToken(t)
	env := tok.Env()
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, tok.PIN.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sharesDir := filepath.Join(dir, "shares") // made by split-pin
	code, out := runSanadEnv(t, env, "ceremony", "split-pin", "--token-label", tok.Label, "--shares", "5", "--threshold", "3",
		"--custodians", "Aigerim,Bilal,Chen,Дана,Erlan", "--pin-file", pinFile, "--out", sharesDir)
	if code != 0 || !strings.Contains(out, "any 3 of these 5 shares") {
		t.Fatalf("split-pin: exit %d: %s", code, out)
	}
	shares, err := filepath.Glob(filepath.Join(sharesDir, "*.json"))
	if err != nil || len(shares) != 5 || !slices.Contains(shares, filepath.Join(sharesDir, tok.Label+"-share-4-дана.json")) {
		t.Fatalf("share files: %v %v", shares, err)
	}
	// A PIN that does not open the token is not split.
	wrongPIN := filepath.Join(dir, "wrong-pin")
	if err := os.WriteFile(wrongPIN, []byte("00000000"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"a wrong PIN":     {"--token-label", tok.Label, "--pin-file", wrongPIN},
		"a missing token": {"--token-label", "no-such-token", "--pin-file", pinFile},
	} {
		if code, out := runSanadEnv(t, env, append([]string{"ceremony", "split-pin", "--shares", "2", "--threshold", "2", "--custodians", "A,B",
			"--out", filepath.Join(dir, "not-split")}, args...)...); code == 0 || !strings.Contains(out, "nothing was split") {
			t.Errorf("split-pin with %s: exit %d: %s", name, code, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "not-split")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused split-pin made its directory (%v)", err)
	}
	// Splitting again into the same directory writes nothing: a second
	// set half written beside the first would mix two splits.
	if code, out := runSanadEnv(t, env, "ceremony", "split-pin", "--token-label", tok.Label, "--shares", "5", "--threshold", "3",
		"--custodians", "Zara,Bilal,Chen,Dana,Erlan", "--pin-file", pinFile, "--out", sharesDir); code == 0 || !strings.Contains(out, "nothing was written") {
		t.Errorf("split-pin over an earlier set: exit %d: %s", code, out)
	}
	if again, _ := filepath.Glob(filepath.Join(sharesDir, "*.json")); len(again) != 5 {
		t.Errorf("split-pin over an earlier set left %d share files, want the first 5", len(again))
	}
	for _, s := range shares {
		if info, err := os.Stat(s); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v)", s, info.Mode().Perm(), err)
		}
	}

	raw, err := fs.ReadFile(policies.FS, "ceremonies/1-root.yaml")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "1-root.yaml")
	raw = bytes.ReplaceAll(raw, []byte("token_label: sanad-root"), []byte("token_label: "+tok.Label))
	if err := os.WriteFile(script, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := runSanadEnv(t, env, "ceremony", "check", script); code != 0 || !strings.Contains(out, "OK (root ceremony)") {
		t.Fatalf("check: exit %d: %s", code, out)
	}
	// Two custodians are not enough; nothing is written.
	code, out = runSanadEnv(t, env, "ceremony", "run", script, "--share", shares[0], "--share", shares[1])
	if code != 1 || !strings.Contains(out, "needs 3 custodian shares, 2 given") {
		t.Fatalf("run with two shares: exit %d: %s", code, out)
	}
	code, out = runSanadEnv(t, env, "ceremony", "run", script, "--share", shares[0], "--share", shares[2], "--share", shares[4])
	root := filepath.Join(dir, "out", "root.pem")
	transcript := filepath.Join(dir, "out", "1-root.transcript.jsonl")
	if code != 0 || !strings.Contains(out, "root ceremony complete") || !strings.Contains(out, "verify-transcript "+transcript+" --cert "+root) {
		t.Fatalf("run: exit %d: %s", code, out)
	}
	code, out = runSanadEnv(t, env, "ceremony", "verify-transcript", transcript, "--cert", root)
	if code != 0 || !strings.Contains(out, "transcript OK") || !strings.Contains(out, "Aigerim") {
		t.Fatalf("verify-transcript: exit %d: %s", code, out)
	}
	// Without --cert, it does not call the transcript OK: any key can sign
	// one and name itself.
	if code, out := runSanadEnv(t, env, "ceremony", "verify-transcript", transcript); code != 0 || strings.Contains(out, "transcript OK") ||
		!strings.Contains(out, "give --cert") {
		t.Errorf("verify-transcript without --cert: exit %d: %s", code, out)
	}
	// The same script again is refused, with the line of each output.
	if code, out := runSanadEnv(t, env, "ceremony", "check", script); code != 1 || !strings.Contains(out, "exists: a ceremony never overwrites") {
		t.Errorf("check after run: exit %d: %s", code, out)
	}

	// An edited transcript fails.
	body, err := os.ReadFile(transcript)
	if err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(dir, "tampered.jsonl")
	if err := os.WriteFile(tampered, bytes.Replace(body, []byte("Aigerim"), []byte("Mallory"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := runSanadEnv(t, env, "ceremony", "verify-transcript", tampered); code != 1 || !strings.Contains(out, "line") {
		t.Errorf("tampered transcript: exit %d: %s", code, out)
	}
	// The PIN appears in no output.
	if strings.Contains(out, string(tok.PIN.Bytes())) {
		t.Error("the PIN appears in sanad's output")
	}
}

// TestShareAnswerNotEchoed: a typed answer that is neither share JSON nor
// a file's path (a share's value pasted alone) is refused without being
// repeated; a share file's path and share JSON are read.
func TestShareAnswerNotEchoed(t *testing.T) {
	const pasted = "c2VjcmV0LXNoYXJlLXZhbHVlLW5vdC10by1iZS1lY2hvZWQ"
	if _, err := shareAnswer(pasted); err == nil || strings.Contains(err.Error(), pasted) || strings.Contains(err.Error(), pasted[:12]) {
		t.Errorf("shareAnswer(a pasted value) = %v", err)
	}
	if _, err := shareAnswer(filepath.Join(t.TempDir(), "no-such-share.json")); err == nil || strings.Contains(err.Error(), "no-such-share") {
		t.Errorf("shareAnswer(a missing path) = %v", err)
	}
	if _, err := shareAnswer(`{"not":"a share"}`); err == nil {
		t.Error("shareAnswer(JSON that is no share): no error")
	}
}
