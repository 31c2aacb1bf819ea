package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/asn1"
	"errors"

	"github.com/miekg/pkcs11"
)

// Hooks into the PKCS#11 context for the external tests (package hsm_test),
// which cannot import PKCS#11 themselves.

// CloseAllSessionsForTest calls C_CloseAllSessions on the token's slot,
// behind the pool's back, as a crashed HSM connection would.
func (t *Token) CloseAllSessionsForTest() error {
	return t.p11.CloseAllSessions(t.slot)
}

// LogoutForTest calls C_Logout, which logs out every session of the process
// on the token.
func (t *Token) LogoutForTest() error {
	sh, err := t.p11.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		return err
	}
	defer t.p11.CloseSession(sh)
	return t.p11.Logout(sh)
}

// SetPINForTest changes the token's user PIN from old to new (C_SetPIN in
// a logged-in session), as an operator would on the HSM.
func (t *Token) SetPINForTest(old, new string) error {
	return t.do(context.Background(), 0, nil, func(sh pkcs11.SessionHandle) error {
		return t.p11.SetPIN(sh, old, new)
	})
}

// IsPKCS11Error reports whether err wraps the PKCS#11 return value rv
// (a CKR_* constant).
func IsPKCS11Error(err error, rv uint) bool {
	return errors.Is(err, pkcs11.Error(rv))
}

// CKR codes the external tests check for, and CKA attributes they set.
const (
	CKRPINIncorrect = pkcs11.CKR_PIN_INCORRECT

	CKAPrivate     = pkcs11.CKA_PRIVATE
	CKASensitive   = pkcs11.CKA_SENSITIVE
	CKAExtractable = pkcs11.CKA_EXTRACTABLE
	CKADerive      = pkcs11.CKA_DERIVE
	CKADecrypt     = pkcs11.CKA_DECRYPT
	CKAUnwrap      = pkcs11.CKA_UNWRAP
)

// BareSigner signs with a key directly through C_SignInit/C_Sign on a
// session of its own, bypassing the pool, mechanism selection, digest
// checks and DER conversion: the baseline of BenchmarkSign.
type BareSigner struct {
	p11    *pkcs11.Ctx
	sh     pkcs11.SessionHandle
	mech   []*pkcs11.Mechanism
	handle pkcs11.ObjectHandle
}

// NewBareSignerForTest opens a session for k's token. For ECDSA it signs
// with CKM_ECDSA (raw r||s out), for RSA with CKM_RSA_PKCS (the caller
// passes DigestInfo || digest).
func NewBareSignerForTest(k *Key) (*BareSigner, error) {
	t := k.token
	sh, err := t.p11.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		return nil, err
	}
	mech := pkcs11.CKM_ECDSA
	if k.bits != 0 {
		mech = pkcs11.CKM_RSA_PKCS
	}
	return &BareSigner{
		p11:    t.p11,
		sh:     sh,
		mech:   []*pkcs11.Mechanism{pkcs11.NewMechanism(uint(mech), nil)},
		handle: pkcs11.ObjectHandle(k.handle.Load()),
	}, nil
}

// Sign is one C_SignInit + C_Sign.
func (b *BareSigner) Sign(input []byte) ([]byte, error) {
	if err := b.p11.SignInit(b.sh, b.mech, b.handle); err != nil {
		return nil, err
	}
	return b.p11.Sign(b.sh, input)
}

// Close closes the session.
func (b *BareSigner) Close() error { return b.p11.CloseSession(b.sh) }

// DigestInfoForTest returns the PKCS#1 v1.5 DigestInfo prefix for SHA-256.
func DigestInfoForTest() []byte {
	hp, _ := hashParamsOf(crypto.SHA256)
	return []byte(hp.digestInfo)
}

// HoldSessionForTest borrows a session from the pool and keeps it until
// the returned func is called, to exhaust the pool.
func (t *Token) HoldSessionForTest() (release func(), err error) {
	sh, err := t.acquire(context.Background(), 0)
	if err != nil {
		return nil, err
	}
	return func() { t.release(sh) }, nil
}

// LoggedInForTest reports whether the process is logged in to the token as
// the user, from a fresh session outside the pool.
func (t *Token) LoggedInForTest() (bool, error) {
	sh, err := t.p11.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		return false, err
	}
	defer t.p11.CloseSession(sh)
	si, err := t.p11.GetSessionInfo(sh)
	if err != nil {
		return false, err
	}
	return si.State == pkcs11.CKS_RO_USER_FUNCTIONS || si.State == pkcs11.CKS_RW_USER_FUNCTIONS, nil
}

// RecoveriesForTest returns how often the token recovered a lost session, a
// logout and a stale key handle.
func (t *Token) RecoveriesForTest() (session, login, handle uint64) {
	return t.recovered[0].Load(), t.recovered[1].Load(), t.recovered[2].Load()
}

// GenerateKeyOverridingForTest generates a key pair as GenerateKey does,
// with the private key template's boolean attributes in override (CKA_* to
// value) replaced or added: a key made the way another tool might make it.
func (t *Token) GenerateKeyOverridingForTest(ctx context.Context, label string, kt KeyType, override map[uint]bool) (*Key, error) {
	kp, _ := kt.params()
	id := []byte(label)
	pub, priv, mech := keyTemplates(kp, label, id)
	for typ, v := range override {
		a := pkcs11.NewAttribute(typ, v)
		replaced := false
		for i := range priv {
			if priv[i].Type == typ {
				priv[i], replaced = a, true
			}
		}
		if !replaced {
			priv = append(priv, a)
		}
	}
	var pubH, privH pkcs11.ObjectHandle
	err := t.do(ctx, 0, nil, func(sh pkcs11.SessionHandle) error {
		var err error
		pubH, privH, err = t.p11.GenerateKeyPair(sh, mech, pub, priv)
		return err
	})
	if err != nil {
		return nil, err
	}
	return t.loadKey(ctx, label, id, privH, pubH)
}

// ImportECKeyForTest creates a P-256 key pair from key with C_CreateObject,
// sensitive, not extractable and sign-only: an imported key, never local.
func (t *Token) ImportECKeyForTest(ctx context.Context, label string, key *ecdsa.PrivateKey) error {
	kp, _ := ECDSAP256.params()
	id := []byte(label)
	pub, priv, _ := keyTemplates(kp, label, id)
	point, err := ecPointForTest(&key.PublicKey)
	if err != nil {
		return err
	}
	d, err := key.Bytes()
	if err != nil {
		return err
	}
	pub = append(pub, pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, point))
	priv = append(priv, pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, []byte(kp.curveOID)), pkcs11.NewAttribute(pkcs11.CKA_VALUE, d))
	return t.do(ctx, 0, nil, func(sh pkcs11.SessionHandle) error {
		if _, err := t.p11.CreateObject(sh, pub); err != nil {
			return err
		}
		_, err := t.p11.CreateObject(sh, priv)
		return err
	})
}

// ReplacePublicKeyForTest destroys k's public key object and creates one
// with k's label and CKA_ID holding other's key instead: a public key
// object that is not the private key's pair.
func (k *Key) ReplacePublicKeyForTest(ctx context.Context, other *ecdsa.PublicKey) error {
	t := k.token
	kp, _ := ECDSAP256.params()
	pub, _, _ := keyTemplates(kp, k.label, k.id)
	point, err := ecPointForTest(other)
	if err != nil {
		return err
	}
	pub = append(pub, pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, point))
	return t.do(ctx, 0, nil, func(sh pkcs11.SessionHandle) error {
		found, err := t.findObjects(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_ID, k.id),
		}, 2)
		if err != nil {
			return err
		}
		for _, h := range found {
			if err := t.p11.DestroyObject(sh, h); err != nil {
				return err
			}
		}
		_, err = t.p11.CreateObject(sh, pub)
		return err
	})
}

// ecPointForTest is pub as a CKA_EC_POINT: a DER OCTET STRING holding the
// uncompressed point.
func ecPointForTest(pub *ecdsa.PublicKey) ([]byte, error) {
	raw, err := pub.Bytes()
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(raw)
}

// SetSerialForTest makes the token remember another serial number, as if
// the token now in its slot were not the one it opened.
func (t *Token) SetSerialForTest(serial string) {
	t.loginMu.Lock()
	defer t.loginMu.Unlock()
	t.serial = serial
}
