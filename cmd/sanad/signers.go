package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"

	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/ra/jwsauth"
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
	return withRole(issuers, "ocsp-signer"), nil
}

// withRole are the issuers of role.
func withRole(issuers []store.Issuer, role string) []store.Issuer {
	var out []store.Issuer
	for _, is := range issuers {
		if is.Role == role {
			out = append(out, is)
		}
	}
	return out
}

// signerCheck is what nextSigner found for an issuing CA.
type signerCheck struct {
	// taken is the signer take accepted, nil when none was.
	taken *ocspsign.Responder
	// revoked: the signer in service was revoked (its successor, taken,
	// re-signs what it signed; with none taken, it is retired).
	revoked bool
	// problems are why signers were passed over, or why nothing could be
	// decided (the current signer then stays), for the caller to report.
	problems error
	// undecided: whether the signer in service is revoked could not be
	// read; nothing else is said.
	undecided bool
}

// nextSigner decides which OCSP signer answers for the issuing CA id, when
// current is the one in service. It walks the signers rankResponders
// ranks, in its order, and offers take each one preferred to
// current whose key is on this node's token, until take accepts one (a
// signer take refuses is passed over like one whose key is missing here).
// Reaching current, still good, it stops: current stays. A revoked current
// is never kept: with nothing taken, the caller retires it. Whether
// current is revoked is asked of the store directly, so that no failure to
// read another signer keeps it in service.
func nextSigner(ctx context.Context, s *service, id string, issuingCert *x509.Certificate, signers []store.Issuer, current *x509.Certificate, take func(ocspsign.Responder) error) signerCheck {
	revoked := revokedBy(ctx, s.db, id)
	gone, err := revoked(current.SerialNumber.Bytes())
	if err != nil {
		return signerCheck{problems: fmt.Errorf("the OCSP signer in service: %w", err), undecided: true}
	}
	// Its status as just read: a second read failing must not drop it from
	// the ranking, and have a signer it is preferred to taken.
	status := func(serial []byte) (bool, error) {
		if bytes.Equal(serial, current.SerialNumber.Bytes()) {
			return gone, nil
		}
		return revoked(serial)
	}
	ranked, rankErr := rankResponders(issuingCert, signers, s.now(), status)
	passed := []error{rankErr}
	for _, c := range ranked {
		if c.cert.Equal(current) {
			if gone {
				continue // revoked since the ranking read it
			}
			return signerCheck{problems: errors.Join(passed...)}
		}
		key, _, err := s.token.FindProtectedKey(ctx, c.KeyLabel)
		if err != nil {
			passed = append(passed, fmt.Errorf("OCSP signer %s, key %q: %w", c.ID, c.KeyLabel, err))
			continue
		}
		r := ocspsign.Responder{IssuerID: id, Issuer: issuingCert, Certificate: c.cert, Signer: key}
		if err := take(r); err != nil {
			passed = append(passed, fmt.Errorf("OCSP signer %s: %w", c.ID, err))
			continue
		}
		return signerCheck{taken: &r, revoked: gone, problems: errors.Join(passed...)}
	}
	return signerCheck{revoked: gone, problems: errors.Join(passed...)}
}

// problemLog says a check's problems when they differ from the last ones
// said for the same issuing CA, and that they are gone when they are: a
// check runs every ca.signer_check_interval, on every node.
type problemLog map[string]string

func (l problemLog) say(log *slog.Logger, level slog.Level, key, msg string, problems error) {
	was := l[key]
	switch {
	case problems == nil && was != "":
		delete(l, key)
		log.Info("the OCSP signer check no longer finds what it said", "about", key, "said", was)
	case problems != nil && problems.Error() != was:
		l[key] = problems.Error()
		log.Log(context.Background(), level, msg, "about", key, "err", problems)
	}
}

// checkSigners has each issuing CA sign with the OCSP signer the store now
// says should answer for it (nextSigner): one added with sanad issuer add
// since the node started, or that has become valid, is taken; a revoked
// one is replaced, its successor re-signing every answer signed before
// (Publisher.ResignBefore, recorded in the store for every node), or, with none to replace it, retired
// (ca.RetireResponder: issuance stops, a revocation's answer is signed by
// the issuing CA, the node is not ready) until a new one is added. A check
// that cannot decide (the store unreachable, a key missing on this node's
// token while the current signer is good) keeps the current signer and
// says why, once.
func (r *caRole) checkSigners(ctx context.Context) {
	r.checking.Lock()
	defer r.checking.Unlock()
	s := r.svc
	if r.problems == nil {
		r.problems = problemLog{}
	}
	signers, err := ocspSigners(ctx, r.db)
	if err != nil {
		r.problems.say(s.log, slog.LevelWarn, "", "could not read the OCSP signers to check which is in service", err)
		return
	}
	r.problems.say(s.log, slog.LevelWarn, "", "", nil)
	for _, is := range r.all() {
		id := is.crlFrom.ID
		cur, inService := is.ca.Responder()
		c := nextSigner(ctx, s, id, is.crlFrom.Certificate, signers, cur.Certificate, is.ca.UseResponder)
		r.problems.say(s.log, slog.LevelWarn, id, "an OCSP signer was passed over, or the check could not decide; the signer in service stays unless it was revoked", c.problems)
		if !c.undecided {
			var retired error
			if c.revoked && c.taken == nil {
				retired = errSignerRevoked
			}
			// Said once, whether this check retired it or a revocation
			// here did (ca.CA.Revoke retires the signer whose certificate
			// it revokes).
			r.problems.say(s.log, slog.LevelError, id+" retired", "the OCSP signer in service was revoked and none can replace it: it signs nothing more, issuance stops and the node is not ready until a new signer is added (sanad issuer add)", retired)
		}
		switch {
		case c.taken != nil:
			for _, other := range r.all() {
				if other != is {
					other.ca.Forbid(c.taken.Certificate.PublicKey)
				}
			}
			s.log.Info("the OCSP signer in service changed", "issuer", id, "from", cur.Certificate.Subject.String(),
				"to", c.taken.Certificate.Subject.String(), "not_after", c.taken.Certificate.NotAfter, "previous_revoked", c.revoked)
			if c.revoked {
				// What the revoked signer signed is signed again (and what
				// it may have signed as it was being replaced).
				is.resign = &resignSince{at: s.now(), details: map[string]any{"revoked_signer": jwsauth.SerialHex(cur.Certificate.SerialNumber),
					"signer": jwsauth.SerialHex(c.taken.Certificate.SerialNumber)}}
			}
		case c.revoked && inService:
			is.ca.RetireResponder(errSignerRevoked)
		case !c.revoked && !c.undecided && !inService:
			// Retired though not revoked (nothing does that on purpose):
			// back in service.
			if err := is.ca.UseResponder(cur); err != nil {
				r.problems.say(s.log, slog.LevelError, id+" retired", "the OCSP signer retired though not revoked cannot be put back in service", err)
			}
		}
		if is.resign != nil {
			// Kept until recorded: a store that failed now is asked again
			// at the next check, with the time of the switch.
			err := is.publisher.ResignBefore(ctx, is.resign.at, is.resign.details)
			r.problems.say(s.log, slog.LevelError, id+" resign", "the answers the revoked OCSP signer signed could not be marked to be signed again; retrying at the next check", err)
			if err == nil {
				is.resign = nil
			}
		}
	}
}
