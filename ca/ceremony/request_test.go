package ceremony_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/ceremony"
	"github.com/sanadpki/sanad/ca/ceremony/pinshare"
	"github.com/sanadpki/sanad/ca/ceremony/transcript"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/hsm/hsmtest"
)

// issuingName is the name the example key ceremony (2-issuing-key.yaml)
// asks for, encoded as the ceremony encodes it.
var issuingName = pkix.Name{CommonName: "Sanad Issuing CA G1", Organization: []string{"Sanad National PKI"}, Country: []string{"KZ"},
	ExtraNames: []pkix.AttributeTypeAndValue{{Type: profile.OIDOrganizationIdentifier, Value: "NTRKZ-240140010009"}}}

// protected is what a token says of a key GenerateKey made.
var protected = hsm.Protection{Private: true, Sensitive: true, AlwaysSensitive: true, NeverExtractable: true, Local: true}

// forgedKeyCeremony writes, with a key in memory, a request for name and a
// transcript of a ceremony of kind that made the key with protection p and
// (if issued) issued that request: what someone without the online HSM
// could bring to the root ceremony.
func forgedKeyCeremony(t *testing.T, csrPath, trPath, kind string, name pkix.Name, p hsm.Protection, issued bool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: name}, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(csrPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	hexSum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	if err := os.Remove(trPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	tr, err := transcript.Create(trPath, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	steps := []struct {
		step string
		data map[string]any
	}{
		{"ceremony-start", map[string]any{"ceremony": kind}},
		{"hsm-open", map[string]any{"token_label": "sanad-online"}},
		{"key-generate", map[string]any{"label": "sanad-issuing-g1", "type": "ecdsa-p256", "public_key_sha256": hexSum(spki), "protection": p}},
	}
	if issued {
		steps = append(steps, struct {
			step string
			data map[string]any
		}{"request-issue", map[string]any{"request_sha256": hexSum(der), "public_key_sha256": hexSum(spki)}})
	}
	for _, s := range steps {
		if err := tr.Append(s.step, s.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Sign(key); err != nil {
		t.Fatal(err)
	}
}

// TestCertifyFromRequest: the root ceremony certifies a key made at a key
// ceremony on another token only with that ceremony's own request and
// signed transcript, of a key the token said is a CA key's, for the name
// the script gives; and never the root's own key. Each refusal comes
// before any file is written.
func TestCertifyFromRequest(t *testing.T) {
	rootTok, onlineTok := hsmtest.NewToken(t), hsmtest.NewToken(t)
	rootShares, err := pinshare.Split(rootTok.PIN, rootTok.Label, []string{"Aigerim", "Bilal", "Chen"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	onlineShares, err := pinshare.Split(onlineTok.PIN, onlineTok.Label, []string{"Farida", "Gulnara"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	copyScripts(t, base, rootTok.Label, onlineTok.Label)
	ctx := context.Background()
	run := func(dir, name string, shares []pinshare.Share) (ceremony.Result, error) {
		t.Helper()
		s, err := ceremony.Load(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return ceremony.Run(ctx, s, options(t, shares))
	}
	for _, name := range []string{"1-root.yaml", "2-issuing-key.yaml"} {
		if _, err := run(base, name, map[bool][]pinshare.Share{true: rootShares, false: onlineShares}[name == "1-root.yaml"]); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	out := filepath.Join(base, "out")
	goodCSR, err := os.ReadFile(filepath.Join(out, "issuing.csr"))
	if err != nil {
		t.Fatal(err)
	}
	goodScript, err := os.ReadFile(filepath.Join(base, "3-intermediate.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		// change alters a copy of the state after ceremonies 1 and 2.
		change func(t *testing.T, dir string, script []byte) []byte
		want   string
	}{
		{"a request of another key", func(t *testing.T, dir string, script []byte) []byte {
			forgedKeyCeremony(t, filepath.Join(dir, "out", "issuing.csr"), filepath.Join(dir, "out", "other.jsonl"), ceremony.KindKey, issuingName, protected, true)
			return script // the request now goes with another transcript than its own
		}, "not signed by the key of out/issuing.csr"},
		{"a request edited", func(t *testing.T, dir string, script []byte) []byte {
			block, _ := pem.Decode(goodCSR)
			der := bytes.Replace(block.Bytes, []byte("Sanad Issuing CA G1"), []byte("Sanad Issuing CA G2"), 1)
			if bytes.Equal(der, block.Bytes) {
				t.Fatal("the request's name moved; the test no longer edits it")
			}
			writeFile(t, filepath.Join(dir, "out", "issuing.csr"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
			return script
		}, "its signature does not verify"},
		{"a root ceremony's transcript", func(t *testing.T, dir string, script []byte) []byte {
			forgedKeyCeremony(t, filepath.Join(dir, "out", "issuing.csr"), filepath.Join(dir, "out", "2-issuing-key.transcript.jsonl"), ceremony.KindRoot, issuingName, protected, true)
			return script
		}, `a "root" ceremony's transcript, not a key ceremony's`},
		{"a key the token said may be extracted", func(t *testing.T, dir string, script []byte) []byte {
			p := protected
			p.Extractable, p.NeverExtractable = true, false
			forgedKeyCeremony(t, filepath.Join(dir, "out", "issuing.csr"), filepath.Join(dir, "out", "2-issuing-key.transcript.jsonl"), ceremony.KindKey, issuingName, p, true)
			return script
		}, "CKA_EXTRACTABLE true"},
		{"a key ceremony that did not issue the request", func(t *testing.T, dir string, script []byte) []byte {
			forgedKeyCeremony(t, filepath.Join(dir, "out", "issuing.csr"), filepath.Join(dir, "out", "2-issuing-key.transcript.jsonl"), ceremony.KindKey, issuingName, protected, false)
			return script
		}, "the key ceremony did not issue out/issuing.csr"},
		{"another label", func(t *testing.T, dir string, script []byte) []byte {
			return replaceOnce(t, script, "label: sanad-issuing-g1", "label: sanad-issuing-g2")
		}, `key.label: "sanad-issuing-g2", but the key ceremony labelled the key "sanad-issuing-g1"`},
		{"another type", func(t *testing.T, dir string, script []byte) []byte {
			return replaceOnce(t, script, "type: ecdsa-p256", "type: ecdsa-p384")
		}, `key.type: "ecdsa-p384", but the request's key is ecdsa-p256`},
		{"another name", func(t *testing.T, dir string, script []byte) []byte {
			return replaceOnce(t, script, "common_name: Sanad Issuing CA G1", "common_name: Sanad Issuing CA G9")
		}, "certificate.subject: the request out/issuing.csr asks for"},
		{"a key made here too", func(t *testing.T, dir string, script []byte) []byte {
			return replaceOnce(t, script, "  type: ecdsa-p256\n", "  type: ecdsa-p256\n  existing: true\n")
		}, "key.existing: a requested key is on another token"},
		{"no transcript", func(t *testing.T, dir string, script []byte) []byte {
			return replaceOnce(t, script, "  transcript: out/2-issuing-key.transcript.jsonl\n", "")
		}, "key.transcript: required with key.request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, base, dir)
			writeFile(t, filepath.Join(dir, "3-intermediate.yaml"), c.change(t, dir, bytes.Clone(goodScript)))
			_, err := run(dir, "3-intermediate.yaml", rootShares)
			var ps ceremony.Problems
			if !errors.As(err, &ps) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("run = %v; want problems with %q", err, c.want)
			}
			for _, f := range []string{"issuing.pem", "3-intermediate.transcript.jsonl"} {
				if _, err := os.Stat(filepath.Join(dir, "out", f)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s written: %v", f, err)
				}
			}
		})
	}

	// The root's own key, brought as a request: a key ceremony may use an
	// existing key, and the root's is one. Refused before the transcript.
	t.Run("the issuer's own key", func(t *testing.T) {
		dir := t.TempDir()
		copyTree(t, base, dir)
		keyScript, err := os.ReadFile(filepath.Join(dir, "2-issuing-key.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		keyScript = replaceOnce(t, keyScript, "token_label: "+onlineTok.Label, "token_label: "+rootTok.Label)
		keyScript = replaceOnce(t, keyScript, "pin: {shares: 2}", "pin: {shares: 3}")
		keyScript = replaceOnce(t, keyScript, "  label: sanad-issuing-g1\n  type: ecdsa-p256\n", "  label: sanad-root-g1\n  type: ecdsa-p384\n  existing: true\n")
		keyScript = replaceOnce(t, keyScript, "output: out/issuing.csr", "output: out/root.csr")
		keyScript = replaceOnce(t, keyScript, "transcript: out/2-issuing-key.transcript.jsonl", "transcript: out/root-key.transcript.jsonl")
		writeFile(t, filepath.Join(dir, "root-key.yaml"), keyScript)
		if _, err := run(dir, "root-key.yaml", rootShares); err != nil {
			t.Fatal(err)
		}
		script := replaceOnce(t, bytes.Clone(goodScript), "request: out/issuing.csr", "request: out/root.csr")
		script = replaceOnce(t, script, "transcript: out/2-issuing-key.transcript.jsonl", "transcript: out/root-key.transcript.jsonl")
		script = replaceOnce(t, script, "  label: sanad-issuing-g1\n  type: ecdsa-p256\n", "")
		writeFile(t, filepath.Join(dir, "3-intermediate.yaml"), script)
		if _, err := run(dir, "3-intermediate.yaml", rootShares); err == nil || !strings.Contains(err.Error(), `the request's key is the issuer's own key "sanad-root-g1"`) {
			t.Fatalf("run = %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "out", "3-intermediate.transcript.jsonl")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("transcript begun: %v", err)
		}
	})
}

func replaceOnce(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if bytes.Count(b, []byte(old)) != 1 {
		t.Fatalf("%q is not once in:\n%s", old, b)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies the regular files under src into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
