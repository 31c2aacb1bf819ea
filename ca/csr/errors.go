package csr

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on with errors.Is. Every *KeyError matches
// exactly one of them, according to its Code.
var (
	// ErrMalformed: the input is not exactly one well-formed CSR
	// (ACME "badCSR").
	ErrMalformed = errors.New("csr: malformed request")
	// ErrBadSignature: the request's signature does not prove possession of
	// the private key (ACME "badCSR").
	ErrBadSignature = errors.New("csr: signature does not verify")
	// ErrForbiddenKey: the request is well formed and signed, but its public
	// key may not be certified (ACME "badPublicKey").
	ErrForbiddenKey = errors.New("csr: public key may not be certified")
	// ErrPolicy: the Policy given to Check is itself invalid. This is a
	// configuration error, never the applicant's fault.
	ErrPolicy = errors.New("csr: invalid policy")
)

// Codes of a KeyError. They are stable: the HTTP layer maps them to problem
// types and applicants may see them.
const (
	CodeMalformed          = "malformed"
	CodeTooLarge           = "too-large"
	CodeTrailingData       = "trailing-data"
	CodeMultipleBlocks     = "multiple-blocks"
	CodeBadSignature       = "bad-signature"
	CodeSignatureAlgorithm = "signature-algorithm"
	CodeKeyTypeNotAllowed  = "key-type-not-allowed"
	CodeRSATooSmall        = "rsa-too-small"
	CodeRSATooLarge        = "rsa-too-large"
	CodeRSAModulus         = "rsa-modulus"
	CodeRSAExponent        = "rsa-exponent"
	CodeRSAROCA            = "rsa-roca"
	CodeRSAFermat          = "rsa-fermat"
	CodeECCurve            = "ec-curve"
	CodeECExplicitParams   = "ec-explicit-params"
	CodeECPoint            = "ec-point"
	CodeECSmallKey         = "ec-small-private-key"
	CodeKeyIsCAKey         = "key-is-ca-key"
)

// codeClass is the one table from Code to the sentinel it matches.
var codeClass = map[string]error{
	CodeMalformed:          ErrMalformed,
	CodeTooLarge:           ErrMalformed,
	CodeTrailingData:       ErrMalformed,
	CodeMultipleBlocks:     ErrMalformed,
	CodeBadSignature:       ErrBadSignature,
	CodeSignatureAlgorithm: ErrBadSignature,
	CodeKeyTypeNotAllowed:  ErrForbiddenKey,
	CodeRSATooSmall:        ErrForbiddenKey,
	CodeRSATooLarge:        ErrForbiddenKey,
	CodeRSAModulus:         ErrForbiddenKey,
	CodeRSAExponent:        ErrForbiddenKey,
	CodeRSAROCA:            ErrForbiddenKey,
	CodeRSAFermat:          ErrForbiddenKey,
	CodeECCurve:            ErrForbiddenKey,
	CodeECExplicitParams:   ErrForbiddenKey,
	CodeECPoint:            ErrForbiddenKey,
	CodeECSmallKey:         ErrForbiddenKey,
	CodeKeyIsCAKey:         ErrForbiddenKey,
}

// KeyError is every refusal of a CSR or of its key.
type KeyError struct {
	// Code is one of the Code* constants.
	Code string
	// Reason says precisely what is wrong, for the applicant and the audit
	// record. It never contains key material beyond sizes and parameters.
	Reason string
	// Err is the underlying cause, if any (for instance crypto/x509's error).
	Err error
}

func (e *KeyError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("csr: %s: %s: %v", e.Code, e.Reason, e.Err)
	}
	return fmt.Sprintf("csr: %s: %s", e.Code, e.Reason)
}

// Is reports whether target is the sentinel for e's Code.
func (e *KeyError) Is(target error) bool {
	class, ok := codeClass[e.Code]
	return ok && class == target
}

func (e *KeyError) Unwrap() error { return e.Err }

func refuse(code, format string, args ...any) *KeyError {
	return &KeyError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

func refuseWrap(code string, err error, format string, args ...any) *KeyError {
	return &KeyError{Code: code, Reason: fmt.Sprintf(format, args...), Err: err}
}
