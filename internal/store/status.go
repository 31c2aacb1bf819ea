package store

import (
	"context"
	"fmt"
	"time"
)

// What the status tier reads: OCSP responses in the order they were
// stored, for responders that follow the table by its updated_at cursor.

// OCSPCursor is a position in ocsp_responses ordered by (updated_at,
// issuer_id, serial): the migration's index ocsp_responses_updated.
type OCSPCursor struct {
	UpdatedAt time.Time
	IssuerID  string
	Serial    []byte
}

// After is the cursor just past r.
func (r OCSPResponse) After() OCSPCursor {
	return OCSPCursor{UpdatedAt: r.UpdatedAt, IssuerID: r.IssuerID, Serial: r.Serial}
}

// OCSPResponsesAfter returns up to limit responses stored after c, in
// cursor order. Rows are compared as row values, so a page never splits or
// repeats rows that share an updated_at, and both databases seek the index
// to the cursor (the same condition spelt with OR scans every row that
// shares the cursor's updated_at: quadratic over a table written in one
// second).
func (db *DB) OCSPResponsesAfter(ctx context.Context, c OCSPCursor, limit int) ([]OCSPResponse, error) {
	rows, err := db.sql.QueryContext(ctx, db.d.q(`
		SELECT issuer_id, serial, der, this_update, next_update, updated_at FROM ocsp_responses
		WHERE (updated_at, issuer_id, serial) > ($1, $2, $3)
		ORDER BY updated_at, issuer_id, serial
		LIMIT $4`), db.d.timeArg(c.UpdatedAt), c.IssuerID, nonNil(c.Serial), limit)
	if err != nil {
		return nil, fmt.Errorf("OCSP responses after %s: %w", c.UpdatedAt, err)
	}
	defer rows.Close()
	var out []OCSPResponse
	for rows.Next() {
		var r OCSPResponse
		if err := rows.Scan(&r.IssuerID, &r.Serial, &r.DER, timeScan{&r.ThisUpdate}, timeScan{&r.NextUpdate}, timeScan{&r.UpdatedAt}); err != nil {
			return nil, fmt.Errorf("OCSP responses after %s: %w", c.UpdatedAt, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// LatestOCSPUpdate is the newest updated_at of ocsp_responses, or the zero
// time when there is none.
func (db *DB) LatestOCSPUpdate(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := db.sql.QueryRowContext(ctx, `SELECT max(updated_at) FROM ocsp_responses`).Scan(nullTimeScan{&t})
	if err != nil {
		return time.Time{}, fmt.Errorf("latest OCSP update: %w", err)
	}
	return t, nil
}
