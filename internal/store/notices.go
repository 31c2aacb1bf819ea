package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// What came of a notice (revocation_notices.outcome, expiry_notices.outcome,
// outcome_notices.outcome).
const (
	NoticeSent      = "sent"       // the notifier took it
	NoticeNoContact = "no-contact" // nobody to tell: the registry has nobody, or no phone or e-mail
	NoticeRenewed   = "renewed"    // an expiry reminder not sent: the certificate was renewed
)

// RevocationsToNotice returns, at most limit, the issuer's certificates
// whose holder is to be told of their revocation: first, oldest change
// first, delivered certificates of an enrollment (the RA's: not ceremony or
// officer certificates, nor an intent recovery revoked) revoked, or whose
// reason was raised, after since, with no notice of their present reason
// ended and none claimed; then, however old, those whose notice was
// claimed before stale and never ended, the oldest claim first.
func (db *DB) RevocationsToNotice(ctx context.Context, issuerID string, since, stale time.Time, limit int) ([]Certificate, error) {
	return db.queryCertificates(ctx, `
		SELECT `+certificateColumns+` FROM (
			SELECT `+certificateColumnsOf("c")+`, 0 AS retry, c.updated_at AS waiting_since FROM certificates c
			WHERE c.issuer_id = $1 AND c.status = 'revoked' AND c.updated_at > $2
				AND c.enrollment_id IS NOT NULL AND c.der IS NOT NULL
				AND NOT EXISTS (SELECT 1 FROM revocation_notices n WHERE n.issuer_id = c.issuer_id AND n.serial = c.serial
					AND (n.outcome = '' OR n.reason = c.reason))
			UNION ALL
			SELECT `+certificateColumnsOf("c")+`, 1, n.claimed_at FROM revocation_notices n
			JOIN certificates c ON c.issuer_id = n.issuer_id AND c.serial = n.serial
			WHERE n.issuer_id = $1 AND n.outcome = '' AND n.claimed_at < $3
		) t ORDER BY retry, waiting_since, serial LIMIT $4`,
		issuerID, db.d.timeArg(since), db.d.timeArg(stale), limit)
}

// ClaimRevocationNotice takes the notice of the revocation of certificate
// (issuerID, serial) for reason, for the caller to send, and reports
// whether it did. It does not if reason is no longer the certificate's; it
// does if nobody had claimed a notice of the
// certificate, if the notice ended was of another reason (a reason raised
// since), or if a claim was made before stale and never ended (the node
// that made it stopped, or could not send). A claim is not audited:
// EndRevocationNotice is.
func (db *DB) ClaimRevocationNotice(ctx context.Context, issuerID string, serial []byte, reason int, now, stale time.Time) (bool, error) {
	// Only the certificate's present reason is claimed: a sweep that
	// listed it before a raise must not take over the raise's notice.
	return db.claimNotice(ctx, fmt.Sprintf("the revocation notice of %s/%X", issuerID, serial), claimRevocationNoticeSQL,
		issuerID, serial, reason, db.d.timeArg(now), db.d.timeArg(stale))
}

// claimRevocationNoticeSQL is ClaimRevocationNotice's upsert; the
// certificate is found by key (TestKeyedWrites): a mass revocation must not
// make each claim read every revoked certificate.
const claimRevocationNoticeSQL = `
	INSERT INTO revocation_notices (issuer_id, serial, reason, claimed_at)
	SELECT issuer_id, serial, reason, $4 FROM certificates
	WHERE issuer_id = $1 AND serial = $2 AND reason = $3 AND status = 'revoked'
	ON CONFLICT (issuer_id, serial) DO UPDATE
	SET reason = excluded.reason, claimed_at = excluded.claimed_at, outcome = '', ended_at = NULL
	WHERE (revocation_notices.outcome = '' AND revocation_notices.claimed_at < $5)
		OR (revocation_notices.outcome <> '' AND revocation_notices.reason <> excluded.reason)`

// claimNotice runs a claim's upsert, which writes one row if it claims.
func (db *DB) claimNotice(ctx context.Context, what, query string, args ...any) (bool, error) {
	unlock, err := db.lockWriter(ctx)
	if err != nil {
		return false, fmt.Errorf("claim %s: %w", what, err)
	}
	defer unlock()
	res, err := db.write.ExecContext(ctx, db.d.q(query), args...)
	if err != nil {
		return false, fmt.Errorf("claim %s: %w", what, db.d.mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, errors.Join(fmt.Errorf("claim %s", what), err)
	}
	return n == 1, nil
}

// EndRevocationNotice records, in the transaction that audits it, what came
// of the notice for reason claimed at claimedAt (ClaimRevocationNotice's
// now). It returns an error wrapping ErrConflict if that claim is no longer
// there: another node took the notice over, and it is that node's to end.
func (tx *Tx) EndRevocationNotice(ctx context.Context, issuerID string, serial []byte, reason int, claimedAt time.Time, outcome string, at time.Time) error {
	return tx.endNotice(ctx, "revocation_notices", issuerID, serial, claimedAt, outcome, at, &reason)
}

// endNotice ends the claim of claimedAt on the notice of table for
// certificate (issuerID, serial), and reason when given.
func (tx *Tx) endNotice(ctx context.Context, table, issuerID string, serial []byte, claimedAt time.Time, outcome string, at time.Time, reason *int) error {
	args := []any{outcome, tx.d.timeArg(at), issuerID, serial, tx.d.timeArg(claimedAt)}
	if reason != nil {
		args = append(args, *reason)
	}
	return tx.endClaim(ctx, fmt.Sprintf("end the notice of %s/%X (%s)", issuerID, serial, table), claimedAt, endNoticeSQL(table, reason != nil), args...)
}

// endNoticeSQL ends one claimed notice of table, found by key
// (TestKeyedWrites), of reason $6 if withReason. The outcome is compared
// with IS NOT DISTINCT FROM, as updateEnrollmentSQL compares the state:
// with an equality, PostgreSQL may search the partial index of unsent
// notices (revocation_notices_claimed) instead of the key, and that index
// holds every unsent notice: all of a mass revocation's.
func endNoticeSQL(table string, withReason bool) string {
	query := `UPDATE ` + table + ` SET outcome = $1, ended_at = $2
		WHERE issuer_id = $3 AND serial = $4 AND outcome IS NOT DISTINCT FROM '' AND claimed_at = $5`
	if withReason {
		query += ` AND reason = $6`
	}
	return query
}

// endClaim runs the update that ends a notice's claim of claimedAt, which
// writes one row unless another node has taken the notice over.
func (tx *Tx) endClaim(ctx context.Context, what string, claimedAt time.Time, query string, args ...any) error {
	res, err := tx.tx.ExecContext(ctx, tx.d.q(query), args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, tx.d.mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return errors.Join(errors.New(what), err)
	}
	if n != 1 {
		return fmt.Errorf("%s: the claim of %s is gone: %w", what, claimedAt.UTC().Format(time.RFC3339Nano), ErrConflict)
	}
	return nil
}

// RevocationNotice returns the reason of the latest notice of certificate
// (issuerID, serial)'s revocation, and what came of it: "" while claimed,
// an outcome once ended; ErrNotFound if none was ever claimed.
func (db *DB) RevocationNotice(ctx context.Context, issuerID string, serial []byte) (reason int, outcome string, err error) {
	err = db.sql.QueryRowContext(ctx, db.d.q(`
		SELECT reason, outcome FROM revocation_notices WHERE issuer_id = $1 AND serial = $2`),
		issuerID, serial).Scan(&reason, &outcome)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", ErrNotFound
	}
	if err != nil {
		return 0, "", fmt.Errorf("revocation notice of %s/%X: %w", issuerID, serial, err)
	}
	return reason, outcome, nil
}

// UnsentRevocationNotices counts the notices claimed and never ended: each
// is a holder not yet told, whose notice a sweep tries again once its
// claim is stale.
func (db *DB) UnsentRevocationNotices(ctx context.Context) (int64, error) {
	return db.unsent(ctx, "revocation_notices")
}

// unsent counts the notices of table not ended (outcome ”).
func (db *DB) unsent(ctx context.Context, table string) (int64, error) {
	var n int64
	if err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE outcome = ''`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count unsent %s: %w", table, err)
	}
	return n, nil
}

// ExpiringToNotice returns, at most limit, the issuer's good, delivered
// certificates of an enrollment that expire after now and by horizon, whose
// holder is to be reminded: first, soonest expiry first, those whose
// reminder nobody claimed; then those whose claim was made before stale and
// never ended, the oldest claim first, so that a reminder that fails every
// time holds up no other (the certificates_expiring index).
func (db *DB) ExpiringToNotice(ctx context.Context, issuerID string, now, horizon, stale time.Time, limit int) ([]Certificate, error) {
	return db.queryCertificates(ctx, `
		SELECT `+certificateColumns+` FROM (
			SELECT `+certificateColumnsOf("c")+`, 0 AS retry, c.not_after AS due FROM certificates c
			WHERE c.issuer_id = $1 AND c.status = 'good' AND c.not_after > $2 AND c.not_after <= $3
				AND c.enrollment_id IS NOT NULL AND c.der IS NOT NULL
				AND NOT EXISTS (SELECT 1 FROM expiry_notices n WHERE n.issuer_id = c.issuer_id AND n.serial = c.serial)
			UNION ALL
			SELECT `+certificateColumnsOf("c")+`, 1, n.claimed_at FROM expiry_notices n
			JOIN certificates c ON c.issuer_id = n.issuer_id AND c.serial = n.serial
			WHERE n.issuer_id = $1 AND n.outcome = '' AND n.claimed_at < $4
				AND c.status = 'good' AND c.not_after > $2
		) t ORDER BY retry, due, serial LIMIT $5`,
		issuerID, db.d.timeArg(now), db.d.timeArg(horizon), db.d.timeArg(stale), limit)
}

// claimExpiryNoticeSQL is ClaimExpiryNotice's upsert; the certificate is
// found by key (TestKeyedWrites).
const claimExpiryNoticeSQL = `
	INSERT INTO expiry_notices (issuer_id, serial, claimed_at)
	SELECT issuer_id, serial, $3 FROM certificates WHERE issuer_id = $1 AND serial = $2 AND status = 'good'
	ON CONFLICT (issuer_id, serial) DO UPDATE SET claimed_at = excluded.claimed_at
	WHERE expiry_notices.outcome = '' AND expiry_notices.claimed_at < $4`

// ClaimExpiryNotice takes the reminder of certificate (issuerID, serial)'s
// expiry for the caller to send, as ClaimRevocationNotice does: if the
// certificate is good, and nobody claimed the reminder or the claim was
// made before stale and never ended.
func (db *DB) ClaimExpiryNotice(ctx context.Context, issuerID string, serial []byte, now, stale time.Time) (bool, error) {
	return db.claimNotice(ctx, fmt.Sprintf("the expiry notice of %s/%X", issuerID, serial), claimExpiryNoticeSQL,
		issuerID, serial, db.d.timeArg(now), db.d.timeArg(stale))
}

// EndExpiryNotice is EndRevocationNotice for an expiry reminder.
func (tx *Tx) EndExpiryNotice(ctx context.Context, issuerID string, serial []byte, claimedAt time.Time, outcome string, at time.Time) error {
	return tx.endNotice(ctx, "expiry_notices", issuerID, serial, claimedAt, outcome, at, nil)
}

// ExpiryNotice returns what came of the expiry reminder of certificate
// (issuerID, serial): "" while claimed, an outcome once ended; ErrNotFound
// if none was claimed.
func (db *DB) ExpiryNotice(ctx context.Context, issuerID string, serial []byte) (string, error) {
	var outcome string
	err := db.sql.QueryRowContext(ctx, db.d.q(`SELECT outcome FROM expiry_notices WHERE issuer_id = $1 AND serial = $2`),
		issuerID, serial).Scan(&outcome)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("expiry notice of %s/%X: %w", issuerID, serial, err)
	}
	return outcome, nil
}

// OutcomeNotice is the notice that tells the applicant of an enrollment
// that waited for officers how it ended (outcome_notices): Event is the
// state it ended in (issued, rejected, failed or expired), Serial the
// certificate's when issued.
type OutcomeNotice struct {
	EnrollmentID string
	Event        string
	Serial       []byte
	CreatedAt    time.Time
	// Outcome is "" until the notice is ended, then NoticeSent or
	// NoticeNoContact; Claimed says whether a node ever tried it.
	Outcome string
	Claimed bool
}

// AddOutcomeNotice records, in the transaction that moves the enrollment to
// its end, that its applicant is to be told. An enrollment ends once: a
// second notice for it is ignored.
func (tx *Tx) AddOutcomeNotice(ctx context.Context, n OutcomeNotice) error {
	// A nil Serial is NULL to both drivers (nonNil), as the table wants
	// for every event but issued.
	_, err := tx.tx.ExecContext(ctx, tx.d.q(`
		INSERT INTO outcome_notices (enrollment_id, event, serial, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (enrollment_id) DO NOTHING`),
		n.EnrollmentID, n.Event, n.Serial, tx.d.timeArg(n.CreatedAt))
	if err != nil {
		return fmt.Errorf("outcome notice of enrollment %s: %w", n.EnrollmentID, tx.d.mapErr(err))
	}
	return nil
}

// OutcomeNoticesToSend returns, at most limit, the outcome notices not yet
// sent: first those nobody tried, the oldest first; then those whose claim
// was made before stale and never ended, the oldest claim first, so that a
// notice that fails every time holds up no other.
func (db *DB) OutcomeNoticesToSend(ctx context.Context, stale time.Time, limit int) ([]OutcomeNotice, error) {
	rows, err := db.sql.QueryContext(ctx, db.d.q(`
		SELECT enrollment_id, event, serial, created_at FROM outcome_notices
		WHERE outcome = '' AND (claimed_at IS NULL OR claimed_at < $1)
		ORDER BY claimed_at IS NOT NULL, COALESCE(claimed_at, created_at), enrollment_id LIMIT $2`),
		db.d.timeArg(stale), limit)
	if err != nil {
		return nil, fmt.Errorf("outcome notices to send: %w", err)
	}
	defer rows.Close()
	var out []OutcomeNotice
	for rows.Next() {
		var n OutcomeNotice
		if err := rows.Scan(&n.EnrollmentID, &n.Event, &n.Serial, timeScan{&n.CreatedAt}); err != nil {
			return nil, fmt.Errorf("outcome notices to send: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outcome notices to send: %w", err)
	}
	return out, nil
}

// claimOutcomeNoticeSQL and endOutcomeNoticeSQL claim and end one outcome
// notice, found by key (TestKeyedWrites). With an equality on outcome,
// PostgreSQL read the whole of outcome_notices_unsent (the partial index
// of unsent notices, by created_at) instead whenever its statistics said
// few notices were unsent: on every claim, a gateway outage's backlog and
// one dead entry per notice sent since the last VACUUM. IS NOT DISTINCT
// FROM: see updateEnrollmentSQL.
const (
	claimOutcomeNoticeSQL = `
		UPDATE outcome_notices SET claimed_at = $2
		WHERE enrollment_id = $1 AND outcome IS NOT DISTINCT FROM '' AND (claimed_at IS NULL OR claimed_at < $3)`
	endOutcomeNoticeSQL = `
		UPDATE outcome_notices SET outcome = $1, ended_at = $2
		WHERE enrollment_id = $3 AND outcome IS NOT DISTINCT FROM '' AND claimed_at = $4`
)

// ClaimOutcomeNotice takes the outcome notice of an enrollment for the
// caller to send, and reports whether it did: it does if the notice is not
// ended and nobody claimed it, or the claim was made before stale (the node
// that made it stopped, or could not send).
func (db *DB) ClaimOutcomeNotice(ctx context.Context, enrollmentID string, now, stale time.Time) (bool, error) {
	return db.claimNotice(ctx, "the outcome notice of enrollment "+enrollmentID, claimOutcomeNoticeSQL,
		enrollmentID, db.d.timeArg(now), db.d.timeArg(stale))
}

// EndOutcomeNotice is EndRevocationNotice for an outcome notice.
func (tx *Tx) EndOutcomeNotice(ctx context.Context, enrollmentID string, claimedAt time.Time, outcome string, at time.Time) error {
	return tx.endClaim(ctx, "end the outcome notice of enrollment "+enrollmentID, claimedAt, endOutcomeNoticeSQL,
		outcome, tx.d.timeArg(at), enrollmentID, tx.d.timeArg(claimedAt))
}

// OutcomeNoticeOf returns the outcome notice of an enrollment, or
// ErrNotFound if it has none.
func (db *DB) OutcomeNoticeOf(ctx context.Context, enrollmentID string) (OutcomeNotice, error) {
	n := OutcomeNotice{EnrollmentID: enrollmentID}
	err := db.sql.QueryRowContext(ctx, db.d.q(`
		SELECT event, serial, created_at, outcome, claimed_at IS NOT NULL FROM outcome_notices WHERE enrollment_id = $1`),
		enrollmentID).Scan(&n.Event, &n.Serial, timeScan{&n.CreatedAt}, &n.Outcome, &n.Claimed)
	if errors.Is(err, sql.ErrNoRows) {
		return OutcomeNotice{}, ErrNotFound
	}
	if err != nil {
		return OutcomeNotice{}, fmt.Errorf("outcome notice of enrollment %s: %w", enrollmentID, err)
	}
	return n, nil
}

// UnsentOutcomeNotices counts the outcome notices not sent yet: each is an
// applicant not yet told how their enrollment ended.
func (db *DB) UnsentOutcomeNotices(ctx context.Context) (int64, error) {
	return db.unsent(ctx, "outcome_notices")
}
