package hsm

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/sanadpki/sanad/internal/secretfile"
)

const redacted = "[redacted]"

// PIN is a token PIN (user or security officer). It is a secret: every way of
// turning it into text — String, GoString, fmt with any verb, MarshalText,
// MarshalJSON, slog — yields "[redacted]". The zero PIN is invalid.
//
// The secret sits behind two pointers so that even reflection-based printing
// of a struct with an unexported PIN field (where fmt cannot call Format)
// shows addresses, never the bytes: fmt prints a nested pointer as its
// address, and even its bad-verb path (%!s(*T=...)), which dereferences one
// pointer, stops at the second.
type PIN struct {
	s *pinSecret
}

type pinSecret struct {
	b *[]byte
}

func newPIN(b []byte) PIN { return PIN{s: &pinSecret{b: &b}} }

// NewPIN returns a PIN holding a copy of b. It rejects an empty PIN.
func NewPIN(b []byte) (PIN, error) {
	if len(b) == 0 {
		return PIN{}, errors.New("hsm: empty PIN")
	}
	return newPIN(bytes.Clone(b)), nil
}

// GeneratePIN returns a random 24-character URL-safe PIN (144 bits from
// crypto/rand), for development tokens and tests.
func GeneratePIN() (PIN, error) {
	var raw [18]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return PIN{}, fmt.Errorf("hsm: generate PIN: %w", err)
	}
	b := make([]byte, base64.RawURLEncoding.EncodedLen(len(raw)))
	base64.RawURLEncoding.Encode(b, raw[:])
	return newPIN(b), nil
}

// PINFromFile reads a PIN from path, trimming trailing CR and LF. It refuses a
// file that group or others may access (mode & 0o077 != 0) and an empty PIN.
func PINFromFile(path string) (PIN, error) {
	b, err := secretfile.Read("hsm: PIN file", path)
	if err != nil {
		return PIN{}, err
	}
	p, err := NewPIN(b)
	clear(b)
	if err != nil {
		return PIN{}, fmt.Errorf("hsm: PIN file %s: %w", path, err)
	}
	return p, nil
}

// PINFromEnv reads a PIN from the environment variable name. It rejects an
// unset or empty variable.
func PINFromEnv(name string) (PIN, error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return PIN{}, fmt.Errorf("hsm: PIN variable %s is not set", name)
	}
	p, err := NewPIN([]byte(v))
	if err != nil {
		return PIN{}, fmt.Errorf("hsm: PIN variable %s: %w", name, err)
	}
	return p, nil
}

// Bytes returns a copy of the secret. Its only legitimate use is writing a
// freshly generated PIN to its 0600 file (or handing it to a child process
// through its environment in tests); never log or print it.
func (p PIN) Bytes() []byte {
	if p.s == nil {
		return nil
	}
	return bytes.Clone(*p.s.b)
}

// valid reports whether p holds a secret.
func (p PIN) valid() bool { return p.s != nil && len(*p.s.b) > 0 }

// len is the secret's length in bytes.
func (p PIN) len() int {
	if p.s == nil {
		return 0
	}
	return len(*p.s.b)
}

// string returns the secret for the PKCS#11 calls, whose Go binding takes
// strings. Unexported so nothing outside this package can reach it.
func (p PIN) string() string {
	if p.s == nil {
		return ""
	}
	return string(*p.s.b)
}

// String implements fmt.Stringer.
func (PIN) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (PIN) GoString() string { return redacted }

// Format implements fmt.Formatter, so every verb (%v %+v %#v %s %q %x …)
// prints "[redacted]".
func (PIN) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalText implements encoding.TextMarshaler.
func (PIN) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalJSON implements json.Marshaler.
func (PIN) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// LogValue implements slog.LogValuer.
func (PIN) LogValue() slog.Value { return slog.StringValue(redacted) }
