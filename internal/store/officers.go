package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Officer is an RA or CA officer, known by the SHA-256 of the certificate
// they sign their actions with.
type Officer struct {
	Fingerprint    []byte
	CertificateDER []byte
	Name           string
	Roles          []string // ra-officer, ca-officer, auditor
	Active         bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Approval is one officer's decision on one enrollment.
type Approval struct {
	EnrollmentID       string
	OfficerFingerprint []byte
	Decision           string // approve | reject
	JWS                string // the officer's signed action, verbatim
	DecidedAt          time.Time
}

// PutOfficer records an officer and their roles (replacing the roles of
// one already known).
func (tx *Tx) PutOfficer(ctx context.Context, o Officer) error {
	_, err := tx.tx.ExecContext(ctx, tx.d.q(`
		INSERT INTO officers (fingerprint, certificate_der, name, active, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $5)
		ON CONFLICT (fingerprint) DO UPDATE SET name = excluded.name, active = excluded.active, updated_at = excluded.updated_at`),
		nonNil(o.Fingerprint), nonNil(o.CertificateDER), o.Name, o.Active, tx.d.timeArg(o.CreatedAt))
	if err != nil {
		return fmt.Errorf("officer %s: %w", o.Name, tx.d.mapErr(err))
	}
	if _, err := tx.tx.ExecContext(ctx, tx.d.q(`DELETE FROM officer_roles WHERE officer_fingerprint = $1`), o.Fingerprint); err != nil {
		return fmt.Errorf("officer %s roles: %w", o.Name, err)
	}
	for _, r := range o.Roles {
		if _, err := tx.tx.ExecContext(ctx, tx.d.q(`INSERT INTO officer_roles (officer_fingerprint, role) VALUES ($1, $2)`), o.Fingerprint, r); err != nil {
			return fmt.Errorf("officer %s role %s: %w", o.Name, r, tx.d.mapErr(err))
		}
	}
	return nil
}

// Officer returns the officer with this certificate fingerprint, or
// ErrNotFound.
func (db *DB) Officer(ctx context.Context, fingerprint []byte) (Officer, error) {
	o := Officer{Fingerprint: fingerprint}
	err := db.sql.QueryRowContext(ctx, db.d.q(`
		SELECT certificate_der, name, active, created_at, updated_at FROM officers WHERE fingerprint = $1`), nonNil(fingerprint)).
		Scan(&o.CertificateDER, &o.Name, &o.Active, timeScan{&o.CreatedAt}, timeScan{&o.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return Officer{}, fmt.Errorf("officer %x: %w", fingerprint, ErrNotFound)
	}
	if err != nil {
		return Officer{}, fmt.Errorf("officer %x: %w", fingerprint, err)
	}
	rows, err := db.sql.QueryContext(ctx, db.d.q(`SELECT role FROM officer_roles WHERE officer_fingerprint = $1 ORDER BY role`), fingerprint)
	if err != nil {
		return Officer{}, fmt.Errorf("officer %x roles: %w", fingerprint, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return Officer{}, err
		}
		o.Roles = append(o.Roles, r)
	}
	return o, rows.Err()
}

// InsertApproval records an officer's decision. A second decision by the
// same officer on the same enrollment is ErrConflict.
func (tx *Tx) InsertApproval(ctx context.Context, a Approval) error {
	_, err := tx.tx.ExecContext(ctx, tx.d.q(`
		INSERT INTO approvals (enrollment_id, officer_fingerprint, decision, jws, decided_at) VALUES ($1, $2, $3, $4, $5)`),
		a.EnrollmentID, nonNil(a.OfficerFingerprint), a.Decision, a.JWS, tx.d.timeArg(a.DecidedAt))
	if err != nil {
		return fmt.Errorf("approval of %s: %w", a.EnrollmentID, tx.d.mapErr(err))
	}
	return nil
}

// Approvals returns the decisions on an enrollment, oldest first, read in
// tx (after the enrollment was locked).
func (tx *Tx) Approvals(ctx context.Context, enrollmentID string) ([]Approval, error) {
	return approvals(ctx, tx.tx, tx.d, enrollmentID)
}

// Approvals is Tx.Approvals outside a transaction, for showing them.
func (db *DB) Approvals(ctx context.Context, enrollmentID string) ([]Approval, error) {
	return approvals(ctx, db.sql, &db.d, enrollmentID)
}

func approvals(ctx context.Context, q querier, d *dialect, enrollmentID string) ([]Approval, error) {
	rows, err := q.QueryContext(ctx, d.q(`
		SELECT officer_fingerprint, decision, jws, decided_at FROM approvals
		WHERE enrollment_id = $1 ORDER BY decided_at, officer_fingerprint`), enrollmentID)
	if err != nil {
		return nil, fmt.Errorf("approvals of %s: %w", enrollmentID, err)
	}
	defer rows.Close()
	var out []Approval
	for rows.Next() {
		a := Approval{EnrollmentID: enrollmentID}
		if err := rows.Scan(&a.OfficerFingerprint, &a.Decision, &a.JWS, timeScan{&a.DecidedAt}); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// RevocationRequest is a CA officer's signed request to revoke a CA
// certificate (one a ceremony made), which two officers must make.
type RevocationRequest struct {
	IssuerID           string
	Serial             []byte
	OfficerFingerprint []byte
	Nonce              string // the signed request's, spent in the same transaction
	Reason             int    // RFC 5280 §5.3.1
	JWS                string // the officer's signed action, verbatim
	RequestedAt        time.Time
}

// InsertRevocationRequest records r. It locks the certificate's row first
// (FOR UPDATE on PostgreSQL; on SQLite the transaction holds the write lock
// from BEGIN), so that of two officers asking at once, the second's
// RevocationRequests, read after it in the same transaction, sees the
// first's: neither is left waiting for the other. A certificate not
// recorded is ErrNotFound; the same officer's nonce twice is ErrConflict.
func (tx *Tx) InsertRevocationRequest(ctx context.Context, r RevocationRequest) error {
	var one int
	err := tx.tx.QueryRowContext(ctx, tx.d.q(`SELECT 1 FROM certificates WHERE issuer_id = $1 AND serial = $2`+tx.d.lockSuffix),
		r.IssuerID, nonNil(r.Serial)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("revocation request for %s/%x: %w", r.IssuerID, r.Serial, err)
	}
	_, err = tx.tx.ExecContext(ctx, tx.d.q(`
		INSERT INTO revocation_requests (issuer_id, serial, officer_fingerprint, nonce, reason, jws, requested_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`),
		r.IssuerID, nonNil(r.Serial), nonNil(r.OfficerFingerprint), r.Nonce, r.Reason, r.JWS, tx.d.timeArg(r.RequestedAt))
	if err != nil {
		return fmt.Errorf("revocation request for %s/%x: %w", r.IssuerID, r.Serial, tx.d.mapErr(err))
	}
	return nil
}

// RevocationRequests returns the requests to revoke a certificate made at
// or after since, oldest first.
func (tx *Tx) RevocationRequests(ctx context.Context, issuerID string, serial []byte, since time.Time) ([]RevocationRequest, error) {
	rows, err := tx.tx.QueryContext(ctx, tx.d.q(`
		SELECT officer_fingerprint, nonce, reason, jws, requested_at FROM revocation_requests
		WHERE issuer_id = $1 AND serial = $2 AND requested_at >= $3
		ORDER BY requested_at, officer_fingerprint, nonce`), issuerID, nonNil(serial), tx.d.timeArg(since))
	if err != nil {
		return nil, fmt.Errorf("revocation requests for %s/%x: %w", issuerID, serial, err)
	}
	defer rows.Close()
	var out []RevocationRequest
	for rows.Next() {
		r := RevocationRequest{IssuerID: issuerID, Serial: serial}
		if err := rows.Scan(&r.OfficerFingerprint, &r.Nonce, &r.Reason, &r.JWS, timeScan{&r.RequestedAt}); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// PendingRevocationRequests returns the requests made at or after since to
// revoke a certificate that is still good, or for keyCompromise one
// revoked for another reason (which keyCompromise would raise): those a
// second CA officer may still join. At most limit, the latest, are
// returned, oldest first.
func (db *DB) PendingRevocationRequests(ctx context.Context, since time.Time, limit int) ([]RevocationRequest, error) {
	rows, err := db.sql.QueryContext(ctx, db.d.q(`
		SELECT r.issuer_id, r.serial, r.officer_fingerprint, r.nonce, r.reason, r.jws, r.requested_at
		FROM revocation_requests AS r
		JOIN certificates AS c ON c.issuer_id = r.issuer_id AND c.serial = r.serial
		WHERE r.requested_at >= $1 AND (c.status = 'good' OR (r.reason = 1 AND c.reason <> 1))
		ORDER BY r.requested_at DESC, r.officer_fingerprint DESC, r.nonce DESC
		LIMIT $2`), db.d.timeArg(since), limit)
	if err != nil {
		return nil, fmt.Errorf("pending revocation requests: %w", err)
	}
	defer rows.Close()
	var out []RevocationRequest
	for rows.Next() {
		var r RevocationRequest
		if err := rows.Scan(&r.IssuerID, &r.Serial, &r.OfficerFingerprint, &r.Nonce, &r.Reason, &r.JWS, timeScan{&r.RequestedAt}); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.Reverse(out)
	return out, rows.Err()
}

// UseNonce records that a signed request's nonce was used; a nonce the key
// used before is ErrConflict (a replay).
func (tx *Tx) UseNonce(ctx context.Context, keyID []byte, nonce string, at time.Time) error {
	_, err := tx.tx.ExecContext(ctx, tx.d.q(`
		INSERT INTO signed_request_nonces (key_id, nonce, used_at) VALUES ($1, $2, $3)`),
		nonNil(keyID), nonce, tx.d.timeArg(at))
	if err != nil {
		return fmt.Errorf("nonce %q: %w", nonce, tx.d.mapErr(err))
	}
	return nil
}

// PurgeNonces deletes the nonces used before before, and returns how many
// it deleted: once no replay of their requests could pass the requests'
// time check, a replay is refused for its time, and the rows would only
// grow.
func (db *DB) PurgeNonces(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.write.ExecContext(ctx, db.d.q(`DELETE FROM signed_request_nonces WHERE used_at < $1`), db.d.timeArg(before))
	if err != nil {
		return 0, fmt.Errorf("purge nonces: %w", err)
	}
	return res.RowsAffected()
}

// Officers returns every officer recorded, active or not, by name, with
// their roles.
func (db *DB) Officers(ctx context.Context) ([]Officer, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT fingerprint FROM officers ORDER BY name, fingerprint`)
	if err != nil {
		return nil, fmt.Errorf("officers: %w", err)
	}
	var fps [][]byte
	for rows.Next() {
		var fp []byte
		if err := rows.Scan(&fp); err != nil {
			rows.Close()
			return nil, err
		}
		fps = append(fps, fp)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Officer, 0, len(fps))
	for _, fp := range fps {
		o, err := db.Officer(ctx, fp)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}
