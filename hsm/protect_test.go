package hsm_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/hsm/hsmtest"
)

// TestFindProtectedKey: a CA key is used only if the token says it never
// left and never can leave the token, may only sign, and its public key
// object is its pair.
func TestFindProtectedKey(t *testing.T) {
	tok := hsmtest.NewToken(t).Token
	ctx := t.Context()

	// GenerateKey's key passes, and says so attribute by attribute.
	if _, err := tok.GenerateKey(ctx, hsm.KeySpec{Label: "good", Type: hsm.ECDSAP256}); err != nil {
		t.Fatal(err)
	}
	k, p, err := tok.FindProtectedKey(ctx, "good")
	if err != nil {
		t.Fatalf("a generated key: %v", err)
	}
	want := hsm.Protection{Private: true, Sensitive: true, AlwaysSensitive: true, NeverExtractable: true, Local: true}
	if p != want || k.Label() != "good" {
		t.Errorf("generated key: %+v, want %+v", p, want)
	}

	// Keys another tool could have made: each refused, naming why.
	for _, c := range []struct {
		label    string
		kt       hsm.KeyType
		override map[uint]bool
		why      []string
	}{
		{"readable", hsm.ECDSAP256, map[uint]bool{hsm.CKASensitive: false, hsm.CKAExtractable: true},
			[]string{"CKA_SENSITIVE false", "CKA_EXTRACTABLE true", "CKA_ALWAYS_SENSITIVE false", "CKA_NEVER_EXTRACTABLE false"}},
		{"wrappable", hsm.ECDSAP256, map[uint]bool{hsm.CKAExtractable: true}, []string{"CKA_EXTRACTABLE true", "CKA_NEVER_EXTRACTABLE false"}},
		{"public", hsm.ECDSAP256, map[uint]bool{hsm.CKAPrivate: false}, []string{"CKA_PRIVATE false"}},
		{"ecdh", hsm.ECDSAP256, map[uint]bool{hsm.CKADerive: true, hsm.CKADecrypt: true, hsm.CKAUnwrap: true}, []string{"CKA_DERIVE true"}},
		{"rsa-decrypt", hsm.RSA2048, map[uint]bool{hsm.CKADecrypt: true}, []string{"CKA_DECRYPT true"}},
		{"rsa-unwrap", hsm.RSA2048, map[uint]bool{hsm.CKAUnwrap: true, hsm.CKADerive: true}, []string{"CKA_UNWRAP true"}},
	} {
		if _, err := tok.GenerateKeyOverridingForTest(ctx, c.label, c.kt, c.override); err != nil {
			t.Fatalf("%s: %v", c.label, err)
		}
		_, p, err := tok.FindProtectedKey(ctx, c.label)
		if !errors.Is(err, hsm.ErrKeyExposed) {
			t.Errorf("%s key (%+v): %v, want ErrKeyExposed", c.label, p, err)
			continue
		}
		for _, w := range c.why {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s key: %q does not say %s", c.label, err, w)
			}
		}
		if n := strings.Count(err.Error(), "CKA_"); n != len(c.why) {
			t.Errorf("%s key: %q names %d attributes, want %d", c.label, err, n, len(c.why))
		}
		// FindKey (an officer's or a document signer's key) still finds it.
		if _, err := tok.FindKey(ctx, c.label); err != nil {
			t.Errorf("FindKey %s: %v", c.label, err)
		}
	}

	// An EC key that SoftHSM2 lets "decrypt" and "unwrap", as it does every
	// key made without saying otherwise (pkcs11-tool's): no such EC
	// mechanism exists, so it passes.
	if _, err := tok.GenerateKeyOverridingForTest(ctx, "ec-decrypt", hsm.ECDSAP384, map[uint]bool{hsm.CKADecrypt: true, hsm.CKAUnwrap: true}); err != nil {
		t.Fatal(err)
	}
	if _, p, err := tok.FindProtectedKey(ctx, "ec-decrypt"); err != nil || !p.Decrypt || !p.Unwrap {
		t.Errorf("EC key that may decrypt and unwrap: %+v, %v; want it found, both recorded", p, err)
	}

	// An imported key, sensitive and not extractable now, was outside once.
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.ImportECKeyForTest(ctx, "imported", priv); err != nil {
		t.Fatal(err)
	}
	_, p, err = tok.FindProtectedKey(ctx, "imported")
	if !errors.Is(err, hsm.ErrKeyExposed) || !strings.Contains(err.Error(), "CKA_ALWAYS_SENSITIVE false") || p.Local {
		t.Errorf("imported key (%+v): %v, want ErrKeyExposed for CKA_ALWAYS_SENSITIVE", p, err)
	}

	// A public key object with the key's CKA_ID holding another key: the
	// self-test finds it.
	k, err = tok.GenerateKey(ctx, hsm.KeySpec{Label: "mispaired", Type: hsm.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.ReplacePublicKeyForTest(ctx, &priv.PublicKey); err != nil {
		t.Fatal(err)
	}
	if _, _, err = tok.FindProtectedKey(ctx, "mispaired"); err == nil || !strings.Contains(err.Error(), "its pair") {
		t.Errorf("mispaired key: %v, want the self-test's failure", err)
	}
	if _, _, err := tok.FindProtectedKey(ctx, "absent"); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Errorf("absent key: %v, want ErrKeyNotFound", err)
	}
}
