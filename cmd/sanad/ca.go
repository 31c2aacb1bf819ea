package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/crl"
	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/internal/api"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/policies"
)

// caRole is the CA as the service runs it: issuance, revocation, recovery,
// and the publisher that keeps the issuing CA's CRL and OCSP responses
// fresh.
type caRole struct {
	ca        *ca.CA
	crl       *crl.Builder
	crlFrom   crl.Issuer
	publisher *ca.Publisher
	// keys are the CA's own public keys (issuing CA, OCSP signer), which
	// it never certifies for anyone.
	keys []crypto.PublicKey
	// signingEnds is the last time the OCSP signer can sign a response
	// (ocspsign.Signer.SigningEnds); responderNotAfter is its certificate's
	// notAfter.
	signingEnds, responderNotAfter time.Time
}

// caIssuers finds the issuing CA recorded in the store (exactly one) and
// its OCSP signer, with the signer's key on the token. Several OCSP signers
// may be recorded (a new one is certified before the current one runs
// out, and added with sanad issuer add): the one the issuing CA signed
// that is valid now with the latest notAfter answers (pickResponder).
func caIssuers(ctx context.Context, s *service) (store.Issuer, ocspsign.Responder, error) {
	issuers, err := s.db.Issuers(ctx)
	if err != nil {
		return store.Issuer{}, ocspsign.Responder{}, err
	}
	byRole := map[string][]store.Issuer{}
	for _, is := range issuers {
		byRole[is.Role] = append(byRole[is.Role], is)
	}
	if len(byRole["issuing"]) != 1 || len(byRole["ocsp-signer"]) == 0 {
		return store.Issuer{}, ocspsign.Responder{}, fmt.Errorf("the CA needs exactly one issuing CA and an OCSP signer in the store; found %d and %d",
			len(byRole["issuing"]), len(byRole["ocsp-signer"]))
	}
	issuing := byRole["issuing"][0]
	issuingCert, err := x509.ParseCertificate(issuing.CertificateDER)
	if err != nil {
		return store.Issuer{}, ocspsign.Responder{}, fmt.Errorf("issuer %s: %w", issuing.ID, err)
	}
	revoked := func(serial []byte) (bool, error) {
		c, err := s.db.Certificate(ctx, issuing.ID, serial)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil // recorded before signers were among the CA's certificates
		}
		return err == nil && c.Status == store.StatusRevoked, err
	}
	signer, signerCert, err := pickResponder(issuingCert, byRole["ocsp-signer"], s.now(), revoked)
	if err != nil {
		return store.Issuer{}, ocspsign.Responder{}, err
	}
	signerKey, err := s.token.FindKey(ctx, signer.KeyLabel)
	if err != nil {
		return store.Issuer{}, ocspsign.Responder{}, fmt.Errorf("issuer %s key %q: %w", signer.ID, signer.KeyLabel, err)
	}
	return issuing, ocspsign.Responder{IssuerID: issuing.ID, Issuer: issuingCert, Certificate: signerCert, Signer: signerKey}, nil
}

// pickResponder chooses among the recorded OCSP signers those the issuing
// CA signed and did not revoke, and of them the one valid at now with the
// latest notAfter; if none is valid now, the one with the latest notAfter
// (the CA then reports itself not ready, ca.CA.Ready, rather than refusing
// to start). With none left unrevoked the CA does not start: a revoked key
// must sign nothing, so its successor is added first. The choice is made
// at start: a node keeps its signer until it restarts.
func pickResponder(issuing *x509.Certificate, signers []store.Issuer, now time.Time, revoked func(serial []byte) (bool, error)) (store.Issuer, *x509.Certificate, error) {
	var (
		best     store.Issuer
		bestCert *x509.Certificate
		bestNow  bool
	)
	for _, is := range signers {
		c, err := x509.ParseCertificate(is.CertificateDER)
		if err != nil {
			return store.Issuer{}, nil, fmt.Errorf("issuer %s: %w", is.ID, err)
		}
		if c.CheckSignatureFrom(issuing) != nil {
			continue
		}
		if r, err := revoked(c.SerialNumber.Bytes()); err != nil {
			return store.Issuer{}, nil, fmt.Errorf("issuer %s: %w", is.ID, err)
		} else if r {
			continue
		}
		validNow := !now.Before(c.NotBefore) && !now.After(c.NotAfter)
		if bestCert == nil || validNow && !bestNow || validNow == bestNow && c.NotAfter.After(bestCert.NotAfter) {
			best, bestCert, bestNow = is, c, validNow
		}
	}
	if bestCert == nil {
		return store.Issuer{}, nil, fmt.Errorf("no OCSP signer in the store was certified, and not revoked, by issuing CA %s: certify one and add it (sanad issuer add)", issuing.Subject.CommonName)
	}
	return best, bestCert, nil
}

// openCA builds the CA from the issuers recorded in the store (one issuing
// CA and its OCSP signer) and their keys on the token. baseURL is where
// relying parties reach the status tier.
func openCA(ctx context.Context, s *service, baseURL string) (*caRole, error) {
	issuing, signer, err := caIssuers(ctx, s)
	if err != nil {
		return nil, err
	}
	issuingCert, signerCert := signer.Issuer, signer.Certificate
	issuingKey, err := s.token.FindKey(ctx, issuing.KeyLabel)
	if err != nil {
		return nil, fmt.Errorf("issuer %s key %q: %w", issuing.ID, issuing.KeyLabel, err)
	}
	profiles, err := profile.LoadAll(policies.FS)
	if err != nil {
		return nil, err
	}
	linter, err := ca.NewLinter()
	if err != nil {
		return nil, err
	}
	ocspSigner, err := ocspsign.New(0, 0, time.Now)
	if err != nil {
		return nil, err
	}
	authority, err := ca.New(ca.Deps{
		Store: s.db, Audit: s.audit, Linter: linter, OCSP: ocspSigner,
		Issuer: ca.Issuer{ID: issuing.ID, Certificate: issuingCert, Signer: issuingKey,
			CRLURL: baseURL + "/crl/" + issuing.ID + ".crl", OCSPURL: baseURL + "/ocsp", CAIssuersURL: baseURL + "/ca/" + issuing.ID + ".crt"},
		Responder: signer,
		Profiles:  profiles, Now: time.Now,
	})
	if err != nil {
		return nil, err
	}
	builder, err := crl.New(s.db, s.audit, linter, crl.Config{}, time.Now)
	if err != nil {
		return nil, err
	}
	publisher, err := ca.NewPublisher(authority, builder, ca.PublishConfig{Logger: s.log})
	if err != nil {
		return nil, err
	}
	return &caRole{ca: authority, crl: builder, publisher: publisher, keys: []crypto.PublicKey{issuingCert.PublicKey, signerCert.PublicKey},
		crlFrom:     crl.Issuer{ID: issuing.ID, Certificate: issuingCert, Signer: issuingKey},
		signingEnds: ocspSigner.SigningEnds(signer), responderNotAfter: signerCert.NotAfter}, nil
}

// responderWarning is how long before its OCSP signer can no longer sign
// the CA says so at start-up: time to run an ocsp-signer ceremony (the
// profile allows at most 90 days, so a new one is due every few weeks).
const responderWarning = 14 * 24 * time.Hour

// start resolves what a crash may have left (ca/doc.go) and makes sure the
// issuing CA has a CRL, before anything is served; then it has the service
// run the publisher beside the HTTP server, which goes on resolving what
// failed issuances leave. The CA is ready only while its OCSP signer can
// sign (ca.CA.Ready).
func (r *caRole) start(ctx context.Context, s *service) error {
	s.loops = append(s.loops, func(ctx context.Context) {
		if err := r.publisher.Run(ctx); err != nil {
			s.log.Error("CA publisher stopped", "err", err)
		}
	})
	if s.checks == nil {
		s.checks = map[string]api.Check{}
	}
	s.checks["ocsp_responder"] = r.ca.Ready
	if s.now().Add(responderWarning).After(r.signingEnds) {
		s.log.Warn("the OCSP signer's certificate runs out soon: after signing_ends no certificate can be issued or revoked; certify a new OCSP signer",
			"signing_ends", r.signingEnds, "not_after", r.responderNotAfter, "warn_within", responderWarning)
	}
	n, err := r.publisher.RecoverIntents(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Warn("revoked issuance intents left by a crash", "count", n)
	}
	switch _, err := s.db.LatestCRL(ctx, r.crlFrom.ID); {
	case errors.Is(err, store.ErrNotFound):
		c, err := r.crl.Build(ctx, r.crlFrom)
		if err != nil {
			return err
		}
		s.log.Info("published the first CRL", "issuer", r.crlFrom.ID, "crl_number", c.Number)
	case err != nil:
		return err
	}
	return nil
}
