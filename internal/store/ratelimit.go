package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

// Bucket is a token bucket: Burst tokens at most, Rate tokens regained per
// second.
type Bucket struct {
	Rate, Burst float64
}

// TakeToken spends one token of the bucket named key at now, or says how
// long until one is available. Buckets are rows of rate_limits, so every
// node over the database spends from the same one: N nodes allow what one
// does. A bucket never seen starts full; a refusal changes nothing in it
// (its state at now follows from the row as it is), though the upsert
// that locks the row writes a new version of it.
//
// The row is created or locked by one statement (an upsert that changes
// nothing, RETURNING what is there), so two nodes taking the first tokens
// of a new key at once both count, and a prune running meanwhile cannot
// delete the row between its creation and its read.
func (db *DB) TakeToken(ctx context.Context, key []byte, b Bucket, now time.Time) (ok bool, wait time.Duration, err error) {
	if err := checkBucket(key, b); err != nil {
		return false, 0, err
	}
	err = db.InTx(ctx, func(tx *Tx) error {
		ok, wait, err = tx.TakeToken(ctx, key, b, now)
		return err
	})
	if err != nil {
		return false, 0, fmt.Errorf("rate limit: %w", err)
	}
	return ok, wait, nil
}

func checkBucket(key []byte, b Bucket) error {
	if len(key) == 0 || len(key) > 64 || b.Rate <= 0 || b.Burst < 1 {
		return fmt.Errorf("rate limit: key of %d bytes, rate %g, burst %g", len(key), b.Rate, b.Burst)
	}
	return nil
}

// TakeToken is DB.TakeToken inside tx: the token is spent if tx commits.
func (tx *Tx) TakeToken(ctx context.Context, key []byte, b Bucket, now time.Time) (ok bool, wait time.Duration, err error) {
	if err := checkBucket(key, b); err != nil {
		return false, 0, err
	}
	now = now.UTC().Truncate(time.Microsecond)
	var (
		tokens float64
		at     time.Time
	)
	if err := tx.tx.QueryRowContext(ctx, tx.d.q(`INSERT INTO rate_limits (bucket, tokens, at, full_at) VALUES ($1, $2, $3, $3)
		ON CONFLICT (bucket) DO UPDATE SET bucket = excluded.bucket
		RETURNING tokens, at`), key, b.Burst, tx.d.timeArg(now)).Scan(&tokens, timeScan{&at}); err != nil {
		return false, 0, err
	}
	// A clock behind the row's (another node's) regains nothing, and
	// does not move the row's time back, which would let a node ahead
	// regain the difference.
	now = maxTime(now, at)
	if tokens = refilled(tokens, at, now, b); tokens < 1 {
		return false, until(1, tokens, b), nil
	}
	err = tx.setBucket(ctx, key, b, tokens-1, now)
	return err == nil, 0, err
}

// TokenWait says how long until the bucket named key has a token at now
// (0: it has one), spending nothing and writing nothing: for a caller that
// must refuse before doing what it would charge, and charges (TakeToken)
// only once it knows it should.
//
// On PostgreSQL the row is locked until tx ends, so that another node's
// transaction reading the same bucket waits for this one's TakeToken:
// two checks cannot both take the last token. (SQLite's write
// transactions run one at a time.)
func (tx *Tx) TokenWait(ctx context.Context, key []byte, b Bucket, now time.Time) (time.Duration, error) {
	return tokenWait(ctx, tx.tx, tx.d, tx.d.lockSuffix, key, b, now, 1)
}

// TokenWait is Tx.TokenWait outside a transaction, locking nothing: a
// forecast that may be out of date by the time the caller acts on it,
// which a transaction's own TokenWait or TakeToken then decides.
func (db *DB) TokenWait(ctx context.Context, key []byte, b Bucket, now time.Time) (time.Duration, error) {
	return db.TokensWait(ctx, key, b, now, 1)
}

// TokensWait is TokenWait for n tokens: how long until the bucket holds n
// (never, for n past its burst: then the time one token takes), spending
// nothing, locking nothing. A node that counts its own requests between
// their forecast and their TakeToken asks, for each, one token more for
// every one before it.
func (db *DB) TokensWait(ctx context.Context, key []byte, b Bucket, now time.Time, n int) (time.Duration, error) {
	return tokenWait(ctx, db.sql, &db.d, "", key, b, now, n)
}

func tokenWait(ctx context.Context, q querier, d *dialect, lockSuffix string, key []byte, b Bucket, now time.Time, n int) (time.Duration, error) {
	if err := checkBucket(key, b); err != nil {
		return 0, err
	}
	now = now.UTC().Truncate(time.Microsecond)
	tokens, at, found, err := readBucket(ctx, q, d, lockSuffix, key)
	if err != nil {
		return 0, err
	}
	if !found {
		tokens, at = b.Burst, now // never seen: full
	}
	n = max(n, 1)
	if tokens = refilled(tokens, at, now, b); tokens >= float64(n) {
		return 0, nil
	}
	if float64(n) > b.Burst && tokens >= b.Burst { // never: one token's time
		return until(1, 0, b), nil
	}
	return until(math.Min(float64(n), b.Burst), tokens, b), nil
}

// lockBucket reads the bucket's row, locking it until tx ends on
// PostgreSQL (SQLite's write transactions run one at a time).
func (tx *Tx) lockBucket(ctx context.Context, key []byte) (tokens float64, at time.Time, found bool, err error) {
	return readBucket(ctx, tx.tx, tx.d, tx.d.lockSuffix, key)
}

// readBucket reads the bucket's row through q, with lockSuffix after the
// SELECT.
func readBucket(ctx context.Context, q querier, d *dialect, lockSuffix string, key []byte) (tokens float64, at time.Time, found bool, err error) {
	err = q.QueryRowContext(ctx, d.q(`SELECT tokens, at FROM rate_limits WHERE bucket = $1`+lockSuffix), key).Scan(&tokens, timeScan{&at})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, false, nil
	}
	if err != nil {
		return 0, time.Time{}, false, fmt.Errorf("rate limit: %w", err)
	}
	return tokens, at, true, nil
}

// setBucket writes the bucket's tokens at now, and when it will be full.
func (tx *Tx) setBucket(ctx context.Context, key []byte, b Bucket, tokens float64, now time.Time) error {
	fullAt := now.Add(time.Duration((b.Burst - tokens) / b.Rate * float64(time.Second)))
	_, err := tx.tx.ExecContext(ctx, tx.d.q(`UPDATE rate_limits SET tokens = $2, at = $3, full_at = $4 WHERE bucket = $1`),
		key, tokens, tx.d.timeArg(now), tx.d.timeArg(fullAt))
	return err
}

// refilled is what a bucket whose row held tokens at at holds at now: a
// clock behind the row's regains nothing.
func refilled(tokens float64, at, now time.Time, b Bucket) float64 {
	return math.Min(b.Burst, tokens+maxTime(now, at).Sub(at).Seconds()*b.Rate)
}

// until is how long a bucket holding tokens (fewer than want, at most its
// burst) takes to hold want.
func until(want, tokens float64, b Bucket) time.Duration {
	return time.Duration((want - tokens) / b.Rate * float64(time.Second))
}

// PruneRateLimits deletes the buckets full at before (TakeToken would
// start them afresh, full) and returns how many. Callers give a time
// behind their clock by more than the nodes' clocks may differ, so that a
// node ahead does not delete a bucket another node still sees refilling.
func (db *DB) PruneRateLimits(ctx context.Context, before time.Time) (int64, error) {
	unlock, err := db.lockWriter(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune rate limits: %w", err)
	}
	defer unlock()
	res, err := db.write.ExecContext(ctx, db.d.q(`DELETE FROM rate_limits WHERE full_at <= $1`), db.d.timeArg(before))
	if err != nil {
		return 0, fmt.Errorf("prune rate limits: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, errors.Join(errors.New("prune rate limits"), err)
	}
	return n, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
