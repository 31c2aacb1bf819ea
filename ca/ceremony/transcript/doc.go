// Package transcript is the tamper-evident record of a key ceremony: every
// step (opening, who is present, key generation, certificate and CRL
// signing, closing) is one line of a hash-chained file, and the ceremony's own
// key signs the end of the chain. Auditors read these files for twenty years,
// so this comment is the specification: anyone can re-implement Verify from
// it with a SHA-256, a JSON parser and openssl.
//
// # File format
//
// A transcript is UTF-8 JSON Lines: one JSON object per line, each line ended
// by a single "\n" (no "\r", no blank lines, no byte after the last "\n").
// A line is at most 1 MiB, not counting its "\n". Line n (counting from 1) is
//
//	{"seq":n,"time":"2026-03-01T09:00:00Z","step":"key-generated","data":{...},"prev":"<64 hex>"}
//
// with exactly these five members, in this order, and no others:
//
//   - seq: the decimal integer n (digits only, no leading zero, at most 9).
//     Lines are numbered 1, 2, 3, … without gaps.
//   - time: when the step was recorded, RFC 3339 in UTC with whole seconds
//     ("YYYY-MM-DDTHH:MM:SSZ"), from the writer's injected clock. Times are
//     facts, not ordering: order is given by seq and prev.
//   - step: the kind of step, 1 to 64 characters from [a-z0-9_-], starting
//     with a letter. "signature" is reserved for the final line.
//   - data: a JSON object with the facts of the step. The writer stores it
//     in canonical form (object keys sorted by their UTF-8 bytes at every
//     depth, no whitespace, strings escaped as Go's encoding/json does
//     without HTML escaping, numbers exactly as given) so that the same
//     facts always give the same bytes; Verify does not require canonical
//     data, because the chain covers the line's exact bytes anyway.
//   - prev: lowercase hex SHA-256 of the exact bytes of line n-1, without its
//     "\n"; for line 1, 64 zeros.
//
// No JSON object anywhere in a line may repeat a member name (parsers
// disagree on which copy wins) and nesting is at most 32 deep.
//
// Conventional data members: "label" (an HSM key label), "public_key_sha256"
// (lowercase hex SHA-256 of a key's DER SubjectPublicKeyInfo — must have that
// form wherever it appears, at any depth, because KeyFingerprints returns
// these values), "certificate_sha256" (of the DER certificate),
// "crl_number", and "present" (the names of the people in the room).
//
// # Signature line
//
// The last line has step "signature" and is exactly, byte for byte,
//
//	{"seq":N,"time":"T","step":"signature","data":{"algorithm":"A","public_key":"K","public_key_sha256":"H","signature":"S"},"prev":"P"}
//
// where P chains to line N-1 as above, K is the standard base64 (with
// padding) of the signer's DER SubjectPublicKeyInfo, H is the lowercase hex
// SHA-256 of those DER bytes, and S is the standard base64 of the signature
// over this message (ASCII, each line ended by "\n"):
//
//	sanad-ceremony-transcript-v1
//	seq N
//	time T
//	prev P
//	algorithm A
//	public_key_sha256 H
//
// The message binds everything in the signature line except the signature
// itself, and through P every byte of lines 1 … N-1. A is one of:
//
//	ECDSA-SHA256         ECDSA P-256, SHA-256 of the message, ASN.1 DER signature
//	ECDSA-SHA384         ECDSA P-384, SHA-384 of the message, ASN.1 DER signature
//	RSA-PKCS1v15-SHA256  RSA of at least 2048 bits, RSASSA-PKCS1-v1_5 with SHA-256
//
// and must match the key. An auditor checks it with, for example,
//
//	openssl dgst -sha256 -verify key.pem -signature sig.der message.txt
//
// (-sha384 for ECDSA-SHA384), where key.pem is K in a PEM "PUBLIC KEY"
// block and sig.der is S decoded. Each prev is "openssl dgst -sha256" of the
// previous line without its "\n".
//
// So every byte of the file is fixed except the signature value itself:
// ECDSA signatures are not unique, and anyone can turn a valid one into
// another valid one. To pin a transcript's exact bytes elsewhere (say in the
// audit log), record the SHA-256 of the whole file when it is signed.
//
// There is exactly one signature line, it is the last line, and a transcript
// has at least one step before it. A transcript without one is unsigned: the
// ceremony was aborted, or its signature line was cut off; either way nothing
// in it is attested.
//
// # Trust
//
// A valid signature proves only that whoever holds the embedded key signed
// this content. Callers must also check that the key is the one the ceremony
// was about (Result.SignedBy with the root's public key, or the signer's
// fingerprint among Result.KeyFingerprints); Verify cannot know that.
//
// # What this package must never do
//
// It must never record a PIN, a password, a key share or any private key.
// Append refuses data whose Go value is a private key, any member whose name
// (lowercased, with "_", "-", "." and spaces removed) ends in pin, pins,
// password, passwords, passphrase, passwd, secret, secrets, share, shares,
// privatekey, privatekeys or otp, and any string containing
// "PRIVATE KEY-----". That is a guard against mistakes, not a proof: callers
// must pass only public facts (say "threshold" and "custodians", never the
// shares). It must never overwrite or truncate a transcript: Create refuses
// an existing file, and a Writer only appends, fsyncing every line.
package transcript
