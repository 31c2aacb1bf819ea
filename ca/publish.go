package ca

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sanadpki/sanad/ca/crl"
	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
)

// FaultRefreshSigned is where Deps.Fault may stop an OCSP refresh (tests
// only): a page of responses signed, nothing stored yet. A status change
// made there is the race PutRefreshedOCSPResponse must win.
const FaultRefreshSigned = "refresh-signed"

// PublishConfig sets how a Publisher keeps the issuer's CRL and OCSP
// responses fresh. Zero values take the defaults (see withDefaults).
type PublishConfig struct {
	// MinInterval is the least time between two CRL builds caused by status
	// changes: the changes of a burst are coalesced into the next build.
	// Default 5 s; at most 15 minutes.
	MinInterval time.Duration
	// Republish: a new CRL is published when the latest stored one's
	// thisUpdate is this old, changes or not. Default 24 h; at most 7 days
	// (CRLs are republished at least weekly), and it must leave one
	// CRLCheck before the latest CRL's nextUpdate.
	Republish time.Duration
	// CRLCheck is how often Run looks at the stored latest CRL's age,
	// retries a build that failed, and looks for a revocation newer than
	// that CRL (one another process made, which signals nobody here).
	// Default 1 minute; at most Republish.
	CRLCheck time.Duration
	// OCSPScan is how often Run looks for OCSP responses due for
	// re-signing; responses whose refresh point falls before the next scan
	// are due now. Default 1 minute; at most 1 hour, so that even an 8-hour
	// response is re-signed before half its validity.
	OCSPScan time.Duration
	// UnansweredScan is how often Run also walks the issuer's certificates
	// for any that need an OCSP response and have none (the walk reads
	// every certificate; due responses are found by index). Default 1
	// hour; at least OCSPScan.
	UnansweredScan time.Duration
	// PageSize is how many certificates an OCSP refresh signs and stores
	// per transaction. Default 500; at most 10000.
	PageSize int
	// RecoverGrace is how old an issuance intent without a certificate
	// must be before RecoverIntents resolves it (CA.Recover), at start-up
	// and at each OCSPScan of Run: a younger intent may belong to an
	// issuance still in flight, here or on another node (whose clock may
	// differ a little). Default 1 minute; between 10 seconds and 1 hour,
	// the longest a serial the HSM may have signed stays without an answer.
	RecoverGrace time.Duration
	// KeepReplaced is how long past its nextUpdate a CRL that a newer one
	// replaced stays in the store (PruneCRLs, at start and hourly).
	// Default 0: it is deleted once its nextUpdate has passed, when no
	// relying party may take it as current any more. Each crl.publish
	// audit event keeps the CRL's number, dates, entry count and SHA-256.
	KeepReplaced time.Duration
	// Logger receives one line per publication, refresh pass and failure;
	// nil discards them.
	Logger *slog.Logger
}

// Limits on PublishConfig.
const (
	maxMinInterval  = 15 * time.Minute
	maxRepublish    = 7 * 24 * time.Hour
	maxOCSPScan     = time.Hour
	maxPageSize     = 10000
	minRecoverGrace = 10 * time.Second
	maxRecoverGrace = time.Hour
)

// withDefaults fills the zero values: the one place the defaults live.
func (cfg PublishConfig) withDefaults() PublishConfig {
	if cfg.MinInterval == 0 {
		cfg.MinInterval = 5 * time.Second
	}
	if cfg.Republish == 0 {
		cfg.Republish = 24 * time.Hour
	}
	if cfg.CRLCheck == 0 {
		cfg.CRLCheck = time.Minute
	}
	if cfg.OCSPScan == 0 {
		cfg.OCSPScan = time.Minute
	}
	if cfg.UnansweredScan == 0 {
		cfg.UnansweredScan = time.Hour
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = 500
	}
	if cfg.RecoverGrace == 0 {
		cfg.RecoverGrace = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// validate reports every problem of cfg (defaults applied) at once;
// crlValidity is the CRL builder's nextUpdate - thisUpdate.
func (cfg PublishConfig) validate(crlValidity time.Duration) error {
	var errs []error
	if cfg.KeepReplaced < 0 {
		errs = append(errs, fmt.Errorf("keep-replaced CRLs %s is negative", cfg.KeepReplaced))
	}
	if cfg.MinInterval < 0 || cfg.MinInterval > maxMinInterval {
		errs = append(errs, fmt.Errorf("CRL min interval %s is outside 0..%s", cfg.MinInterval, maxMinInterval))
	}
	if cfg.Republish < 0 || cfg.Republish > maxRepublish {
		errs = append(errs, fmt.Errorf("CRL republish interval %s is outside 0..%s (CRLs are republished at least weekly)", cfg.Republish, maxRepublish))
	}
	if cfg.CRLCheck < 0 || cfg.CRLCheck > cfg.Republish {
		errs = append(errs, fmt.Errorf("CRL check interval %s is outside 0..%s (the republish interval)", cfg.CRLCheck, cfg.Republish))
	}
	if cfg.Republish+cfg.CRLCheck >= crlValidity {
		errs = append(errs, fmt.Errorf("CRL republish interval %s plus check interval %s must be less than the CRL validity %s, or a CRL could run out before the next one",
			cfg.Republish, cfg.CRLCheck, crlValidity))
	}
	if cfg.OCSPScan < 0 || cfg.OCSPScan > maxOCSPScan {
		errs = append(errs, fmt.Errorf("OCSP scan interval %s is outside 0..%s", cfg.OCSPScan, maxOCSPScan))
	}
	if cfg.UnansweredScan < cfg.OCSPScan {
		errs = append(errs, fmt.Errorf("unanswered scan interval %s is shorter than the OCSP scan interval %s", cfg.UnansweredScan, cfg.OCSPScan))
	}
	if cfg.PageSize < 0 || cfg.PageSize > maxPageSize {
		errs = append(errs, fmt.Errorf("page size %d is outside 1..%d", cfg.PageSize, maxPageSize))
	}
	if cfg.RecoverGrace < minRecoverGrace || cfg.RecoverGrace > maxRecoverGrace {
		errs = append(errs, fmt.Errorf("recover grace %s is outside %s..%s", cfg.RecoverGrace, minRecoverGrace, maxRecoverGrace))
	}
	return errors.Join(errs...)
}

// Publisher keeps the status information of the CA's issuer fresh:
//   - the full CRL is rebuilt after status changes (Revoke, Recover), at
//     most once per MinInterval, and republished when the latest stored
//     CRL is Republish old (CRLs: RFC 5280 §5, CA/B Forum BR §4.9.7);
//   - every OCSP response is re-signed when its refresh point is reached
//     (ocspsign.RefreshAge: half-life, within CA/B Forum BR §4.9.10), and
//     every certificate that needs a response gets one, expired ones too
//     (their status stays answerable, with archiveCutoff);
//   - every issuance intent left without a certificate (a crash, or a
//     failure after the intent was committed) is resolved once it is
//     RecoverGrace old, so that its serial answers revoked and is listed.
//
// What it decides about day-scale times comes from the store, never from
// its own memory, so a restarted process carries on where the last one
// stopped, and several CA nodes may each run one over one database: when
// two build the same CRL number, the store keeps the first and the other
// builds again if it had changes to publish. A CA has one Publisher: Run
// consumes CA.Changes.
type Publisher struct {
	ca   *CA
	crls *crl.Builder
	cfg  PublishConfig
	log  *slog.Logger

	// expiredMu guards expiredAfter, where the walk of the expired
	// certificates' due responses resumes at the next pass (nil: from the
	// start): each pass gives that walk a bounded time (refreshOCSP).
	expiredMu    sync.Mutex
	expiredAfter []byte
	// resign wakes runOCSP for ResignBefore.
	resign chan struct{}
	// aheadSaid is the re-sign time (Unix nanoseconds) last said to be
	// ahead of this node's clock.
	aheadSaid atomic.Int64
}

// ResignBefore has every OCSP answer of the issuer's certificates signed
// until t (the CA's clock, which dates the answers) signed again: the OCSP
// signer that signed them was revoked and another took its place
// (cmd/sanad's checkSigners, with the time it switched). The time is
// recorded in the store, the latest any node recorded
// (store.Tx.RaiseOCSPResignBefore), with an ocsp.resign audit event whose
// details say why; then the refresh loop is woken. The refresh passes of
// every node, a restarted one's too, sign again the live answers dated
// until then, the first at once, then the expired certificates' in their
// bounded walk. Nothing needs to end it: the answers signed since are
// dated later. What the replaced signer was still signing is covered:
// a refresh page signed by a responder no longer in service when it is
// stored is thrown away (refreshPage), and a single answer signed before
// the switch is dated before t. Revoking the signer in service raises the
// time in the revocation's own transaction (CA.Revoke).
func (p *Publisher) ResignBefore(ctx context.Context, t time.Time, details map[string]any) error {
	d := p.ca.d
	t = t.UTC()
	err := d.Store.InTx(ctx, func(tx *store.Tx) error {
		changed, err := tx.RaiseOCSPResignBefore(ctx, d.Issuer.ID, t)
		if err != nil || !changed {
			return err
		}
		ev := maps.Clone(details)
		if ev == nil {
			ev = map[string]any{}
		}
		ev["signed_before"] = t
		return d.Audit.Append(tx, audit.Event{Actor: "system", Action: "ocsp.resign", Object: d.Issuer.ID, Details: ev})
	})
	if err != nil {
		return fmt.Errorf("re-sign the OCSP answers of %s: %w", d.Issuer.ID, err)
	}
	select {
	case p.resign <- struct{}{}:
	default:
	}
	return nil
}

// NewPublisher returns a Publisher for authority's issuer, building CRLs
// with crls. cfg is validated, all problems reported at once.
func NewPublisher(authority *CA, crls *crl.Builder, cfg PublishConfig) (*Publisher, error) {
	if authority == nil || crls == nil {
		return nil, errors.New("publisher: a CA and a CRL builder are required")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(crls.Validity()); err != nil {
		return nil, fmt.Errorf("publisher for %s: %w", authority.d.Issuer.ID, err)
	}
	return &Publisher{ca: authority, crls: crls, cfg: cfg, log: cfg.Logger.With("issuer", authority.d.Issuer.ID), resign: make(chan struct{}, 1)}, nil
}

// crlIssuer is the CA's issuer as the CRL builder needs it.
func (ca *CA) crlIssuer() crl.Issuer {
	return crl.Issuer{ID: ca.d.Issuer.ID, Certificate: ca.d.Issuer.Certificate, Signer: ca.d.Issuer.Signer}
}

// PublishCRL builds, signs and stores the issuer's next CRL with its audit
// event. When another node stored that CRL number first, the error wraps
// store.ErrConflict.
func (p *Publisher) PublishCRL(ctx context.Context) (store.CRL, error) {
	return p.crls.Build(ctx, p.ca.crlIssuer())
}

// pruneCRLPage is how many CRLs PruneCRLs deletes per transaction: a
// national CA's CRL may be megabytes, and on SQLite the transaction holds
// the write lock (64 of 4 MiB held it half a second).
const pruneCRLPage = 16

// PruneCRLs deletes the issuer's stored CRLs that a newer one replaced and
// whose nextUpdate passed KeepReplaced ago or more, oldest first, a page at
// a time, each page with its crl.prune audit event in its transaction, and
// returns how many. Under a stream of revocations a CRL is built every
// MinInterval; kept, they grew the store by a whole CRL each time. The
// latest CRL is never deleted.
func (p *Publisher) PruneCRLs(ctx context.Context) (int64, error) {
	d := p.ca.d
	before := d.Now().UTC().Add(-p.cfg.KeepReplaced)
	var total int64
	for {
		var pruned store.PrunedCRLs
		err := d.Store.InTx(ctx, func(tx *store.Tx) (err error) {
			if pruned, err = tx.PruneCRLs(ctx, d.Issuer.ID, before, pruneCRLPage); err != nil || pruned.Count == 0 {
				return err
			}
			return d.Audit.Append(tx, audit.Event{Actor: "system", Action: "crl.prune", Object: d.Issuer.ID,
				Details: map[string]any{"count": pruned.Count, "first_number": pruned.First, "last_number": pruned.Last, "next_update_before": before}})
		})
		if err != nil {
			return total, fmt.Errorf("prune CRLs of %s: %w", d.Issuer.ID, err)
		}
		total += pruned.Count
		if pruned.Count < pruneCRLPage {
			return total, nil
		}
	}
}

// pruneInterval is how often Run prunes the stored CRLs (PruneCRLs).
const pruneInterval = time.Hour

// runPrune prunes the stored CRLs as Run starts and every pruneInterval,
// apart from the CRL loop: a backlog (the first prune after an upgrade)
// delays no CRL build.
func (p *Publisher) runPrune(ctx context.Context) {
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	for {
		switch n, err := p.PruneCRLs(ctx); {
		case ctx.Err() != nil:
			return
		case err != nil:
			p.log.Error("stored CRLs not all pruned; retrying in an hour", "pruned", n, "err", err)
		case n > 0:
			p.log.Info("replaced CRLs pruned from the store", "pruned", n, "keep_replaced", p.cfg.KeepReplaced)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RepublishCRL publishes the next CRL when the issuer has none yet or the
// latest stored one's thisUpdate is Republish old, and reports whether it
// did. It reads the latest CRL from the store, so a restarted process, or
// another node, sees what was published before.
func (p *Publisher) RepublishCRL(ctx context.Context) (store.CRL, bool, error) {
	latest, err := p.ca.d.Store.LatestCRLSummary(ctx, p.ca.d.Issuer.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return store.CRL{}, false, fmt.Errorf("republish CRL: %w", err)
	case p.ca.d.Now().Sub(latest.ThisUpdate) < p.cfg.Republish:
		return store.CRL{}, false, nil
	}
	c, err := p.PublishCRL(ctx)
	if err != nil {
		return store.CRL{}, false, err
	}
	return c, true, nil
}

// RefreshOCSP re-signs, page by page, every OCSP response of the issuer's
// unexpired certificates that is due (its refresh point falls before the
// next OCSPScan), signs one for every certificate, expired or not, that
// needs a response and has none, and then re-signs the due responses of
// expired certificates for at most half an OCSPScan, resuming at the next
// call where it stopped. It returns how many responses it stored. A
// response that cannot be signed is skipped and reported in the error,
// after the rest of the walk.
func (p *Publisher) RefreshOCSP(ctx context.Context) (int, error) {
	return p.refreshOCSP(ctx, true)
}

// RecoverIntents resolves the issuance intents RecoverGrace old or older
// (CA.Recover) and returns how many it revoked. The CRL that lists them
// follows from CA.Changes when Run runs.
func (p *Publisher) RecoverIntents(ctx context.Context) (int, error) {
	return p.ca.Recover(ctx, p.cfg.RecoverGrace)
}

// Run keeps the issuer's CRL and OCSP responses fresh until ctx is done,
// then returns nil once the work in flight has stopped. It builds a CRL at
// once when the store has no CRL or a revocation newer than the latest one
// (committed just before a crash or restart, its signal lost), rebuilds on CA.Changes at most once per MinInterval,
// republishes on the stored CRL's age, and every OCSPScan resolves stale
// issuance intents (RecoverIntents) and refreshes OCSP responses. Failures
// are logged and retried, never fatal; Run returns an error only when it
// cannot start (the issuer is not in the store).
func (p *Publisher) Run(ctx context.Context) error {
	if _, err := p.ca.d.Store.Issuer(ctx, p.ca.d.Issuer.ID); err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	// The CRL and OCSP loops run apart, so that a long refresh pass never
	// delays the CRL of a revocation.
	var wg sync.WaitGroup
	wg.Go(func() { p.runCRL(ctx) })
	wg.Go(func() { p.runPrune(ctx) })
	wg.Go(func() { p.runOCSP(ctx) })
	wg.Wait()
	return nil
}

// crlRace is how long before the latest CRL a revocation is still checked
// against it (missingFromCRL): a revocation is dated before its HSM
// signature and its transaction, so one dated before a CRL was built may
// commit after the build read the revocations. It covers the HSM's wait
// for a session and a slow transaction many times over.
const crlRace = 10 * time.Minute

// missingFromCRL reports whether the issuer has no CRL yet, or a
// revocation (or a raised reason) that the latest CRL does not list as it
// now stands: one made after the CRL, or just before it but committed after
// the build read the revocations (crlRace). When the store cannot tell, it
// says yes.
func (p *Publisher) missingFromCRL(ctx context.Context) bool {
	d := p.ca.d
	latest, err := d.Store.LatestCRLSummary(ctx, d.Issuer.ID)
	if err != nil {
		return true
	}
	changes, err := d.Store.RevocationsSince(ctx, d.Issuer.ID, latest.CreatedAt.Truncate(time.Second).Add(-crlRace), latest.ThisUpdate)
	switch {
	case err != nil:
		return true
	case len(changes) == 0:
		return false
	}
	full, err := d.Store.LatestCRL(ctx, d.Issuer.ID)
	if err != nil || full.Number != latest.Number {
		return true
	}
	rl, err := x509.ParseRevocationList(full.DER)
	if err != nil {
		return true
	}
	listed := make(map[string]int, len(rl.RevokedCertificateEntries))
	for _, e := range rl.RevokedCertificateEntries {
		listed[string(e.SerialNumber.Bytes())] = e.ReasonCode
	}
	for _, c := range changes {
		if reason, ok := listed[string(new(big.Int).SetBytes(c.Serial).Bytes())]; !ok || reason != c.Reason {
			return true
		}
	}
	return false
}

// runCRL rebuilds on status changes, throttled to one build per
// MinInterval: the first change after a quiet period builds at once; the
// changes that arrive within MinInterval of a build wait for one build when
// MinInterval has passed, which includes them all. Elapsed times here are real
// (monotonic) time: they pace the loop; the injected clock dates CRLs and
// decides their age.
func (p *Publisher) runCRL(ctx context.Context) {
	check := time.NewTicker(p.cfg.CRLCheck)
	defer check.Stop()
	var (
		pending   = p.missingFromCRL(ctx) // changes not yet in a stored CRL
		lastBuild time.Time
		wait      *time.Timer
		waitC     <-chan time.Time // non-nil while wait runs
	)
	defer func() {
		if wait != nil {
			wait.Stop()
		}
	}()
	// build publishes the pending changes. It reports whether to build
	// again after MinInterval: another node stored the CRL number first,
	// and its CRL may have been read before our changes committed. A
	// failed build leaves the changes pending for the next check.
	build := func() (again bool) {
		pending, lastBuild = false, time.Now()
		c, err := p.PublishCRL(ctx)
		switch {
		case err == nil:
			p.log.Info("CRL published", "crl_number", c.Number, "this_update", c.ThisUpdate, "reason", "status change")
		case ctx.Err() != nil:
		case errors.Is(err, store.ErrConflict):
			p.log.Debug("CRL number taken by another node; building again", "err", err)
			pending = true
			return true
		default:
			p.log.Error("CRL build failed; retrying at the next check", "err", err)
			pending = true
		}
		return false
	}
	arm := func(d time.Duration) {
		wait = time.NewTimer(d)
		waitC = wait.C
	}
	// schedule builds the pending changes now when MinInterval has passed
	// since the last build, or else when it will have.
	schedule := func() {
		if !pending || waitC != nil {
			return
		}
		if d := p.cfg.MinInterval - time.Since(lastBuild); d > 0 {
			arm(d)
			return
		}
		if build() {
			arm(p.cfg.MinInterval)
		}
	}
	schedule()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.ca.Changes():
			pending = true
			schedule()
		case <-waitC:
			waitC = nil
			schedule()
		case <-check.C:
			// A revocation another process made (sanad registry recheck)
			// signals nobody here: a revocation newer than the latest CRL
			// is one the CRL is missing.
			if pending || p.missingFromCRL(ctx) {
				pending = true
				schedule()
				continue
			}
			c, published, err := p.RepublishCRL(ctx)
			switch {
			case err != nil && ctx.Err() != nil:
			case errors.Is(err, store.ErrConflict):
				p.log.Debug("CRL republished by another node", "err", err)
			case err != nil:
				p.log.Error("CRL republish failed; retrying at the next check", "err", err)
			case published:
				lastBuild = time.Now()
				p.log.Info("CRL published", "crl_number", c.Number, "this_update", c.ThisUpdate, "reason", "republish")
			}
		}
	}
}

// runOCSP resolves stale intents and refreshes due responses every
// OCSPScan, and looks for unanswered certificates at start and every
// UnansweredScan. Intents come first: their revoked answers are stored
// then, and need no refresh.
func (p *Publisher) runOCSP(ctx context.Context) {
	scan := time.NewTicker(p.cfg.OCSPScan)
	defer scan.Stop()
	sweep := time.NewTicker(p.cfg.UnansweredScan)
	defer sweep.Stop()
	pass := func(unanswered bool) {
		switch n, err := p.RecoverIntents(ctx); {
		case ctx.Err() != nil:
			return
		case err != nil:
			p.log.Error("issuance intents not all resolved; retrying at the next scan", "revoked", n, "err", err)
		case n > 0:
			p.log.Warn("revoked issuance intents left without a certificate", "revoked", n, "grace", p.cfg.RecoverGrace)
		}
		n, err := p.refreshOCSP(ctx, unanswered)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			p.log.Error("OCSP refresh incomplete; retrying at the next scan", "refreshed", n, "err", err)
		} else if n > 0 {
			p.log.Info("OCSP responses refreshed", "refreshed", n)
		}
	}
	pass(true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-scan.C:
			pass(false)
		case <-p.resign:
			pass(false)
		case <-sweep.C:
			pass(true)
		}
	}
}

// refreshOCSP is one pass over the due responses and, when unanswered is
// set, over the certificates without one.
func (p *Publisher) refreshOCSP(ctx context.Context, unanswered bool) (int, error) {
	d := p.ca.d
	// A responder that cannot sign fails every response alike: say so
	// once, without reading the due responses. The pass signs with the
	// responder it starts with (UseResponder may change it meanwhile).
	var w refreshWalk
	responder, err := p.ca.responder()
	if err == nil {
		err = d.OCSP.CheckResponder(responder)
	}
	if err != nil {
		// The revoked answers are still kept fresh, signed by the issuing
		// CA itself, as a revocation's answer is then (signRevoked):
		// otherwise they would run out and a soft-failing client would
		// take the certificate for good. The good ones wait for a signer.
		issuer := ocspsign.IssuerAsResponder(d.Issuer.ID, d.Issuer.Certificate, d.Issuer.Signer)
		if d.OCSP.CheckResponder(issuer) != nil {
			return 0, fmt.Errorf("ocsp refresh %s: %w", d.Issuer.ID, err)
		}
		responder, w.revokedOnly, w.noSigner = issuer, &issuer, fmt.Errorf("ocsp refresh %s: only the revoked answers, signed by the issuing CA: %w", d.Issuer.ID, err)
	}
	now := d.Now().UTC()
	// Whether a certificate has expired is decided at the thisUpdate its
	// response would have, as Sign decides it.
	expiredAt := d.OCSP.ThisUpdate(now)
	liveTU, liveNU := d.OCSP.DueBefore(now, p.cfg.OCSPScan)
	// The expired certificates' responses are signed for longer
	// (ocspsign.Signer.ExpiredValidity), so they are due later.
	expiredTU, expiredNU := d.OCSP.DueBeforeExpired(responder, now, p.cfg.OCSPScan)
	// What a revoked OCSP signer signed is due too (ResignBefore).
	resign, err := d.Store.OCSPResignBefore(ctx, d.Issuer.ID)
	if err != nil {
		return 0, fmt.Errorf("ocsp refresh %s: %w", d.Issuer.ID, err)
	}
	switch {
	case resign.After(now):
		// Recorded by a node whose clock is ahead of this one's: taken
		// once this clock gets there. Before, every pass here would sign
		// again what it signed the pass before, dated before that time.
		if p.aheadSaid.Swap(resign.UnixNano()) != resign.UnixNano() {
			p.log.Warn("the time before which OCSP answers are to be signed again is ahead of this node's clock; check the clocks of the CA nodes",
				"resign_before", resign, "now", now)
		}
	case !resign.IsZero():
		tu := d.OCSP.ThisUpdate(resign)
		liveTU, expiredTU = latest(liveTU, tu), latest(expiredTU, tu)
	}
	due := func(expired bool, thisUpdateBefore, nextUpdateBefore time.Time) func(context.Context, []byte) ([]store.Certificate, error) {
		return func(ctx context.Context, after []byte) ([]store.Certificate, error) {
			return d.Store.DueOCSPResponses(ctx, store.OCSPDue{IssuerID: d.Issuer.ID, Expired: expired, Now: expiredAt,
				ThisUpdateBefore: thisUpdateBefore, NextUpdateBefore: nextUpdateBefore, After: after, Limit: p.cfg.PageSize})
		}
	}
	missing := func(ctx context.Context, after []byte) ([]store.Certificate, error) {
		return d.Store.UnansweredCertificates(ctx, d.Issuer.ID, after, p.cfg.PageSize)
	}
	// The live certificates first, then those without a response, then
	// the expired ones whose response ends as soon as a live one's may
	// when due (one signed before the expiry, or capped by a responder
	// near its end), then the other expired ones for at most half a scan
	// interval, that walk going on where it stopped at the next pass:
	// however long the history, a pass ends, the live answers are
	// re-signed in time, and no answer outlives its nextUpdate unless the
	// HSM cannot keep up with the urgent ones.
	w.walk(ctx, p, due(false, liveTU, liveNU), nil, time.Time{})
	if unanswered && w.err == nil {
		w.walk(ctx, p, missing, nil, time.Time{})
	}
	if w.err == nil {
		w.walk(ctx, p, due(true, time.Unix(0, 0), liveNU), nil, time.Time{})
	}
	if w.err == nil {
		p.expiredMu.Lock()
		defer p.expiredMu.Unlock()
		p.expiredAfter = w.walk(ctx, p, due(true, expiredTU, expiredNU), p.expiredAfter, time.Now().Add(p.cfg.OCSPScan/2))
	}
	return w.stored, w.error(d.Issuer.ID)
}

// latest is the later of a and b.
func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// refreshWalk is the outcome of a refresh pass: responses stored, the
// first failure to sign and how many failed, and the error that stopped
// the walk.
type refreshWalk struct {
	stored   int
	unsigned int
	signErr  error
	err      error
	// revokedOnly, when the responder in service cannot sign, is the
	// issuing CA as responder: the walk signs the revoked answers with it
	// and leaves the others; noSigner says why.
	revokedOnly *ocspsign.Responder
	noSigner    error
}

func (w *refreshWalk) error(issuerID string) error {
	errs := []error{w.noSigner}
	if w.signErr != nil {
		errs = append(errs, fmt.Errorf("ocsp refresh %s: %d responses not signed, the first: %w", issuerID, w.unsigned, w.signErr))
	}
	if w.err != nil {
		errs = append(errs, fmt.Errorf("ocsp refresh %s: %w", issuerID, w.err))
	}
	return errors.Join(errs...)
}

// walk reads pages from next, starting after the serial after (nil: the
// first), signs and stores each, until a short page, or until stopAt when
// it is not zero. It returns the serial to resume after when it stopped
// at stopAt, nil when it reached the end (or failed: the next walk starts
// over).
func (w *refreshWalk) walk(ctx context.Context, p *Publisher, next func(context.Context, []byte) ([]store.Certificate, error), after []byte, stopAt time.Time) []byte {
	for {
		page, err := next(ctx, after)
		if err != nil {
			w.err = err
			return nil
		}
		if len(page) == 0 {
			return nil
		}
		n, err := p.refreshPage(ctx, page, w)
		w.stored += n
		if err != nil {
			w.err = err
			return nil
		}
		if len(page) < p.cfg.PageSize {
			return nil
		}
		after = page[len(page)-1].Serial
		if !stopAt.IsZero() && time.Now().After(stopAt) {
			return after
		}
	}
}

// refreshPage signs the page's responses outside any transaction (an HSM
// signature inside one would hold its locks, and on SQLite the write lock,
// for as long as the HSM takes), then stores them in one transaction with
// one ocsp.refresh audit event per page that stored something: the event
// is in the transaction of the writes it records, as every audited change
// is, so a pass stopped half-way leaves no write unaudited.
func (p *Publisher) refreshPage(ctx context.Context, page []store.Certificate, w *refreshWalk) (int, error) {
	d := p.ca.d
	// Each page is signed by the responder in service when it starts: one
	// retired during a pass signs no further page. (Or by the issuing CA,
	// its revoked answers alone, when none could sign: revokedOnly.)
	responder, err := p.ca.responder()
	if w.revokedOnly != nil {
		responder, err = *w.revokedOnly, nil
	}
	if err != nil {
		return 0, err
	}
	certs := make([]store.Certificate, 0, len(page))
	resps := make([]store.OCSPResponse, 0, len(page))
	for _, c := range page {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if w.revokedOnly != nil && c.Status != store.StatusRevoked {
			continue
		}
		r, err := d.OCSP.Sign(responder, c)
		if err != nil {
			// One certificate that cannot be signed must not stop the
			// others: skip it, report it at the end of the pass.
			w.unsigned++
			if w.signErr == nil {
				w.signErr = err
			}
			continue
		}
		certs, resps = append(certs, c), append(resps, r)
	}
	if len(certs) == 0 {
		return 0, nil
	}
	if err := p.ca.fault(FaultRefreshSigned); err != nil {
		return 0, err
	}
	// Signed by a responder replaced or retired meanwhile: not stored. The
	// page's answers stay due, for the next pass; and what it signed
	// before this check is dated before the time the replacement records
	// (ResignBefore), which is taken after the switch.
	// (The issuing CA's own revoked answers are good whoever is in
	// service.)
	if cur, err := p.ca.responder(); w.revokedOnly == nil && (err != nil || !cur.Certificate.Equal(responder.Certificate)) {
		p.log.Info("an OCSP refresh page signed by a signer no longer in service is thrown away", "first_serial", hex.EncodeToString(certs[0].Serial))
		return 0, nil
	}
	stored := 0
	err = d.Store.InTx(ctx, func(tx *store.Tx) error {
		stored = 0
		// Stamped as they are written, not as they were signed, a page
		// at a time, before this transaction: see revoke.
		now := d.Now().UTC().Truncate(time.Microsecond)
		for i, c := range certs {
			r := resps[i]
			r.UpdatedAt = now
			ok, err := tx.PutRefreshedOCSPResponse(ctx, c, r)
			if err != nil {
				return err
			}
			if ok {
				stored++
			}
		}
		if stored == 0 {
			return nil
		}
		err := d.Audit.Append(tx, audit.Event{Actor: "system", Action: "ocsp.refresh", Object: d.Issuer.ID,
			Details: map[string]any{"refreshed": stored, "skipped": len(certs) - stored,
				"first_serial": hex.EncodeToString(certs[0].Serial), "last_serial": hex.EncodeToString(certs[len(certs)-1].Serial),
				"this_update": resps[0].ThisUpdate, "next_update": resps[0].NextUpdate}})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store page from %x: %w", certs[0].Serial, err)
	}
	return stored, nil
}
