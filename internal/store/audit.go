package store

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// AuditEvent is one entry of the audit log. internal/audit computes PrevHash
// and Hash; the store keeps every field verbatim.
type AuditEvent struct {
	Seq      int64 // 1, 2, 3, … without gaps
	Time     time.Time
	Actor    string
	Action   string
	Object   string
	Details  []byte // JSON text, stored byte for byte
	PrevHash []byte // the head's Hash when appended: event Seq-1's, or the genesis hash for Seq 1
	Hash     []byte
}

// AuditHead is the last appended event. Seq 0 means the log is empty; its
// Hash is then the genesis hash the migration wrote (32 zero bytes), which
// event 1 must carry as PrevHash.
type AuditHead struct {
	Seq  int64
	Hash []byte
}

// AuditCheckpoint is a signed statement of the log's head at Seq.
type AuditCheckpoint struct {
	Seq       int64
	Hash      []byte // the tree head hash signed
	Time      time.Time
	KeyID     []byte
	Signature []byte
}

// AuditRecord is an audit event as a transaction records it; its place in
// the chain (Seq, Time, PrevHash, Hash) is given when the transaction ends.
type AuditRecord struct {
	Actor, Action, Object string
	Details               []byte // JSON text
}

// Chain makes the events that extend head with records, in order: it
// numbers, stamps and hashes them (internal/audit owns the hash).
type Chain func(head AuditHead, records []AuditRecord) []AuditEvent

// RecordAudit keeps r for the audit log: when the transaction's function
// has returned (DB.InTx) or a Group's callers have all run, the head is
// read and locked, chain links every record of the transaction after it,
// and the events and the new head are written; then the transaction
// commits. The records of a Group caller that fails are dropped with its
// writes.
//
// Taking the head at the end, once, keeps the lock that serializes every
// audited writer down to the append and the commit, instead of the whole
// transaction (which may wait on the network, or run a Group's hundred
// callers); and it is the last lock a transaction takes, so it cannot be
// part of a deadlock. All records of a transaction use the first chain
// given.
func (tx *Tx) RecordAudit(r AuditRecord, chain Chain) {
	if tx.chain == nil {
		tx.chain = chain
	}
	tx.records = append(tx.records, r)
}

// appendRecords appends the recorded events (see RecordAudit).
func (tx *Tx) appendRecords(ctx context.Context) error {
	if len(tx.records) == 0 {
		return nil
	}
	head, err := tx.AuditHead(ctx)
	if err != nil {
		return err
	}
	events := tx.chain(head, tx.records)
	tx.records = nil
	return tx.AppendAuditEvents(ctx, events)
}

// AuditHead returns the head of the log and locks it until the transaction
// ends, so that appenders take turns: read the head, compute the next
// event's hash from it, AppendAuditEvent, commit. On PostgreSQL the row is
// read FOR UPDATE; on SQLite the transaction already holds the write lock.
func (tx *Tx) AuditHead(ctx context.Context) (AuditHead, error) {
	h, err := auditHead(ctx, tx.tx, tx.d, tx.d.lockSuffix)
	if err != nil {
		return AuditHead{}, fmt.Errorf("lock audit head: %w", err)
	}
	return h, nil
}

// AuditHead returns the head of the log without locking it.
func (db *DB) AuditHead(ctx context.Context) (AuditHead, error) {
	h, err := auditHead(ctx, db.sql, &db.d, "")
	if err != nil {
		return AuditHead{}, fmt.Errorf("read audit head: %w", err)
	}
	return h, nil
}

func auditHead(ctx context.Context, q querier, d *dialect, suffix string) (AuditHead, error) {
	var h AuditHead
	err := q.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`+suffix).Scan(&h.Seq, &h.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return AuditHead{}, fmt.Errorf("audit_head has no row (is the %s store migrated?)", d.name)
	}
	return h, err
}

// AppendAuditEvent inserts e and moves the head to (e.Seq, e.Hash), in the
// transaction. e must extend the head: e.Seq = head.Seq+1 and e.PrevHash =
// head.Hash; otherwise it returns an error wrapping ErrConflict and writes
// nothing. The check is in the UPDATE's WHERE clause, so it holds even for a
// caller that did not lock the head first.
func (tx *Tx) AppendAuditEvent(ctx context.Context, e AuditEvent) error {
	return tx.AppendAuditEvents(ctx, []AuditEvent{e})
}

// AppendAuditEvents appends a run of events that extend the head and each
// other (seq +1, prev hash = the previous event's hash), in two statements
// per batchRows events: the head moves from the run's first prev to its
// last event, checked as in AppendAuditEvent, and the events are inserted.
func (tx *Tx) AppendAuditEvents(ctx context.Context, es []AuditEvent) error {
	for i, e := range es {
		if e.Seq < 1 {
			return fmt.Errorf("append audit event: seq %d is not positive", e.Seq)
		}
		if len(e.Hash) == 0 {
			return fmt.Errorf("append audit event %d: empty hash", e.Seq)
		}
		// PostgreSQL TEXT cannot hold invalid UTF-8 or NUL; reject both on
		// both databases so that they accept exactly the same events.
		if !utf8.Valid(e.Details) || bytes.IndexByte(e.Details, 0) >= 0 {
			return fmt.Errorf("append audit event %d: details are not UTF-8 text without NUL", e.Seq)
		}
		if i > 0 && (e.Seq != es[i-1].Seq+1 || !bytes.Equal(e.PrevHash, es[i-1].Hash)) {
			return fmt.Errorf("append audit event %d: does not extend event %d", e.Seq, es[i-1].Seq)
		}
	}
	return chunks(es, func(es []AuditEvent) error {
		first, last := es[0], es[len(es)-1]
		res, err := tx.tx.ExecContext(ctx, tx.d.q(`
			UPDATE audit_head SET seq = $1, hash = $2
			WHERE id = 1 AND seq = $3 AND hash = $4`),
			last.Seq, last.Hash, first.Seq-1, nonNil(first.PrevHash))
		if err != nil {
			return fmt.Errorf("append audit event %d: move head: %w", first.Seq, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("append audit event %d: move head: %w", first.Seq, err)
		}
		if n != 1 {
			return tx.headMismatch(ctx, first)
		}
		args := make([]any, 0, len(es)*8)
		for _, e := range es {
			args = append(args, e.Seq, tx.d.timeArg(e.Time), e.Actor, e.Action, e.Object, string(e.Details), nonNil(e.PrevHash), e.Hash)
		}
		_, err = tx.tx.ExecContext(ctx, tx.d.q(`
			INSERT INTO audit_events (seq, logged_at, actor, action, object, details, prev_hash, hash)
			VALUES `+tx.d.placeholders(len(es), 8, 1, nil)),
			args...)
		if err != nil {
			return fmt.Errorf("append audit event %d: %w", first.Seq, tx.d.mapErr(err))
		}
		return nil
	})
}

// headMismatch explains why e does not extend the head.
func (tx *Tx) headMismatch(ctx context.Context, e AuditEvent) error {
	h, err := auditHead(ctx, tx.tx, tx.d, "")
	if err != nil {
		return fmt.Errorf("append audit event %d: head moved: %w", e.Seq, err)
	}
	if h.Seq != e.Seq-1 {
		return fmt.Errorf("append audit event %d: head is at seq %d: %w", e.Seq, h.Seq, ErrConflict)
	}
	return fmt.Errorf("append audit event %d: prev hash %x is not the head's hash %x: %w",
		e.Seq, e.PrevHash, h.Hash, ErrConflict)
}

// ScanAuditEvents calls fn with each event whose seq is greater than
// afterSeq, in ascending seq, reading rows as it goes rather than loading
// the log. It stops at, and returns unchanged, the first error fn returns.
// fn runs while a query is open, which holds one pooled connection.
func (db *DB) ScanAuditEvents(ctx context.Context, afterSeq int64, fn func(AuditEvent) error) error {
	return db.scanAuditEvents(ctx, fmt.Sprintf("scan audit events after %d", afterSeq), `WHERE seq > $1 ORDER BY seq`, []any{afterSeq}, fn)
}

// AuditFilter chooses audit events (ListAuditEvents): every field set must
// hold.
type AuditFilter struct {
	Objects       []string // any of these
	Actor, Action string
	Since, Until  time.Time // logged at or after Since, before Until
	AfterSeq      int64
	Limit         int // at most this many; 1000 if not positive
}

// ListAuditEvents returns the events f chooses, in ascending seq. Objects
// are found by index (audit_events_object); the other fields are read from
// every event after f.AfterSeq.
func (db *DB) ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	where, args := []string{"seq > $1"}, []any{f.AfterSeq}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if len(f.Objects) > 0 {
		in := make([]string, len(f.Objects))
		for i, o := range f.Objects {
			args = append(args, o)
			in[i] = fmt.Sprintf("$%d", len(args))
		}
		where = append(where, "object IN ("+strings.Join(in, ", ")+")")
	}
	for _, c := range []struct{ cond, v string }{{"actor = $%d", f.Actor}, {"action = $%d", f.Action}} {
		if c.v != "" {
			add(c.cond, c.v)
		}
	}
	if !f.Since.IsZero() {
		add("logged_at >= $%d", db.d.timeArg(f.Since))
	}
	if !f.Until.IsZero() {
		add("logged_at < $%d", db.d.timeArg(f.Until))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	args = append(args, limit)
	rest := "WHERE " + strings.Join(where, " AND ") + fmt.Sprintf(" ORDER BY seq LIMIT $%d", len(args))
	var out []AuditEvent
	err := db.scanAuditEvents(ctx, "list audit events", rest, args, func(e AuditEvent) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// scanAuditEvents runs SELECT over audit_events with the rest of a query,
// calling fn with each event as it is read; what names it in errors.
func (db *DB) scanAuditEvents(ctx context.Context, what, rest string, args []any, fn func(AuditEvent) error) error {
	return scanAuditEvents(ctx, db.sql, &db.d, what, rest, args, fn)
}

func scanAuditEvents(ctx context.Context, q querier, d *dialect, what, rest string, args []any, fn func(AuditEvent) error) error {
	rows, err := q.QueryContext(ctx, d.q(`
		SELECT seq, logged_at, actor, action, object, details, prev_hash, hash
		FROM audit_events `+rest), args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var e AuditEvent
		if err := rows.Scan(&e.Seq, timeScan{&e.Time}, &e.Actor, &e.Action, &e.Object,
			&e.Details, &e.PrevHash, &e.Hash); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// PutAuditCheckpoint inserts a checkpoint. It returns ErrConflict when one
// exists for c.Seq.
func (tx *Tx) PutAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error {
	_, err := tx.tx.ExecContext(ctx, tx.d.q(`
		INSERT INTO audit_checkpoints (seq, hash, created_at, key_id, signature)
		VALUES ($1, $2, $3, $4, $5)`),
		c.Seq, nonNil(c.Hash), tx.d.timeArg(c.Time), nonNil(c.KeyID), nonNil(c.Signature))
	if err != nil {
		return fmt.Errorf("put audit checkpoint %d: %w", c.Seq, tx.d.mapErr(err))
	}
	return nil
}

const checkpointColumns = `seq, hash, created_at, key_id, signature`

// AuditCheckpoints returns all checkpoints in ascending seq.
func (db *DB) AuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error) {
	return auditCheckpoints(ctx, db.sql)
}

func auditCheckpoints(ctx context.Context, q querier) ([]AuditCheckpoint, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+checkpointColumns+` FROM audit_checkpoints ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("list audit checkpoints: %w", err)
	}
	defer rows.Close()
	var out []AuditCheckpoint
	for rows.Next() {
		c, err := scanCheckpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("list audit checkpoints: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit checkpoints: %w", err)
	}
	return out, nil
}

// LatestAuditCheckpoint returns the checkpoint with the highest seq, or
// ErrNotFound when there is none.
func (db *DB) LatestAuditCheckpoint(ctx context.Context) (AuditCheckpoint, error) {
	row := db.sql.QueryRowContext(ctx,
		`SELECT `+checkpointColumns+` FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`)
	c, err := scanCheckpoint(row)
	if errors.Is(err, sql.ErrNoRows) {
		return AuditCheckpoint{}, fmt.Errorf("latest audit checkpoint: %w", ErrNotFound)
	}
	if err != nil {
		return AuditCheckpoint{}, fmt.Errorf("latest audit checkpoint: %w", err)
	}
	return c, nil
}

func scanCheckpoint(s scanner) (AuditCheckpoint, error) {
	var c AuditCheckpoint
	err := s.Scan(&c.Seq, &c.Hash, timeScan{&c.Time}, &c.KeyID, &c.Signature)
	return c, err
}

// AuditSnapshot reads the audit log as one committed state: its head, its
// checkpoints and its events as they stood together, whatever commits
// meanwhile (InAuditSnapshot).
type AuditSnapshot struct {
	conn *sql.Conn
	d    *dialect
}

// InAuditSnapshot runs fn with reads of the audit log that all see one
// committed state: on SQLite one deferred read transaction (its snapshot
// taken at its first read), on PostgreSQL a REPEATABLE READ, READ ONLY one.
// Read separately, an event committed between the head and the events
// looks like a row appended outside the log. The snapshot holds SQLite's
// WAL from being checkpointed past it until fn returns; it writes nothing.
func (db *DB) InAuditSnapshot(ctx context.Context, fn func(*AuditSnapshot) error) (err error) {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return fmt.Errorf("audit snapshot: %w", err)
	}
	defer conn.Close()
	begin := "BEGIN" // deferred: a read transaction, never the write lock
	if !db.d.sqlite {
		begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	}
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		return fmt.Errorf("audit snapshot: begin: %w", err)
	}
	defer func() {
		// It only read: ending it either way gives the same. A connection
		// whose transaction could not be ended is discarded, never handed
		// to the pool's next user still inside it.
		if _, rbErr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rbErr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			if err == nil {
				err = fmt.Errorf("audit snapshot: end: %w", rbErr)
			}
		}
	}()
	return fn(&AuditSnapshot{conn: conn, d: &db.d})
}

// Head is DB.AuditHead, in the snapshot.
func (s *AuditSnapshot) Head(ctx context.Context) (AuditHead, error) {
	h, err := auditHead(ctx, s.conn, s.d, "")
	if err != nil {
		return AuditHead{}, fmt.Errorf("read audit head: %w", err)
	}
	return h, nil
}

// Checkpoints is DB.AuditCheckpoints, in the snapshot.
func (s *AuditSnapshot) Checkpoints(ctx context.Context) ([]AuditCheckpoint, error) {
	return auditCheckpoints(ctx, s.conn)
}

// ScanEvents is DB.ScanAuditEvents, in the snapshot.
func (s *AuditSnapshot) ScanEvents(ctx context.Context, afterSeq int64, fn func(AuditEvent) error) error {
	return scanAuditEvents(ctx, s.conn, s.d, fmt.Sprintf("scan audit events after %d", afterSeq), `WHERE seq > $1 ORDER BY seq`, []any{afterSeq}, fn)
}
