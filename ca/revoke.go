package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
)

// ErrNotIssued is returned for a serial this CA never assigned.
var ErrNotIssued = errors.New("no certificate with this serial")

// ErrIssuerRetired is wrapped by a refusal to revoke a certificate whose
// issuing CA is retired: recorded, but its keys gone and every certificate
// it issued expired. It signs no CRL or OCSP answer any more, so nothing it
// issued can be revoked; retrying does not help.
var ErrIssuerRetired = errors.New("the certificate's issuing CA is retired")

// ErrIssuerUnavailable is wrapped by a refusal to revoke an unexpired
// certificate whose issuing CA is not in service where the request was
// made (left out when that node started, before it was complete): another
// node, or the same one later, can.
var ErrIssuerUnavailable = errors.New("the certificate's issuing CA is not in service here")

// ErrKeyCompromised is wrapped by the refusal of a key that a certificate
// was revoked for keyCompromise with.
var ErrKeyCompromised = errors.New("the key was revoked for keyCompromise")

// signRevoked signs the answer for c, just revoked. A revocation is never
// refused for the delegated OCSP signer's certificate, ending or ended
// (ocspsign.ErrResponderValidity), nor for the signer having been retired
// (ErrResponderRetired): nothing else is signed then, and the CA is not
// ready, but the issuing CA signs the answer itself, as it signs its
// CRL (RFC 6960 §4.2.2.2), and details, the revocation's audit event's,
// say so. own reports that c is the certificate of the signer in service.
func (ca *CA) signRevoked(c store.Certificate, details map[string]any) (resp store.OCSPResponse, own bool, err error) {
	d := ca.d
	responder, err := ca.responder()
	switch {
	case err == nil && bytes.Equal(responder.Certificate.SerialNumber.Bytes(), c.Serial):
		own = true
		details["ocsp_signed_by"] = "the issuing CA: the certificate revoked is the OCSP signer's own"
	case err == nil:
		resp, err := d.OCSP.Sign(responder, c)
		if !errors.Is(err, ocspsign.ErrResponderValidity) {
			return resp, false, err
		}
		details["ocsp_signed_by"] = "the issuing CA: the OCSP signer's certificate does not cover a response signed now"
	case errors.Is(err, ErrResponderRetired):
		details["ocsp_signed_by"] = "the issuing CA: the OCSP signer was retired and no other is in service"
	default:
		return store.OCSPResponse{}, false, err
	}
	resp, err = d.OCSP.Sign(ocspsign.IssuerAsResponder(d.Issuer.ID, d.Issuer.Certificate, d.Issuer.Signer), c)
	return resp, own, err
}

// CertifiedKey is the public key c certifies: from its DER or, for an
// intent never completed (a crash between the HSM's signature and the
// store, recovered by revoking it), from the TBS it was to sign, which the
// HSM may have signed: a key reported compromised there is blocked, and
// its other certificates revoked, like any other.
func CertifiedKey(c store.Certificate) (crypto.PublicKey, error) {
	if len(c.DER) > 0 {
		cert, err := x509.ParseCertificate(c.DER)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	}
	// TBSCertificate (RFC 5280 §4.1): [0] version, serialNumber,
	// signature, issuer, validity, subject, subjectPublicKeyInfo, ...
	in := cryptobyte.String(c.TBS)
	var tbs, spki cryptobyte.String
	if !in.ReadASN1(&tbs, cbasn1.SEQUENCE) || !in.Empty() ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.SkipASN1(cbasn1.INTEGER) || !tbs.SkipASN1(cbasn1.SEQUENCE) || !tbs.SkipASN1(cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) || !tbs.SkipASN1(cbasn1.SEQUENCE) || !tbs.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return nil, fmt.Errorf("certificate %X: no certificate, and its TBS is malformed", c.Serial)
	}
	return x509.ParsePKIXPublicKey(spki)
}

// reasonKeyCompromise is RFC 5280 §5.3.1's keyCompromise.
const reasonKeyCompromise = 1

// CheckKeyNotBlocked refuses a public key that any certificate in db was
// revoked for keyCompromise with: whoever asks, the CA never certifies it
// again (as CA/Browser Forum BR 6.1.1.3 asks of TLS CAs), however its
// request encodes it (KeyIDs). The RA asks at enrollment; the CA asks again
// in each issuance's intent transaction (group.write), for a group at once.
func CheckKeyNotBlocked(ctx context.Context, db *store.DB, pub crypto.PublicKey) error {
	ids, err := KeyIDs(pub)
	if err != nil {
		return err
	}
	for _, id := range ids {
		b, err := db.KeyBlocked(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			return err
		}
		return keyBlocked(b)
	}
	return nil
}

// KeyIDs are the SHA-256 hashes a public key is blocked under, the same
// whatever bytes a request spelled it in (a CSR's SubjectPublicKeyInfo may
// carry what DER parsers skip, such as a trailing element). The first is
// the one BlockKey records: the canonical SubjectPublicKeyInfo
// (x509.MarshalPKIXPublicKey) of the key, an RSA key's with the exponent
// 65537, since a shared modulus is a shared factorisation and any exponent
// on it is as compromised. For an RSA key of another exponent the second is
// its canonical SubjectPublicKeyInfo as it is, the form keys were blocked
// under before: a key blocked then is still found.
func KeyIDs(pub crypto.PublicKey) ([][]byte, error) {
	canonical := pub
	if k, ok := pub.(*rsa.PublicKey); ok && k.E != 65537 {
		canonical = &rsa.PublicKey{N: k.N, E: 65537}
	}
	var ids [][]byte
	for _, k := range []crypto.PublicKey{canonical, pub} {
		spki, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("key id: %w", err)
		}
		sum := sha256.Sum256(spki)
		if len(ids) == 0 || !bytes.Equal(ids[0], sum[:]) {
			ids = append(ids, sum[:])
		}
	}
	return ids, nil
}

func keyBlocked(b store.BlockedKey) error {
	return fmt.Errorf("%w: %w: certificate %s, on %s", ErrRequest, ErrKeyCompromised, SerialObject(b.IssuerID, b.Serial), b.BlockedAt.Format(time.RFC3339))
}

// Revoke revokes a certificate with an RFC 5280 §5.3.1 reason its profile
// allows. The status change, the re-signed OCSP response and the audit
// event are one transaction, so relying parties see the revocation as soon
// as responders sync. Revoking twice fails with *store.AlreadyRevokedError,
// which says when and why; but a certificate revoked for another reason
// whose key is then reported compromised has its reason raised to
// keyCompromise, its revocation time kept (as Mozilla's root store policy
// §6.1.1 and the CA/Browser Forum's BR §4.9.1.1 have it): the key is
// blocked, and the CRL and OCSP say keyCompromise from then on. The
// events also (a caller's own record of why) are appended to the audit log
// in the revocation's transaction, after its own; a revocation that fails
// writes none of them.
func (ca *CA) Revoke(ctx context.Context, serial []byte, reason int, actor string, also ...audit.Event) error {
	err := ca.revoke(ctx, serial, reason, actor, also)
	var already *store.AlreadyRevokedError
	if reason == reasonKeyCompromise && errors.As(err, &already) && already.Reason != reasonKeyCompromise {
		// Revoked for another reason between the read and the write: the
		// key's compromise raises that reason now.
		err = ca.revoke(ctx, serial, reason, actor, also)
	}
	return err
}

func (ca *CA) revoke(ctx context.Context, serial []byte, reason int, actor string, also []audit.Event) error {
	d := ca.d
	object := SerialObject(d.Issuer.ID, serial)
	c, err := d.Store.Certificate(ctx, d.Issuer.ID, serial)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("revoke %s: %w: %w", object, ErrRequest, ErrNotIssued)
	}
	if err != nil {
		return fmt.Errorf("revoke %s: %w", object, err)
	}
	// A certificate whose profile a release no longer loads is still
	// revocable, for any reason a profile may allow: a revocation must
	// always be possible.
	reasons := profile.AnyProfileReasons()
	if p, ok := d.Profiles[c.Profile]; ok {
		reasons = p.RevocationReasons
	}
	if !slices.Contains(reasons, reason) {
		allowed := make([]string, len(reasons))
		for i, r := range reasons {
			allowed[i] = profile.ReasonName(r)
		}
		return fmt.Errorf("revoke %s: %w: %s is not a reason profile %s allows (allowed: %s)", object, ErrRequest, profile.ReasonName(reason), c.Profile, strings.Join(allowed, ", "))
	}
	now := d.Now().UTC().Truncate(time.Second)
	revokedAt := now
	change := func(tx *store.Tx) error { return tx.RevokeCertificate(ctx, d.Issuer.ID, serial, now, reason, now) }
	details := map[string]any{"reason": reason, "reason_name": profile.ReasonName(reason), "revoked_at": now, "profile": c.Profile}
	event := audit.Event{Actor: actor, Action: "certificate.revoke", Object: object, Details: details}
	if c.Status == store.StatusRevoked {
		if reason != reasonKeyCompromise || c.Reason == reasonKeyCompromise || len(c.DER) == 0 && len(c.TBS) == 0 {
			return fmt.Errorf("revoke %s: %w", object, &store.AlreadyRevokedError{At: c.RevokedAt, Reason: c.Reason})
		}
		from := c.Reason
		change = func(tx *store.Tx) error { return tx.RaiseRevocationReason(ctx, d.Issuer.ID, serial, from, now) }
		event.Action = "certificate.revoke.reason"
		details["was"], details["was_name"], details["revoked_at"] = from, profile.ReasonName(from), c.RevokedAt
		revokedAt = c.RevokedAt // the answer keeps the revocation's time
	}
	// The revoked answer is signed before the transaction, so the HSM's
	// time is not spent holding the audit head; if the transaction fails
	// (revoked meanwhile by someone else), the answer is thrown away.
	c.Status, c.RevokedAt, c.Reason = store.StatusRevoked, revokedAt, reason
	resp, ownSigner, err := ca.signRevoked(c, details)
	if err != nil {
		return fmt.Errorf("revoke %s: %w", object, err)
	}
	var keyID []byte
	if reason == reasonKeyCompromise && (len(c.DER) > 0 || len(c.TBS) > 0) {
		if keyID, err = StoredKeyID(c); err != nil {
			return fmt.Errorf("revoke %s: stored certificate: %w", object, err)
		}
	}
	// The OCSP signer in service revoked: what it signed is signed again
	// (Publisher.ResignBefore), from the time recorded with the revocation
	// itself, whatever becomes of this node.
	if ownSigner {
		details["ocsp_resign_before"] = now
	}
	err = d.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := change(tx); err != nil {
			return err
		}
		if ownSigner {
			if _, err := tx.RaiseOCSPResignBefore(ctx, d.Issuer.ID, now); err != nil {
				return err
			}
		}
		if keyID != nil {
			// A compromised key is never certified again (CheckKeyNotBlocked).
			if err := tx.BlockKey(ctx, keyID, d.Issuer.ID, serial, now); err != nil {
				return err
			}
		}
		// Stamped now, not when the signature began: responders sync on
		// updated_at with an overlap of seconds, and the HSM and the wait
		// for this transaction may take longer; stamped then, a
		// revocation could commit behind what a responder has read, and
		// it would go on answering good.
		resp.UpdatedAt = d.Now().UTC().Truncate(time.Microsecond)
		if err := tx.PutOCSPResponse(ctx, resp); err != nil {
			return err
		}
		return d.Audit.AppendAll(tx, append([]audit.Event{event}, also...))
	})
	if err != nil {
		return fmt.Errorf("revoke %s: %w", object, err)
	}
	// The OCSP signer's own certificate revoked: it signs nothing more
	// here from now, until it is replaced (UseResponder).
	ca.retireIf(serial, fmt.Errorf("its certificate %s was revoked", object))
	ca.statusChanged()
	return nil
}
