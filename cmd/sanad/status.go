package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"

	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/internal/status"
)

// startStatus adds the status role to the service: OCSP (GET and POST),
// CRLs and CA certificates from the store, its sync loop, its readiness
// check (the first sync) and its metrics.
func startStatus(ctx context.Context, s *service) error {
	c := s.cfg.Status
	cfg := status.Config{CacheSize: c.CacheSize, SyncInterval: c.SyncInterval, Overlap: c.Overlap,
		ResyncInterval: c.ResyncInterval, ResyncWindow: c.ResyncWindow, MaxStoreReads: c.MaxStoreReads,
		LogRequests: c.LogRequests, Preload: c.Preload, NoncePerSecond: float64(s.cfg.OCSP.NoncePerSecond)}
	if s.cfg.OCSP.Nonce == "sign" {
		found, _, err := caIssuers(ctx, s, false)
		if err != nil {
			return fmt.Errorf("ocsp.nonce sign: %w", err)
		}
		signer, err := ocspsign.New(0, 0, s.now)
		if err != nil {
			return err
		}
		var cas atomic.Pointer[[]issuingCA]
		cas.Store(&found)
		cfg.NonceSigner = func(presigned, nonce []byte) ([]byte, error) {
			responder, err := nonceResponder(*cas.Load(), presigned)
			if err != nil {
				return nil, err
			}
			return signer.WithNonce(responder, presigned, nonce)
		}
		problems := problemLog{}
		s.every(s.cfg.CA.SignerCheckInterval, func(ctx context.Context) {
			next, grew := addNonceIssuers(ctx, s, *cas.Load(), problems)
			next, changed := checkNonceSigners(ctx, s, next, problems)
			if grew || changed {
				cas.Store(&next)
			}
		})
	}
	r, err := status.New(ctx, s.db, cfg, s.log, s.now)
	if err != nil {
		return err
	}
	// The first sync before serving, so that /readyz is true from the
	// first request; the loop goes on from there.
	if err := r.Sync(ctx); err != nil {
		return fmt.Errorf("status: first sync: %w", err)
	}
	s.addCheck("ocsp_sync", r.Ready)
	s.routes = append(s.routes, r.RegisterRoutes)
	s.fronts = append(s.fronts, r.Handler)
	s.collectors = append(s.collectors, r.Register)
	s.loops = append(s.loops, r.Run)
	return nil
}

// nonceResponder is the OCSP signer that answers for the issuing CA of a
// pre-signed response: the one whose issuing CA certified the responder
// certificate the response carries (ocspsign puts it in every response).
func nonceResponder(cas []issuingCA, presigned []byte) (ocspsign.Responder, error) {
	p, err := ocsp.ParseResponse(presigned, nil)
	if err != nil {
		return ocspsign.Responder{}, fmt.Errorf("ocsp: the pre-signed response: %w", err)
	}
	if p.Certificate != nil {
		for _, c := range cas {
			if c.retired {
				continue
			}
			if bytes.Equal(p.Certificate.RawIssuer, c.responder.Issuer.RawSubject) && p.Certificate.CheckSignatureFrom(c.responder.Issuer) == nil {
				return c.responder, nil
			}
		}
	}
	return ocspsign.Responder{}, fmt.Errorf("%w: no issuing CA in service on this node certified the pre-signed response's responder", status.ErrNoNonceSigner)
}

// addNonceIssuers adds to cas the issuing CAs of the store it does not
// hold, once this node can sign their nonces (an unrevoked OCSP signer of
// theirs with its key on the token, issuingResponder): one recorded since
// the node started (a rollover's), or left out at the start, incomplete
// then. What keeps one out is said once. It returns the list and whether
// it grew.
func addNonceIssuers(ctx context.Context, s *service, cas []issuingCA, problems problemLog) ([]issuingCA, bool) {
	issuers, err := s.db.Issuers(ctx)
	problems.say(s.log, slog.LevelWarn, "issuers", "could not read the issuing CAs to find new ones to sign nonces for", err)
	if err != nil {
		return cas, false
	}
	signers := withRole(issuers, "ocsp-signer")
	out, grew := cas, false
	for _, is := range withRole(issuers, "issuing") {
		if slices.ContainsFunc(cas, func(c issuingCA) bool { return c.issuer.ID == is.ID }) {
			continue
		}
		c, err := withSigner(ctx, s, is, signers, s.now())
		problems.say(s.log, slog.LevelWarn, is.ID+" absent", "an issuing CA has no OCSP signer this node can sign its nonces with: its nonce requests are answered without a nonce", err)
		if err != nil {
			continue
		}
		out, grew = append(slices.Clip(out), c), true
		s.log.Info("an issuing CA's nonce requests are signed from now on", "issuer", is.ID, "signer", c.responder.Certificate.Subject.String())
	}
	return out, grew
}

// checkNonceSigners is checkSigners for the status role, which signs only
// nonces: the OCSP signer each issuing CA's nonce responses are signed
// with, as the store says now (nextSigner). One revoked with none to
// replace it is retired: those responses go without a nonce, as when no
// signer is found. It returns the new list and whether it differs.
func checkNonceSigners(ctx context.Context, s *service, cas []issuingCA, problems problemLog) ([]issuingCA, bool) {
	signers, err := ocspSigners(ctx, s.db)
	if err != nil {
		problems.say(s.log, slog.LevelWarn, "", "could not read the OCSP signers to check which signs nonces", err)
		return cas, false
	}
	problems.say(s.log, slog.LevelWarn, "", "", nil)
	next, changed := slices.Clone(cas), false
	for i, c := range next {
		id := c.issuer.ID
		check := nextSigner(ctx, s, id, c.responder.Issuer, signers, c.responder.Certificate, func(ocspsign.Responder) error { return nil })
		problems.say(s.log, slog.LevelWarn, id, "an OCSP signer was passed over for nonces, or the check could not decide; the signer in service stays unless it was revoked", check.problems)
		switch {
		case check.taken != nil:
			next[i].responder, next[i].retired, changed = *check.taken, false, true
			s.log.Info("the OCSP signer that signs nonces changed", "issuer", id, "to", check.taken.Certificate.Subject.String(), "not_after", check.taken.Certificate.NotAfter)
		case check.revoked && !c.retired && !check.undecided:
			next[i].retired, changed = true, true
			s.log.Error("the OCSP signer was revoked and none can replace it: nonce responses for its issuing CA go without a nonce", "issuer", id)
		}
	}
	return next, changed
}
