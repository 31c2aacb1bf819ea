package hsm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/pkcs11"
)

// Protection is what the token says of a private key object: who may use
// it, whether its value can be read or ever could, and what else it may do
// than sign. GenerateKey's keys are private, sensitive, not extractable,
// always sensitive, never extractable, local, and may only sign.
type Protection struct {
	// Private (CKA_PRIVATE): usable only after the user logs in.
	Private bool `json:"private"`
	// Sensitive (CKA_SENSITIVE) and Extractable (CKA_EXTRACTABLE): whether
	// the token would give out the value, in clear or wrapped.
	Sensitive   bool `json:"sensitive"`
	Extractable bool `json:"extractable"`
	// AlwaysSensitive (CKA_ALWAYS_SENSITIVE) and NeverExtractable
	// (CKA_NEVER_EXTRACTABLE): whether that was so from the key's creation.
	// An imported or unwrapped key has neither: its value was outside
	// this token once.
	AlwaysSensitive  bool `json:"always_sensitive"`
	NeverExtractable bool `json:"never_extractable"`
	// Local (CKA_LOCAL): generated on this token, or a copy of such a key.
	// Recorded, not required: the first four say what matters, and
	// vendors differ in what they call local.
	Local bool `json:"local"`
	// Decrypt, Unwrap and Derive (CKA_DECRYPT, CKA_UNWRAP, CKA_DERIVE):
	// uses other than signing. An RSA CA key that may also decrypt or
	// unwrap is a signature oracle to whoever can ask it to (RSA
	// decryption is the signing operation); an EC one that may derive
	// answers ECDH, which on a point off the curve leaks the key to an
	// HSM that does not check points. EC keys have no decryption or
	// unwrapping mechanism in PKCS#11 2.40, and SoftHSM2 sets both on
	// every key not made with them false: for EC they are recorded only.
	Decrypt bool `json:"decrypt"`
	Unwrap  bool `json:"unwrap"`
	Derive  bool `json:"derive"`
}

// ErrKeyExposed is wrapped by Check and FindProtectedKey: a key that
// should be usable only inside the token, and only to sign, is not.
var ErrKeyExposed = errors.New("hsm: key not protected")

// Check returns an error wrapping ErrKeyExposed that names every way a
// key of type kt falls short of a CA key's protection, or nil.
func (p Protection) Check(kt KeyType) error {
	kp, known := kt.params() // a type not known here gets every check
	rsa, ec := !known || kp.keyType == pkcs11.CKK_RSA, !known || kp.keyType == pkcs11.CKK_EC
	var bad []string
	for _, c := range []struct {
		fails bool
		why   string
	}{
		{!p.Private, "usable without login (CKA_PRIVATE false)"},
		{!p.Sensitive, "its value is readable (CKA_SENSITIVE false)"},
		{p.Extractable, "it may be wrapped out of the token (CKA_EXTRACTABLE true)"},
		{!p.AlwaysSensitive, "its value was readable once: imported, unwrapped or made readable (CKA_ALWAYS_SENSITIVE false)"},
		{!p.NeverExtractable, "it was extractable once (CKA_NEVER_EXTRACTABLE false)"},
		{rsa && p.Decrypt, "it may also decrypt (CKA_DECRYPT true)"},
		{rsa && p.Unwrap, "it may also unwrap keys (CKA_UNWRAP true)"},
		{ec && p.Derive, "it may also derive keys (CKA_DERIVE true)"},
	} {
		if c.fails {
			bad = append(bad, c.why)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrKeyExposed, strings.Join(bad, "; "))
}

// Protection reads the private key object's protection attributes.
func (k *Key) Protection(ctx context.Context) (Protection, error) {
	types := []uint{
		pkcs11.CKA_PRIVATE, pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE, pkcs11.CKA_ALWAYS_SENSITIVE,
		pkcs11.CKA_NEVER_EXTRACTABLE, pkcs11.CKA_LOCAL, pkcs11.CKA_DECRYPT, pkcs11.CKA_UNWRAP, pkcs11.CKA_DERIVE,
	}
	var p Protection
	fields := []*bool{&p.Private, &p.Sensitive, &p.Extractable, &p.AlwaysSensitive, &p.NeverExtractable, &p.Local, &p.Decrypt, &p.Unwrap, &p.Derive}
	t := k.token
	err := t.do(ctx, 0, k, func(sh pkcs11.SessionHandle) error {
		tmpl := make([]*pkcs11.Attribute, len(types))
		for i, typ := range types {
			tmpl[i] = pkcs11.NewAttribute(typ, nil)
		}
		attrs, err := t.p11.GetAttributeValue(sh, pkcs11.ObjectHandle(k.handle.Load()), tmpl)
		if err != nil {
			return err
		}
		if len(attrs) != len(types) {
			return fmt.Errorf("asked %d attributes, got %d", len(types), len(attrs))
		}
		for i, a := range attrs {
			if a.Type != types[i] || len(a.Value) != 1 || a.Value[0] > 1 {
				return fmt.Errorf("attribute 0x%x: not a CK_BBOOL (%x)", types[i], a.Value)
			}
			*fields[i] = a.Value[0] == 1
		}
		return nil
	})
	if err != nil {
		return Protection{}, fmt.Errorf("hsm: read the protection of key %q on token %q: %w", k.label, t.label, err)
	}
	return p, nil
}

// FindProtectedKey finds a CA key: as FindKey does, then refuses it,
// wrapping ErrKeyExposed, unless the token says its value never was and
// never can be outside the token and it may only sign (Protection.Check);
// then it signs a test digest and checks it with the public key object's
// key, so a public key object that is not the private key's pair is found
// before a certificate carries it. The Protection it returns is for the
// record (a ceremony's transcript).
func (t *Token) FindProtectedKey(ctx context.Context, label string) (*Key, Protection, error) {
	k, err := t.FindKey(ctx, label)
	if err != nil {
		return nil, Protection{}, err
	}
	p, err := k.Protection(ctx)
	if err != nil {
		return nil, Protection{}, err
	}
	if err := p.Check(k.typ); err != nil {
		return nil, p, fmt.Errorf("key %q on token %q: %w", label, t.label, err)
	}
	if err := k.selfTest(ctx); err != nil {
		return nil, p, fmt.Errorf("hsm: key %q on token %q: %w (is its public key object, CKA_ID %x, its pair?)", label, t.label, err, k.id)
	}
	return k, p, nil
}
