// Package audit is Sanad's tamper-evident event log: every state change
// (enrollment, approval, issuance, revocation, ceremony, login failure, key
// generation) is appended here in the same database transaction as the change
// itself, so a change without its event, or an event without its change,
// cannot be committed.
//
// # Hash chain
//
// Events are numbered 1, 2, 3, … without gaps. Each event carries prev_hash,
// the hash of the event before it (32 zero bytes for event 1), and hash,
// SHA-256 over this canonical encoding:
//
//	"sanad-audit-event-v1\n"
//	uint64 seq (big-endian)
//	field(time)       RFC 3339 UTC with exactly six fractional digits
//	field(actor)
//	field(action)
//	field(object)
//	field(details)    the stored JSON text, byte for byte
//	field(prev_hash)  32 raw bytes
//
// where field(x) is a uint32 big-endian length followed by the bytes of x.
// Anyone can recompute it from the rows with a few lines of code in any
// language; the encoding is versioned by its first line.
//
// # Checkpoints
//
// Periodically the Checkpointer signs the head of the log with the HSM audit
// key as a small signed note:
//
//	<origin>
//	<seq>
//	<base64 hash of event seq>
//	<RFC 3339 time>
//
// The signature (ECDSA as ASN.1 DER, or RSA PKCS#1 v1.5, over SHA-256 of the
// note) and the SHA-256 of the key's SubjectPublicKeyInfo are stored beside
// it. A database administrator can rewrite rows and recompute every hash, but
// cannot sign a checkpoint: whatever a checkpoint covers is fixed, as long as
// the checkpoint itself is kept. The database's own checkpoints can be
// deleted with the rows they cover, so:
//
//   - the Checkpointer signs only a log that extends the latest checkpoint
//     in the database and the last one signed with the key, which it keeps
//     on the HSM token beside the key (Remember: a private data object,
//     out of the database writers' reach), so a restart or another node
//     knows it too (ErrNotExtended): the HSM never attests to a rewritten
//     history, and the node is not ready (Checkpointer.Extends, a /readyz
//     check) until the log extends them again. After a restore from a
//     backup older than that checkpoint, an operator records the loss in
//     the log (Restored, `sanad audit restored`) and signing resumes;
//   - checkpoints are meant to be kept outside the database too, as signed
//     notes (SignedNote, `sanad audit checkpoint`), and Verify checks that
//     the log still holds what each of those covers.
//
// # Verification
//
// Verify walks the chain in order and reports the first sequence number that
// is not what the log committed to: a gap (a deleted row), a row whose own
// hash does not match its content (an edited, inserted or moved row), a row
// whose predecessor is not the one it committed to (the predecessor was
// rewritten with a recomputed hash), a head that disagrees with the last row
// (rows deleted or appended at the end), or a checkpoint whose signature or
// hash does not match. Events after the last checkpoint are reported as
// unattested: the chain protects them only against a careless edit.
//
// This package must never write outside a caller's transaction, never delete
// or update an event, and never put a secret into an event's details.
package audit
