package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/crl"
	"github.com/sanadpki/sanad/ca/csr"
	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/config"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/policies"
)

// caRole is the CA as the service runs it: every issuing CA recorded in
// the store, each with its CA (revocation, recovery) and the publisher that
// keeps its CRL and OCSP responses fresh; new certificates come from the
// active one (its fields are the embedded issuerRole's). An issuing CA that
// a newer one replaced keeps revoking and publishing for the certificates
// it signed: their status stays answerable after a rollover.
type caRole struct {
	*issuerRole
	// older are the other issuing CAs, which no longer issue.
	older []*issuerRole
	// missing are the issuing CAs recorded in the store but left out
	// (incomplete on this node, no unexpired certificate: caIssuers), by
	// id: nothing they issued can be revoked here.
	missing map[string]*x509.Certificate
	db      *store.DB
	// keys are the CA's own public keys (every issuing CA and OCSP
	// signer), which it never certifies for anyone.
	keys []crypto.PublicKey
	// proofs remembers the requests whose signature verified, for every
	// issuing CA here and for the RA in this process.
	proofs *csr.Proofs
	// svc is the service the role runs in: checkSigners asks its store
	// and its token.
	svc *service
	// checking orders checkSigners' runs (the loop's, and a revocation's);
	// problems are what they last said was wrong, by issuing CA.
	checking sync.Mutex
	problems problemLog
}

// issuerRole is one issuing CA of the CA role.
type issuerRole struct {
	ca        *ca.CA
	crlFrom   crl.Issuer
	publisher *ca.Publisher
	// ocsp signs the CA's answers; signing says until when.
	ocsp *ocspsign.Signer
	// resign, when set, is when and why the answers signed until then are
	// to be signed again (an OCSP signer revoked and replaced):
	// checkSigners records it with Publisher.ResignBefore, and clears it
	// once recorded.
	resign *resignSince
}

// resignSince is a switch away from a revoked OCSP signer: when, and the
// signers (details of the ocsp.resign audit event).
type resignSince struct {
	at      time.Time
	details map[string]any
}

// signing is the last time the OCSP signer in service can sign a response
// (ocspsign.Signer.SigningEnds), its certificate's notAfter, and whether it
// may sign at all (false once retired, checkSigners).
func (is *issuerRole) signing() (ends, notAfter time.Time, inService bool) {
	r, ok := is.ca.Responder()
	return is.ocsp.SigningEnds(r), r.Certificate.NotAfter, ok
}

// all is the active issuing CA, then the older ones.
func (r *caRole) all() []*issuerRole { return append([]*issuerRole{r.issuerRole}, r.older...) }

// Issue issues from the active issuing CA (ra.Issuer).
func (r *caRole) Issue(ctx context.Context, req ca.Request) (*x509.Certificate, error) {
	return r.ca.Issue(ctx, req)
}

// Prepare prepares an issuance by the active issuing CA, whose intent the
// RA records in its own transaction; Issue then signs it.
func (r *caRole) Prepare(ctx context.Context, req ca.Request) (*ca.Intent, error) {
	return r.ca.Prepare(ctx, req)
}

// Revoke revokes the certificate with this serial through the issuing CA
// that signed it (ra.Revoker). A serial no issuing CA knows is revoked
// through the active one, which says it was not issued; one of an issuing
// CA left out on this node is refused as CheckRevocable says, never
// reported as not issued. The events also are written in the revocation's
// transaction (ca.CA.Revoke).
func (r *caRole) Revoke(ctx context.Context, serial []byte, reason int, actor string, also ...audit.Event) error {
	if err := r.CheckRevocable(ctx, serial); err != nil {
		return err
	}
	by := r.ca
	for _, is := range r.older {
		_, err := r.db.Certificate(ctx, is.crlFrom.ID, serial)
		if err == nil {
			by = is.ca
			break
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if err := by.Revoke(ctx, serial, reason, actor, also...); err != nil {
		return err
	}
	// An OCSP signer in service revoked here signs nothing more from now:
	// the other nodes stop within ca.signer_check_interval.
	for _, is := range r.all() {
		if cur, _ := is.ca.Responder(); bytes.Equal(cur.Certificate.SerialNumber.Bytes(), serial) {
			r.checkSigners(context.WithoutCancel(ctx))
			break
		}
	}
	return nil
}

// CheckRevocable refuses, before anything is spent on the request (the RA
// checks it before it records the signed request's nonce), a serial this
// node cannot revoke: one of an issuing CA it left out (caIssuers). While
// the certificate is unexpired that is this node's state, decided at its
// start (the CA may have been completed since, another node may be able
// to): ca.ErrIssuerUnavailable, worth trying again. Once it has expired,
// and its CA was left out for having no unexpired certificate, nothing
// will revoke it: ca.ErrIssuerRetired.
func (r *caRole) CheckRevocable(ctx context.Context, serial []byte) error {
	for id := range r.missing {
		c, err := r.db.Certificate(ctx, id, serial)
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			return err
		case c.NotAfter.Before(time.Now()):
			return fmt.Errorf("%w: certificate %X of issuing CA %s", ca.ErrIssuerRetired, serial, id)
		default:
			return fmt.Errorf("%w: certificate %X of issuing CA %s, left out when this node started", ca.ErrIssuerUnavailable, serial, id)
		}
	}
	return nil
}

// issuerCertificates are the issuing CAs' certificates by issuer id: the
// CAs whose certificates may sign officer and holder requests, those left
// out on this node included (a certificate's status is in the store).
func (r *caRole) issuerCertificates() map[string]*x509.Certificate {
	m := map[string]*x509.Certificate{}
	maps.Copy(m, r.missing)
	for _, is := range r.all() {
		m[is.crlFrom.ID] = is.crlFrom.Certificate
	}
	return m
}

// issuingCA is an issuing CA recorded in the store, with the OCSP signer
// that answers for it and, when asked for, its own key.
type issuingCA struct {
	issuer    store.Issuer
	responder ocspsign.Responder
	key       crypto.Signer // nil unless caIssuers was asked for the issuing keys
	// retired: the responder was revoked since and none replaces it
	// (checkNonceSigners).
	retired bool
}

// caIssuers finds the issuing CAs recorded in the store, each with its OCSP
// signer and the signer's key on the token, and its own key when
// issuingKeys is set (the CA role; the status role signs only nonces).
// Several OCSP signers may be recorded for one issuing CA (a new one is
// certified before the current one runs out): the one that CA signed that
// is valid now with the latest notAfter answers (rankResponders).
//
// An issuing CA is incomplete when no usable signer is recorded for it or
// a key it needs is not on the token. One that owes nobody anything, no
// certificate of it unexpired (store.HasUnexpiredCertificates), is left
// out with a warning (missing): the next one between the two issuer add
// steps of a rollover, before its first issuance, or an old one retired
// with its keys destroyed. For the CA role, one with unexpired
// certificates stops the start, as any other failure does: its
// certificates could be neither revoked nor kept fresh. The status role
// (issuingKeys unset) leaves any incomplete one out: it only signs nonces,
// and answers without one when it cannot.
//
// The first returned is the active one, which issues: of the complete
// ones valid now, the one with the latest notAfter (a rollover records the
// next issuing CA, sanad issuer add, and nodes started after that issue
// from it); if none is valid now, the one with the latest notAfter, whose
// issuances then fail with the reason.
func caIssuers(ctx context.Context, s *service, issuingKeys bool) (cas []issuingCA, missing map[string]*x509.Certificate, err error) {
	issuers, err := s.db.Issuers(ctx)
	if err != nil {
		return nil, nil, err
	}
	byRole := map[string][]store.Issuer{}
	for _, is := range issuers {
		byRole[is.Role] = append(byRole[is.Role], is)
	}
	if len(byRole["issuing"]) == 0 || len(byRole["ocsp-signer"]) == 0 {
		return nil, nil, fmt.Errorf("the CA needs an issuing CA and an OCSP signer in the store; found %d and %d",
			len(byRole["issuing"]), len(byRole["ocsp-signer"]))
	}
	now := s.now()
	var out []issuingCA
	for _, issuing := range byRole["issuing"] {
		c, err := withSigner(ctx, s, issuing, byRole["ocsp-signer"], now)
		if err == nil && issuingKeys {
			if c.key, _, err = s.token.FindProtectedKey(ctx, issuing.KeyLabel); err != nil {
				err = fmt.Errorf("key %q: %w", issuing.KeyLabel, err)
			}
		}
		if errors.Is(err, errNoSigner) || errors.Is(err, hsm.ErrKeyNotFound) {
			owes, ownErr := false, error(nil)
			if issuingKeys { // the status role only signs nonces, and falls back without
				owes, ownErr = s.db.HasUnexpiredCertificates(ctx, issuing.ID, now)
			}
			switch {
			case ownErr != nil:
				err = ownErr
			case owes:
				err = fmt.Errorf("%w; it has unexpired certificates, which could be neither revoked nor kept fresh", err)
			default:
				s.log.Warn("an issuing CA is left out: it is incomplete on this node and has no unexpired certificate",
					"issuer", issuing.ID, "err", err)
				if missing == nil {
					missing = map[string]*x509.Certificate{}
				}
				missing[issuing.ID] = c.responder.Issuer
				continue
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("issuer %s: %w", issuing.ID, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, nil, errors.New("no issuing CA is complete on this node: see the warnings")
	}
	// The active one first; the others in the store's order.
	best := 0
	for i, c := range out {
		if betterCertificate(c.responder.Issuer, out[best].responder.Issuer, now) {
			best = i
		}
	}
	return append([]issuingCA{out[best]}, append(out[:best:best], out[best+1:]...)...), missing, nil
}

// withSigner is the issuing CA is with the OCSP signer that answers for
// it on this node (issuingResponder, among signers, at now); a certificate
// that does not parse is an error, its own.
func withSigner(ctx context.Context, s *service, is store.Issuer, signers []store.Issuer, now time.Time) (issuingCA, error) {
	cert, err := x509.ParseCertificate(is.CertificateDER)
	if err != nil {
		return issuingCA{}, err
	}
	c := issuingCA{issuer: is, responder: ocspsign.Responder{IssuerID: is.ID, Issuer: cert}}
	c.responder.Certificate, c.responder.Signer, err = issuingResponder(ctx, s, is.ID, cert, signers, now)
	return c, err
}

// issuingResponder is the OCSP signer that answers for the issuing CA id
// (rankResponders' choice), with its key on the token. A signer record
// that cannot be read stops the start; with none left unrevoked the CA
// does not start (errNoSigner): a revoked key must sign nothing, so its
// successor is added first. A signer preferred to the one chosen whose key
// is not on this node's token is passed over, as a running node passes it
// over (nextSigner), and the node says so; with none of them on the token
// the first one's error is returned (hsm.ErrKeyNotFound).
func issuingResponder(ctx context.Context, s *service, id string, issuingCert *x509.Certificate, signers []store.Issuer, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	ranked, problems := rankResponders(issuingCert, signers, now, revokedBy(ctx, s.db, id))
	if problems != nil {
		return nil, nil, problems
	}
	if len(ranked) == 0 {
		return nil, nil, fmt.Errorf("%w, and not revoked, by issuing CA %s: certify one and add it (sanad issuer add)", errNoSigner, issuingCert.Subject.CommonName)
	}
	var passed []error
	for _, c := range ranked {
		key, _, err := s.token.FindProtectedKey(ctx, c.KeyLabel)
		if err == nil {
			if len(passed) > 0 {
				s.log.Warn("an OCSP signer preferred to the one in service has no usable key on this node's token", "issuer", id, "in_service", c.ID, "err", errors.Join(passed...))
			}
			return c.cert, key, nil
		}
		passed = append(passed, fmt.Errorf("issuer %s key %q: %w", c.ID, c.KeyLabel, err))
	}
	return nil, nil, errors.Join(passed...)
}

// revokedBy reports whether the issuing CA id revoked the certificate with
// this serial.
func revokedBy(ctx context.Context, db *store.DB, id string) func(serial []byte) (bool, error) {
	return func(serial []byte) (bool, error) {
		c, err := db.Certificate(ctx, id, serial)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil // recorded before signers were among the CA's certificates
		}
		return err == nil && c.Status == store.StatusRevoked, err
	}
}

// betterCertificate reports whether c is preferred to best at now: valid
// now when best is not, or as valid and with a later notAfter.
func betterCertificate(c, best *x509.Certificate, now time.Time) bool {
	validNow := func(c *x509.Certificate) bool { return !now.Before(c.NotBefore) && !now.After(c.NotAfter) }
	cNow, bestNow := validNow(c), validNow(best)
	return cNow && !bestNow || cNow == bestNow && c.NotAfter.After(best.NotAfter)
}

// errNoSigner: no OCSP signer recorded for an issuing CA is usable.
var errNoSigner = errors.New("no OCSP signer in the store was certified")

// rankedSigner is an OCSP signer rankResponders ranks.
type rankedSigner struct {
	store.Issuer
	cert *x509.Certificate
}

// rankResponders ranks the recorded OCSP signers that the issuing CA
// signed and did not revoke: first those valid at now, then the others,
// each by latest notAfter (of two alike, the one recorded first). The
// first is the one to answer; if none is valid now, the CA reports itself
// not ready (ca.CA.Ready) rather than refusing to start. The ranking is
// made at start (issuingResponder) and again every
// ca.signer_check_interval (nextSigner). A record it cannot read (its
// certificate, or its status in the store) is passed over and problems
// says why: the start stops on it, a running node reports it.
func rankResponders(issuing *x509.Certificate, signers []store.Issuer, now time.Time, revoked func(serial []byte) (bool, error)) (ranked []rankedSigner, problems error) {
	var errs []error
	for _, is := range signers {
		c, err := x509.ParseCertificate(is.CertificateDER)
		if err != nil {
			errs = append(errs, fmt.Errorf("issuer %s: %w", is.ID, err))
			continue
		}
		if c.CheckSignatureFrom(issuing) != nil {
			continue
		}
		if r, err := revoked(c.SerialNumber.Bytes()); err != nil {
			errs = append(errs, fmt.Errorf("issuer %s: %w", is.ID, err))
			continue
		} else if r {
			continue
		}
		ranked = append(ranked, rankedSigner{is, c})
	}
	slices.SortStableFunc(ranked, func(a, b rankedSigner) int {
		switch {
		case betterCertificate(a.cert, b.cert, now):
			return -1
		case betterCertificate(b.cert, a.cert, now):
			return 1
		}
		return 0
	})
	return ranked, errors.Join(errs...)
}

// openServiceWithCA opens the service and its CA role, for the commands
// that issue or revoke in their own process (benchmarks, registry recheck).
func openServiceWithCA(ctx context.Context, cfg config.Config, log *slog.Logger) (*service, *caRole, error) {
	s, err := openService(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	authority, err := openCA(ctx, s, cfg.PublicBaseURL())
	if err != nil {
		s.close()
		return nil, nil, err
	}
	return s, authority, nil
}

// openCA builds the CA from the issuers recorded in the store (the issuing
// CAs and their OCSP signers) and their keys on the token. baseURL is where
// relying parties reach the status tier.
func openCA(ctx context.Context, s *service, baseURL string) (*caRole, error) {
	cas, missing, err := caIssuers(ctx, s, true)
	if err != nil {
		return nil, err
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
	// An auto enrollment's request reaches the CA moments after the RA
	// checked it; one an officer approves days later is verified again.
	role := &caRole{db: s.db, missing: missing, proofs: csr.NewProofs(4096), svc: s}
	for _, c := range cas {
		role.keys = append(role.keys, c.responder.Issuer.PublicKey, c.responder.Certificate.PublicKey)
	}
	for i, c := range cas {
		issuing, signer := c.issuer, c.responder
		issuingCert := signer.Issuer
		issuingKey := c.key
		authority, err := ca.New(ca.Deps{
			Store: s.db, Audit: s.audit, Linter: linter, OCSP: ocspSigner,
			Issuer: ca.Issuer{ID: issuing.ID, Certificate: issuingCert, Signer: issuingKey,
				CRLURL: baseURL + "/crl/" + issuing.ID + ".crl", OCSPURL: baseURL + "/ocsp", CAIssuersURL: baseURL + "/ca/" + issuing.ID + ".crt"},
			Responder: signer,
			Profiles:  profiles, OtherKeys: role.keys, Proofs: role.proofs, Now: time.Now,
		})
		if err != nil {
			return nil, err
		}
		builder, err := crl.New(s.db, s.audit, linter, crl.Config{}, time.Now)
		if err != nil {
			return nil, err
		}
		publisher, err := ca.NewPublisher(authority, builder, ca.PublishConfig{Logger: s.log, KeepReplaced: s.cfg.CA.KeepReplacedCRLs})
		if err != nil {
			return nil, err
		}
		is := &issuerRole{ca: authority, publisher: publisher, ocsp: ocspSigner,
			crlFrom: crl.Issuer{ID: issuing.ID, Certificate: issuingCert, Signer: issuingKey}}
		if i == 0 {
			role.issuerRole = is
		} else {
			role.older = append(role.older, is)
		}
	}
	return role, nil
}

// responderWarning is how long before its OCSP signer can no longer sign
// the CA says so at start-up: time to run an ocsp-signer ceremony (the
// profile allows at most 90 days, so a new one is due every few weeks).
const responderWarning = 14 * 24 * time.Hour

// issuanceWarning is how long before the active issuing CA stops issuing a
// profile (ca.CA.IssuanceEnds) the CA says so at start-up: time to hold the
// ceremonies for the next issuing CA.
const issuanceWarning = 180 * 24 * time.Hour

// start resolves what a crash may have left (ca/doc.go) and makes sure
// every issuing CA has a CRL, before anything is served; then it has the
// service run each issuing CA's publisher beside the HTTP server, which
// goes on resolving what failed issuances leave. The CA is ready only
// while the active issuing CA's OCSP signer can sign (ca.CA.Ready) and its
// own certificate is valid (ca.CA.InValidity); an
// older issuing CA's signer that runs out is logged, at start and by its
// publisher, without taking the node out of service.
func (r *caRole) start(ctx context.Context, s *service) error {
	s.addCheck("ocsp_responder", r.ca.Ready)
	s.addCheck("issuing_ca", r.ca.InValidity)
	if len(r.older) > 0 {
		s.log.Info("issuing from the newest issuing CA; the older ones keep their status current", "active", r.crlFrom.ID, "older", len(r.older))
	}
	for _, is := range r.all() {
		if err := is.start(ctx, s); err != nil {
			return err
		}
	}
	// What runs out is said at start and every hour after, for a node
	// that runs for months, and kept in gauges to alert on.
	r.warn(s)
	s.every(time.Hour, func(context.Context) { r.warn(s) })
	s.every(s.cfg.CA.SignerCheckInterval, r.checkSigners)
	s.collectors = append(s.collectors, r.register)
	return nil
}

// warn logs what will soon stop the CA: the active issuing CA's issuing
// life (IssuanceEnds), and each issuing CA's OCSP signer, without which
// its certificates can be neither issued nor revoked and their answers go
// stale (an older issuing CA's signer too: it is not a readiness check,
// which would take the node and its issuance out of service).
func (r *caRole) warn(s *service) {
	now := s.now()
	if ends, profile := r.ca.IssuanceEnds(); !ends.IsZero() && now.Add(issuanceWarning).After(ends) {
		s.log.Warn("the issuing CA is near the end of its issuing life: after issuance_ends it cannot issue a full "+profile+" certificate; roll over to the next issuing CA (README: issuing CA rollover)",
			"issuer", r.crlFrom.ID, "issuance_ends", ends, "profile", profile, "warn_within", issuanceWarning)
	}
	for _, is := range r.all() {
		switch ends, notAfter, ok := is.signing(); {
		case !ok:
			s.log.Error("the OCSP signer was revoked and no other is usable: no certificate of this issuing CA can be issued, and its answers go stale; certify a new OCSP signer and add it (sanad issuer add)",
				"issuer", is.crlFrom.ID)
		case now.Add(responderWarning).After(ends):
			s.log.Warn("the OCSP signer's certificate runs out soon: after signing_ends no certificate of this issuing CA can be issued, and its answers go stale; certify a new OCSP signer and add it (sanad issuer add)",
				"issuer", is.crlFrom.ID, "signing_ends", ends, "not_after", notAfter, "warn_within", responderWarning)
		}
	}
}

// register exports, per issuing CA, when its OCSP signer stops signing and
// (for the active one) when it stops issuing, and which one is active.
func (r *caRole) register(reg prometheus.Registerer) error {
	issuance := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sanad_ca_issuance_ends_timestamp_seconds",
		Help: "When the active issuing CA can no longer issue every end-entity profile (Unix time): roll over before."}, []string{"issuer"})
	active := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sanad_ca_issuer_active",
		Help: "1 for the issuing CA this node issues from, 0 for the older ones it keeps status for."}, []string{"issuer"})
	var collectors []prometheus.Collector
	for i, is := range r.all() {
		// Read at each scrape: the signer in service may change
		// (checkSigners); one retired without a successor reads 0.
		collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sanad_ca_ocsp_signing_ends_timestamp_seconds",
			Help:        "When the issuing CA's OCSP signer can sign no more responses (Unix time; 0: retired, none in service): certify the next one before.",
			ConstLabels: prometheus.Labels{"issuer": is.crlFrom.ID}}, func() float64 {
			if ends, _, ok := is.signing(); ok {
				return float64(ends.Unix())
			}
			return 0
		}))
		if i == 0 {
			active.WithLabelValues(is.crlFrom.ID).Set(1)
		} else {
			active.WithLabelValues(is.crlFrom.ID).Set(0)
		}
	}
	if ends, _ := r.ca.IssuanceEnds(); !ends.IsZero() {
		issuance.WithLabelValues(r.crlFrom.ID).Set(float64(ends.Unix()))
	}
	leftOut := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sanad_ca_issuer_left_out",
		Help: "1 for an issuing CA recorded in the store that this node leaves out (incomplete here, no unexpired certificate)."}, []string{"issuer"})
	for id := range r.missing {
		leftOut.WithLabelValues(id).Set(1)
	}
	for _, c := range append(collectors, issuance, active, leftOut) {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (r *issuerRole) start(ctx context.Context, s *service) error {
	s.loops = append(s.loops, func(ctx context.Context) {
		if err := r.publisher.Run(ctx); err != nil {
			s.log.Error("CA publisher stopped", "issuer", r.crlFrom.ID, "err", err)
		}
	})
	n, err := r.publisher.RecoverIntents(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Warn("revoked issuance intents left by a crash", "issuer", r.crlFrom.ID, "count", n)
	}
	switch _, err := s.db.LatestCRL(ctx, r.crlFrom.ID); {
	case errors.Is(err, store.ErrNotFound):
		c, err := r.publisher.PublishCRL(ctx)
		if err != nil {
			return err
		}
		s.log.Info("published the first CRL", "issuer", r.crlFrom.ID, "crl_number", c.Number)
	case err != nil:
		return err
	}
	return nil
}
