package transcript

import (
	"bytes"
	"crypto"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// canonicalData encodes data as a canonical JSON object (package doc):
// encoding through map[string]any sorts keys at every depth, json.Number
// keeps numbers exactly as written, and HTML escaping is off so that
// "<" and "&" stay readable. nil becomes {}.
func canonicalData(data any) (json.RawMessage, error) {
	if data == nil {
		return json.RawMessage("{}"), nil
	}
	first, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidData, err)
	}
	// A json.RawMessage in data may repeat a member; decoding would keep
	// one copy silently, so refuse instead of choosing.
	if _, err := checkJSON(first); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidData, err)
	}
	dec := json.NewDecoder(bytes.NewReader(first))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidData, err)
	}
	obj, ok := generic.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: data is %T, not a JSON object", ErrInvalidData, generic)
	}
	if err := checkNoSecret("", obj); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidData, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// isPrivateKey reports whether v is a private key: every private key type
// in the standard library, and every crypto.Signer, has Public().
func isPrivateKey(v any) bool {
	_, ok := v.(interface{ Public() crypto.PublicKey })
	return ok
}

// secretSuffixes are the endings of member names that Append refuses
// (package doc). It is a function, not a package variable, so nothing can
// change it at run time.
func secretSuffixes() []string {
	return []string{
		"pin", "pins", "password", "passwords", "passphrase", "passwd",
		"secret", "secrets", "share", "shares", "privatekey", "privatekeys", "otp",
	}
}

// secretName reports whether a member name looks like it holds a secret.
func secretName(name string) bool {
	n := strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', '.', ' ':
			return -1
		}
		return r
	}, strings.ToLower(name))
	for _, s := range secretSuffixes() {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

// checkNoSecret walks a decoded JSON value and refuses secret-looking
// member names and PEM private keys.
func checkNoSecret(path string, v any) error {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			p := joinPath(path, k)
			if secretName(k) {
				return fmt.Errorf("%w: member %q: PINs, passwords, shares and private keys never go into a transcript", ErrSecret, p)
			}
			if err := checkNoSecret(p, x[k]); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := checkNoSecret(fmt.Sprintf("%s[%d]", path, i), e); err != nil {
				return err
			}
		}
	case string:
		if strings.Contains(x, "PRIVATE KEY-----") {
			return fmt.Errorf("%w: member %q holds a PEM private key", ErrSecret, path)
		}
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
