package ca

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
)

// Fault points, where Deps.Fault may stop an issuance (tests only; nil in
// production).
const (
	FaultAfterIntent = "after-intent" // intent committed, nothing signed
	FaultAfterSign   = "after-sign"   // HSM signed, nothing stored
	FaultAfterCommit = "after-commit" // stored, reply not sent
	// FaultRecoverRead is where Deps.Fault may stop a recovery: the
	// intents read, none resolved. Another node resolving them there is
	// the race Recover must survive.
	FaultRecoverRead = "recover-read"
)

// ReasonCessationOfOperation (RFC 5280 §5.3.1) is the reason recorded for
// serials recovery revokes: the CA stopped before it recorded them.
const ReasonCessationOfOperation = 5

// fault stops at point when a test asks it to.
func (ca *CA) fault(point string) error {
	if ca.d.Fault == nil {
		return nil
	}
	return ca.d.Fault(point)
}

// Recover resolves every issuance intent of this issuer that has no
// certificate: the HSM may have signed it before a crash, so it is revoked
// (cessationOfOperation) and a revoked OCSP response is signed for it. A
// certificate that may exist but was never recorded can then never be
// reported good. Run it at start-up, before serving, and periodically
// (Publisher.Run does): an issuance that fails in the process (an HSM
// error, a failed commit) leaves its intent as a crash does.
//
// Only intents older than grace are resolved: a younger intent may belong
// to an issuance still running, in this process or on another node.
// Should that issuance finish after all, the store refuses to complete a
// revoked intent, so the serial stays revoked; should it finish between
// the read and the revocation, the intent is left alone (the revocation
// applies only to an intent still without its certificate). An intent that
// another node resolves first is left to it and not counted.
func (ca *CA) Recover(ctx context.Context, grace time.Duration) (int, error) {
	d := ca.d
	unsigned, err := d.Store.UnsignedCertificates(ctx)
	if err != nil {
		return 0, fmt.Errorf("recover: %w", err)
	}
	if err := ca.fault(FaultRecoverRead); err != nil {
		return 0, err
	}
	n := 0
	cutoff := d.Now().Add(-grace)
	for _, c := range unsigned {
		if c.IssuerID != d.Issuer.ID || c.CreatedAt.After(cutoff) {
			continue
		}
		now := d.Now().UTC().Truncate(time.Second)
		// Revoked from its notBefore: a certificate the HSM may have
		// signed was never valid for a moment, so a signature made with it
		// before this recovery (time-stamped, say) does not count as made
		// before its revocation.
		at := c.NotBefore.UTC().Truncate(time.Second)
		if at.IsZero() || at.After(now) {
			at = now
		}
		object := SerialObject(c.IssuerID, c.Serial)
		err := d.Store.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.RevokeIntent(ctx, c.IssuerID, c.Serial, at, ReasonCessationOfOperation, now); err != nil {
				return err
			}
			c.Status, c.RevokedAt, c.Reason = store.StatusRevoked, at, ReasonCessationOfOperation
			details := map[string]any{"reason": ReasonCessationOfOperation, "reason_name": profile.ReasonName(ReasonCessationOfOperation), "revoked_at": at, "intent_created_at": c.CreatedAt,
				"why": "issuance intent without a recorded certificate: the HSM may have signed it"}
			resp, _, err := ca.signRevoked(c, details)
			if err != nil {
				return err
			}
			if err := tx.PutOCSPResponse(ctx, resp); err != nil {
				return err
			}
			return d.Audit.Append(tx, audit.Event{Actor: "system", Action: "certificate.recover", Object: object, Details: details})
		})
		var resolved *store.AlreadyRevokedError
		switch {
		case errors.As(err, &resolved):
			continue // by another node's recovery, or an officer, since the read
		case errors.Is(err, store.ErrIntentCompleted):
			continue // its issuance, slower than grace, recorded the certificate since the read
		case err != nil:
			return n, fmt.Errorf("recover %s: %w", object, err)
		}
		n++
	}
	if n > 0 {
		ca.statusChanged()
	}
	return n, nil
}
