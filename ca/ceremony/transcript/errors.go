package transcript

import "errors"

// Errors that callers branch on. They are wrapped with context (Verify's name
// the line number); test with errors.Is.
var (
	// ErrBroken: the file is not a well-formed chain — a line does not parse
	// strictly, seq is not contiguous, prev does not match the line before,
	// or something follows the signature line.
	ErrBroken = errors.New("transcript: broken")
	// ErrUnsigned: the chain is intact but has no signature line (the
	// ceremony was aborted, or its signature line was cut off), or the file
	// is empty. Nothing in it is attested.
	ErrUnsigned = errors.New("transcript: unsigned")
	// ErrBadSignature: the signature line is malformed, its key or algorithm
	// is not allowed, or its signature does not verify with the embedded key.
	ErrBadSignature = errors.New("transcript: bad signature")
	// ErrWrongSigner: SignedBy was given a key other than the signer's.
	ErrWrongSigner = errors.New("transcript: signed by another key")

	// ErrClosed: Append or Sign after Sign or Close.
	ErrClosed = errors.New("transcript: closed")
	// ErrWriteFailed: an earlier write or fsync failed, so the file may end
	// in a partial line; the Writer refuses to go on.
	ErrWriteFailed = errors.New("transcript: earlier write failed")
	// ErrInvalidStep: the step name is not allowed (see the package doc) or
	// is the reserved "signature".
	ErrInvalidStep = errors.New("transcript: invalid step")
	// ErrInvalidData: data is not a JSON object, is too large or too deep,
	// repeats a member name, or has a malformed public_key_sha256.
	ErrInvalidData = errors.New("transcript: invalid data")
	// ErrSecret: data looks like it holds a PIN, password, share or private
	// key; nothing was written.
	ErrSecret = errors.New("transcript: data holds a secret")
	// ErrNoSteps: Sign on a transcript with no steps.
	ErrNoSteps = errors.New("transcript: no steps to sign")
	// ErrUnsupportedKey: the signer's key is not ECDSA P-256, ECDSA P-384
	// or RSA of at least 2048 bits.
	ErrUnsupportedKey = errors.New("transcript: unsupported signer key")
)
