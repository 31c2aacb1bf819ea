package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/internal/store"
)

// errSignerRevoked: the OCSP signer in service was revoked and no other
// can replace it (nextSigner).
var errSignerRevoked = errors.New("the OCSP signer in service was revoked")

// ocspSigners are the OCSP signers recorded in the store.
func ocspSigners(ctx context.Context, db *store.DB) ([]store.Issuer, error) {
	issuers, err := db.Issuers(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.Issuer
	for _, is := range issuers {
		if is.Role == "ocsp-signer" {
			out = append(out, is)
		}
	}
	return out, nil
}

// nextSigner is the OCSP signer that should answer for the issuing CA id
// now, when current is the one in service: of the signers pickResponder
// would choose among, the first it prefers whose key is on this node's
// token. It returns the zero Responder and nil when current stays. When
// current is no longer among them (revoked) and none has its key here, it
// returns an error wrapping errSignerRevoked; when a signer preferred to
// current lacks its key here, or nothing could be decided (the store
// unreachable), another error, current staying.
func nextSigner(ctx context.Context, s *service, id string, issuingCert *x509.Certificate, signers []store.Issuer, current *x509.Certificate) (ocspsign.Responder, error) {
	ranked, err := rankResponders(issuingCert, signers, s.now(), revokedBy(ctx, s.db, id))
	if err != nil && !errors.Is(err, errNoSigner) {
		return ocspsign.Responder{}, err
	}
	var keyless []error
	for _, c := range ranked {
		if c.cert.Equal(current) {
			return ocspsign.Responder{}, errors.Join(keyless...)
		}
		key, _, err := s.token.FindProtectedKey(ctx, c.KeyLabel)
		if err == nil {
			return ocspsign.Responder{IssuerID: id, Issuer: issuingCert, Certificate: c.cert, Signer: key}, nil
		}
		keyless = append(keyless, fmt.Errorf("OCSP signer %s, key %q: %w", c.ID, c.KeyLabel, err))
	}
	if err != nil {
		keyless = append(keyless, err)
	}
	return ocspsign.Responder{}, fmt.Errorf("%w or is no longer recorded, and none can replace it: %w", errSignerRevoked, errors.Join(keyless...))
}

// checkSigners has each issuing CA sign with the OCSP signer the store now
// says should answer for it (nextSigner): one added with sanad issuer add
// since the node started, or that has become valid, is taken; a revoked
// one is replaced or, with none to replace it, retired (ca.RetireResponder:
// issuance stops, a revocation's answer is signed by the issuing CA, the
// node is not ready), until a new one is added. A check that cannot decide
// (the store unreachable, a key missing on this node's token while the
// current signer is good) keeps the current signer and says why.
func (r *caRole) checkSigners(ctx context.Context) {
	r.checking.Lock()
	defer r.checking.Unlock()
	s := r.svc
	signers, err := ocspSigners(ctx, r.db)
	if err != nil {
		s.log.Warn("could not read the OCSP signers to check which is in service", "err", err)
		return
	}
	for _, is := range r.all() {
		cur, inService := is.ca.Responder()
		next, err := nextSigner(ctx, s, is.crlFrom.ID, is.crlFrom.Certificate, signers, cur.Certificate)
		switch {
		case errors.Is(err, errSignerRevoked):
			if inService {
				is.ca.RetireResponder(err)
				s.log.Error("the OCSP signer in service was revoked and none can replace it: it signs nothing more, issuance stops and the node is not ready until a new signer is added (sanad issuer add)",
					"issuer", is.crlFrom.ID, "signer", cur.Certificate.Subject.String(), "err", err)
			}
		case err != nil:
			s.log.Warn("could not check which OCSP signer should be in service; the current one stays", "issuer", is.crlFrom.ID, "err", err)
		case next.Certificate != nil:
			if err := is.ca.UseResponder(next); err != nil {
				s.log.Error("the OCSP signer the store names cannot be used; the current one stays", "issuer", is.crlFrom.ID, "err", err)
				continue
			}
			for _, other := range r.all() {
				if other != is {
					other.ca.Forbid(next.Certificate.PublicKey)
				}
			}
			s.log.Info("the OCSP signer in service changed", "issuer", is.crlFrom.ID, "from", cur.Certificate.Subject.String(),
				"to", next.Certificate.Subject.String(), "not_after", next.Certificate.NotAfter, "previous_in_service", inService)
		}
	}
}
