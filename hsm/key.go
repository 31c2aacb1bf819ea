package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"

	"github.com/miekg/pkcs11"
)

// KeyType names an algorithm and size Sanad generates and signs with.
type KeyType string

// Key types.
const (
	ECDSAP256 KeyType = "ecdsa-p256"
	ECDSAP384 KeyType = "ecdsa-p384"
	RSA2048   KeyType = "rsa-2048"
	RSA3072   KeyType = "rsa-3072"
	RSA4096   KeyType = "rsa-4096"
)

// KeyTypes returns every supported key type.
func KeyTypes() []KeyType { return []KeyType{ECDSAP256, ECDSAP384, RSA2048, RSA3072, RSA4096} }

// ParseKeyType parses a key type name such as "ecdsa-p256" or "rsa-3072".
func ParseKeyType(s string) (KeyType, error) {
	kt := KeyType(s)
	if _, ok := kt.params(); ok {
		return kt, nil
	}
	names := make([]string, 0, 5)
	for _, k := range KeyTypes() {
		names = append(names, string(k))
	}
	return "", fmt.Errorf("hsm: unknown key type %q (want one of %s)", s, strings.Join(names, ", "))
}

// DER-encoded named curve OIDs for CKA_EC_PARAMS (RFC 5480 §2.1.1.1).
const (
	oidP256 = "\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07" // 1.2.840.10045.3.1.7
	oidP384 = "\x06\x05\x2b\x81\x04\x00\x22"             // 1.3.132.0.34
)

// keyParams is how a KeyType is generated and recognized.
type keyParams struct {
	keyType  uint           // CKK_EC or CKK_RSA
	curve    elliptic.Curve // EC only
	curveOID string         // EC only: CKA_EC_PARAMS
	bits     int            // RSA only: modulus size
}

func (kt KeyType) params() (keyParams, bool) {
	switch kt {
	case ECDSAP256:
		return keyParams{keyType: pkcs11.CKK_EC, curve: elliptic.P256(), curveOID: oidP256}, true
	case ECDSAP384:
		return keyParams{keyType: pkcs11.CKK_EC, curve: elliptic.P384(), curveOID: oidP384}, true
	case RSA2048:
		return keyParams{keyType: pkcs11.CKK_RSA, bits: 2048}, true
	case RSA3072:
		return keyParams{keyType: pkcs11.CKK_RSA, bits: 3072}, true
	case RSA4096:
		return keyParams{keyType: pkcs11.CKK_RSA, bits: 4096}, true
	}
	return keyParams{}, false
}

// KeyTypeOf is the key type of a public key (*ecdsa.PublicKey or
// *rsa.PublicKey): a key made elsewhere, certified from its request.
func KeyTypeOf(pub crypto.PublicKey) (KeyType, error) {
	for _, kt := range KeyTypes() {
		kp, _ := kt.params()
		switch k := pub.(type) {
		case *ecdsa.PublicKey:
			if kp.curve == k.Curve {
				return kt, nil
			}
		case *rsa.PublicKey:
			if kp.keyType == pkcs11.CKK_RSA && k.N.BitLen() == kp.bits {
				return kt, nil
			}
		}
	}
	return "", fmt.Errorf("hsm: a %T is not of a key type Sanad signs with", pub)
}

// StandIn makes a key of type kt in memory, never in the HSM: for a draft
// that stands in for an HSM key not made yet (a ceremony lints the
// certificate it will make before it generates the key), and never to
// sign anything kept.
func (kt KeyType) StandIn() (crypto.Signer, error) {
	kp, ok := kt.params()
	switch {
	case !ok:
		return nil, fmt.Errorf("hsm: key type %q", kt)
	case kp.curve != nil:
		return ecdsa.GenerateKey(kp.curve, rand.Reader)
	default:
		return rsa.GenerateKey(rand.Reader, kp.bits)
	}
}

// KeySpec describes a key pair to generate.
type KeySpec struct {
	Label string
	// ID is the CKA_ID shared by the private and public key objects; nil
	// or empty means 16 random bytes.
	ID   []byte
	Type KeyType
}

// Key is a private key inside the token, found by label. It implements
// crypto.Signer; the private key never leaves the HSM. It is safe for
// concurrent use.
type Key struct {
	token *Token
	label string
	id    []byte
	typ   KeyType
	pub   crypto.PublicKey
	// bits is the RSA modulus size (0 for EC), for PSS salt checks.
	bits int
	// mech is the mechanism for ECDSA or RSA PKCS#1 v1.5, built once so
	// the hot path allocates nothing for it.
	mech []*pkcs11.Mechanism
	// handle is the private key object handle. The HSM may invalidate it
	// (logout, closed sessions); then refind stores a fresh one.
	handle atomic.Uint64
}

// Label returns the key's CKA_LABEL.
func (k *Key) Label() string { return k.label }

// ID returns a copy of the key's CKA_ID.
func (k *Key) ID() []byte { return bytes.Clone(k.id) }

// Type returns the key type.
func (k *Key) Type() KeyType { return k.typ }

// Public returns the public key (*ecdsa.PublicKey or *rsa.PublicKey), read
// once from the token's public key object.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// GenerateKey generates a key pair in the token: the private key is a token
// object that is private, sensitive, never extractable, not copyable and may
// only sign; the public key may only verify. Both carry spec.Label and the
// CKA_ID. GenerateKey never overwrites: if any object on the token already
// has that label or that ID it fails with ErrKeyExists before generating.
// After generation it signs and verifies a test digest (ECDSA; RSA PKCS#1
// v1.5 and PSS) with Go's crypto, and destroys the pair if that fails.
func (t *Token) GenerateKey(ctx context.Context, spec KeySpec) (*Key, error) {
	kp, ok := spec.Type.params()
	if !ok {
		_, err := ParseKeyType(string(spec.Type))
		return nil, err
	}
	if spec.Label == "" {
		return nil, errors.New("hsm: generate key: empty label")
	}
	id := bytes.Clone(spec.ID)
	if len(id) == 0 {
		id = make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return nil, fmt.Errorf("hsm: generate key ID: %w", err)
		}
	}
	unreserve, err := t.lib.reserve(t.slot, spec.Label, id)
	if err != nil {
		return nil, err
	}
	defer unreserve()

	// Refuse to overwrite: nothing on the token may carry the label or the ID.
	err = t.do(ctx, 0, nil, func(sh pkcs11.SessionHandle) error {
		for _, a := range []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, spec.Label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		} {
			found, err := t.findObjects(sh, []*pkcs11.Attribute{a}, 1)
			if err != nil {
				return err
			}
			if len(found) > 0 {
				if a.Type == pkcs11.CKA_LABEL {
					return fmt.Errorf("%w: an object labelled %q is on token %q", ErrKeyExists, spec.Label, t.label)
				}
				return fmt.Errorf("%w: an object with CKA_ID %x is on token %q", ErrKeyExists, id, t.label)
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrKeyExists) {
			return nil, err
		}
		return nil, fmt.Errorf("hsm: generate key %q: look for existing objects: %w", spec.Label, err)
	}

	pubTmpl, privTmpl, mech := keyTemplates(kp, spec.Label, id)
	var pubH, privH pkcs11.ObjectHandle
	err = t.do(ctx, 0, nil, func(sh pkcs11.SessionHandle) error {
		var err error
		pubH, privH, err = t.p11.GenerateKeyPair(sh, mech, pubTmpl, privTmpl)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("hsm: generate %s key %q on token %q: %w", spec.Type, spec.Label, t.label, err)
	}

	k, err := t.loadKey(ctx, spec.Label, id, privH, pubH)
	if err == nil && k.typ != spec.Type {
		err = fmt.Errorf("token made a %s key", k.typ)
	}
	if err == nil {
		err = k.selfTest(ctx)
	}
	if err != nil {
		derr := t.do(ctx, 0, nil, func(sh pkcs11.SessionHandle) error {
			return errors.Join(t.p11.DestroyObject(sh, privH), t.p11.DestroyObject(sh, pubH))
		})
		if derr != nil {
			return nil, fmt.Errorf("hsm: new key %q failed its check (%w) and could not be destroyed: %w", spec.Label, err, derr)
		}
		return nil, fmt.Errorf("hsm: new key %q failed its check and was destroyed: %w", spec.Label, err)
	}
	return k, nil
}

// keyTemplates returns the public and private key templates and the
// generation mechanism for a key pair.
func keyTemplates(kp keyParams, label string, id []byte) (pub, priv []*pkcs11.Attribute, mech []*pkcs11.Mechanism) {
	pub = []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, kp.keyType),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY_RECOVER, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
	}
	priv = []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, kp.keyType),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_COPYABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN_RECOVER, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
	}
	switch kp.keyType {
	case pkcs11.CKK_EC:
		pub = append(pub, pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, []byte(kp.curveOID)))
		mech = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)}
	case pkcs11.CKK_RSA:
		pub = append(pub,
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, kp.bits),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
		)
		mech = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}
	}
	return pub, priv, mech
}

// FindKey finds the private key labelled label and its public key (the
// public key object with the same CKA_ID). It fails with ErrKeyNotFound if
// there is no such private key.
func (t *Token) FindKey(ctx context.Context, label string) (*Key, error) {
	if label == "" {
		return nil, errors.New("hsm: find key: empty label")
	}
	var id []byte
	var privH, pubH pkcs11.ObjectHandle
	err := t.do(ctx, 0, nil, func(sh pkcs11.SessionHandle) error {
		privs, err := t.findObjects(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		}, 2)
		if err != nil {
			return err
		}
		switch len(privs) {
		case 0:
			return fmt.Errorf("%w: %q on token %q", ErrKeyNotFound, label, t.label)
		case 1:
		default:
			return fmt.Errorf("hsm: several private keys are labelled %q on token %q", label, t.label)
		}
		privH = privs[0]
		attrs, err := t.p11.GetAttributeValue(sh, privH, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
		if err != nil {
			return err
		}
		id = attrs[0].Value
		if len(id) == 0 {
			return fmt.Errorf("hsm: private key %q on token %q has no CKA_ID", label, t.label)
		}
		pubs, err := t.findObjects(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		}, 2)
		if err != nil {
			return err
		}
		if len(pubs) != 1 {
			return fmt.Errorf("hsm: key %q on token %q: want 1 public key object with CKA_ID %x, found %d", label, t.label, id, len(pubs))
		}
		pubH = pubs[0]
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrKeyNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("hsm: find key %q: %w", label, err)
	}
	return t.loadKey(ctx, label, id, privH, pubH)
}

// loadKey builds a Key, reading the public key and key type from the token.
func (t *Token) loadKey(ctx context.Context, label string, id []byte, privH, pubH pkcs11.ObjectHandle) (*Key, error) {
	k := &Key{token: t, label: label, id: id}
	k.handle.Store(uint64(privH))
	err := t.do(ctx, 0, nil, func(sh pkcs11.SessionHandle) error {
		attrs, err := t.p11.GetAttributeValue(sh, privH, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
		if err != nil {
			return err
		}
		kt, err := attrULong(attrs[0])
		if err != nil {
			return fmt.Errorf("CKA_KEY_TYPE: %w", err)
		}
		switch kt {
		case pkcs11.CKK_EC:
			return k.readECPublic(sh, pubH)
		case pkcs11.CKK_RSA:
			return k.readRSAPublic(sh, pubH)
		default:
			return fmt.Errorf("unsupported key type CKK 0x%x", kt)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("hsm: read key %q on token %q: %w", label, t.label, err)
	}
	return k, nil
}

func (k *Key) readECPublic(sh pkcs11.SessionHandle, pubH pkcs11.ObjectHandle) error {
	attrs, err := k.token.p11.GetAttributeValue(sh, pubH, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil),
	})
	if err != nil {
		return err
	}
	var kt KeyType
	switch string(attrs[0].Value) {
	case oidP256:
		kt = ECDSAP256
	case oidP384:
		kt = ECDSAP384
	default:
		return fmt.Errorf("unsupported EC parameters %x", attrs[0].Value)
	}
	kp, _ := kt.params()
	point := ecPoint(attrs[1].Value, kp.curve)
	pub, err := ecdsa.ParseUncompressedPublicKey(kp.curve, point)
	if err != nil {
		return fmt.Errorf("CKA_EC_POINT: %w", err)
	}
	k.typ, k.pub = kt, pub
	k.mech = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}
	return nil
}

// ecPoint returns the uncompressed point in a CKA_EC_POINT value. PKCS#11
// says it is a DER OCTET STRING holding the point; some modules return the
// bare point, so accept both (the lengths tell them apart).
func ecPoint(v []byte, curve elliptic.Curve) []byte {
	want := 1 + 2*((curve.Params().BitSize+7)/8)
	if len(v) == want {
		return v
	}
	var inner []byte
	if rest, err := asn1.Unmarshal(v, &inner); err == nil && len(rest) == 0 && len(inner) == want {
		return inner
	}
	return v
}

func (k *Key) readRSAPublic(sh pkcs11.SessionHandle, pubH pkcs11.ObjectHandle) error {
	attrs, err := k.token.p11.GetAttributeValue(sh, pubH, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
	})
	if err != nil {
		return err
	}
	n := new(big.Int).SetBytes(attrs[0].Value)
	e := new(big.Int).SetBytes(attrs[1].Value)
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return fmt.Errorf("unsupported RSA public exponent %s", e)
	}
	var kt KeyType
	switch n.BitLen() {
	case 2048:
		kt = RSA2048
	case 3072:
		kt = RSA3072
	case 4096:
		kt = RSA4096
	default:
		return fmt.Errorf("unsupported RSA modulus size %d", n.BitLen())
	}
	k.typ, k.bits = kt, n.BitLen()
	k.pub = &rsa.PublicKey{N: n, E: int(e.Int64())}
	k.mech = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)}
	return nil
}

// attrULong decodes a CK_ULONG attribute value (native byte order).
func attrULong(a *pkcs11.Attribute) (uint, error) {
	switch len(a.Value) {
	case 8:
		return uint(binary.NativeEndian.Uint64(a.Value)), nil
	case 4:
		return uint(binary.NativeEndian.Uint32(a.Value)), nil
	}
	return 0, fmt.Errorf("CK_ULONG of %d bytes", len(a.Value))
}

// refind looks the private key up again by CKA_ID after the HSM invalidated
// its handle, logging in first if the session is public (a logout also
// hides private objects).
func (k *Key) refind(sh pkcs11.SessionHandle) error {
	t := k.token
	if err := t.ensureLogin(sh); err != nil {
		return err
	}
	found, err := t.findObjects(sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_ID, k.id),
	}, 2)
	if err != nil {
		return fmt.Errorf("hsm: find key %q again: %w", k.label, err)
	}
	if len(found) != 1 {
		return fmt.Errorf("hsm: find key %q again by CKA_ID %x: found %d private keys", k.label, k.id, len(found))
	}
	k.handle.Store(uint64(found[0]))
	return nil
}

// selfTest signs a random digest through the normal signing path and checks
// the signature with Go's crypto: ECDSA, or RSA PKCS#1 v1.5 and PSS.
func (k *Key) selfTest(ctx context.Context) error {
	msg := make([]byte, 32)
	if _, err := rand.Read(msg); err != nil {
		return err
	}
	digest := sha256.Sum256(msg)
	switch pub := k.pub.(type) {
	case *ecdsa.PublicKey:
		sig, err := k.SignContext(ctx, digest[:], crypto.SHA256)
		if err != nil {
			return fmt.Errorf("self-test ECDSA signature: %w", err)
		}
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			return errors.New("self-test: ECDSA signature does not verify")
		}
	case *rsa.PublicKey:
		sig, err := k.SignContext(ctx, digest[:], crypto.SHA256)
		if err != nil {
			return fmt.Errorf("self-test RSA PKCS#1 v1.5 signature: %w", err)
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			return fmt.Errorf("self-test: RSA PKCS#1 v1.5 signature does not verify: %w", err)
		}
		pss := &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: rsa.PSSSaltLengthEqualsHash}
		sig, err = k.SignContext(ctx, digest[:], pss)
		if err != nil {
			return fmt.Errorf("self-test RSA PSS signature: %w", err)
		}
		if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, pss); err != nil {
			return fmt.Errorf("self-test: RSA PSS signature does not verify: %w", err)
		}
	default:
		return fmt.Errorf("self-test: unexpected public key %T", k.pub)
	}
	return nil
}

// Destroy deletes the key pair from the token: every object with the key's
// CKA_ID (the private and the public key). It is for keys whose life is
// meant to be short, such as the one `sanad bench` measures the HSM with;
// CA keys are retired by ceremony, not destroyed by a program.
func (k *Key) Destroy(ctx context.Context) error {
	t := k.token
	err := t.do(ctx, 0, nil, func(sh pkcs11.SessionHandle) error {
		objs, err := t.findObjects(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, k.id)}, 4)
		if err != nil {
			return err
		}
		var errs []error
		for _, o := range objs {
			errs = append(errs, t.p11.DestroyObject(sh, o))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return fmt.Errorf("hsm: destroy key %q on token %q: %w", k.label, t.label, err)
	}
	return nil
}
