// Package hsm is Sanad's only door to hardware security modules. It speaks
// PKCS#11 (through github.com/miekg/pkcs11) to any module — SoftHSM2 in
// development and tests, a network HSM in production — and offers what the
// rest of Sanad needs and nothing more: loading a module, initializing and
// opening tokens, a bounded pool of logged-in sessions that recovers from
// closed sessions, logouts and stale handles, generating signing key pairs,
// and a crypto.Signer (*Key) for a key found by its label.
//
// No other Sanad package imports PKCS#11; they depend on crypto.Signer and on
// the small API here.
//
// What this package must never do:
//
//   - Let a private key leave the HSM. Keys are generated inside the token as
//     sensitive, never extractable, non-copyable, sign-only objects; there is
//     no code path that wraps, exports or copies a private key, and none may
//     be added. A CA key found on a token (FindProtectedKey) must say the
//     same of itself, or it is not used.
//   - Log, print or serialize a PIN. A PIN lives in the PIN type, whose every
//     textual form (fmt, encoding/json, encoding.TextMarshaler, log/slog) is
//     "[redacted]". A PIN is never put on a command line: tokens are
//     initialized through C_InitToken/C_InitPIN, not softhsm2-util.
//   - Sign with weak parameters: SHA-1 and unhashed input are refused.
//
// PKCS#11 lets a process call C_Initialize once per module, and the login
// state of a token is shared by every session of the process. The package
// therefore keeps one process-wide record per loaded module (see library in
// module.go); everything else is plain values passed in explicitly.
package hsm
