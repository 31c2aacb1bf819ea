package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Issuer is a key of the PKI held in the HSM, with its certificate: a root,
// an issuing CA, an OCSP signer, the audit key or a TSA.
type Issuer struct {
	ID             string
	Name           string
	Role           string // root | issuing | ocsp-signer | audit | tsa
	CertificateDER []byte
	KeyLabel       string // the HSM key's label
	CreatedAt      time.Time
}

const issuerColumns = `id, name, role, certificate_der, key_label, created_at`

// PutIssuer inserts an issuer. It returns ErrConflict when the ID exists.
func (tx *Tx) PutIssuer(ctx context.Context, is Issuer) error {
	_, err := tx.tx.ExecContext(ctx, tx.d.q(`
		INSERT INTO issuers (`+issuerColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6)`),
		is.ID, is.Name, is.Role, nonNil(is.CertificateDER), is.KeyLabel, tx.d.timeArg(is.CreatedAt))
	if err != nil {
		return fmt.Errorf("put issuer %q: %w", is.ID, tx.d.mapErr(err))
	}
	return nil
}

// Issuer returns the issuer with the ID, or ErrNotFound.
func (db *DB) Issuer(ctx context.Context, id string) (Issuer, error) {
	return issuer(ctx, db.sql, &db.d, id)
}

func issuer(ctx context.Context, q querier, d *dialect, id string) (Issuer, error) {
	row := q.QueryRowContext(ctx, d.q(`SELECT `+issuerColumns+` FROM issuers WHERE id = $1`), id)
	is, err := scanIssuer(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Issuer{}, fmt.Errorf("issuer %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Issuer{}, fmt.Errorf("issuer %q: %w", id, err)
	}
	return is, nil
}

// Issuers returns all issuers, ordered by ID.
func (db *DB) Issuers(ctx context.Context) ([]Issuer, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT `+issuerColumns+` FROM issuers ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list issuers: %w", err)
	}
	defer rows.Close()
	var out []Issuer
	for rows.Next() {
		is, err := scanIssuer(rows)
		if err != nil {
			return nil, fmt.Errorf("list issuers: %w", err)
		}
		out = append(out, is)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list issuers: %w", err)
	}
	return out, nil
}

// RaiseOCSPResignBefore records t as the time before which every OCSP
// answer of issuerID's certificates is signed again (an OCSP signer that
// signed them was revoked and replaced), unless a later time is recorded.
// It reports whether the record changed.
func (tx *Tx) RaiseOCSPResignBefore(ctx context.Context, issuerID string, t time.Time) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, tx.d.q(`
		UPDATE issuers SET ocsp_resign_before = $2
		WHERE id = $1 AND (ocsp_resign_before IS NULL OR ocsp_resign_before < $2)`), issuerID, tx.d.timeArg(t))
	if err != nil {
		return false, fmt.Errorf("issuer %q: OCSP re-sign time: %w", issuerID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if n == 0 {
		if _, err := issuer(ctx, tx.tx, tx.d, issuerID); err != nil {
			return false, err
		}
	}
	return n > 0, nil
}

// OCSPResignBefore is the time RaiseOCSPResignBefore recorded for
// issuerID; zero when none.
func (db *DB) OCSPResignBefore(ctx context.Context, issuerID string) (time.Time, error) {
	var t time.Time
	err := db.sql.QueryRowContext(ctx, db.d.q(`SELECT ocsp_resign_before FROM issuers WHERE id = $1`), issuerID).Scan(nullTimeScan{&t})
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("issuer %q: OCSP re-sign time: %w", issuerID, err)
	}
	return t, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanIssuer(s scanner) (Issuer, error) {
	var is Issuer
	err := s.Scan(&is.ID, &is.Name, &is.Role, &is.CertificateDER, &is.KeyLabel, timeScan{&is.CreatedAt})
	return is, err
}
