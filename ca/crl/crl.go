// Package crl builds and signs the full CRL of an issuing CA (RFC 5280 §5)
// from the store, in the HSM.
//
// Rules kept here, in one place:
//   - one full CRL per issuer, its number strictly increasing, also across
//     crashes and a database that lost its latest rows (a restore, a
//     failover to a replica that lagged): the number is the build time in
//     Unix nanoseconds, or the stored maximum plus one if that is larger,
//     so a CRL built after such a loss still outnumbers every CRL published
//     before it (given CA nodes whose clocks agree to within the time
//     between the lost CRL and the next, which NTP makes milliseconds);
//     the store refuses a number that does not increase (a CRL
//     signed but never stored was never published, so its number may be
//     used again);
//   - nextUpdate is at most 10 days after thisUpdate (CA/B Forum limit for
//     CRLs covering subscriber certificates); the default is 7 days, and
//     the caller republishes at least weekly;
//   - an entry stays until its certificate has expired and one more CRL was
//     published after the expiry: a certificate is listed when it had not
//     expired at the previous CRL's thisUpdate;
//   - AKI (from the issuer's SKI) and reason codes are included; the CRL is
//     linted with zlint before it is stored.
//
// The package never publishes a CRL it has not stored with its audit event
// in the same transaction.
package crl

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/sanadpki/sanad/ca/lint"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
)

// MaxValidity is the longest nextUpdate - thisUpdate allowed.
const MaxValidity = 10 * 24 * time.Hour

// Issuer is an issuing CA: its certificate and the HSM key that signs.
type Issuer struct {
	ID          string
	Certificate *x509.Certificate
	Signer      crypto.Signer
}

// Config sets how CRLs are made.
type Config struct {
	// Validity is nextUpdate - thisUpdate; 0 means 7 days.
	Validity time.Duration
	// Backdate moves thisUpdate into the past to tolerate relying parties'
	// clock skew; at most an hour.
	Backdate time.Duration
	// KeepExpired keeps the entry of a certificate expired less than this
	// long ago, even once a CRL published after its expiry listed it (RFC
	// 5280 §3.3 wants it on a regularly scheduled CRL after the expiry,
	// and a CRL built after a revocation may be replaced seconds later):
	// the publisher's republish interval. 0 means 24 hours.
	KeepExpired time.Duration
}

// Builder makes the CRLs of issuers.
type Builder struct {
	db     *store.DB
	log    *audit.Log
	linter *lint.Linter
	cfg    Config
	now    func() time.Time
}

// New returns a Builder. cfg is validated.
func New(db *store.DB, log *audit.Log, linter *lint.Linter, cfg Config, now func() time.Time) (*Builder, error) {
	if cfg.Validity == 0 {
		cfg.Validity = 7 * 24 * time.Hour
	}
	if cfg.Validity < time.Hour || cfg.Validity > MaxValidity {
		return nil, fmt.Errorf("crl validity %s is outside 1h..%s", cfg.Validity, MaxValidity)
	}
	if cfg.KeepExpired == 0 {
		cfg.KeepExpired = 24 * time.Hour
	}
	if cfg.KeepExpired < 0 {
		return nil, fmt.Errorf("crl keep-expired %s is negative", cfg.KeepExpired)
	}
	if cfg.Backdate < 0 || cfg.Backdate > time.Hour {
		return nil, fmt.Errorf("crl backdate %s is outside 0..1h", cfg.Backdate)
	}
	return &Builder{db: db, log: log, linter: linter, cfg: cfg, now: now}, nil
}

// Validity is nextUpdate - thisUpdate of the CRLs b signs: a CRL must be
// republished before it runs out.
func (b *Builder) Validity() time.Duration { return b.cfg.Validity }

// Build signs the issuer's next CRL and stores it with its audit event.
//
// The clock is read for thisUpdate and the CRL number after the entries
// are: a revocation committed while they were read, dated after a time
// taken before, would be listed after thisUpdate (RFC 5280 §5.1.2.6; the
// lint refuses the CRL, and every build under a stream of revocations
// failed), and a node that numbered its CRL before reading could store a
// higher number over older entries than another node's CRL. thisUpdate is
// also never before the newest revocation listed, whose date another
// node's clock, a little ahead, or Config.Backdate may have put after it,
// nor before the previous CRL's thisUpdate: a relying party holding two
// CRLs of the issuer takes the one with the later thisUpdate (OpenSSL's
// CRL selection does), so a higher-numbered CRL dated earlier, built on a
// node whose clock is behind, would lose to the one it replaces, and its
// new entries with it.
func (b *Builder) Build(ctx context.Context, is Issuer) (store.CRL, error) {
	// Entries of certificates that expired before the previous CRL was
	// published, and more than KeepExpired ago, have been listed after
	// their expiry on a scheduled CRL: they leave now.
	keepFrom := b.now().UTC().Truncate(time.Second)
	var prevNumber int64
	prev, err := b.db.LatestCRLSummary(ctx, is.ID)
	switch {
	case err == nil:
		prevNumber = prev.Number
		if keepFrom = keepFrom.Add(-b.cfg.KeepExpired); prev.ThisUpdate.Before(keepFrom) {
			keepFrom = prev.ThisUpdate
		}
	case !errors.Is(err, store.ErrNotFound):
		return store.CRL{}, fmt.Errorf("crl %s: %w", is.ID, err)
	}
	revoked, err := b.db.CRLEntries(ctx, is.ID, keepFrom)
	if err != nil {
		return store.CRL{}, fmt.Errorf("crl %s: %w", is.ID, err)
	}
	clock := b.now().UTC()
	now := clock.Truncate(time.Second)
	number := max(clock.UnixNano(), prevNumber+1)
	thisUpdate := now.Add(-b.cfg.Backdate)
	for _, e := range revoked {
		if at := e.RevokedAt.Truncate(time.Second); at.After(thisUpdate) {
			thisUpdate = at
		}
	}
	if prevNumber != 0 && prev.ThisUpdate.After(thisUpdate) {
		thisUpdate = prev.ThisUpdate
	}
	nextUpdate := thisUpdate.Add(b.cfg.Validity)
	sa, err := signatureAlgorithmFor(is.Certificate.PublicKey)
	if err != nil {
		return store.CRL{}, fmt.Errorf("crl %s: %w", is.ID, err)
	}
	tbs, err := encodeTBS(sa, is.Certificate, big.NewInt(number), thisUpdate, nextUpdate, revoked)
	if err != nil {
		return store.CRL{}, fmt.Errorf("crl %s #%d: %w", is.ID, number, err)
	}
	der, err := sign(sa, tbs, is.Certificate, is.Signer)
	if err != nil {
		return store.CRL{}, fmt.Errorf("crl %s #%d: sign: %w", is.ID, number, err)
	}
	if err := b.linter.RevocationList(der); err != nil {
		return store.CRL{}, fmt.Errorf("crl %s #%d: %w", is.ID, number, err)
	}
	out := store.CRL{IssuerID: is.ID, Number: number, DER: der, ThisUpdate: thisUpdate, NextUpdate: nextUpdate, CreatedAt: now}
	// The event keeps the CRL's hash: a CRL deleted from the store since
	// (ca.Publisher.PruneCRLs) and shown later is still matched to it.
	sum := sha256.Sum256(der)
	err = b.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.PutCRL(ctx, out); err != nil {
			return err
		}
		err := b.log.Append(tx, audit.Event{Actor: "system", Action: "crl.publish", Object: is.ID,
			Details: map[string]any{"crl_number": number, "entries": len(revoked), "this_update": thisUpdate, "next_update": nextUpdate,
				"crl_sha256": hex.EncodeToString(sum[:])}})
		return err
	})
	if err != nil {
		return store.CRL{}, fmt.Errorf("crl %s #%d: store: %w", is.ID, number, err)
	}
	return out, nil
}
