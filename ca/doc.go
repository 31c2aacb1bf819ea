// Package ca is the certificate authority: it turns an approved request into a
// certificate signed in the HSM, and keeps the status of every certificate it
// ever signed answerable.
//
// Issuance will follow DESIGN.md §5: profile → template → zlint with a
// throw-away key → intent row → HSM signature → store → pre-signed OCSP →
// audit event. Nothing lives here yet; issue 5 builds it on the hsm, store and
// audit packages.
//
// The CA never talks to the public and never holds key material: it asks the
// HSM to sign.
package ca
