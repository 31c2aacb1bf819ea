package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Certificate statuses.
const (
	StatusGood    = "good"
	StatusRevoked = "revoked"
)

// Certificate is one row of certificates. The row exists before the HSM
// signs (the issuance intent, with the linted TBS); DER fills it after.
type Certificate struct {
	IssuerID string
	// Serial is the big-endian serial number without leading zero bytes.
	Serial       []byte
	SubjectID    string // empty for ceremony certificates
	EnrollmentID string // empty for ceremony certificates
	Profile      string
	NotBefore    time.Time
	NotAfter     time.Time
	TBS          []byte // the linted TBSCertificate
	DER          []byte // nil until signed
	Status       string
	RevokedAt    time.Time // zero unless revoked
	Reason       int       // RFC 5280 CRLReason; meaningful only when revoked
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// SPKISHA256 is the SHA-256 of the certified key's DER
	// SubjectPublicKeyInfo, as blocked_keys keys it (ca.KeyIDs, its
	// first); nil for a row written before the column until ca.FillKeyIDs
	// fills it.
	SPKISHA256 []byte
}

// AlreadyRevokedError says when and why a certificate was revoked; it wraps
// ErrConflict.
type AlreadyRevokedError struct {
	At     time.Time
	Reason int
}

func (e *AlreadyRevokedError) Error() string {
	return fmt.Sprintf("already revoked at %s with reason %d", e.At.Format(time.RFC3339), e.Reason)
}

func (e *AlreadyRevokedError) Unwrap() error { return ErrConflict }

// IntentRevokedError is SetCertificateDER's refusal of an intent revoked
// before its certificate was stored (by recovery, or a compromise of its
// key while the HSM signed it), with when and why; it wraps ErrConflict.
type IntentRevokedError struct {
	At     time.Time
	Reason int
}

func (e *IntentRevokedError) Error() string {
	return fmt.Sprintf("the intent was revoked at %s with reason %d", e.At.Format(time.RFC3339), e.Reason)
}

func (e *IntentRevokedError) Unwrap() error { return ErrConflict }

const certificateColumns = `issuer_id, serial, subject_id, enrollment_id, profile, not_before, not_after,
	tbs_der, der, status, revoked_at, reason, created_at, updated_at, spki_sha256`

// InsertCertificateIntent records a certificate about to be signed. A serial
// is never reused: a second intent for one (issuer, serial) is ErrConflict.
func (tx *Tx) InsertCertificateIntent(ctx context.Context, c Certificate) error {
	_, err := tx.tx.ExecContext(ctx, tx.d.q(`
		INSERT INTO certificates (issuer_id, serial, subject_id, enrollment_id, profile, not_before, not_after,
			tbs_der, status, created_at, updated_at, spki_sha256)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'good', $9, $9, $10)`),
		c.IssuerID, nonNil(c.Serial), nullString(c.SubjectID), nullString(c.EnrollmentID), c.Profile,
		tx.d.timeArg(c.NotBefore), tx.d.timeArg(c.NotAfter), nonNil(c.TBS), tx.d.timeArg(c.CreatedAt), nullBytes(c.SPKISHA256))
	if err != nil {
		return fmt.Errorf("certificate intent %s/%x: %w", c.IssuerID, c.Serial, tx.d.mapErr(err))
	}
	return nil
}

// setCertificateDERSQL completes one intent. Its row is found by key
// (issuer_id, serial): TestKeyedWrites holds both databases' plans to that
// (see migrations/postgres/00014_certificates_intents.sql). The status is
// compared with IS NOT DISTINCT FROM, as updateEnrollmentSQL compares the
// state, so that certificates_intents, which recovery reads, cannot serve
// the update: in SetCertificateDERs' join both databases otherwise read
// all of it for every batch.
const setCertificateDERSQL = `
	UPDATE certificates SET der = $1, updated_at = $2
	WHERE issuer_id = $3 AND serial = $4 AND der IS NULL AND status IS NOT DISTINCT FROM 'good'`

// SetCertificateDER stores the signed certificate of an intent. A
// certificate that already has its DER is never overwritten, and an intent
// that recovery has already resolved (revoked) is not completed: both are
// ErrConflict, so a late issuance can never turn a revoked serial good.
func (tx *Tx) SetCertificateDER(ctx context.Context, issuerID string, serial, der []byte, now time.Time) error {
	res, err := tx.tx.ExecContext(ctx, tx.d.q(setCertificateDERSQL), nonNil(der), tx.d.timeArg(now), issuerID, nonNil(serial))
	if err != nil {
		return fmt.Errorf("store certificate %s/%x: %w", issuerID, serial, tx.d.mapErr(err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	c, err := tx.certificate(ctx, issuerID, serial)
	if err != nil {
		return fmt.Errorf("store certificate %s/%x: %w", issuerID, serial, err)
	}
	if c.DER == nil {
		return fmt.Errorf("store certificate %s/%x: %w", issuerID, serial, &IntentRevokedError{At: c.RevokedAt, Reason: c.Reason})
	}
	return fmt.Errorf("store certificate %s/%x: already signed: %w", issuerID, serial, ErrConflict)
}

// revokeCertificateSQL revokes one good certificate, found by key
// (TestKeyedWrites).
const revokeCertificateSQL = `
	UPDATE certificates SET status = 'revoked', revoked_at = $1, reason = $2, updated_at = $3
	WHERE issuer_id = $4 AND serial = $5 AND status = 'good'`

// RevokeCertificate marks a good certificate revoked. Revoking twice returns
// an *AlreadyRevokedError saying when and why.
func (tx *Tx) RevokeCertificate(ctx context.Context, issuerID string, serial []byte, at time.Time, reason int, now time.Time) error {
	return tx.revocation(ctx, "revoke", issuerID, serial, revokeCertificateSQL,
		tx.d.timeArg(at), reason, tx.d.timeArg(now), issuerID, nonNil(serial))
}

// revokeIntentSQL revokes one unresolved intent, found by key
// (TestKeyedWrites): good and with no certificate recorded.
const revokeIntentSQL = `
	UPDATE certificates SET status = 'revoked', revoked_at = $1, reason = $2, updated_at = $3
	WHERE issuer_id = $4 AND serial = $5 AND status = 'good' AND der IS NULL`

// ErrIntentCompleted is RevokeIntent's error when the certificate of the
// intent was recorded since the intent was read: its issuance finished,
// and it is not the intent's to revoke. It wraps ErrConflict.
var ErrIntentCompleted = fmt.Errorf("the intent's certificate is recorded: %w", ErrConflict)

// RevokeIntent marks revoked an intent that has no certificate recorded,
// as crash recovery does. The check and the change are one statement, so
// an issuance that records its certificate meanwhile is never revoked as an
// unresolved intent: that is ErrIntentCompleted. An intent already revoked
// is an *AlreadyRevokedError, as for RevokeCertificate.
func (tx *Tx) RevokeIntent(ctx context.Context, issuerID string, serial []byte, at time.Time, reason int, now time.Time) error {
	res, err := tx.tx.ExecContext(ctx, tx.d.q(revokeIntentSQL),
		tx.d.timeArg(at), reason, tx.d.timeArg(now), issuerID, nonNil(serial))
	if err != nil {
		return fmt.Errorf("revoke intent %s/%x: %w", issuerID, serial, tx.d.mapErr(err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	c, err := tx.certificate(ctx, issuerID, serial)
	switch {
	case err != nil:
		return fmt.Errorf("revoke intent %s/%x: %w", issuerID, serial, err)
	case c.Status == StatusRevoked:
		return fmt.Errorf("revoke intent %s/%x: %w", issuerID, serial, &AlreadyRevokedError{At: c.RevokedAt, Reason: c.Reason})
	default:
		return fmt.Errorf("revoke intent %s/%x: %w", issuerID, serial, ErrIntentCompleted)
	}
}

// raiseRevocationReasonSQL raises one revoked certificate's reason, found
// by key (TestKeyedWrites).
const raiseRevocationReasonSQL = `
	UPDATE certificates SET reason = 1, updated_at = $1
	WHERE issuer_id = $2 AND serial = $3 AND status = 'revoked' AND reason = $4`

// RaiseRevocationReason changes the reason of a certificate revoked for
// from to keyCompromise (1), keeping its revocation time. If it is not
// revoked for from (any more), nothing is written and the error is an
// *AlreadyRevokedError with what it is revoked for.
func (tx *Tx) RaiseRevocationReason(ctx context.Context, issuerID string, serial []byte, from int, now time.Time) error {
	return tx.revocation(ctx, "revocation reason of", issuerID, serial, raiseRevocationReasonSQL,
		tx.d.timeArg(now), issuerID, nonNil(serial), from)
}

// revocation runs update, which changes the certificate's row only if it
// is in the state the change starts from; if it changed no row, the error
// is an *AlreadyRevokedError saying how the certificate is revoked.
func (tx *Tx) revocation(ctx context.Context, what, issuerID string, serial []byte, update string, args ...any) error {
	res, err := tx.tx.ExecContext(ctx, tx.d.q(update), args...)
	if err != nil {
		return fmt.Errorf("%s %s/%x: %w", what, issuerID, serial, tx.d.mapErr(err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	c, err := tx.certificate(ctx, issuerID, serial)
	if err != nil {
		return fmt.Errorf("%s %s/%x: %w", what, issuerID, serial, err)
	}
	return fmt.Errorf("%s %s/%x: %w", what, issuerID, serial, &AlreadyRevokedError{At: c.RevokedAt, Reason: c.Reason})
}

func (tx *Tx) certificate(ctx context.Context, issuerID string, serial []byte) (Certificate, error) {
	return getCertificate(ctx, tx.tx, tx.d, issuerID, serial)
}

// Certificate is DB.Certificate inside the transaction: it sees what the
// transaction wrote, and what others committed before the read.
func (tx *Tx) Certificate(ctx context.Context, issuerID string, serial []byte) (Certificate, error) {
	return tx.certificate(ctx, issuerID, serial)
}

// Certificate returns one certificate row, or ErrNotFound.
func (db *DB) Certificate(ctx context.Context, issuerID string, serial []byte) (Certificate, error) {
	return getCertificate(ctx, db.sql, &db.d, issuerID, serial)
}

func getCertificate(ctx context.Context, q querier, d *dialect, issuerID string, serial []byte) (Certificate, error) {
	row := q.QueryRowContext(ctx, d.q(`SELECT `+certificateColumns+` FROM certificates WHERE issuer_id = $1 AND serial = $2`),
		issuerID, nonNil(serial))
	c, err := scanCertificate(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Certificate{}, fmt.Errorf("certificate %s/%x: %w", issuerID, serial, ErrNotFound)
	}
	return c, err
}

// UnsignedCertificates returns every unresolved intent: no certificate
// recorded and not yet revoked. These are the rows start-up recovery must
// resolve; a resolved (revoked) intent is not returned again.
func (db *DB) UnsignedCertificates(ctx context.Context) ([]Certificate, error) {
	return db.certificates(ctx, `WHERE der IS NULL AND status = 'good' ORDER BY created_at`)
}

// RevokedCertificates returns the revoked certificates of an issuer that
// had not expired at notAfterFrom: the entries of its next CRL.
func (db *DB) RevokedCertificates(ctx context.Context, issuerID string, notAfterFrom time.Time) ([]Certificate, error) {
	return db.certificates(ctx, `WHERE issuer_id = $1 AND status = 'revoked' AND not_after >= $2 ORDER BY serial`,
		issuerID, db.d.timeArg(notAfterFrom))
}

// CRLEntry is what a CRL lists of a revoked certificate.
type CRLEntry struct {
	Serial    []byte
	RevokedAt time.Time
	Reason    int
}

// CRLEntries returns what RevokedCertificates does, reading only the
// columns a CRL lists: a national CRL has hundreds of thousands of entries,
// and the full rows carry each certificate twice (TBS and DER).
func (db *DB) CRLEntries(ctx context.Context, issuerID string, notAfterFrom time.Time) ([]CRLEntry, error) {
	return db.crlEntries(ctx, "CRL entries of "+issuerID, `not_after >= $2 ORDER BY serial`, issuerID, db.d.timeArg(notAfterFrom))
}

// crlEntries reads the CRL columns of the revoked certificates of issuer
// $1 that where (the rest of the WHERE clause, with its order) chooses.
func (db *DB) crlEntries(ctx context.Context, what, where string, args ...any) ([]CRLEntry, error) {
	rows, err := db.sql.QueryContext(ctx, db.d.q(`
		SELECT serial, revoked_at, reason FROM certificates
		WHERE issuer_id = $1 AND status = 'revoked' AND `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []CRLEntry
	for rows.Next() {
		var e CRLEntry
		if err := rows.Scan(&e.Serial, timeScan{&e.RevokedAt}, &e.Reason); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// GoodCertificates returns the issuer's certificates that are not revoked,
// signed or not: what the OCSP refresher keeps answered.
func (db *DB) GoodCertificates(ctx context.Context, issuerID string) ([]Certificate, error) {
	return db.certificates(ctx, `WHERE issuer_id = $1 AND status = 'good' ORDER BY serial`, issuerID)
}

// RevokedFor returns the issuer's certificates revoked, or whose reason
// was raised, after since (by updated_at) and now revoked for one of
// reasons (RFC 5280 CRLReason codes), in that order.
func (db *DB) RevokedFor(ctx context.Context, issuerID string, since time.Time, reasons ...int) ([]Certificate, error) {
	if len(reasons) == 0 {
		return nil, nil
	}
	in := make([]string, len(reasons))
	args := []any{issuerID, db.d.timeArg(since)}
	for i, r := range reasons {
		in[i] = fmt.Sprintf("$%d", i+3)
		args = append(args, r)
	}
	return db.certificates(ctx, `WHERE issuer_id = $1 AND status = 'revoked' AND updated_at > $2 AND reason IN (`+strings.Join(in, ", ")+`)
		ORDER BY updated_at, serial`, args...)
}

// CertificatesOfEnrollment returns every signed certificate of an
// enrollment, newest first: normally one, more if the CA signed one whose
// record the RA never finished and a retry signed another.
func (db *DB) CertificatesOfEnrollment(ctx context.Context, enrollmentID string) ([]Certificate, error) {
	return db.certificates(ctx, `WHERE enrollment_id = $1 AND der IS NOT NULL ORDER BY created_at DESC, serial`, enrollmentID)
}

// CertificatesOfSubject returns a subject's signed certificates, newest
// first, at most limit (the certificates_subject index).
func (db *DB) CertificatesOfSubject(ctx context.Context, subjectID string, limit int) ([]Certificate, error) {
	return db.certificates(ctx, certificatesOfSubject, subjectID, limit)
}

// CertificatesOfSubject is DB.CertificatesOfSubject in tx: with what tx
// (and a group commit's other writes in it) wrote.
func (tx *Tx) CertificatesOfSubject(ctx context.Context, subjectID string, limit int) ([]Certificate, error) {
	return queryCertificates(ctx, tx.tx, tx.d, `SELECT `+certificateColumns+` FROM certificates `+certificatesOfSubject, subjectID, limit)
}

const certificatesOfSubject = `WHERE subject_id = $1 AND der IS NOT NULL ORDER BY created_at DESC, serial LIMIT $2`

// CertificatesOfKey returns the certificates of subjects (not the
// ceremonies' CA and OCSP signer certificates) that certify the key whose
// SubjectPublicKeyInfo hashes to spkiSHA256 (Certificate.SPKISHA256) and
// that a compromise of the key has still to revoke: unexpired at now and
// not revoked for keyCompromise, signed or still intents (the HSM may be
// signing one). Newest first, at most limit (the certificates_spki index).
func (db *DB) CertificatesOfKey(ctx context.Context, spkiSHA256 []byte, now time.Time, limit int) ([]Certificate, error) {
	return db.certificates(ctx, `WHERE spki_sha256 = $1 AND subject_id IS NOT NULL AND not_after > $2 AND reason IS DISTINCT FROM 1
		ORDER BY created_at DESC, serial LIMIT $3`, nonNil(spkiSHA256), db.d.timeArg(now), limit)
}

// UnkeyedCertificates returns up to limit certificates whose SPKISHA256 is
// not recorded (rows written before the column), in (issuer, serial)
// order after the certificate (afterIssuer, afterSerial); "" and nil start
// at the first. ca.FillKeyIDs pages through them.
func (db *DB) UnkeyedCertificates(ctx context.Context, afterIssuer string, afterSerial []byte, limit int) ([]Certificate, error) {
	return db.certificates(ctx, `WHERE spki_sha256 IS NULL AND (issuer_id > $1 OR issuer_id = $1 AND serial > $2)
		ORDER BY issuer_id, serial LIMIT $3`, afterIssuer, nonNil(afterSerial), limit)
}

// SetCertificateKey records the SPKISHA256 of a certificate that has none;
// one that has one keeps it.
func (tx *Tx) SetCertificateKey(ctx context.Context, issuerID string, serial, spkiSHA256 []byte) error {
	_, err := tx.tx.ExecContext(ctx, tx.d.q(`
		UPDATE certificates SET spki_sha256 = $1 WHERE issuer_id = $2 AND serial = $3 AND spki_sha256 IS NULL`),
		nonNil(spkiSHA256), issuerID, nonNil(serial))
	if err != nil {
		return fmt.Errorf("certificate %s/%x key: %w", issuerID, serial, tx.d.mapErr(err))
	}
	return nil
}

func (db *DB) certificates(ctx context.Context, where string, args ...any) ([]Certificate, error) {
	return db.queryCertificates(ctx, `SELECT `+certificateColumns+` FROM certificates `+where, args...)
}

// queryCertificates runs a query whose rows are certificateColumns.
func (db *DB) queryCertificates(ctx context.Context, query string, args ...any) ([]Certificate, error) {
	return queryCertificates(ctx, db.sql, &db.d, query, args...)
}

func queryCertificates(ctx context.Context, q querier, d *dialect, query string, args ...any) ([]Certificate, error) {
	rows, err := q.QueryContext(ctx, d.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	defer rows.Close()
	var out []Certificate
	for rows.Next() {
		c, err := scanCertificate(rows)
		if err != nil {
			return nil, fmt.Errorf("list certificates: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func scanCertificate(s scanner) (Certificate, error) {
	var (
		c                 Certificate
		subject, enroll   sql.NullString
		reason            sql.NullInt64
		revokedAt         time.Time
		notBefore, notAft time.Time
	)
	err := s.Scan(&c.IssuerID, &c.Serial, &subject, &enroll, &c.Profile, timeScan{&notBefore}, timeScan{&notAft},
		&c.TBS, &c.DER, &c.Status, nullTimeScan{&revokedAt}, &reason, timeScan{&c.CreatedAt}, timeScan{&c.UpdatedAt}, &c.SPKISHA256)
	c.SubjectID, c.EnrollmentID, c.NotBefore, c.NotAfter, c.RevokedAt = subject.String, enroll.String, notBefore, notAft, revokedAt
	c.Reason = int(reason.Int64)
	return c, err
}

// OCSPResponse is a pre-signed OCSP response for one certificate.
type OCSPResponse struct {
	IssuerID   string
	Serial     []byte
	DER        []byte
	ThisUpdate time.Time
	NextUpdate time.Time
	UpdatedAt  time.Time // the responders' sync cursor
}

// PutOCSPResponse stores (or replaces) the response for a certificate.
func (tx *Tx) PutOCSPResponse(ctx context.Context, r OCSPResponse) error {
	_, err := tx.tx.ExecContext(ctx, tx.d.q(`
		INSERT INTO ocsp_responses (issuer_id, serial, der, this_update, next_update, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (issuer_id, serial) DO UPDATE SET
			der = excluded.der, this_update = excluded.this_update,
			next_update = excluded.next_update, updated_at = `+tx.d.ocspUpdatedAt()),
		r.IssuerID, nonNil(r.Serial), nonNil(r.DER), tx.d.timeArg(r.ThisUpdate), tx.d.timeArg(r.NextUpdate), tx.d.timeArg(r.UpdatedAt))
	if err != nil {
		return fmt.Errorf("put OCSP response %s/%x: %w", r.IssuerID, r.Serial, tx.d.mapErr(err))
	}
	return nil
}

// OCSPResponse returns the stored response for a certificate, or
// ErrNotFound.
func (db *DB) OCSPResponse(ctx context.Context, issuerID string, serial []byte) (OCSPResponse, error) {
	r := OCSPResponse{IssuerID: issuerID}
	err := db.sql.QueryRowContext(ctx, db.d.q(`
		SELECT serial, der, this_update, next_update, updated_at FROM ocsp_responses
		WHERE issuer_id = $1 AND serial = $2`), issuerID, nonNil(serial)).
		Scan(&r.Serial, &r.DER, timeScan{&r.ThisUpdate}, timeScan{&r.NextUpdate}, timeScan{&r.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return OCSPResponse{}, fmt.Errorf("OCSP response %s/%x: %w", issuerID, serial, ErrNotFound)
	}
	return r, err
}

// CRL is one signed CRL of an issuer.
type CRL struct {
	IssuerID   string
	Number     int64
	DER        []byte
	ThisUpdate time.Time
	NextUpdate time.Time
	CreatedAt  time.Time
}

// PutCRL stores a CRL. Its number must be greater than every stored number
// of the issuer (RFC 5280 §5.2.3: monotonically increasing); otherwise
// ErrConflict. The issuer's row is locked first, so two writers of one
// issuer's CRLs take turns and the check cannot race.
func (tx *Tx) PutCRL(ctx context.Context, c CRL) error {
	var id string
	if err := tx.tx.QueryRowContext(ctx, tx.d.q(`SELECT id FROM issuers WHERE id = $1`+tx.d.lockSuffix), c.IssuerID).Scan(&id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = ErrNotFound
		}
		return fmt.Errorf("put CRL %s #%d: issuer: %w", c.IssuerID, c.Number, err)
	}
	var latest sql.NullInt64
	if err := tx.tx.QueryRowContext(ctx, tx.d.q(`SELECT MAX(crl_number) FROM crls WHERE issuer_id = $1`), c.IssuerID).Scan(&latest); err != nil {
		return fmt.Errorf("put CRL %s #%d: %w", c.IssuerID, c.Number, err)
	}
	if latest.Valid && c.Number <= latest.Int64 {
		return fmt.Errorf("put CRL %s #%d: number does not increase (latest %d): %w", c.IssuerID, c.Number, latest.Int64, ErrConflict)
	}
	_, err := tx.tx.ExecContext(ctx, tx.d.q(`
		INSERT INTO crls (issuer_id, crl_number, der, this_update, next_update, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`),
		c.IssuerID, c.Number, nonNil(c.DER), tx.d.timeArg(c.ThisUpdate), tx.d.timeArg(c.NextUpdate), tx.d.timeArg(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("put CRL %s #%d: %w", c.IssuerID, c.Number, tx.d.mapErr(err))
	}
	return nil
}

// PrunedCRLs is what PruneCRLs deleted: how many CRLs, and the lowest
// and highest of their numbers.
type PrunedCRLs struct {
	Count       int64
	First, Last int64
}

// PruneCRLs deletes, oldest first, at most limit of the issuer's CRLs that
// a newer one replaced and whose nextUpdate is before expiredBefore. The
// issuer's latest CRL is never deleted, whatever its nextUpdate: it is the
// one served, and the one PutCRL's numbers must pass.
func (tx *Tx) PruneCRLs(ctx context.Context, issuerID string, expiredBefore time.Time, limit int) (PrunedCRLs, error) {
	var p PrunedCRLs
	const replaced = `issuer_id = $1 AND next_update < $2 AND crl_number < (SELECT MAX(crl_number) FROM crls WHERE issuer_id = $1)`
	var first, last sql.NullInt64
	if err := tx.tx.QueryRowContext(ctx, tx.d.q(`
		SELECT MIN(crl_number), MAX(crl_number) FROM (
			SELECT crl_number FROM crls WHERE `+replaced+` ORDER BY crl_number LIMIT $3) AS oldest`),
		issuerID, tx.d.timeArg(expiredBefore), limit).Scan(&first, &last); err != nil {
		return p, fmt.Errorf("prune CRLs of %s: %w", issuerID, err)
	}
	if !first.Valid {
		return p, nil
	}
	// The rows between the two numbers that qualify are the ones just
	// read: they are the oldest that do.
	res, err := tx.tx.ExecContext(ctx, tx.d.q(`DELETE FROM crls WHERE `+replaced+` AND crl_number BETWEEN $3 AND $4`),
		issuerID, tx.d.timeArg(expiredBefore), first.Int64, last.Int64)
	if err != nil {
		return p, fmt.Errorf("prune CRLs of %s: %w", issuerID, err)
	}
	if p.Count, err = res.RowsAffected(); err != nil {
		return p, fmt.Errorf("prune CRLs of %s: %w", issuerID, err)
	}
	p.First, p.Last = first.Int64, last.Int64
	return p, nil
}

// LatestCRL returns the issuer's CRL with the highest number, or
// ErrNotFound.
func (db *DB) LatestCRL(ctx context.Context, issuerID string) (CRL, error) {
	c := CRL{IssuerID: issuerID}
	err := db.sql.QueryRowContext(ctx, db.d.q(`
		SELECT crl_number, der, this_update, next_update, created_at FROM crls
		WHERE issuer_id = $1 ORDER BY crl_number DESC LIMIT 1`), issuerID).
		Scan(&c.Number, &c.DER, timeScan{&c.ThisUpdate}, timeScan{&c.NextUpdate}, timeScan{&c.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return CRL{}, fmt.Errorf("CRL of %s: %w", issuerID, ErrNotFound)
	}
	return c, err
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// nullTimeScan is timeScan for a nullable column: NULL is the zero time.
type nullTimeScan struct{ dst *time.Time }

func (s nullTimeScan) Scan(src any) error {
	if src == nil {
		*s.dst = time.Time{}
		return nil
	}
	return timeScan(s).Scan(src)
}

// BlockKey records that the public key whose DER SubjectPublicKeyInfo
// hashes to spkiSHA256 was revoked for keyCompromise in the certificate
// issuerID/serial; blocking it again keeps the first record.
func (tx *Tx) BlockKey(ctx context.Context, spkiSHA256 []byte, issuerID string, serial []byte, at time.Time) error {
	_, err := tx.tx.ExecContext(ctx, tx.d.q(`
		INSERT INTO blocked_keys (spki_sha256, issuer_id, serial, blocked_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (spki_sha256) DO NOTHING`),
		nonNil(spkiSHA256), issuerID, nonNil(serial), tx.d.timeArg(at))
	if err != nil {
		return fmt.Errorf("block key of %s/%x: %w", issuerID, serial, tx.d.mapErr(err))
	}
	return nil
}

// BlockedKey is why a key may not be certified: the certificate revoked
// for its compromise.
type BlockedKey struct {
	SPKISHA256 []byte // set by ListBlockedKeys
	IssuerID   string
	Serial     []byte
	BlockedAt  time.Time
}

// ListBlockedKeys returns up to limit blocked keys in the order of their
// hash, after the hash after (nil: from the first).
func (db *DB) ListBlockedKeys(ctx context.Context, after []byte, limit int) ([]BlockedKey, error) {
	rows, err := db.sql.QueryContext(ctx, db.d.q(`
		SELECT spki_sha256, issuer_id, serial, blocked_at FROM blocked_keys WHERE spki_sha256 > $1
		ORDER BY spki_sha256 LIMIT $2`), nonNil(after), limit)
	if err != nil {
		return nil, fmt.Errorf("blocked keys: %w", err)
	}
	defer rows.Close()
	var out []BlockedKey
	for rows.Next() {
		var b BlockedKey
		if err := rows.Scan(&b.SPKISHA256, &b.IssuerID, &b.Serial, timeScan{&b.BlockedAt}); err != nil {
			return nil, fmt.Errorf("blocked keys: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// BlockedKeys returns the records of those of hashes (SHA-256 of DER
// SubjectPublicKeyInfo) that are blocked, by hash: one query for a group
// of issuances, in their intents' transaction.
func (tx *Tx) BlockedKeys(ctx context.Context, hashes [][]byte) (map[string]BlockedKey, error) {
	out := map[string]BlockedKey{}
	err := chunks(hashes, func(hs [][]byte) error {
		args := make([]any, len(hs))
		for i, h := range hs {
			args[i] = nonNil(h)
		}
		rows, err := tx.tx.QueryContext(ctx, tx.d.q(`
			SELECT spki_sha256, issuer_id, serial, blocked_at FROM blocked_keys
			WHERE spki_sha256 IN (`+tx.d.placeholders(len(hs), 1, 1, nil)+`)`), args...)
		if err != nil {
			return fmt.Errorf("blocked keys: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				h []byte
				b BlockedKey
			)
			if err := rows.Scan(&h, &b.IssuerID, &b.Serial, timeScan{&b.BlockedAt}); err != nil {
				return fmt.Errorf("blocked keys: %w", err)
			}
			out[string(h)] = b
		}
		return rows.Err()
	})
	return out, err
}

// KeyBlocked returns the record of a blocked key, or ErrNotFound.
func (db *DB) KeyBlocked(ctx context.Context, spkiSHA256 []byte) (BlockedKey, error) {
	var b BlockedKey
	err := db.sql.QueryRowContext(ctx, db.d.q(`SELECT issuer_id, serial, blocked_at FROM blocked_keys WHERE spki_sha256 = $1`),
		nonNil(spkiSHA256)).Scan(&b.IssuerID, &b.Serial, timeScan{&b.BlockedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return BlockedKey{}, ErrNotFound
	}
	if err != nil {
		return BlockedKey{}, fmt.Errorf("blocked key: %w", err)
	}
	return b, nil
}
