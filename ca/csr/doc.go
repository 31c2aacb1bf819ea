// Package csr reads a PKCS#10 certificate signing request (RFC 2986) from an
// applicant and decides whether its public key may be certified.
//
// Everything in a CSR is hostile input. Parse accepts exactly one request —
// raw DER or a single PEM block — of at most MaxSize bytes, checks the
// structure with its own parser before handing it to crypto/x509, refuses
// keys that no policy could ever certify (weak, malformed, or factorable
// RSA moduli; curves other than P-256, P-384 and P-521; explicit curve
// parameters; points off the curve; EC private keys so small, or so close
// to the group order, that anyone can compute them) and verifies the request's signature as
// proof of possession of the private key. Check then applies a Policy: the
// key types a profile allows and the keys that must never be certified, such
// as the CA's own. Every refusal is a *KeyError whose Code is stable, so the
// HTTP layer can map it to a problem type in one table.
//
// What this package must never do: copy anything from the CSR into a
// certificate except the public key. The requested subject, subject
// alternative names and extensions are the profile's business; they are
// reported in Request for information only and are otherwise ignored here.
// This package never signs anything, never logs and holds no state of its
// own: a caller may give Check a Proofs, which remembers the requests whose
// signature verified.
package csr
