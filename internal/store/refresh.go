package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// What the CA's publisher reads and writes to keep an issuer's status
// information fresh: the OCSP responses due for re-signing, certificates
// that have none, the refreshed responses themselves, and the age of the
// latest CRL.
//
// Both OCSP queries page by serial (keyset pagination: each page starts
// after the last serial of the previous one), so a table of any size is
// walked a page at a time, in the same order on both databases (bytes
// compared as unsigned octets).

// OCSPDue selects one page of certificates whose stored OCSP response is due
// for re-signing. The caller computes the bounds from its validity policy.
// Expired certificates are due too, their status staying answerable (the
// responses carry archiveCutoff, see ocspsign), but walked apart, so that
// the CA's publisher re-signs the live ones first and bounds the time a
// pass gives the expired ones.
type OCSPDue struct {
	IssuerID string
	// A stored response is due when this_update <= ThisUpdateBefore or
	// next_update <= NextUpdateBefore.
	ThisUpdateBefore time.Time
	NextUpdateBefore time.Time
	// Expired selects the certificates expired at Now (not_after < Now),
	// instead of those valid then.
	Expired bool
	Now     time.Time
	// After is the last serial of the previous page; nil for the first.
	After []byte
	// Limit is the page size.
	Limit int
}

// certificateColumnsOf is certificateColumns qualified by a table alias,
// each named as in certificateColumns, for queries that join certificates
// with another table, and subqueries read by name.
func certificateColumnsOf(alias string) string {
	cols := strings.Split(certificateColumns, ",")
	for i, c := range cols {
		c = strings.TrimSpace(c)
		cols[i] = alias + "." + c + " AS " + c
	}
	return strings.Join(cols, ", ")
}

// answerable keeps the certificates an OCSP response must exist for: signed
// ones, and revoked ones even without a certificate (intents that recovery
// revoked). An intent still unsigned and good belongs to an issuance in
// flight, which stores its response itself.
const answerable = `(c.der IS NOT NULL OR c.status = 'revoked')`

// DueOCSPResponses returns the next page, in serial order, of the issuer's
// certificates whose stored OCSP response is due (see OCSPDue).
// The migration's indexes on ocsp_responses (issuer_id, this_update) and
// (issuer_id, next_update) let the database find the due rows without
// reading every response.
func (db *DB) DueOCSPResponses(ctx context.Context, q OCSPDue) ([]Certificate, error) {
	if q.Limit <= 0 {
		return nil, fmt.Errorf("due OCSP responses of %s: page size %d", q.IssuerID, q.Limit)
	}
	expiry := `c.not_after >= $6`
	if q.Expired {
		expiry = `c.not_after < $6`
	}
	return db.certificatePage(ctx, `
		SELECT `+certificateColumnsOf("c")+`
		FROM ocsp_responses r
		JOIN certificates c ON c.issuer_id = r.issuer_id AND c.serial = r.serial
		WHERE r.issuer_id = $1 AND r.serial > $2
			AND (r.this_update <= $3 OR r.next_update <= $4)
			AND `+expiry+` AND `+answerable+`
		ORDER BY r.serial
		LIMIT $5`,
		q.IssuerID, nonNil(q.After), db.d.timeArg(q.ThisUpdateBefore), db.d.timeArg(q.NextUpdateBefore), q.Limit, db.d.timeArg(q.Now))
}

// UnansweredCertificates returns the next page, in serial order after
// after, of the issuer's certificates, expired or not, that need an OCSP
// response and have none: signed ones, and intents that recovery revoked.
// Issuance and revocation store a response in the transaction of the
// change, so these are rare; finding them means walking the issuer's
// certificates, which is why it is a query of its own, run less often than
// DueOCSPResponses.
func (db *DB) UnansweredCertificates(ctx context.Context, issuerID string, after []byte, limit int) ([]Certificate, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("unanswered certificates of %s: page size %d", issuerID, limit)
	}
	return db.certificatePage(ctx, `
		SELECT `+certificateColumnsOf("c")+`
		FROM certificates c
		WHERE c.issuer_id = $1 AND c.serial > $2 AND `+answerable+`
			AND NOT EXISTS (SELECT 1 FROM ocsp_responses r WHERE r.issuer_id = c.issuer_id AND r.serial = c.serial)
		ORDER BY c.serial
		LIMIT $3`,
		issuerID, nonNil(after), limit)
}

func (db *DB) certificatePage(ctx context.Context, query string, args ...any) ([]Certificate, error) {
	rows, err := db.sql.QueryContext(ctx, db.d.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list certificates of %v: %w", args[0], err)
	}
	defer rows.Close()
	var out []Certificate
	for rows.Next() {
		c, err := scanCertificate(rows)
		if err != nil {
			return nil, fmt.Errorf("list certificates of %v: %w", args[0], err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list certificates of %v: %w", args[0], err)
	}
	return out, nil
}

// PutRefreshedOCSPResponse stores r, a response signed outside any
// transaction for c as the caller read it, unless that would now be wrong.
// It reports whether r was stored; it is not when:
//   - c's status, revocation time or reason changed since it was read (a
//     revocation committed meanwhile has stored its own response, which a
//     response signed from the old row must never replace), or
//   - the stored response has a thisUpdate at least as recent as r's (a
//     newer response is never replaced by an older one).
//
// The certificate's row is locked first (SELECT ... FOR UPDATE on
// PostgreSQL; on SQLite the transaction holds the write lock from BEGIN).
// Every writer of a response changes the certificate's row, or locks it,
// before its response, so a revocation running concurrently either
// commits before this check, which then sees it, or waits for this
// transaction and writes its response after.
func (tx *Tx) PutRefreshedOCSPResponse(ctx context.Context, c Certificate, r OCSPResponse) (bool, error) {
	if r.IssuerID != c.IssuerID || string(r.Serial) != string(c.Serial) {
		return false, fmt.Errorf("refresh OCSP response %s/%x: the response is for %s/%x", c.IssuerID, c.Serial, r.IssuerID, r.Serial)
	}
	var (
		status    string
		revokedAt time.Time
		reason    sql.NullInt64
	)
	err := tx.tx.QueryRowContext(ctx, tx.d.q(`SELECT status, revoked_at, reason FROM certificates WHERE issuer_id = $1 AND serial = $2`+tx.d.lockSuffix),
		c.IssuerID, nonNil(c.Serial)).Scan(&status, nullTimeScan{&revokedAt}, &reason)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("refresh OCSP response %s/%x: %w", c.IssuerID, c.Serial, err)
	}
	if status != c.Status || !revokedAt.Equal(c.RevokedAt) || (status == StatusRevoked && int(reason.Int64) != c.Reason) {
		return false, nil
	}
	res, err := tx.tx.ExecContext(ctx, tx.d.q(`
		INSERT INTO ocsp_responses (issuer_id, serial, der, this_update, next_update, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (issuer_id, serial) DO UPDATE SET
			der = excluded.der, this_update = excluded.this_update,
			next_update = excluded.next_update, updated_at = `+tx.d.ocspUpdatedAt()+`
		WHERE ocsp_responses.this_update < excluded.this_update`),
		r.IssuerID, nonNil(r.Serial), nonNil(r.DER), tx.d.timeArg(r.ThisUpdate), tx.d.timeArg(r.NextUpdate), tx.d.timeArg(r.UpdatedAt))
	if err != nil {
		return false, fmt.Errorf("refresh OCSP response %s/%x: %w", c.IssuerID, c.Serial, tx.d.mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("refresh OCSP response %s/%x: %w", c.IssuerID, c.Serial, err)
	}
	return n == 1, nil
}

// HasUnexpiredCertificates reports whether the issuer signed, or may yet
// sign, a certificate unexpired at now (an intent counts) for anyone but
// itself: whether it still owes anyone revocation and fresh status. The
// certificates of its own OCSP signers and audit keys, which sanad issuer
// add records among its certificates (profile = their role), do not count:
// they serve the issuer, and go with it.
func (db *DB) HasUnexpiredCertificates(ctx context.Context, issuerID string, now time.Time) (bool, error) {
	var found bool
	err := db.sql.QueryRowContext(ctx, db.d.q(`SELECT EXISTS (SELECT 1 FROM certificates
		WHERE issuer_id = $1 AND not_after >= $2 AND profile NOT IN ('ocsp-signer', 'audit'))`),
		issuerID, db.d.timeArg(now)).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("unexpired certificates of %s: %w", issuerID, err)
	}
	return found, nil
}

// CRLCount is how many CRLs of the issuer are stored (bench crl counts
// those published while it revokes).
func (db *DB) CRLCount(ctx context.Context, issuerID string) (int64, error) {
	var n int64
	err := db.sql.QueryRowContext(ctx, db.d.q(`SELECT count(*) FROM crls WHERE issuer_id = $1`), issuerID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("crls of %s: %w", issuerID, err)
	}
	return n, nil
}

// LatestCRLSummary is LatestCRL without the DER, which for a large issuer
// is megabytes: what deciding whether to republish needs. ErrNotFound when
// the issuer has no CRL yet.
func (db *DB) LatestCRLSummary(ctx context.Context, issuerID string) (CRL, error) {
	c := CRL{IssuerID: issuerID}
	err := db.sql.QueryRowContext(ctx, db.d.q(`
		SELECT crl_number, this_update, next_update, created_at FROM crls
		WHERE issuer_id = $1 ORDER BY crl_number DESC LIMIT 1`), issuerID).
		Scan(&c.Number, timeScan{&c.ThisUpdate}, timeScan{&c.NextUpdate}, timeScan{&c.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return CRL{}, fmt.Errorf("CRL of %s: %w", issuerID, ErrNotFound)
	}
	if err != nil {
		return CRL{}, fmt.Errorf("CRL of %s: %w", issuerID, err)
	}
	return c, nil
}

// RevokedSince reports whether a certificate of the issuer was revoked, or
// had its revocation's reason raised, at or after since: at start-up,
// whether a change may be missing from the latest CRL. Both set the row's
// updated_at (a raise keeps revoked_at), which the
// certificates_revoked_updated index answers.
func (db *DB) RevokedSince(ctx context.Context, issuerID string, since time.Time) (bool, error) {
	var found bool
	err := db.sql.QueryRowContext(ctx, db.d.q(`
		SELECT EXISTS (SELECT 1 FROM certificates
			WHERE issuer_id = $1 AND status = 'revoked' AND updated_at >= $2)`),
		issuerID, db.d.timeArg(since)).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("revocations of %s since %s: %w", issuerID, since.Format(time.RFC3339), err)
	}
	return found, nil
}

// RevocationsSince lists the certificates of the issuer revoked, or whose
// revocation's reason was raised, at or after since (their updated_at, as
// RevokedSince) and not expired before notAfterFrom, with their serials and
// reasons: what a CRL of that time must list as they are.
func (db *DB) RevocationsSince(ctx context.Context, issuerID string, since, notAfterFrom time.Time) ([]CRLEntry, error) {
	return db.crlEntries(ctx, fmt.Sprintf("revocations of %s since %s", issuerID, since.Format(time.RFC3339)),
		`updated_at >= $2 AND not_after >= $3`, issuerID, db.d.timeArg(since), db.d.timeArg(notAfterFrom))
}
