package hsm

import "errors"

// Errors that callers branch on. They are wrapped with context; test with
// errors.Is.
var (
	// ErrKeyExists: GenerateKey refused because an object with the same label
	// or CKA_ID is already on the token (keys are never overwritten).
	ErrKeyExists = errors.New("hsm: key exists")
	// ErrKeyNotFound: no private key with that label on the token.
	ErrKeyNotFound = errors.New("hsm: key not found")
	// ErrTokenNotFound: no initialized token with that label in the module.
	ErrTokenNotFound = errors.New("hsm: token not found")
	// ErrTokenExists: InitToken refused because a token with that label exists.
	ErrTokenExists = errors.New("hsm: token exists")
	// ErrPINIncorrect: the token rejected the PIN (CKR_PIN_INCORRECT).
	ErrPINIncorrect = errors.New("hsm: PIN incorrect")
	// ErrPINLength: the PIN's length is outside what the token says it
	// takes (ulMinPinLen..ulMaxPinLen); it was not tried.
	ErrPINLength = errors.New("hsm: PIN length outside the token's bounds")
	// ErrTokenChanged: the slot of an open token now holds another token
	// (another label or serial number); the PIN was not given to it.
	ErrTokenChanged = errors.New("hsm: another token is in the slot")
	// ErrNoSession: every session of the token's pool stayed busy for the
	// whole TokenConfig.SessionWait.
	ErrNoSession = errors.New("hsm: no free session")
	// ErrClosed: the Module or Token was closed.
	ErrClosed = errors.New("hsm: closed")
)
