package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"time"
)

// Subject is someone the RA verified: a person or a business, keyed by its
// national identifier (ETSI semantics form: IDCKZ-…, NTRPK-…).
type Subject struct {
	ID          string
	Kind        string // person | business
	NationalID  string
	Attributes  []byte // verified attributes, JSON
	RegistryRef string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Enrollment states (DESIGN §3); package ra checks the transitions.
const (
	StatePendingProof    = "pending_proof"
	StatePendingApproval = "pending_approval"
	StateApproved        = "approved"
	StateIssued          = "issued"
	StateRejected        = "rejected"
	StateExpired         = "expired"
	StateFailed          = "failed"
)

// Enrollment is one application for a certificate.
type Enrollment struct {
	ID             string
	SubjectID      string
	Profile        string
	CSR            []byte // DER
	State          string
	StateReason    string
	Proofing       []byte // JSON, package ra's
	IdempotencyKey string
	RequestHash    []byte
	CreatedAt      time.Time
	UpdatedAt      time.Time
	ExpiresAt      time.Time // zero: does not lapse
}

// RegistryEvidence is one registry lookup an enrollment relied on.
type RegistryEvidence struct {
	EnrollmentID string
	Source       string
	Record       string // person | business | representative
	Version      string
	Hash         []byte
	LookedUpAt   time.Time
}

// PutSubject records a verified subject, or refreshes the attributes of the
// one with the same kind and national identifier, and returns the stored
// row (its ID is the existing one's when there was one).
func (tx *Tx) PutSubject(ctx context.Context, s Subject) (Subject, error) {
	// One statement: the row as the upsert left it (RETURNING, on both
	// databases), instead of a second query for it.
	var out Subject
	var ref sql.NullString
	var attrs string
	err := tx.tx.QueryRowContext(ctx, tx.d.q(`
		INSERT INTO subjects (id, kind, national_id, attributes, registry_ref, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (kind, national_id) DO UPDATE SET
			attributes = excluded.attributes, registry_ref = excluded.registry_ref, updated_at = excluded.updated_at
		RETURNING id, kind, national_id, attributes, registry_ref, created_at, updated_at`),
		s.ID, s.Kind, s.NationalID, string(s.Attributes), nullString(s.RegistryRef), tx.d.timeArg(s.CreatedAt)).
		Scan(&out.ID, &out.Kind, &out.NationalID, &attrs, &ref, timeScan{&out.CreatedAt}, timeScan{&out.UpdatedAt})
	if err != nil {
		// Named by its id, not its national identifier: errors reach logs.
		return Subject{}, fmt.Errorf("put subject %s (%s): %w", s.ID, s.Kind, tx.d.mapErr(err))
	}
	out.Attributes, out.RegistryRef = []byte(attrs), ref.String
	return out, nil
}

// Subject returns one subject, or ErrNotFound.
func (db *DB) Subject(ctx context.Context, id string) (Subject, error) {
	return db.subject(ctx, "subject "+id, `WHERE id = $1`, id)
}

// SubjectByNationalID returns the subject of this kind (person or
// business) with this semantics identifier (IDCKZ-…, NTRPK-…), or
// ErrNotFound.
func (db *DB) SubjectByNationalID(ctx context.Context, kind, nationalID string) (Subject, error) {
	// Named by kind only: errors reach logs, national identifiers do not.
	return subjectWhere(ctx, db.sql, &db.d, "subject ("+kind+")", `WHERE kind = $1 AND national_id = $2`, kind, nationalID)
}

// SubjectByNationalID reads, in the transaction, what the DB method of the
// name reads.
func (tx *Tx) SubjectByNationalID(ctx context.Context, kind, nationalID string) (Subject, error) {
	return subjectWhere(ctx, tx.tx, tx.d, "subject ("+kind+")", `WHERE kind = $1 AND national_id = $2`, kind, nationalID)
}

// LockSubject serializes, until the transaction ends, the transactions
// that decide whether a death or dissolution reaches a subject's
// certificates: the one recording the registry's event, which reads
// whether the subject exists, and the one storing a certificate issued to
// it, which reads the events received since its enrollment began. Each
// takes the lock before it reads what the other writes, so the later one
// sees the earlier one's writes. The subject need not have a row yet: a
// first enrollment's registry lookup can be overtaken by the event.
//
// On PostgreSQL it is a transaction advisory lock on a hash of kind and
// national id: under READ COMMITTED each transaction could otherwise read
// before the other commits, and both miss. On SQLite every transaction
// already holds the database's write lock (BEGIN IMMEDIATE).
func (tx *Tx) LockSubject(ctx context.Context, kind, nationalID string) error {
	if tx.d.sqlite {
		return nil
	}
	if _, err := tx.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, SubjectLockKey(kind, nationalID)); err != nil {
		return fmt.Errorf("lock subject (%s): %w", kind, err)
	}
	return nil
}

// SubjectLockKey is the key of LockSubject's advisory lock on PostgreSQL,
// where pg_locks shows it as classid (the high 32 bits) and objid (the low
// 32 bits), objsubid 1.
func SubjectLockKey(kind, nationalID string) int64 {
	h := fnv.New64a()
	h.Write([]byte("sanad subject\x00" + kind + "\x00" + nationalID))
	return int64(h.Sum64())
}

func (db *DB) subject(ctx context.Context, what, where string, args ...any) (Subject, error) {
	return subjectWhere(ctx, db.sql, &db.d, what, where, args...)
}

func subjectWhere(ctx context.Context, q querier, d *dialect, what, where string, args ...any) (Subject, error) {
	var out Subject
	var ref sql.NullString
	var attrs string
	err := q.QueryRowContext(ctx, d.q(`
		SELECT id, kind, national_id, attributes, registry_ref, created_at, updated_at FROM subjects `+where), args...).
		Scan(&out.ID, &out.Kind, &out.NationalID, &attrs, &ref, timeScan{&out.CreatedAt}, timeScan{&out.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return Subject{}, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return Subject{}, fmt.Errorf("%s: %w", what, err)
	}
	out.Attributes, out.RegistryRef = []byte(attrs), ref.String
	return out, nil
}

// EnrollmentsOfSubject returns a subject's enrollments, newest first, at
// most limit (the enrollments_subject index).
func (db *DB) EnrollmentsOfSubject(ctx context.Context, subjectID string, limit int) ([]Enrollment, error) {
	return db.enrollments(ctx, "enrollments of subject "+subjectID, enrollmentsOfSubject, subjectID, limit)
}

// EnrollmentsOfSubject is DB.EnrollmentsOfSubject in tx.
func (tx *Tx) EnrollmentsOfSubject(ctx context.Context, subjectID string, limit int) ([]Enrollment, error) {
	return queryEnrollments(ctx, tx.tx, tx.d, "enrollments of subject "+subjectID, enrollmentsOfSubject, subjectID, limit)
}

const enrollmentsOfSubject = `WHERE subject_id = $1 ORDER BY created_at DESC, id LIMIT $2`

const enrollmentColumns = `id, subject_id, profile, csr_der, state, state_reason, proofing, idempotency_key,
	request_hash, created_at, updated_at, expires_at`

// InsertEnrollment records a new enrollment. A second enrollment with the
// same idempotency key is ErrConflict.
func (tx *Tx) InsertEnrollment(ctx context.Context, e Enrollment) error {
	_, err := tx.tx.ExecContext(ctx, tx.d.q(`
		INSERT INTO enrollments (`+enrollmentColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)`),
		e.ID, e.SubjectID, e.Profile, nonNil(e.CSR), e.State, nullString(e.StateReason), string(orEmptyJSON(e.Proofing)),
		nullString(e.IdempotencyKey), e.RequestHash, tx.d.timeArg(e.CreatedAt), nullTimeArg(tx.d, e.ExpiresAt))
	if err != nil {
		return fmt.Errorf("enrollment %s: %w", e.ID, tx.d.mapErr(err))
	}
	return nil
}

// Enrollment returns one enrollment, or ErrNotFound.
func (db *DB) Enrollment(ctx context.Context, id string) (Enrollment, error) {
	return getEnrollment(ctx, db.sql, `WHERE id = $1`, &db.d, id)
}

// EnrollmentForUpdate reads an enrollment and, on PostgreSQL, locks it
// until tx ends (SQLite's transaction holds the write lock already).
func (tx *Tx) EnrollmentForUpdate(ctx context.Context, id string) (Enrollment, error) {
	return getEnrollment(ctx, tx.tx, `WHERE id = $1`+tx.d.lockSuffix, tx.d, id)
}

// EnrollmentByIdempotencyKey returns the enrollment a key created, or
// ErrNotFound.
func (db *DB) EnrollmentByIdempotencyKey(ctx context.Context, key string) (Enrollment, error) {
	return getEnrollment(ctx, db.sql, `WHERE idempotency_key = $1`, &db.d, key)
}

func getEnrollment(ctx context.Context, q querier, where string, d *dialect, arg any) (Enrollment, error) {
	e, err := scanEnrollment(q.QueryRowContext(ctx, d.q(`SELECT `+enrollmentColumns+` FROM enrollments `+where), arg))
	if errors.Is(err, sql.ErrNoRows) {
		return Enrollment{}, fmt.Errorf("enrollment %v: %w", arg, ErrNotFound)
	}
	return e, err
}

func scanEnrollment(s scanner) (Enrollment, error) {
	var (
		e           Enrollment
		reason, key sql.NullString
		proofing    string
	)
	err := s.Scan(&e.ID, &e.SubjectID, &e.Profile, &e.CSR, &e.State, &reason, &proofing, &key, &e.RequestHash,
		timeScan{&e.CreatedAt}, timeScan{&e.UpdatedAt}, nullTimeScan{&e.ExpiresAt})
	e.StateReason, e.Proofing, e.IdempotencyKey = reason.String, []byte(proofing), key.String
	return e, err
}

// updateEnrollmentSQL moves one enrollment on if it is still in state $6.
// The row must be found by its primary key. With "state = $6", PostgreSQL
// searched enrollments_state (state, created_at) instead, whenever its
// statistics said few enrollments were in that state: true of
// pending_proof and approved, which every enrollment passes through, and
// that index range also holds one dead entry for each enrollment that
// left the state since the last VACUUM. IS NOT DISTINCT FROM means "="
// here (state is NOT NULL, and so is every from) but no PostgreSQL index
// can serve it, nor can it imply a partial index's predicate in either
// database, so the state is only checked on the row the key found.
// TestKeyedWrites holds both databases' plans to the key.
const updateEnrollmentSQL = `
	UPDATE enrollments SET state = $1, state_reason = $2, proofing = $3, updated_at = $4
	WHERE id = $5 AND state IS NOT DISTINCT FROM $6`

// UpdateEnrollment moves an enrollment from state from to e.State with
// e.StateReason and e.Proofing. If the enrollment is no longer in from
// (another request moved it first), nothing is written and the error wraps
// ErrConflict.
func (tx *Tx) UpdateEnrollment(ctx context.Context, from string, e Enrollment) error {
	res, err := tx.tx.ExecContext(ctx, tx.d.q(updateEnrollmentSQL),
		e.State, nullString(e.StateReason), string(orEmptyJSON(e.Proofing)), tx.d.timeArg(e.UpdatedAt), e.ID, from)
	if err != nil {
		return fmt.Errorf("update enrollment %s: %w", e.ID, tx.d.mapErr(err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	return fmt.Errorf("enrollment %s is no longer %s: %w", e.ID, from, ErrConflict)
}

// ReleaseIdempotencyKey clears an enrollment's idempotency key, so that a
// new enrollment may take it (a renewal that ended without a certificate
// leaves the certificate renewable again).
func (tx *Tx) ReleaseIdempotencyKey(ctx context.Context, id string) error {
	if _, err := tx.tx.ExecContext(ctx, tx.d.q(`UPDATE enrollments SET idempotency_key = NULL WHERE id = $1`), id); err != nil {
		return fmt.Errorf("release the idempotency key of enrollment %s: %w", id, tx.d.mapErr(err))
	}
	return nil
}

// EnrollmentsInState lists enrollments in a state, oldest first (the
// officers' queue), at most limit.
func (db *DB) EnrollmentsInState(ctx context.Context, state string, limit int) ([]Enrollment, error) {
	return db.enrollments(ctx, "enrollments "+state, `WHERE state = $1 ORDER BY created_at, id LIMIT $2`, state, limit)
}

// enrollments runs SELECT enrollmentColumns FROM enrollments with the rest
// of a query; what names it in errors.
func (db *DB) enrollments(ctx context.Context, what, rest string, args ...any) ([]Enrollment, error) {
	return queryEnrollments(ctx, db.sql, &db.d, what, rest, args...)
}

func queryEnrollments(ctx context.Context, q querier, d *dialect, what, rest string, args ...any) ([]Enrollment, error) {
	rows, err := q.QueryContext(ctx, d.q(`SELECT `+enrollmentColumns+` FROM enrollments `+rest), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []Enrollment
	for rows.Next() {
		e, err := scanEnrollment(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// LapsedEnrollments returns up to limit enrollments in state whose
// expires_at is before now, oldest first.
func (db *DB) LapsedEnrollments(ctx context.Context, state string, now time.Time, limit int) ([]Enrollment, error) {
	return db.enrollments(ctx, "lapsed enrollments "+state, `WHERE state = $1 AND expires_at < $2 ORDER BY expires_at, id LIMIT $3`,
		state, db.d.timeArg(now), limit)
}

// Waiting is how many enrollments wait in a state, and since when the one
// that has waited longest has (zero when none waits): since it was
// created, waiting for its code or for officers; approved, since its last
// change (the approval, or the last attempt: Resume retries every minute).
type Waiting struct {
	State  string
	Count  int64
	Oldest time.Time
}

// WaitingStates are the states an enrollment waits in: for its code, for
// officers, and approved for the CA (issued at once, unless the CA failed).
var WaitingStates = []string{StatePendingProof, StatePendingApproval, StateApproved}

// EnrollmentsWaiting counts the enrollments in each of WaitingStates, with
// the time the longest waiting started (Waiting), from the enrollments_state
// index (approved enrollments are few: issued at once, unless the CA
// failed): what the officers' backlog is, and whether issuances are stuck.
func (db *DB) EnrollmentsWaiting(ctx context.Context) ([]Waiting, error) {
	out := make([]Waiting, 0, len(WaitingStates))
	for _, state := range WaitingStates {
		w := Waiting{State: state}
		since := "created_at"
		if state == StateApproved {
			since = "updated_at"
		}
		var oldest any // NULL when none waits
		err := db.sql.QueryRowContext(ctx, db.d.q(`SELECT count(*), min(`+since+`) FROM enrollments WHERE state = $1`), state).
			Scan(&w.Count, &oldest)
		if err == nil && oldest != nil {
			err = timeScan{&w.Oldest}.Scan(oldest)
		}
		if err != nil {
			return nil, fmt.Errorf("enrollments %s: %w", state, err)
		}
		out = append(out, w)
	}
	return out, nil
}

// InsertRegistryEvidence records a registry lookup an enrollment relied on.
func (tx *Tx) InsertRegistryEvidence(ctx context.Context, ev RegistryEvidence) error {
	_, err := tx.tx.ExecContext(ctx, tx.d.q(`
		INSERT INTO registry_evidence (enrollment_id, source, record, record_version, record_hash, looked_up_at)
		VALUES ($1, $2, $3, $4, $5, $6)`),
		ev.EnrollmentID, ev.Source, ev.Record, nullString(ev.Version), ev.Hash, tx.d.timeArg(ev.LookedUpAt))
	if err != nil {
		return fmt.Errorf("registry evidence of %s: %w", ev.EnrollmentID, tx.d.mapErr(err))
	}
	return nil
}

// RegistryEvidence returns what an enrollment's registry lookups answered,
// in the order they were recorded.
func (db *DB) RegistryEvidence(ctx context.Context, enrollmentID string) ([]RegistryEvidence, error) {
	rows, err := db.sql.QueryContext(ctx, db.d.q(`
		SELECT source, record, record_version, record_hash, looked_up_at FROM registry_evidence
		WHERE enrollment_id = $1 ORDER BY id`), enrollmentID)
	if err != nil {
		return nil, fmt.Errorf("registry evidence of %s: %w", enrollmentID, err)
	}
	defer rows.Close()
	var out []RegistryEvidence
	for rows.Next() {
		ev := RegistryEvidence{EnrollmentID: enrollmentID}
		var version sql.NullString
		if err := rows.Scan(&ev.Source, &ev.Record, &version, &ev.Hash, timeScan{&ev.LookedUpAt}); err != nil {
			return nil, fmt.Errorf("registry evidence of %s: %w", enrollmentID, err)
		}
		ev.Version = version.String
		out = append(out, ev)
	}
	return out, rows.Err()
}

// CertificateOfEnrollment returns the certificate issued for an
// enrollment, or ErrNotFound.
func (db *DB) CertificateOfEnrollment(ctx context.Context, enrollmentID string) (Certificate, error) {
	row := db.sql.QueryRowContext(ctx, db.d.q(`SELECT `+certificateColumns+` FROM certificates
		WHERE enrollment_id = $1 AND der IS NOT NULL ORDER BY created_at DESC LIMIT 1`), enrollmentID)
	c, err := scanCertificate(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Certificate{}, fmt.Errorf("certificate of enrollment %s: %w", enrollmentID, ErrNotFound)
	}
	return c, err
}

// IssuanceInFlight reports whether the enrollment has an issuance intent
// the CA has neither completed nor resolved: a certificate row without its
// certificate, still good. Its issuance may still be running (a slow HSM),
// on this node or another; else the CA's recovery revokes it.
func (db *DB) IssuanceInFlight(ctx context.Context, enrollmentID string) (bool, error) {
	var n int
	err := db.sql.QueryRowContext(ctx, db.d.q(`SELECT count(*) FROM certificates
		WHERE enrollment_id = $1 AND der IS NULL AND status = 'good'`), enrollmentID).Scan(&n)
	return n > 0, err
}

func orEmptyJSON(b []byte) []byte {
	if len(b) == 0 {
		return []byte("{}")
	}
	return b
}

// nullTimeArg is timeArg, with the zero time as NULL.
func nullTimeArg(d *dialect, t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return d.timeArg(t)
}

// SignedCertificateBySerial returns the signed certificate with this
// serial, of whichever issuer (serials are random, so one at most in
// practice; the newest if not), or ErrNotFound.
func (db *DB) SignedCertificateBySerial(ctx context.Context, serial []byte) (Certificate, error) {
	return db.certificateBySerial(ctx, serial, `AND der IS NOT NULL`)
}

// CertificateBySerial is SignedCertificateBySerial, intents without their
// certificate included.
func (db *DB) CertificateBySerial(ctx context.Context, serial []byte) (Certificate, error) {
	return db.certificateBySerial(ctx, serial, ``)
}

func (db *DB) certificateBySerial(ctx context.Context, serial []byte, and string) (Certificate, error) {
	row := db.sql.QueryRowContext(ctx, db.d.q(`SELECT `+certificateColumns+` FROM certificates
		WHERE serial = $1 `+and+` ORDER BY created_at DESC LIMIT 1`), nonNil(serial))
	c, err := scanCertificate(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Certificate{}, fmt.Errorf("certificate %x: %w", serial, ErrNotFound)
	}
	return c, err
}
