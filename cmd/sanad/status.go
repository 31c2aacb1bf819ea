package main

import (
	"bytes"
	"context"
	"fmt"

	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/internal/status"
)

// startStatus adds the status role to the service: OCSP (GET and POST),
// CRLs and CA certificates from the store, its sync loop, its readiness
// check (the first sync) and its metrics.
func startStatus(ctx context.Context, s *service) error {
	c := s.cfg.Status
	cfg := status.Config{CacheSize: c.CacheSize, SyncInterval: c.SyncInterval,
		Overlap: c.Overlap, LogRequests: c.LogRequests, Preload: c.Preload, NoncePerSecond: float64(s.cfg.OCSP.NoncePerSecond)}
	if s.cfg.OCSP.Nonce == "sign" {
		cas, _, err := caIssuers(ctx, s, false)
		if err != nil {
			return fmt.Errorf("ocsp.nonce sign: %w", err)
		}
		signer, err := ocspsign.New(0, 0, s.now)
		if err != nil {
			return err
		}
		cfg.NonceSigner = func(presigned, nonce []byte) ([]byte, error) {
			responder, err := nonceResponder(cas, presigned)
			if err != nil {
				return nil, err
			}
			return signer.WithNonce(responder, presigned, nonce)
		}
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
			if bytes.Equal(p.Certificate.RawIssuer, c.responder.Issuer.RawSubject) && p.Certificate.CheckSignatureFrom(c.responder.Issuer) == nil {
				return c.responder, nil
			}
		}
	}
	return ocspsign.Responder{}, fmt.Errorf("%w: no issuing CA in service on this node certified the pre-signed response's responder", status.ErrNoNonceSigner)
}
