package ca

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/sanadpki/sanad/ca/ocspsign"
)

// ErrResponderRetired is wrapped by what the CA refuses to sign after its
// OCSP signer was retired with no successor (RetireResponder): a revoked
// signer's key must sign nothing more. Revocations still go through,
// answered by the issuing CA itself (signRevoked).
var ErrResponderRetired = errors.New("the OCSP signer was retired and no other is in service")

// responding is the OCSP signer the CA signs its answers with now, or,
// retired set, why it signs none.
type responding struct {
	r       ocspsign.Responder
	retired error
}

// responder is the OCSP signer answers are signed with now, or an error
// wrapping ErrResponderRetired.
func (ca *CA) responder() (ocspsign.Responder, error) {
	cur := ca.responding.Load()
	return cur.r, cur.retired
}

// Responder is the OCSP signer the CA signs its answers with now, and
// whether it may still sign (false once retired without a successor).
func (ca *CA) Responder() (ocspsign.Responder, bool) {
	cur := ca.responding.Load()
	return cur.r, cur.retired == nil
}

// UseResponder has the CA sign its answers with r from now on: an OCSP
// signer certified after the CA started (one added to the store before the
// current one runs out, or that replaces one revoked), checked as New
// checks the first one. Answers being signed finish with the signer they
// started with. r's key joins the keys the CA never certifies; the keys of
// the signers before it stay among them.
func (ca *CA) UseResponder(r ocspsign.Responder) error {
	if err := errors.Join(checkResponder(ca.d.Issuer, r)...); err != nil {
		return err
	}
	ca.swap.Lock()
	defer ca.swap.Unlock()
	ca.forbidLocked(r.Certificate.PublicKey)
	ca.responding.Store(&responding{r: r})
	return nil
}

// RetireResponder stops the CA signing with its OCSP signer, for why (its
// certificate was revoked), until UseResponder gives it another: issuance
// and OCSP refreshes fail with ErrResponderRetired, Ready reports it, and
// a revocation's answer is signed by the issuing CA itself.
func (ca *CA) RetireResponder(why error) {
	ca.retireIf(nil, why)
}

// retireIf is RetireResponder when the signer in service is still the one
// whose certificate has serial (any when serial is nil): a revocation that
// retires the signer it revoked must not retire the one a concurrent check
// put in its place.
func (ca *CA) retireIf(serial []byte, why error) {
	ca.swap.Lock()
	defer ca.swap.Unlock()
	cur := ca.responding.Load()
	if serial != nil && !bytes.Equal(cur.r.Certificate.SerialNumber.Bytes(), serial) {
		return
	}
	ca.responding.Store(&responding{r: cur.r, retired: fmt.Errorf("%w: %w", ErrResponderRetired, why)})
}

// ForbiddenKeys are the keys the CA never certifies now: its issuer's, the
// OtherKeys it was given, and every OCSP signer's it signed with or was
// told of (Forbid).
func (ca *CA) ForbiddenKeys() []crypto.PublicKey { return *ca.forbidden.Load() }

// Forbid adds keys to those the CA never certifies: the keys of another
// issuing CA's OCSP signer certified after the CA started.
func (ca *CA) Forbid(keys ...crypto.PublicKey) {
	ca.swap.Lock()
	defer ca.swap.Unlock()
	ca.forbidLocked(keys...)
}

func (ca *CA) forbidLocked(keys ...crypto.PublicKey) {
	old := *ca.forbidden.Load()
	next := slices.Clip(old)
	for _, k := range keys {
		if !slices.ContainsFunc(old, func(o crypto.PublicKey) bool { return publicKeysEqual(o, k) }) {
			next = append(next, k)
		}
	}
	ca.forbidden.Store(&next)
}

// checkResponder is what an OCSP signer must be for the issuer: its
// issuer's, with the OCSPSigning EKU and the key of its certificate. It is
// checked once, when the CA takes it, so that each response signed later
// needs only its own signature checked (ocspsign.Sign). Its validity is
// not: it depends on the time, so ocspsign checks it at each signature and
// Ready reports it.
func checkResponder(is Issuer, r ocspsign.Responder) []error {
	var errs []error
	if r.IssuerID != is.ID {
		errs = append(errs, fmt.Errorf("ca: OCSP responder is for %q, not %q", r.IssuerID, is.ID))
	}
	if r.Certificate == nil || r.Signer == nil || is.Certificate == nil {
		return append(errs, errors.New("ca: OCSP responder needs a certificate and a signer"))
	}
	if err := r.Certificate.CheckSignatureFrom(is.Certificate); err != nil {
		errs = append(errs, fmt.Errorf("ca: the OCSP responder certificate is not the issuer's: %w", err))
	}
	if !slices.Contains(r.Certificate.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		errs = append(errs, errors.New("ca: the OCSP responder certificate lacks the OCSPSigning EKU"))
	}
	if !publicKeysEqual(r.Signer.Public(), r.Certificate.PublicKey) {
		errs = append(errs, errors.New("ca: the OCSP responder key does not match its certificate"))
	}
	return errs
}
