package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The batch writes below do, for many rows, what their one-row forms do for
// one, in a few statements: issuance groups the writes of concurrent
// certificates into one transaction (ca/group.go), and on PostgreSQL every
// statement is a network round trip made while the audit head is locked.
// They fail as a whole; callers that need to know which row failed retry
// the rows one at a time through the one-row forms.

// batchRows bounds the rows of one statement, far below both databases'
// parameter limits (SQLite 32766, PostgreSQL 65535).
const batchRows = 256

// SignedCertificate is the DER to store on an intent.
type SignedCertificate struct {
	IssuerID string
	Serial   []byte
	DER      []byte
	At       time.Time
}

// placeholders returns "($s, $s+1, …), (…)" for rows of cols parameters,
// numbered from start. casts, when not nil, gives each column of the first
// row a PostgreSQL type: a VALUES list that is not an INSERT's has no
// column types of its own. SQLite needs none.
func (d *dialect) placeholders(rows, cols, start int, casts []string) string {
	var b strings.Builder
	n := start
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			if r == 0 && casts != nil && !d.sqlite {
				b.WriteString("::")
				b.WriteString(casts[c])
			}
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// chunks calls fn with consecutive slices of at most batchRows rows.
func chunks[T any](rows []T, fn func([]T) error) error {
	for len(rows) > 0 {
		n := min(len(rows), batchRows)
		if err := fn(rows[:n]); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// InsertCertificateIntents is InsertCertificateIntent for many intents.
func (tx *Tx) InsertCertificateIntents(ctx context.Context, cs []Certificate) error {
	if len(cs) == 1 {
		return tx.InsertCertificateIntent(ctx, cs[0])
	}
	return chunks(cs, func(cs []Certificate) error {
		args := make([]any, 0, len(cs)*12)
		for _, c := range cs {
			args = append(args, c.IssuerID, nonNil(c.Serial), nullString(c.SubjectID), nullString(c.EnrollmentID), c.Profile,
				tx.d.timeArg(c.NotBefore), tx.d.timeArg(c.NotAfter), nonNil(c.TBS), StatusGood,
				tx.d.timeArg(c.CreatedAt), tx.d.timeArg(c.CreatedAt), nullBytes(c.SPKISHA256))
		}
		_, err := tx.tx.ExecContext(ctx, tx.d.q(`
			INSERT INTO certificates (issuer_id, serial, subject_id, enrollment_id, profile, not_before, not_after,
				tbs_der, status, created_at, updated_at, spki_sha256)
			VALUES `+tx.d.placeholders(len(cs), 12, 1, nil)),
			args...)
		if err != nil {
			return fmt.Errorf("%d certificate intents: %w", len(cs), tx.d.mapErr(err))
		}
		return nil
	})
}

// SetCertificateDERs is SetCertificateDER for many certificates. Unless
// every intent was completed, it fails with ErrConflict and the caller must
// roll back.
func (tx *Tx) SetCertificateDERs(ctx context.Context, cs []SignedCertificate) error {
	if len(cs) == 1 {
		return tx.SetCertificateDER(ctx, cs[0].IssuerID, cs[0].Serial, cs[0].DER, cs[0].At)
	}
	return chunks(cs, func(cs []SignedCertificate) error {
		args := make([]any, 0, len(cs)*4)
		for _, c := range cs {
			args = append(args, c.IssuerID, nonNil(c.Serial), nonNil(c.DER), tx.d.timeArg(c.At))
		}
		res, err := tx.tx.ExecContext(ctx, tx.d.setCertificateDERsSQL(len(cs)), args...)
		if err != nil {
			return fmt.Errorf("store %d certificates: %w", len(cs), tx.d.mapErr(err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("store %d certificates: %w", len(cs), err)
		}
		if n != int64(len(cs)) {
			return fmt.Errorf("store %d certificates: only %d were unsigned intents: %w", len(cs), n, ErrConflict)
		}
		return nil
	})
}

// setCertificateDERsSQL is setCertificateDERSQL for n intents, in d's
// dialect: each row is found by key (TestKeyedWrites), as there.
func (d *dialect) setCertificateDERsSQL(n int) string {
	return d.q(`
		WITH v (issuer_id, serial, der, updated_at) AS (VALUES ` +
		d.placeholders(n, 4, 1, []string{"text", "bytea", "bytea", "timestamptz"}) + `)
		UPDATE certificates SET der = v.der, updated_at = v.updated_at FROM v
		WHERE certificates.issuer_id = v.issuer_id AND certificates.serial = v.serial
			AND certificates.der IS NULL AND certificates.status IS NOT DISTINCT FROM 'good'`)
}

// PutOCSPResponses is PutOCSPResponse for many responses, of distinct
// certificates.
func (tx *Tx) PutOCSPResponses(ctx context.Context, rs []OCSPResponse) error {
	if len(rs) == 1 {
		return tx.PutOCSPResponse(ctx, rs[0])
	}
	return chunks(rs, func(rs []OCSPResponse) error {
		args := make([]any, 0, len(rs)*6)
		for _, r := range rs {
			args = append(args, r.IssuerID, nonNil(r.Serial), nonNil(r.DER), tx.d.timeArg(r.ThisUpdate),
				tx.d.timeArg(r.NextUpdate), tx.d.timeArg(r.UpdatedAt))
		}
		_, err := tx.tx.ExecContext(ctx, tx.d.q(`
			INSERT INTO ocsp_responses (issuer_id, serial, der, this_update, next_update, updated_at)
			VALUES `+tx.d.placeholders(len(rs), 6, 1, nil)+`
			ON CONFLICT (issuer_id, serial) DO UPDATE SET
				der = excluded.der, this_update = excluded.this_update,
				next_update = excluded.next_update, updated_at = `+tx.d.ocspUpdatedAt()),
			args...)
		if err != nil {
			return fmt.Errorf("put %d OCSP responses: %w", len(rs), tx.d.mapErr(err))
		}
		return nil
	})
}
