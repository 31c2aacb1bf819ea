package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Registry event kinds (registry_events.kind).
const (
	EventDeath           = "death"
	EventDissolution     = "dissolution"
	EventAuthorityChange = "authority_change"
)

// Registry event outcomes (registry_events.outcome): pending until the RA
// has acted on the event, then applied, ignored (nothing here concerned
// it) or failed (no key verifies it any more; a delivery that verifies
// reopens it). An applied or failed event may be reopened (pending again).
const (
	OutcomePending = "pending"
	OutcomeApplied = "applied"
	OutcomeIgnored = "ignored"
	OutcomeFailed  = "failed"
)

// RegistryEvent is an event of a national registry (a death, a
// dissolution, a change of who may sign for a business): one it signed and
// sent the RA, or one a recheck found in its records, kept as received with
// what the RA did about it.
type RegistryEvent struct {
	// EventID is the event's key: the country and the registry's id
	// (KZ/1001: a second delivery is the same event), or a recheck's
	// (KZ/recheck.<record hash>).
	EventID string
	// Source is the registry key that signed it (registry:<SPKI hash>),
	// or for a recheck the registry asked (recheck:<registry>).
	Source    string
	SubjectID string // the subject it concerns; "" when no known subject does
	// SubjectKey names the subject as subjects.national_id spells it (a
	// semantics identifier), whether or not it is known; "" in events
	// received before it was recorded.
	SubjectKey string
	Kind       string
	OccurredAt time.Time
	ReceivedAt time.Time
	Payload    string // the signed event exactly as received, or a recheck's record (JSON)
	Outcome    string
	// OutcomeDetail is package ra's account of what it did (JSON), once
	// the outcome is decided.
	OutcomeDetail string
	OutcomeAt     time.Time
}

// InsertRegistryEvent records a new event, pending. An event whose id is
// already recorded is ErrConflict: the caller reads the first one.
func (tx *Tx) InsertRegistryEvent(ctx context.Context, ev RegistryEvent) error {
	_, err := tx.tx.ExecContext(ctx, tx.d.q(`
		INSERT INTO registry_events (event_id, source, subject_id, kind, occurred_at, received_at, payload, subject_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`),
		ev.EventID, ev.Source, nullString(ev.SubjectID), ev.Kind, tx.d.timeArg(ev.OccurredAt), tx.d.timeArg(ev.ReceivedAt), ev.Payload,
		nullString(ev.SubjectKey))
	if err != nil {
		return fmt.Errorf("registry event %s: %w", ev.EventID, tx.d.mapErr(err))
	}
	return nil
}

// endRegistryEventSQL finds the event by its key: with outcome = 'pending'
// PostgreSQL could read registry_events_pending instead, every event
// waiting and every dead entry since the last VACUUM (see
// updateEnrollmentSQL).
const endRegistryEventSQL = `
	UPDATE registry_events SET outcome = $1, outcome_detail = $2, outcome_at = $3
	WHERE event_id = $4 AND outcome IS NOT DISTINCT FROM 'pending'`

// EndRegistryEvent records the outcome of a pending event. An event that
// is not pending any more is ErrConflict: another RA node decided first.
func (tx *Tx) EndRegistryEvent(ctx context.Context, eventID, outcome, detail string, at time.Time) error {
	res, err := tx.tx.ExecContext(ctx, tx.d.q(endRegistryEventSQL),
		outcome, nullString(detail), tx.d.timeArg(at), eventID)
	return oneEvent(res, err, eventID, "is not pending")
}

// oneEvent is the error of a write that must change exactly the one event
// it names: ErrConflict, saying why, when it changed none.
func oneEvent(res sql.Result, err error, eventID, none string) error {
	if err != nil {
		return fmt.Errorf("registry event %s: %w", eventID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("registry event %s: %w", eventID, err)
	} else if n != 1 {
		return fmt.Errorf("registry event %s %s: %w", eventID, none, ErrConflict)
	}
	return nil
}

const registryEventColumns = `event_id, source, subject_id, kind, occurred_at, received_at, payload, outcome, outcome_detail, outcome_at, subject_key`

// RegistryEvent returns one event by its id, or ErrNotFound.
func (db *DB) RegistryEvent(ctx context.Context, eventID string) (RegistryEvent, error) {
	evs, err := db.registryEvents(ctx, `WHERE event_id = $1`, eventID)
	if err != nil {
		return RegistryEvent{}, err
	}
	if len(evs) == 0 {
		return RegistryEvent{}, fmt.Errorf("registry event %s: %w", eventID, ErrNotFound)
	}
	return evs[0], nil
}

// RegistryEvents returns the events received since, oldest first, at most
// limit; only the pending ones if pending is set (the
// registry_events_pending index).
func (db *DB) RegistryEvents(ctx context.Context, since time.Time, pending bool, limit int) ([]RegistryEvent, error) {
	if pending {
		return db.registryEvents(ctx, `WHERE outcome = 'pending' AND received_at >= $1 ORDER BY received_at, event_id LIMIT $2`, db.d.timeArg(since), limit)
	}
	return db.registryEvents(ctx, `WHERE received_at >= $1 ORDER BY received_at, event_id LIMIT $2`, db.d.timeArg(since), limit)
}

func (db *DB) registryEvents(ctx context.Context, rest string, args ...any) ([]RegistryEvent, error) {
	return queryRegistryEvents(ctx, db.sql, &db.d, rest, args...)
}

// queryRegistryEvents reads events with q, the database or a transaction.
func queryRegistryEvents(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, d *dialect, rest string, args ...any) ([]RegistryEvent, error) {
	rows, err := q.QueryContext(ctx, d.q(`SELECT `+registryEventColumns+` FROM registry_events `+rest), args...)
	if err != nil {
		return nil, fmt.Errorf("registry events: %w", err)
	}
	defer rows.Close()
	var out []RegistryEvent
	for rows.Next() {
		var (
			ev                   RegistryEvent
			subject, detail, key sql.NullString
		)
		if err := rows.Scan(&ev.EventID, &ev.Source, &subject, &ev.Kind, timeScan{&ev.OccurredAt}, timeScan{&ev.ReceivedAt},
			&ev.Payload, &ev.Outcome, &detail, nullTimeScan{&ev.OutcomeAt}, &key); err != nil {
			return nil, fmt.Errorf("registry events: %w", err)
		}
		ev.SubjectID, ev.OutcomeDetail, ev.SubjectKey = subject.String, detail.String, key.String
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("registry events: %w", err)
	}
	return out, nil
}

// SubjectsWithGoodCertificates returns, in id order after the id after,
// at most limit subjects holding a certificate that is signed, good and
// unexpired at now: those a registry recheck asks about (the
// certificates_subject index, read in order).
func (db *DB) SubjectsWithGoodCertificates(ctx context.Context, after string, now time.Time, limit int) ([]Subject, error) {
	rows, err := db.sql.QueryContext(ctx, db.d.q(`
		SELECT id, kind, national_id FROM subjects WHERE id IN (
			SELECT DISTINCT subject_id FROM certificates
			WHERE subject_id > $1 AND status = 'good' AND der IS NOT NULL AND not_after > $2
			ORDER BY subject_id LIMIT $3)
		ORDER BY id`), after, db.d.timeArg(now), limit)
	if err != nil {
		return nil, fmt.Errorf("subjects with good certificates: %w", err)
	}
	defer rows.Close()
	var out []Subject
	for rows.Next() {
		var s Subject
		if err := rows.Scan(&s.ID, &s.Kind, &s.NationalID); err != nil {
			return nil, fmt.Errorf("subjects with good certificates: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// endedByWhere chooses a subject's death or dissolution events received
// since a time that were not ignored (pending or applied), by the
// registry_events_subject index. It has no ORDER BY: firstEndedBy picks the
// first of the few (almost always none), and SQLite's sorter cost 18 µs
// even for no rows, six times the lookup, in every issuing transaction.
const endedByWhere = `WHERE subject_id = $1 AND received_at >= $2 AND kind IN ('death', 'dissolution') AND outcome IN ('pending', 'applied')`

// SubjectEndedBy returns, in the transaction, the first death or
// dissolution event received since for a subject that was not ignored, or
// ErrNotFound: a certificate just issued on an enrollment made before that
// event must be revoked. (An event received before the enrollment was made
// does not count: the registry said then that the subject exists, which
// corrects a mistaken report.) Read in the writer's transaction, it costs a
// lookup in pages the writer holds, where a read beside it would first
// reload what the last commit changed.
func (tx *Tx) SubjectEndedBy(ctx context.Context, subjectID string, since time.Time) (RegistryEvent, error) {
	return firstEndedBy(queryRegistryEvents(ctx, tx.tx, tx.d, endedByWhere, subjectID, tx.d.timeArg(since)))
}

// SubjectEndedBy is Tx.SubjectEndedBy in a read of its own.
func (db *DB) SubjectEndedBy(ctx context.Context, subjectID string, since time.Time) (RegistryEvent, error) {
	return firstEndedBy(db.registryEvents(ctx, endedByWhere, subjectID, db.d.timeArg(since)))
}

// firstEndedBy returns the event received first (then by id) of evs.
func firstEndedBy(evs []RegistryEvent, err error) (RegistryEvent, error) {
	if err != nil {
		return RegistryEvent{}, err
	}
	if len(evs) == 0 {
		return RegistryEvent{}, fmt.Errorf("registry events of the subject: %w", ErrNotFound)
	}
	return slices.MinFunc(evs, func(a, b RegistryEvent) int {
		return cmp.Or(a.ReceivedAt.Compare(b.ReceivedAt), strings.Compare(a.EventID, b.EventID))
	}), nil
}

// UnmatchedRegistryEvents returns, in the transaction, the events of kind
// (a death, a dissolution) received at or after since that name the
// subject key (RegistryEvent.SubjectKey) and matched no known subject
// when they came (subject_id NULL, ignored): a subject enrolling for the
// first time while one came has no row yet for it to find, and adopts it
// (AdoptRegistryEvent). Events received before subject keys were recorded
// are returned too, whomever they name, for the caller to read: the
// registry_events_unmatched indexes find both. At most limit, the first
// received first.
func (tx *Tx) UnmatchedRegistryEvents(ctx context.Context, subjectKey, kind string, since time.Time, limit int) ([]RegistryEvent, error) {
	return queryRegistryEvents(ctx, tx.tx, tx.d, `WHERE event_id IN (
			SELECT event_id FROM registry_events WHERE subject_id IS NULL AND subject_key IS NOT NULL AND subject_key = $1 AND received_at >= $2 AND kind = $3
			UNION ALL
			SELECT event_id FROM registry_events WHERE subject_id IS NULL AND subject_key IS NULL AND received_at >= $2 AND kind IN ('death', 'dissolution'))
		ORDER BY received_at, event_id LIMIT $4`, subjectKey, tx.d.timeArg(since), kind, limit)
}

// AdoptRegistryEvent gives an event that matched no subject when it came
// the subject it names, and puts it back to pending, for RetryRegistryEvents
// to carry out: the subject enrolled while it came. An event that has a
// subject is ErrConflict.
func (tx *Tx) AdoptRegistryEvent(ctx context.Context, eventID, subjectID string) error {
	res, err := tx.tx.ExecContext(ctx, tx.d.q(`
		UPDATE registry_events SET subject_id = $2, outcome = 'pending', outcome_detail = NULL, outcome_at = NULL
		WHERE event_id = $1 AND subject_id IS NULL`), eventID, subjectID)
	return oneEvent(res, err, eventID, "has a subject")
}

// ReopenRegistryEvent puts an event whose outcome was decided (applied or
// failed) back to pending, for RetryRegistryEvents to carry on: a
// certificate was found still good after it was applied, or the registry
// delivered again, verifiably, an event that had failed. A payload and
// source given replace the recorded ones (the new delivery's). An event
// already pending is ErrConflict.
func (tx *Tx) ReopenRegistryEvent(ctx context.Context, eventID, payload, source string) error {
	res, err := tx.tx.ExecContext(ctx, tx.d.q(`
		UPDATE registry_events SET outcome = 'pending', outcome_detail = NULL, outcome_at = NULL,
			payload = COALESCE($2, payload), source = COALESCE($3, source)
		WHERE event_id = $1 AND outcome IN ('applied', 'failed')`),
		eventID, nullString(payload), nullString(source))
	return oneEvent(res, err, eventID, "is not applied or failed")
}

// PendingRegistryEvents counts the events not acted on yet (the
// registry_events_pending index).
func (db *DB) PendingRegistryEvents(ctx context.Context) (int64, error) {
	var n int64
	if err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM registry_events WHERE outcome = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("pending registry events: %w", err)
	}
	return n, nil
}

// RegistryEventsOfSubject returns the events received about a subject,
// newest first, at most limit (the registry_events_subject index).
func (db *DB) RegistryEventsOfSubject(ctx context.Context, subjectID string, limit int) ([]RegistryEvent, error) {
	return db.registryEvents(ctx, `WHERE subject_id = $1 ORDER BY received_at DESC, event_id LIMIT $2`, subjectID, limit)
}
