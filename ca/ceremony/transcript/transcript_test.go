package transcript

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stepClock starts at a fixed instant and advances one minute per reading,
// so every line of a test transcript has its own time.
func stepClock() func() time.Time {
	t := time.Date(2026, 3, 1, 9, 0, 0, 0, time.FixedZone("AST", 3*3600))
	return func() time.Time {
		now := t
		t = t.Add(time.Minute)
		return now
	}
}

func keyFingerprint(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:])
}

type testKey struct {
	name string
	alg  string
	new  func(testing.TB) crypto.Signer
}

func testKeys() []testKey {
	return []testKey{
		{"ECDSA P-256", AlgECDSAP256SHA256, func(t testing.TB) crypto.Signer { return newECDSA(t, elliptic.P256()) }},
		{"ECDSA P-384", AlgECDSAP384SHA384, func(t testing.TB) crypto.Signer { return newECDSA(t, elliptic.P384()) }},
		{"RSA-2048", AlgRSAPKCS1SHA256, func(t testing.TB) crypto.Signer { return newRSA(t, 2048) }},
	}
}

func newECDSA(t testing.TB, c elliptic.Curve) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newRSA(t testing.TB, bits int) crypto.Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ceremonySteps are the steps of a small root ceremony whose key is key.
func ceremonySteps(t testing.TB, key crypto.PublicKey) []struct {
	step string
	data any
} {
	fp := keyFingerprint(t, key)
	certSum := sha256.Sum256([]byte("stand-in for the DER root certificate"))
	return []struct {
		step string
		data any
	}{
		{"ceremony-opened", map[string]any{
			"ceremony": "sanad-root-2026",
			"location": "Sanad secure room B",
			"present":  []string{"Amina Al-Farsi (ceremony administrator)", "Omar Haddad (witness)", "Layla Nasser (auditor)"},
		}},
		{"token-initialized", struct {
			Token      string   `json:"token"`
			Threshold  string   `json:"threshold"`
			Custodians []string `json:"custodians"`
		}{"sanad-root", "2 of 3", []string{"Amina Al-Farsi", "Omar Haddad", "Layla Nasser"}}},
		{"key-generated", map[string]any{"label": "root-2026", "public_key_sha256": fp}},
		{"certificate-signed", map[string]any{
			"label":              "root-2026",
			"certificate_sha256": hex.EncodeToString(certSum[:]),
			"subject":            "CN=Sanad Root CA 2026, O=Sanad, C=OM",
			"issuer_key":         map[string]any{"public_key_sha256": fp},
		}},
		{"crl-signed", map[string]any{"label": "root-2026", "crl_number": big.NewInt(1)}},
	}
}

// writeCeremony writes and signs a ceremony transcript in a new directory
// and returns its path.
func writeCeremony(t testing.TB, signer crypto.Signer) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ceremony.jsonl")
	w, err := Create(path, stepClock())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, s := range ceremonySteps(t, signer.Public()) {
		if err := w.Append(s.step, s.data); err != nil {
			t.Fatalf("Append(%q): %v", s.step, err)
		}
	}
	if err := w.Sign(signer); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return path
}

func verifyFile(t testing.TB, path string) (Result, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Verify(f)
}

func TestRoundTrip(t *testing.T) {
	for _, k := range testKeys() {
		t.Run(k.name, func(t *testing.T) {
			signer := k.new(t)
			path := writeCeremony(t, signer)
			res, err := verifyFile(t, path)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			steps := ceremonySteps(t, signer.Public())
			if got, want := len(res.Lines), len(steps)+1; got != want {
				t.Fatalf("%d lines, want %d", got, want)
			}
			for i, s := range steps {
				if res.Lines[i].Step != s.step || res.Lines[i].Seq != i+1 {
					t.Errorf("line %d: seq %d step %q, want %d %q", i+1, res.Lines[i].Seq, res.Lines[i].Step, i+1, s.step)
				}
			}
			if last := res.Lines[len(res.Lines)-1]; last.Step != "signature" {
				t.Errorf("last step %q, want signature", last.Step)
			}
			if res.Algorithm != k.alg {
				t.Errorf("Algorithm %q, want %q", res.Algorithm, k.alg)
			}
			fp := keyFingerprint(t, signer.Public())
			if res.SignerKeySHA256 != fp {
				t.Errorf("SignerKeySHA256 %s, want %s", res.SignerKeySHA256, fp)
			}
			if err := res.SignedBy(signer.Public()); err != nil {
				t.Errorf("SignedBy(signer): %v", err)
			}
			if got := res.KeyFingerprints(); len(got) != 1 || got[0] != fp {
				t.Errorf("KeyFingerprints() = %q, want [%s]", got, fp)
			}
			if want := time.Date(2026, 3, 1, 6, 5, 0, 0, time.UTC); !res.SignedAt.Equal(want) {
				t.Errorf("SignedAt %v, want %v", res.SignedAt, want)
			}

			var sum bytes.Buffer
			if err := res.Summary(&sum); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{
				"5 steps, signed", "ceremony-opened", "token-initialized", "key-generated",
				"certificate-signed", "crl-signed", "Omar Haddad (witness)", "crl_number=1",
				"public_key_sha256=" + fp, "issuer_key.public_key_sha256=" + fp,
				"certificate_sha256=", "label=root-2026", "by key SHA-256 " + fp,
			} {
				if !strings.Contains(sum.String(), want) {
					t.Errorf("Summary lacks %q:\n%s", want, sum.String())
				}
			}
		})
	}
}

// TestLineEncodingIsStable pins the bytes the writer produces: changing them
// breaks every auditor's re-implementation, so it must be a conscious,
// versioned decision.
func TestLineEncodingIsStable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.jsonl")
	w, err := Create(path, stepClock())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	steps := []struct {
		step string
		data any
	}{
		{"ceremony-opened", map[string]any{"zeta": 1, "alpha": "a<b & c", "mid": map[string]any{"y": true, "x": nil}}},
		{"crl-signed", map[string]any{"crl_number": n, "public_key_sha256": strings.Repeat("ab", 32)}},
		{"closed", nil},
	}
	for _, s := range steps {
		if err := w.Append(s.step, s.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"seq":1,"time":"2026-03-01T06:00:00Z","step":"ceremony-opened","data":{"alpha":"a<b & c","mid":{"x":null,"y":true},"zeta":1},"prev":"0000000000000000000000000000000000000000000000000000000000000000"}
{"seq":2,"time":"2026-03-01T06:01:00Z","step":"crl-signed","data":{"crl_number":123456789012345678901234567890,"public_key_sha256":"abababababababababababababababababababababababababababababababab"},"prev":"` + sha256Hex([]byte(strings.SplitN(string(got), "\n", 2)[0])) + `"}
`
	lines := strings.SplitAfter(string(got), "\n")
	if g := lines[0] + lines[1]; g != want {
		t.Errorf("encoding changed:\ngot  %s\nwant %s", g, want)
	}
	if !strings.HasPrefix(lines[2], `{"seq":3,"time":"2026-03-01T06:02:00Z","step":"closed","data":{},"prev":"`) {
		t.Errorf("line 3: %s", lines[2])
	}
}

func TestCreateRefusesExistingFile(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
	}{
		{"signed transcript", nil},
		{"empty file", []byte{}},
		{"unrelated file", []byte("not a transcript\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ceremony.jsonl")
			if tt.content == nil {
				path = writeCeremony(t, newECDSA(t, elliptic.P256()))
			} else if err := os.WriteFile(path, tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			w, err := Create(path, stepClock())
			if !errors.Is(err, fs.ErrExist) {
				t.Fatalf("Create over an existing file: %v, want fs.ErrExist", err)
			}
			if w != nil {
				t.Error("Create returned a Writer with its error")
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Error("Create changed the existing file")
			}
		})
	}
}

func TestCreateFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ceremony.jsonl")
	w, err := Create(path, stepClock())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// 0644 before the umask: no one but the owner may write.
	if perm := fi.Mode().Perm(); perm&0o022 != 0 || perm&0o100 != 0 || perm&0o400 == 0 {
		t.Errorf("mode %v, want 0644 minus the umask", perm)
	}
	if _, err := Create(path, nil); err == nil {
		t.Error("Create with a nil clock succeeded")
	}
}

func TestAppendRefuses(t *testing.T) {
	ecKey := newECDSA(t, elliptic.P256()).(*ecdsa.PrivateKey)
	tests := []struct {
		name string
		step string
		data any
		want error
	}{
		{"empty step", "", nil, ErrInvalidStep},
		{"reserved signature step", "signature", nil, ErrInvalidStep},
		{"step with space", "key generated", nil, ErrInvalidStep},
		{"step with capital", "KeyGenerated", nil, ErrInvalidStep},
		{"step with newline", "key\n", nil, ErrInvalidStep},
		{"step too long", strings.Repeat("a", 65), nil, ErrInvalidStep},
		{"data is a string", "note", "hello", ErrInvalidData},
		{"data is a list", "note", []string{"a"}, ErrInvalidData},
		{"data not encodable", "note", map[string]any{"c": make(chan int)}, ErrInvalidData},
		{"raw JSON with a repeated member", "note", map[string]any{"x": json.RawMessage(`{"a":1,"a":2}`)}, ErrInvalidData},
		{"malformed public_key_sha256", "key-generated", map[string]any{"public_key_sha256": "ABCD"}, ErrInvalidData},
		{"nested malformed public_key_sha256", "key-generated", map[string]any{"keys": []any{map[string]any{"public_key_sha256": 7}}}, ErrInvalidData},
		{"line too long", "note", map[string]any{"blob": strings.Repeat("x", maxLineBytes)}, ErrInvalidData},
		{"too deep", "note", deepData(40), ErrInvalidData},
		{"PIN", "token-initialized", map[string]any{"pin": "123456"}, ErrSecret},
		{"SO PIN", "token-initialized", map[string]any{"so-pin": "123456"}, ErrSecret},
		{"camel case user PIN", "token-initialized", map[string]any{"userPin": "123456"}, ErrSecret},
		{"password in struct", "login", struct {
			User     string `json:"user"`
			Password string `json:"password"`
		}{"amina", "hunter2"}, ErrSecret},
		{"key share nested", "shares-created", map[string]any{"custodians": []any{map[string]any{"name": "Omar", "key_share": "c2VjcmV0"}}}, ErrSecret},
		{"list of shares", "shares-created", map[string]any{"shares": []string{"AAA", "BBB"}}, ErrSecret},
		{"passphrase", "backup", map[string]any{"Backup Passphrase": "x"}, ErrSecret},
		{"PEM private key value", "backup", map[string]any{"blob": "-----BEGIN EC PRIVATE KEY-----\nMHc...\n-----END EC PRIVATE KEY-----\n"}, ErrSecret},
		{"private key as data", "key-generated", ecKey, ErrSecret},
		{"ed25519 private key as data", "key-generated", ed25519.NewKeyFromSeed(make([]byte, 32)), ErrSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.jsonl")
			w, err := Create(path, stepClock())
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if err := w.Append(tt.step, tt.data); !errors.Is(err, tt.want) {
				t.Fatalf("Append: %v, want %v", err, tt.want)
			}
			if b, _ := os.ReadFile(path); len(b) != 0 {
				t.Fatalf("a refused Append wrote %d bytes", len(b))
			}
			// The Writer is still usable after a refusal.
			if err := w.Append("note", map[string]any{"threshold": "2 of 3", "shares_required": 2, "pin_holders": []string{"Omar"}}); err != nil {
				t.Fatalf("Append after a refusal: %v", err)
			}
		})
	}
}

func deepData(depth int) any {
	var v any = "leaf"
	for range depth {
		v = map[string]any{"n": v}
	}
	return v
}

func TestSignRefuses(t *testing.T) {
	tests := []struct {
		name   string
		steps  int
		signer crypto.Signer
		want   error
	}{
		{"no steps", 0, newECDSA(t, elliptic.P256()), ErrNoSteps},
		{"ECDSA P-224", 1, newECDSA(t, elliptic.P224()), ErrUnsupportedKey},
		{"ECDSA P-521", 1, newECDSA(t, elliptic.P521()), ErrUnsupportedKey},
		{"RSA-1024", 1, newRSA(t, 1024), ErrUnsupportedKey},
		{"Ed25519", 1, ed25519.NewKeyFromSeed(make([]byte, 32)), ErrUnsupportedKey},
		{"signer fails", 1, failingSigner{newECDSA(t, elliptic.P256()), errors.New("CKR_DEVICE_ERROR")}, nil},
		{"signer returns a bad signature", 1, lyingSigner{newECDSA(t, elliptic.P256())}, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.jsonl")
			w, err := Create(path, stepClock())
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			for i := range tt.steps {
				if err := w.Append("step", map[string]any{"n": i}); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := os.ReadFile(path)
			err = w.Sign(tt.signer)
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Sign: %v, want %v", err, tt.want)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Fatal("a failed Sign wrote to the transcript")
			}
			// Nothing was written, so the ceremony can still be signed.
			if tt.steps == 0 {
				return
			}
			good := newECDSA(t, elliptic.P256())
			if err := w.Sign(good); err != nil {
				t.Fatalf("Sign after a failed Sign: %v", err)
			}
			res, err := verifyFile(t, path)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if err := res.SignedBy(good.Public()); err != nil {
				t.Error(err)
			}
		})
	}
}

type failingSigner struct {
	crypto.Signer
	err error
}

func (s failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, s.err }

// lyingSigner signs something other than the digest it is given.
type lyingSigner struct{ crypto.Signer }

func (s lyingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	other := sha256.Sum256(append([]byte("other"), digest...))
	return s.Signer.Sign(r, other[:], opts)
}

func TestWriterAfterSignOrClose(t *testing.T) {
	tests := []struct {
		name string
		end  func(*Writer, crypto.Signer) error
	}{
		{"after Sign", func(w *Writer, s crypto.Signer) error { return w.Sign(s) }},
		{"after Close", func(w *Writer, _ crypto.Signer) error { return w.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := newECDSA(t, elliptic.P256())
			w, err := Create(filepath.Join(t.TempDir(), "t.jsonl"), stepClock())
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Append("ceremony-opened", nil); err != nil {
				t.Fatal(err)
			}
			if err := tt.end(w, key); err != nil {
				t.Fatal(err)
			}
			if err := w.Append("late", nil); !errors.Is(err, ErrClosed) {
				t.Errorf("Append: %v, want ErrClosed", err)
			}
			if err := w.Sign(key); !errors.Is(err, ErrClosed) {
				t.Errorf("Sign: %v, want ErrClosed", err)
			}
			if err := w.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func TestWriteFailureIsSticky(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.jsonl")
	w, err := Create(path, stepClock())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Close the file under the Writer to make the next write fail.
	w.f.Close()
	if err := w.Append("one", nil); err == nil {
		t.Fatal("Append on a closed file succeeded")
	}
	if err := w.Append("two", nil); !errors.Is(err, ErrWriteFailed) {
		t.Errorf("Append after a failed write: %v, want ErrWriteFailed", err)
	}
	if err := w.Sign(newECDSA(t, elliptic.P256())); !errors.Is(err, ErrWriteFailed) {
		t.Errorf("Sign after a failed write: %v, want ErrWriteFailed", err)
	}
}

func TestCloseWithoutSignIsUnsigned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.jsonl")
	w, err := Create(path, stepClock())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"ceremony-opened", "key-generated", "ceremony-aborted"} {
		if err := w.Append(s, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := verifyFile(t, path)
	if !errors.Is(err, ErrUnsigned) || !strings.Contains(err.Error(), "line 3 is the last line") {
		t.Fatalf("Verify: %v, want ErrUnsigned naming line 3", err)
	}
	if len(res.Lines) != 3 || res.Lines[2].Step != "ceremony-aborted" {
		t.Errorf("unsigned Result lines: %+v", res.Lines)
	}
	if err := res.SignedBy(newECDSA(t, elliptic.P256()).Public()); !errors.Is(err, ErrUnsigned) {
		t.Errorf("SignedBy on unsigned: %v, want ErrUnsigned", err)
	}
	var sum bytes.Buffer
	if err := res.Summary(&sum); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum.String(), "NOT SIGNED") {
		t.Errorf("Summary of an unsigned transcript:\n%s", sum.String())
	}
}

func TestSummaryEscapesHostileText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.jsonl")
	w, err := Create(path, stepClock())
	if err != nil {
		t.Fatal(err)
	}
	hostile := map[string]any{
		"note":       "ok\n   7  2026-03-01T09:00:00Z  key-destroyed",
		"label":      "\x1b[2Jroot",
		"bidi":       "abc\u202edcba",
		"cert_pem":   strings.Repeat("A", 500),
		"key\nname":  "v",
		"custodians": []any{"Omar", map[string]any{"name": "Layla"}},
	}
	if err := w.Append("ceremony-opened", hostile); err != nil {
		t.Fatal(err)
	}
	if err := w.Sign(newECDSA(t, elliptic.P256())); err != nil {
		t.Fatal(err)
	}
	res, err := verifyFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	var sum bytes.Buffer
	if err := res.Summary(&sum); err != nil {
		t.Fatal(err)
	}
	s := sum.String()
	if n := strings.Count(s, "\n"); n != 3 {
		t.Errorf("summary has %d lines, want 3 (header, step, signature):\n%s", n, s)
	}
	for _, bad := range []string{"\x1b", "\u202e", strings.Repeat("A", 101)} {
		if strings.Contains(s, bad) {
			t.Errorf("summary contains %q:\n%s", bad, s)
		}
	}
	for _, want := range []string{`cert_pem=(500 bytes, see the transcript)`, `custodians[0]=Omar`, `custodians[1].name=Layla`} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestSummaryReportsWriteError(t *testing.T) {
	res, err := verifyFile(t, writeCeremony(t, newECDSA(t, elliptic.P256())))
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Summary(failWriter{}); err == nil {
		t.Error("Summary to a failing writer returned nil")
	}
}
