package pinshare

import "errors"

// Errors that callers branch on. They are wrapped with context that names the
// share (index and custodian), never its value; test with errors.Is.
var (
	// ErrCorruptShare: a share is damaged or malformed: not strict JSON,
	// an unknown version, a field out of range, or a checksum mismatch.
	ErrCorruptShare = errors.New("pinshare: corrupt share")
	// ErrTooFewShares: fewer distinct shares than the split's threshold.
	ErrTooFewShares = errors.New("pinshare: too few shares")
	// ErrDuplicateShare: the same index, or the same custodian, given twice.
	ErrDuplicateShare = errors.New("pinshare: duplicate share")
	// ErrMixedShares: shares of different splits (set ID, token label,
	// threshold or number of shares differ).
	ErrMixedShares = errors.New("pinshare: shares of different splits")
	// ErrForgedShare: a share whose part does not match the commitments, or
	// shares that disagree on the commitments, or shares that pass those
	// checks but do not combine to a well-formed secret.
	ErrForgedShare = errors.New("pinshare: forged share")
)
