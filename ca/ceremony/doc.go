// Package ceremony runs CA key ceremonies from YAML scripts: the national
// root, issuing CAs, delegated OCSP responders, offline root CRLs and the
// audit checkpoint key, on any PKCS#11 HSM.
//
// A key whose certifying CA is on another HSM (the issuing CA's, made on
// the online CA's token while the root's stays offline) is made at a key
// ceremony, which writes a certificate request signed by it and prints its
// SHA-256 for the witnesses; the certifying ceremony certifies the
// request's key only if its script names that SHA-256, and with the key
// ceremony's transcript, signed by that key, recording that it generated
// the key, issued the request, and what the token said of the key
// (readRequest).
//
// A script is checked completely before anything is touched (Check: every
// problem at once, with its line); Run refuses an existing key label, output
// file or transcript. An existing key a script names (key.existing) and the
// issuer's key are used only if the token says they never left it and may
// only sign (hsm.FindProtectedKey), checked before the transcript begins;
// the transcript records what the token says of every key used. Certificate contents come from policies/profiles; the
// script gives subject, validity, key type and the per-CA extensions (path
// length, name constraints, policy OIDs, CRL DP, AIA). Each certificate and
// CRL is linted (zlint) signed by a throw-away key before the HSM signs it,
// and again after.
//
// Every step is appended to a hash-chained transcript (package transcript)
// whose last line is signed by the ceremony's key: the key it created or
// used on its token, or else (a CRL, a key certified from its request) the
// issuer that signed. The token PIN can be split M-of-N
// among custodians (package pinshare); Run combines the shares in memory
// and records who was present, never the PIN.
//
// This package must never export a private key, write a PIN or share to any
// file or log, or overwrite an output.
package ceremony
