package ceremony_test

import (
	"bytes"
	"context"
	"crypto"
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

// forged is a key ceremony's request and transcript made outside any
// ceremony, by key (nil: a key in memory): what someone could bring to the
// root ceremony without the online HSM's witnesses.
type forged struct {
	key crypto.Signer
	// kind of ceremony, and its key step (key-generate, key-use), as the
	// transcript says them.
	kind, keyStep string
	protection    hsm.Protection
	// notIssued leaves out the step that issues the request; late puts
	// another step before the ceremony's start.
	notIssued, late bool
}

// write writes the request to csrPath and the transcript to trPath (the
// one there replaced), and returns the request's SHA-256.
func (f forged) write(t *testing.T, csrPath, trPath string) string {
	t.Helper()
	key := f.key
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: issuingName}, key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, csrPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	kt, err := hsm.KeyTypeOf(key.Public())
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
		{"ceremony-start", map[string]any{"ceremony": f.kind}},
		{"hsm-open", map[string]any{"token_label": "sanad-online"}},
		{f.keyStep, map[string]any{"label": "sanad-issuing-g1", "type": string(kt), "public_key_sha256": hexSum(spki), "protection": f.protection}},
		{"request-issue", map[string]any{"request_sha256": hexSum(der), "public_key_sha256": hexSum(spki)}},
	}
	if f.notIssued {
		steps = steps[:3]
	}
	if f.late {
		steps = append([]struct {
			step string
			data map[string]any
		}{{"note", map[string]any{"text": "begun earlier"}}}, steps...)
	}
	for _, s := range steps {
		if err := tr.Append(s.step, s.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Sign(key); err != nil {
		t.Fatal(err)
	}
	return hexSum(der)
}

// TestCertifyFromRequest: the root ceremony certifies a key made at a key
// ceremony on another token only with the request that ceremony's
// witnesses recorded (key.request_sha256), its own signed transcript, of a
// key generated there that the token said is a CA key's, for the name the
// script gives; and never the root's own key. Each refusal comes before
// any file is written.
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
	if _, err := run(base, "1-root.yaml", rootShares); err != nil {
		t.Fatal(err)
	}
	keyRes, err := run(base, "2-issuing-key.yaml", onlineShares)
	if err != nil {
		t.Fatal(err)
	}
	recordRequestSum(t, filepath.Join(base, "3-intermediate.yaml"), keyRes.RequestSHA256)
	goodCSR, err := os.ReadFile(filepath.Join(base, "out", "issuing.csr"))
	if err != nil {
		t.Fatal(err)
	}
	goodScript, err := os.ReadFile(filepath.Join(base, "3-intermediate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rootKey, err := rootTok.Token.FindKey(ctx, "sanad-root-g1")
	if err != nil {
		t.Fatal(err)
	}
	good := forged{kind: ceremony.KindKey, keyStep: "key-generate", protection: protected}
	// bring puts f's files in the place of ceremony 2's in dir; witnessed
	// also puts its request's SHA-256 in the script, as if the witnesses
	// had been shown it, so that what the files say is what is checked.
	bring := func(t *testing.T, dir string, script []byte, f forged, witnessed bool) []byte {
		t.Helper()
		sum := f.write(t, filepath.Join(dir, "out", "issuing.csr"), filepath.Join(dir, "out", "2-issuing-key.transcript.jsonl"))
		if !witnessed {
			return script
		}
		return replaceOnce(t, script, keyRes.RequestSHA256, sum)
	}
	with := func(change func(*forged)) forged { f := good; change(&f); return f }

	for _, c := range []struct {
		name string
		// change alters a copy of the state after ceremonies 1 and 2.
		change func(t *testing.T, dir string, script []byte) []byte
		want   string
	}{
		{"a key ceremony forged in full", func(t *testing.T, dir string, script []byte) []byte {
			return bring(t, dir, script, good, false)
		}, "key.request: out/issuing.csr: its SHA-256 is not key.request_sha256: it is not the request the key ceremony's witnesses recorded"},
		{"a request of another key", func(t *testing.T, dir string, script []byte) []byte {
			sum := good.write(t, filepath.Join(dir, "out", "issuing.csr"), filepath.Join(dir, "out", "other.jsonl"))
			return replaceOnce(t, script, keyRes.RequestSHA256, sum) // with ceremony 2's transcript
		}, "key.transcript: out/2-issuing-key.transcript.jsonl: not signed by the key of out/issuing.csr"},
		{"a request edited", func(t *testing.T, dir string, script []byte) []byte {
			block, _ := pem.Decode(goodCSR)
			der := bytes.Replace(block.Bytes, []byte("Sanad Issuing CA G1"), []byte("Sanad Issuing CA G2"), 1)
			if bytes.Equal(der, block.Bytes) {
				t.Fatal("the request's name moved; the test no longer edits it")
			}
			writeFile(t, filepath.Join(dir, "out", "issuing.csr"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
			return script
		}, "key.request: out/issuing.csr: its signature does not verify"},
		{"a root ceremony's transcript", func(t *testing.T, dir string, script []byte) []byte {
			return bring(t, dir, script, with(func(f *forged) { f.kind = ceremony.KindRoot }), true)
		}, `key.transcript: out/2-issuing-key.transcript.jsonl: a "root" ceremony's transcript, not a key ceremony's`},
		{"a ceremony begun before its start", func(t *testing.T, dir string, script []byte) []byte {
			return bring(t, dir, script, with(func(f *forged) { f.late = true }), true)
		}, "line 2: the ceremony starts after its first line"},
		{"a key used, not generated", func(t *testing.T, dir string, script []byte) []byte {
			return bring(t, dir, script, with(func(f *forged) { f.keyStep = "key-use" }), true)
		}, "step key-use where a key ceremony has key-generate"},
		{"a key the token said may be extracted", func(t *testing.T, dir string, script []byte) []byte {
			return bring(t, dir, script, with(func(f *forged) { f.protection.Extractable, f.protection.NeverExtractable = true, false }), true)
		}, "CKA_EXTRACTABLE true"},
		{"a key ceremony that did not issue the request", func(t *testing.T, dir string, script []byte) []byte {
			return bring(t, dir, script, with(func(f *forged) { f.notIssued = true }), true)
		}, "no request-issue step: not a complete key ceremony's transcript"},
		{"the issuer's own key", func(t *testing.T, dir string, script []byte) []byte {
			script = bring(t, dir, script, with(func(f *forged) { f.key = rootKey }), true)
			return replaceOnce(t, script, "  label: sanad-issuing-g1\n  type: ecdsa-p256\n", "")
		}, "key.request: the request's key is the issuer's own"},
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
		}, "key.transcript: required to certify a key ceremony's key"},
		{"no request SHA-256", func(t *testing.T, dir string, script []byte) []byte {
			return replaceOnce(t, script, "  request_sha256: "+keyRes.RequestSHA256+"\n", "")
		}, "key.request_sha256: required to certify a key ceremony's key"},
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

	// A key ceremony generates its key: one made before may serve another
	// purpose already (an OCSP signer's would become a CA's).
	t.Run("a key ceremony of an existing key", func(t *testing.T) {
		dir := t.TempDir()
		copyTree(t, base, dir)
		script, err := os.ReadFile(filepath.Join(dir, "2-issuing-key.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "2-issuing-key.yaml"), replaceOnce(t, script, "  type: ecdsa-p256\n", "  type: ecdsa-p256\n  existing: true\n"))
		if _, err := run(dir, "2-issuing-key.yaml", onlineShares); err == nil || !strings.Contains(err.Error(), "key.existing: a key ceremony generates its key") {
			t.Fatalf("run = %v", err)
		}
	})

	// What verify-transcript --request checks: the same as the root
	// ceremony, less what the witnesses recorded.
	if kc, err := ceremony.VerifyKeyCeremony(filepath.Join(base, "out", "issuing.csr"), keyRes.TranscriptPath); err != nil ||
		kc.RequestSHA256 != keyRes.RequestSHA256 || kc.Label != "sanad-issuing-g1" || kc.TokenLabel != onlineTok.Label || kc.PublicKeySHA256 != keyRes.KeySHA256 {
		t.Errorf("VerifyKeyCeremony = %+v, %v", kc, err)
	}
	other := filepath.Join(t.TempDir(), "other.csr")
	good.write(t, other, filepath.Join(t.TempDir(), "other.jsonl"))
	if _, err := ceremony.VerifyKeyCeremony(other, keyRes.TranscriptPath); err == nil || !strings.Contains(err.Error(), "not signed by the key of") {
		t.Errorf("VerifyKeyCeremony of another request: %v", err)
	}
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
