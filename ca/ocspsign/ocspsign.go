// Package ocspsign pre-signs OCSP responses (RFC 6960, RFC 5019) with the
// issuing CA's delegated OCSP signer key in the HSM, so the status tier
// serves bytes and never signs on its hot path.
//
// Rules kept here:
//   - validity (nextUpdate - thisUpdate) between 8 hours and 10 days, 4 days
//     by default; thisUpdate is never in the future (it may be backdated a
//     little for clock skew);
//   - a response is signed only while the responder certificate is valid
//     for all of it, thisUpdate to nextUpdate (ErrResponderValidity);
//   - a revoked answer carries the revocation time and reason;
//   - status stays answerable after a certificate expires: a response
//     signed after the expiry carries archiveCutoff (RFC 6960 §4.4.4) set
//     to the issuing CA certificate's notBefore (ETSI EN 319 411-2
//     CSS-6.3.10-08), which says the responder keeps the status of every
//     certificate the CA ever issued, and lasts longer (ExpiredValidity);
//   - every response is stored with a fresh updated_at, the responders' sync
//     cursor.
//
// When a stored response is due for re-signing is decided here too
// (RefreshAge, DueBefore); ca.Publisher walks the store and re-signs. The
// package never answers for a serial the store does not know.
package ocspsign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/internal/store"
)

// Validity bounds.
const (
	MinValidity     = 8 * time.Hour
	MaxValidity     = 10 * 24 * time.Hour
	DefaultValidity = 4 * 24 * time.Hour
)

// MaxRefreshAge is the CA/B Forum Baseline Requirements §4.9.10 limit for a
// response valid 16 hours or more: it is updated no later than four days
// after its thisUpdate.
const MaxRefreshAge = 4 * 24 * time.Hour

// RefreshAge is how long after its thisUpdate a response valid for
// validity (nextUpdate - thisUpdate) is re-signed: at half-life, and never
// later than the CA/B Forum Baseline Requirements §4.9.10 allow. Those
// require, for a validity under 16 hours, an update before half the
// validity has passed; for 16 hours or more, an update at least 8 hours
// before nextUpdate and at most 4 days after thisUpdate. Half-life is
// already 8 hours or more before nextUpdate when the validity is 16 hours
// or more, so for every validity the rule is min(validity/2, 4 days).
func RefreshAge(validity time.Duration) time.Duration {
	return min(validity/2, MaxRefreshAge)
}

// DueBefore returns the bounds by which a stored response is due for
// re-signing at now: it is due when its thisUpdate <= thisUpdateBefore or
// its nextUpdate <= nextUpdateBefore. lookahead (the time until the caller
// looks again) moves both bounds forward, so a response is re-signed before
// its refresh point passes, not after.
//
// With R = RefreshAge(s.Validity()), a response signed by s (validity V) is
// due at thisUpdate + R, its own refresh point. A stored response may have
// been signed with another validity V' (an older configuration, another
// node); the nextUpdate bound makes it due at min(thisUpdate + R,
// nextUpdate - R), never later than its own refresh point thisUpdate +
// RefreshAge(V'): if V' >= V, R <= RefreshAge(V'); if V' < V and V'/2 <= R,
// nextUpdate - R = thisUpdate + V' - R <= thisUpdate + V'/2; otherwise R is
// 4 days, the limit for every validity.
func (s *Signer) DueBefore(now time.Time, lookahead time.Duration) (thisUpdateBefore, nextUpdateBefore time.Time) {
	return dueBefore(now, lookahead, s.validity)
}

// DueBeforeExpired is DueBefore for the responses of expired certificates,
// which Sign makes with the longer validity ExpiredValidity gives: the
// same reasoning, with that validity as V.
func (s *Signer) DueBeforeExpired(r Responder, now time.Time, lookahead time.Duration) (thisUpdateBefore, nextUpdateBefore time.Time) {
	return dueBefore(now, lookahead, s.ExpiredValidity(r, s.ThisUpdate(now)))
}

func dueBefore(now time.Time, lookahead, validity time.Duration) (thisUpdateBefore, nextUpdateBefore time.Time) {
	r := RefreshAge(validity)
	return now.Add(lookahead - r), now.Add(lookahead + r)
}

// ExpiredValidity is the validity of a response signed at thisUpdate for a
// certificate expired then: MaxValidity, or less when r's certificate ends
// sooner, but never less than Validity (a responder that cannot cover that
// signs nothing). The status of an expired certificate changes only by a
// late revocation, which re-signs at once; the longer validity halves what
// the CA's growing history of expired certificates costs in signatures
// (re-signed every 4 days instead of 2 at the default validity), and
// keeps within the 10 days the responses are allowed.
func (s *Signer) ExpiredValidity(r Responder, thisUpdate time.Time) time.Duration {
	return max(s.validity, min(MaxValidity, r.Certificate.NotAfter.Sub(thisUpdate)))
}

// Responder is the delegated OCSP signer of one issuing CA.
type Responder struct {
	IssuerID    string
	Issuer      *x509.Certificate
	Certificate *x509.Certificate // EKU OCSPSigning, id-pkix-ocsp-nocheck
	Signer      crypto.Signer     // its key in the HSM
}

// IssuerAsResponder is the responder that is the issuing CA itself
// (RFC 6960 §4.2.2.2: the CA that issued the certificate may sign its
// status), for what must be answered when the delegated signer cannot
// sign: a revocation. Its responses carry no certificate, the relying
// party holding the issuer's already.
func IssuerAsResponder(issuerID string, issuer *x509.Certificate, signer crypto.Signer) Responder {
	return Responder{IssuerID: issuerID, Issuer: issuer, Certificate: issuer, Signer: signer}
}

// isIssuer reports whether r is the issuing CA itself.
func (r Responder) isIssuer() bool { return bytes.Equal(r.Certificate.Raw, r.Issuer.Raw) }

// ErrResponderValidity is wrapped by every refusal to sign because the
// responder certificate is not valid for the whole response: not yet valid
// at its thisUpdate, expired, or expiring before its nextUpdate.
var ErrResponderValidity = errors.New("the OCSP responder certificate does not cover the response")

// covers refuses a response valid from thisUpdate to nextUpdate unless r's
// certificate is valid (RFC 5280 §4.1.2.5, both ends inclusive) over all of
// it. A relying party checks the responder certificate's validity with the
// response (RFC 6960 §4.2.2.2), at any time up to nextUpdate: a response
// that outlives its responder is rejected while it still looks fresh.
//
// Sign refuses rather than cap nextUpdate at the certificate's notAfter: a
// capped response would be shorter than the validity DueBefore assumes,
// hence due again at each refresh pass, and every response of the issuer
// would be re-signed at every pass until the certificate ran out.
func (r Responder) covers(thisUpdate, nextUpdate time.Time) error {
	c := r.Certificate
	switch {
	case thisUpdate.Before(c.NotBefore):
		return fmt.Errorf("%w: it is valid from %s, after thisUpdate %s", ErrResponderValidity,
			c.NotBefore.UTC().Format(time.RFC3339), thisUpdate.UTC().Format(time.RFC3339))
	case !thisUpdate.Before(c.NotAfter):
		return fmt.Errorf("%w: it expired at %s", ErrResponderValidity, c.NotAfter.UTC().Format(time.RFC3339))
	case nextUpdate.After(c.NotAfter):
		return fmt.Errorf("%w: it expires at %s, before nextUpdate %s (%s after thisUpdate); certify a new OCSP signer",
			ErrResponderValidity, c.NotAfter.UTC().Format(time.RFC3339), nextUpdate.UTC().Format(time.RFC3339), nextUpdate.Sub(thisUpdate))
	}
	return nil
}

// Signer makes responses.
type Signer struct {
	validity time.Duration
	backdate time.Duration
	now      func() time.Time
}

// New returns a Signer; validity 0 means DefaultValidity.
func New(validity, backdate time.Duration, now func() time.Time) (*Signer, error) {
	if validity == 0 {
		validity = DefaultValidity
	}
	if validity < MinValidity || validity > MaxValidity {
		return nil, fmt.Errorf("ocsp validity %s is outside %s..%s", validity, MinValidity, MaxValidity)
	}
	if backdate < 0 || backdate > time.Hour {
		return nil, fmt.Errorf("ocsp backdate %s is outside 0..1h", backdate)
	}
	return &Signer{validity: validity, backdate: backdate, now: now}, nil
}

// Validity is nextUpdate - thisUpdate of the responses s signs.
func (s *Signer) Validity() time.Duration { return s.validity }

// ThisUpdate is the thisUpdate of a response signed at now (now less the
// backdate, in whole seconds): Sign treats a certificate as expired when
// its notAfter is before it, and so must whoever picks the responses to
// sign as expired ones.
func (s *Signer) ThisUpdate(now time.Time) time.Time {
	thisUpdate, _ := s.window(now.UTC().Truncate(time.Second))
	return thisUpdate
}

// window is thisUpdate and nextUpdate of a response signed at now.
func (s *Signer) window(now time.Time) (thisUpdate, nextUpdate time.Time) {
	thisUpdate = now.Truncate(time.Second).Add(-s.backdate)
	return thisUpdate, thisUpdate.Add(s.validity)
}

// CheckResponder reports whether s can sign with r now: r's certificate is
// valid over the whole of a response signed now. It fails, wrapping
// ErrResponderValidity, for the last Validity of the certificate's life.
func (s *Signer) CheckResponder(r Responder) error {
	if err := r.covers(s.window(s.now().UTC())); err != nil {
		return fmt.Errorf("ocsp responder of %s: %w", r.IssuerID, err)
	}
	return nil
}

// SigningEnds is the last time s can sign with r: a response signed later
// would outlive r's certificate.
func (s *Signer) SigningEnds(r Responder) time.Time {
	return r.Certificate.NotAfter.Add(s.backdate - s.validity)
}

// Sign makes the response for one certificate row in its current status.
// For a certificate expired at the response's thisUpdate it adds
// archiveCutoff, the issuing CA certificate's notBefore, and signs for
// ExpiredValidity instead of Validity: a relying party
// checking a signature made while the certificate was valid (RFC 6960
// §4.4.4) learns that "good" still means it was never revoked. A
// response signed before the expiry has none; DueBeforeExpired makes it
// due at once (by its own refresh point at the latest, when the responder
// certificate is near its end), so the publisher re-signs it with
// archiveCutoff at its next pass after the expiry.
func (s *Signer) Sign(r Responder, c store.Certificate) (store.OCSPResponse, error) {
	if c.IssuerID != r.IssuerID {
		return store.OCSPResponse{}, fmt.Errorf("certificate of %s given to the responder of %s", c.IssuerID, r.IssuerID)
	}
	signedAt := s.now().UTC()
	// thisUpdate is whole seconds (GeneralizedTime, RFC 6960 §4.2.2.1);
	// updated_at, the responders' sync cursor and version of the row,
	// keeps the microseconds, so that a response re-signed within the
	// second it was first signed (a quick revocation) is still newer.
	now := signedAt.Truncate(time.Second)
	thisUpdate, nextUpdate := s.window(now)
	expired := thisUpdate.After(c.NotAfter)
	if expired {
		nextUpdate = thisUpdate.Add(s.ExpiredValidity(r, thisUpdate))
	}
	if err := r.covers(thisUpdate, nextUpdate); err != nil {
		return store.OCSPResponse{}, fmt.Errorf("ocsp %s/%x: %w", c.IssuerID, c.Serial, err)
	}
	t := Template{Serial: c.Serial, Status: ocsp.Good, Reason: -1,
		ThisUpdate: thisUpdate, NextUpdate: nextUpdate, ProducedAt: now}
	if expired {
		t.ArchiveCutoff = r.Issuer.NotBefore
	}
	if c.Status == store.StatusRevoked {
		t.Status, t.RevokedAt = ocsp.Revoked, c.RevokedAt
		// RFC 5280 §5.3.1: unspecified (0) is said by leaving the reason out.
		if c.Reason != ocsp.Unspecified {
			t.Reason = c.Reason
		}
	}
	// Encode checks the HSM's signature with the responder certificate's
	// key before the response goes anywhere: a faulty signature is never
	// published. (The responder certificate's issuer, EKU and key were
	// checked once, when the CA was built; its validity, which depends on
	// the time, is checked above for each response.)
	der, err := Encode(r, t)
	if err != nil {
		return store.OCSPResponse{}, fmt.Errorf("ocsp %s/%x: %w", c.IssuerID, c.Serial, err)
	}
	return store.OCSPResponse{IssuerID: c.IssuerID, Serial: c.Serial, DER: der, ThisUpdate: thisUpdate, NextUpdate: t.NextUpdate, UpdatedAt: signedAt.Truncate(time.Microsecond)}, nil
}

// SignAndStore signs the response for one certificate and stores it in tx,
// the transaction of the change that made it necessary.
func (s *Signer) SignAndStore(ctx context.Context, tx *store.Tx, r Responder, c store.Certificate) (store.OCSPResponse, error) {
	resp, err := s.Sign(r, c)
	if err != nil {
		return store.OCSPResponse{}, err
	}
	return resp, tx.PutOCSPResponse(ctx, resp)
}
