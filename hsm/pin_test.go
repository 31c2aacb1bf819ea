package hsm_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sanadpki/sanad/hsm"
)

const testSecret = "s3cr3t-PIN-4711"

// leaks reports whether out shows the secret in any obvious encoding.
func leaks(out string) bool {
	return strings.Contains(out, testSecret) ||
		strings.Contains(strings.ToLower(out), hex.EncodeToString([]byte(testSecret))) ||
		strings.Contains(out, fmt.Sprint([]byte(testSecret)))
}

func TestPINNeverPrinted(t *testing.T) {
	pin, err := hsm.NewPIN([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	type config struct {
		Token string
		PIN   hsm.PIN
		pin   hsm.PIN // unexported: fmt cannot call its methods
	}
	cfg := config{Token: "root", PIN: pin, pin: pin}

	var textLog, jsonLog bytes.Buffer
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("open", "pin", pin, "cfg", cfg, "ptr", &cfg)
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("open", "pin", pin, "cfg", cfg, "ptr", &cfg)
	jsonCfg, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	jsonPIN, err := json.Marshal(pin)
	if err != nil {
		t.Fatal(err)
	}
	text, err := pin.MarshalText()
	if err != nil {
		t.Fatal(err)
	}

	type printCase struct {
		name         string
		out          string
		wantRedacted bool
	}
	cases := []printCase{
		{"String", pin.String(), true},
		{"GoString", pin.GoString(), true},
		{"MarshalText", string(text), true},
		{"json PIN", string(jsonPIN), true},
		{"json struct", string(jsonCfg), true},
		{"slog text", textLog.String(), true},
		{"slog json", jsonLog.String(), true},
	}
	for _, verb := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x", "%X", "%d", "%T"} {
		cases = append(cases,
			printCase{"PIN " + verb, fmt.Sprintf(verb, pin), verb != "%T"},
			// The exported field goes through PIN.Format; the unexported
			// one prints as a pointer, and a pointer to the struct as an
			// address: none may show the secret.
			printCase{"struct " + verb, fmt.Sprintf(verb, cfg), verb != "%T"},
			printCase{"pointer to struct " + verb, fmt.Sprintf(verb, &cfg), false},
		)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if leaks(tc.out) {
				t.Fatalf("output shows the PIN: %s", tc.out)
			}
			if tc.wantRedacted && !strings.Contains(tc.out, "[redacted]") {
				t.Errorf("output %q does not say [redacted]", tc.out)
			}
		})
	}
}

func TestNewPIN(t *testing.T) {
	if _, err := hsm.NewPIN(nil); err == nil {
		t.Error("NewPIN(nil) accepted an empty PIN")
	}
	if _, err := hsm.NewPIN([]byte{}); err == nil {
		t.Error("NewPIN([]byte{}) accepted an empty PIN")
	}
	in := []byte(testSecret)
	pin, err := hsm.NewPIN(in)
	if err != nil {
		t.Fatal(err)
	}
	in[0] = 'X' // NewPIN must have copied
	out := pin.Bytes()
	if string(out) != testSecret {
		t.Fatalf("Bytes() = %q, want the PIN as given", out)
	}
	out[0] = 'Y' // Bytes must return a copy
	if string(pin.Bytes()) != testSecret {
		t.Fatal("Bytes() exposes the PIN's own storage")
	}
}

func TestGeneratePIN(t *testing.T) {
	a, err := hsm.GeneratePIN()
	if err != nil {
		t.Fatal(err)
	}
	b, err := hsm.GeneratePIN()
	if err != nil {
		t.Fatal(err)
	}
	ab := a.Bytes()
	if len(ab) != 24 {
		t.Errorf("generated PIN has %d characters, want 24", len(ab))
	}
	for _, c := range ab {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			t.Errorf("generated PIN has %q, not URL-safe", c)
		}
	}
	if bytes.Equal(ab, b.Bytes()) {
		t.Error("two generated PINs are equal")
	}
}

func TestPINFromFile(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // "" means an error is expected
		errHas  []string
	}{
		{name: "plain", content: testSecret, mode: 0o600, want: testSecret},
		{name: "trailing LF", content: testSecret + "\n", mode: 0o600, want: testSecret},
		{name: "trailing CRLF", content: testSecret + "\r\n", mode: 0o400, want: testSecret},
		{name: "world readable", content: testSecret, mode: 0o644, errHas: []string{"0644"}},
		{name: "group readable", content: testSecret, mode: 0o640, errHas: []string{"0640"}},
		{name: "empty", content: "", mode: 0o600, errHas: []string{"empty"}},
		{name: "only newline", content: "\n", mode: 0o600, errHas: []string{"empty"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			pin, err := hsm.PINFromFile(path)
			if tc.want != "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := string(pin.Bytes()); got != tc.want {
					t.Fatalf("PIN = %q, want %q", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, s := range append(tc.errHas, path) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if leaks(err.Error()) {
				t.Errorf("error shows the PIN: %v", err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := hsm.PINFromFile(filepath.Join(dir, "nope"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v, want os.ErrNotExist", err)
		}
	})
}

func TestPINFromEnv(t *testing.T) {
	const name = "SANAD_TEST_HSM_PIN"
	cases := []struct {
		name  string
		set   bool
		value string
		ok    bool
	}{
		{"set", true, testSecret, true},
		{"empty", true, "", false},
		{"unset", false, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(name, tc.value)
			if !tc.set {
				os.Unsetenv(name)
			}
			pin, err := hsm.PINFromEnv(name)
			if !tc.ok {
				if err == nil {
					t.Fatal("accepted")
				}
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name the variable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(pin.Bytes()) != tc.value {
				t.Fatal("wrong PIN")
			}
		})
	}
}
