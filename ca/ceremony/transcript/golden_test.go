package transcript

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sanadpki/sanad/internal/testenv"
)

func goldenNames() []string { return []string{"p256", "p384", "rsa2048"} }

// TestGoldenTranscripts verifies transcripts written by this package when it
// was first released: Verify must accept them for as long as auditors may
// read them, and Summary must keep describing them the same way.
func TestGoldenTranscripts(t *testing.T) {
	for _, name := range goldenNames() {
		t.Run(name, func(t *testing.T) {
			base := filepath.Join("testdata", "ceremony-"+name)
			res, err := verifyFile(t, base+".jsonl")
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			pemBytes, err := os.ReadFile(base + ".pub.pem")
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(pemBytes)
			if block == nil {
				t.Fatal("no PEM block")
			}
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if err := res.SignedBy(pub); err != nil {
				t.Errorf("SignedBy(the ceremony key): %v", err)
			}
			if !slices.Contains(res.KeyFingerprints(), res.SignerKeySHA256) {
				t.Errorf("signer %s not among KeyFingerprints %q", res.SignerKeySHA256, res.KeyFingerprints())
			}
			want, err := os.ReadFile(base + ".summary.txt")
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := res.Summary(&got); err != nil {
				t.Fatal(err)
			}
			if got.String() != string(want) {
				t.Errorf("Summary changed:\ngot\n%s\nwant\n%s", got.String(), want)
			}
		})
	}
}

// TestExternalJudge checks transcripts the way the package doc tells an
// auditor to, without this package's parser: the chain with
// "openssl dgst -sha256" over each line, and the signature with
// "openssl dgst -verify" over the documented message.
func TestExternalJudge(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
	type input struct {
		name string
		file func(*testing.T) []byte
	}
	var inputs []input
	for _, name := range goldenNames() {
		inputs = append(inputs, input{"golden " + name, func(t *testing.T) []byte {
			b, err := os.ReadFile(filepath.Join("testdata", "ceremony-"+name+".jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}})
	}
	for _, k := range testKeys() {
		inputs = append(inputs, input{"fresh " + k.name, func(t *testing.T) []byte {
			b, err := os.ReadFile(writeCeremony(t, k.new(t)))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}})
	}
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			dir := t.TempDir()
			run := func(args ...string) string {
				t.Helper()
				out, err := exec.CommandContext(t.Context(), openssl, args...).CombinedOutput()
				if err != nil {
					t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				return string(out)
			}
			write := func(name string, b []byte) string {
				t.Helper()
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, b, 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}

			lines := splitLines(t, in.file(t))
			prev := strings.Repeat("0", 64)
			var last map[string]json.RawMessage
			for i, line := range lines {
				var obj map[string]json.RawMessage
				if err := json.Unmarshal(line, &obj); err != nil {
					t.Fatalf("line %d: %v", i+1, err)
				}
				var gotPrev string
				if err := json.Unmarshal(obj["prev"], &gotPrev); err != nil {
					t.Fatal(err)
				}
				if gotPrev != prev {
					t.Fatalf("line %d: prev %s, openssl says %s", i+1, gotPrev, prev)
				}
				// "openssl dgst -sha256 -r" prints "<hex> *<file>".
				out := run("dgst", "-sha256", "-r", write("line", line))
				prev = strings.Fields(out)[0]
				last = obj
			}

			var seq, tm, step, data, sigPrev = string(last["seq"]), "", "", map[string]string{}, ""
			for _, f := range []struct {
				raw json.RawMessage
				dst any
			}{{last["time"], &tm}, {last["step"], &step}, {last["data"], &data}, {last["prev"], &sigPrev}} {
				if err := json.Unmarshal(f.raw, f.dst); err != nil {
					t.Fatal(err)
				}
			}
			if step != "signature" {
				t.Fatalf("last step %q", step)
			}
			msg := "sanad-ceremony-transcript-v1\n" +
				"seq " + seq + "\n" +
				"time " + tm + "\n" +
				"prev " + sigPrev + "\n" +
				"algorithm " + data["algorithm"] + "\n" +
				"public_key_sha256 " + data["public_key_sha256"] + "\n"
			spki, err := base64.StdEncoding.DecodeString(data["public_key"])
			if err != nil {
				t.Fatal(err)
			}
			sig, err := base64.StdEncoding.DecodeString(data["signature"])
			if err != nil {
				t.Fatal(err)
			}
			keyFile := write("key.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
			if got := strings.Fields(run("dgst", "-sha256", "-r", write("key.der", spki)))[0]; got != data["public_key_sha256"] {
				t.Errorf("public_key_sha256 %s, openssl says %s", data["public_key_sha256"], got)
			}
			hash := map[string]string{
				AlgECDSAP256SHA256: "-sha256", AlgECDSAP384SHA384: "-sha384", AlgRSAPKCS1SHA256: "-sha256",
			}[data["algorithm"]]
			if hash == "" {
				t.Fatalf("algorithm %q", data["algorithm"])
			}
			out := run("dgst", hash, "-verify", keyFile, "-signature", write("sig.der", sig), write("message.txt", []byte(msg)))
			if !strings.Contains(out, "Verified OK") {
				t.Errorf("openssl: %s", out)
			}
		})
	}
}
