package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// What came of a revocation notice (revocation_notices.outcome).
const (
	NoticeSent      = "sent"       // the notifier took it
	NoticeNoContact = "no-contact" // the registry has nobody, or no phone or e-mail, to send it to
)

// RevocationsToNotice returns, oldest change first and at most limit, the
// issuer's delivered certificates of an enrollment (the RA's: ceremony and
// officer certificates have none) revoked, or whose reason was raised,
// after since, whose holder has not been told of the revocation for its
// present reason: no notice ended, nor claimed at or after stale.
func (db *DB) RevocationsToNotice(ctx context.Context, issuerID string, since, stale time.Time, limit int) ([]Certificate, error) {
	return db.certificates(ctx, `c WHERE c.issuer_id = $1 AND c.status = 'revoked' AND c.updated_at > $2
			AND c.enrollment_id IS NOT NULL AND c.der IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM revocation_notices n
				WHERE n.issuer_id = c.issuer_id AND n.serial = c.serial AND n.reason = c.reason
				AND (n.outcome <> '' OR n.claimed_at >= $3))
		ORDER BY c.updated_at, c.serial LIMIT $4`,
		issuerID, db.d.timeArg(since), db.d.timeArg(stale), limit)
}

// ClaimRevocationNotice takes the notice of the revocation of certificate
// (issuerID, serial) for reason, for the caller to send: it reports true if
// nobody had claimed it, or if the claim on it is older than stale and the
// notice not ended (the node that claimed it stopped, or could not send
// it). A claim is not audited: EndRevocationNotice is.
func (db *DB) ClaimRevocationNotice(ctx context.Context, issuerID string, serial []byte, reason int, now, stale time.Time) (bool, error) {
	unlock, err := db.lockWriter(ctx)
	if err != nil {
		return false, fmt.Errorf("claim the revocation notice of %s/%X: %w", issuerID, serial, err)
	}
	defer unlock()
	res, err := db.sql.ExecContext(ctx, db.d.q(`
		INSERT INTO revocation_notices (issuer_id, serial, reason, claimed_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (issuer_id, serial, reason) DO UPDATE SET claimed_at = excluded.claimed_at
		WHERE revocation_notices.outcome = '' AND revocation_notices.claimed_at < $5`),
		issuerID, serial, reason, db.d.timeArg(now), db.d.timeArg(stale))
	if err != nil {
		return false, fmt.Errorf("claim the revocation notice of %s/%X: %w", issuerID, serial, db.d.mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, errors.Join(fmt.Errorf("claim the revocation notice of %s/%X", issuerID, serial), err)
	}
	return n == 1, nil
}

// EndRevocationNotice records, in the transaction that audits it, what came
// of a notice claimed at claimedAt (ClaimRevocationNotice's now). It
// returns an error wrapping ErrConflict if that claim is no longer there:
// another node took the notice over, and it is that node's to end.
func (tx *Tx) EndRevocationNotice(ctx context.Context, issuerID string, serial []byte, reason int, claimedAt time.Time, outcome string, at time.Time) error {
	res, err := tx.tx.ExecContext(ctx, tx.d.q(`
		UPDATE revocation_notices SET outcome = $1, ended_at = $2
		WHERE issuer_id = $3 AND serial = $4 AND reason = $5 AND outcome = '' AND claimed_at = $6`),
		outcome, tx.d.timeArg(at), issuerID, serial, reason, tx.d.timeArg(claimedAt))
	if err != nil {
		return fmt.Errorf("end the revocation notice of %s/%X: %w", issuerID, serial, tx.d.mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return errors.Join(fmt.Errorf("end the revocation notice of %s/%X", issuerID, serial), err)
	}
	if n != 1 {
		return fmt.Errorf("end the revocation notice of %s/%X: the claim of %s is gone: %w",
			issuerID, serial, claimedAt.UTC().Format(time.RFC3339Nano), ErrConflict)
	}
	return nil
}

// RevocationNotice returns what came of the notice of the revocation of
// certificate (issuerID, serial) for reason: "" while claimed, an outcome
// once ended; ErrNotFound if nobody claimed it.
func (db *DB) RevocationNotice(ctx context.Context, issuerID string, serial []byte, reason int) (string, error) {
	var outcome string
	err := db.sql.QueryRowContext(ctx, db.d.q(`
		SELECT outcome FROM revocation_notices WHERE issuer_id = $1 AND serial = $2 AND reason = $3`),
		issuerID, serial, reason).Scan(&outcome)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("revocation notice of %s/%X: %w", issuerID, serial, err)
	}
	return outcome, nil
}
