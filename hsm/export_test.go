package hsm

import (
	"context"
	"crypto"
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

// IsPKCS11Error reports whether err wraps the PKCS#11 return value rv
// (a CKR_* constant).
func IsPKCS11Error(err error, rv uint) bool {
	return errors.Is(err, pkcs11.Error(rv))
}

// CKR codes the external tests check for.
const (
	CKRPINIncorrect = pkcs11.CKR_PIN_INCORRECT
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
