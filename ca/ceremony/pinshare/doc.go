// Package pinshare splits an HSM token PIN into M-of-N custodian shares and
// combines them again, so that a key ceremony needs M people present to
// unlock the token (multi-person control), and no M-1 of them can.
//
// Split turns an hsm.PIN into N Share values, one per named custodian; any M
// of them give the PIN back through Combine. Each share is a small JSON file
// (MarshalFile, WriteShareFile) that its custodian keeps; ParseShare and
// ReadShareFile read it back strictly.
//
// # What is shared
//
// The secret given to Shamir's scheme (github.com/hashicorp/vault/shamir,
// over GF(256), one polynomial per byte) is not the bare PIN but a payload:
//
//	[length of PIN: 1 byte][PIN][zero bytes up to 32, 64, 128 or 256][32 random bytes]
//
// The padding hides the PIN's length within its bucket (a share of a 10-byte
// PIN looks like a share of a 31-byte one). The random tail makes the
// commitments below useless for guessing (see "Integrity").
//
// # Integrity
//
// Every share file carries two checks:
//
//   - checksum: SHA-256 over all its other fields in a fixed order. It
//     catches a damaged or mistyped file; it is not a defence against a
//     custodian who edits the file on purpose, who can recompute it.
//   - commitments: for every share of the set, in index order, SHA-256 of
//     that share's Shamir part bound to the set, token, custodian, index and
//     threshold. Combine checks each given share against the commitments held
//     by the other custodians, so one custodian who swaps or forges a share
//     is caught and named, and shares that disagree about the list are
//     refused.
//
// Nothing in a share allows offline guessing of the PIN: there is no hash of
// the PIN, and a coalition of M-1 custodians who guesses the PIN still cannot
// compute another share's part to test against its commitment, because each
// part also depends on the 32 random payload bytes, which are as secret as
// the PIN. After combining, Combine checks the payload's structure (length
// byte, zero padding) so that shares which pass every other check but do not
// come from one honest split (say, all of them edited to claim a lower
// threshold) are refused instead of yielding a wrong PIN.
//
// # One-of-one
//
// For the development quick start Split also accepts one custodian with
// threshold 1. That "split" only wraps the PIN: the single share's part is
// the payload followed by the x-coordinate 1 (a constant polynomial), so the
// share file holds the PIN in the clear, base64-encoded. It is written 0600
// like every share, and ReadShareFile refuses a one-of-one share file that
// group or others can read, as hsm.PINFromFile does for a PIN file.
//
// # What this package must never do
//
//   - Log, print or put into an error a PIN or a share's part. Errors name
//     shares by index and custodian only; Share formats itself (fmt,
//     encoding/json, log/slog) with its value redacted, and only MarshalFile
//     and WriteShareFile write the value. The Value field is exported because
//     it is the file format: reflection-based printing of a Share held in an
//     unexported struct field, or %p, bypasses the redaction, so do not embed
//     shares in structs that get printed.
//   - Store anything that allows offline guessing of the PIN, such as a hash
//     of it.
//   - Return a PIN from fewer shares than the threshold, from shares of
//     different splits, or from a share that does not match the other
//     shares' commitments: Combine refuses each with its own sentinel error.
//   - Overwrite a share file.
//
// The x-coordinates of the parts are chosen by the vault shamir package
// (with math/rand); they are public anyway. The polynomial coefficients, the
// payload's random tail and the set ID come from crypto/rand.
package pinshare
