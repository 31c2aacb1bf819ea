// Package store is Sanad's persistence: one Go API over SQLite (embedded, the
// default for development and small deployments) and PostgreSQL
// (production), with the whole schema of DESIGN.md §3 in embedded
// migrations, one directory per dialect.
//
// There is a single implementation over database/sql; a small dialect value
// holds what differs between the two databases (placeholders, time encoding,
// row locking, how a unique violation is reported). Callers never see which
// backend they run on: the test suite runs unchanged against both.
//
// What the store guarantees:
//   - Writes that must be atomic go through DB.InTx; a Tx method is only
//     usable inside the function passed to it.
//   - Times are stored and returned in UTC, truncated to the microsecond.
//   - Bytes (DER, hashes, signatures, JSON details) are stored and returned
//     verbatim.
//   - Callers branch on ErrNotFound and ErrConflict with errors.Is.
//
// What it must never do: hold business rules. It knows nothing of PKI
// (profiles, serial generation, revocation policy, enrollment transitions)
// and does no audit hashing: internal/audit computes the hash chain and the
// store persists it byte for byte. Constraints in the schema only keep data
// well-formed (keys, enums, canonical serials). The store imports no other
// Sanad package.
package store
