// Package jwsauth makes and checks the signed requests of RA officers and
// certificate holders: a compact JWS (RFC 7515 §7.1) whose payload is an
// Action (what to do, to which enrollment or certificate, a fresh nonce, the
// time, and the endpoint it is for) and whose protected header carries the
// signer's certificate ("x5c", exactly one) and its SHA-256 ("kid").
//
// Sign is the client side (sanad officer, with a key from a PKCS#11 token or
// a file read by LoadSigner). Parse is the server side: it proves that the
// request was signed by the key of the certificate it carries, and that the
// request is well-formed, fresh and meant for this endpoint.
//
// What Parse does not do, and the caller must:
//
//   - Decide whether the certificate is one to trust. Parse verifies the
//     signature with the certificate in the request itself; it checks no
//     chain, validity period, revocation status or role. The RA looks the
//     certificate up in its own store (by Fingerprint), checks that this CA
//     issued it, that it is valid now and not revoked, and that it belongs
//     to an active officer (or, for a holder's revocation, that it is the
//     certificate being revoked).
//   - Refuse replays. Parse is a pure function and cannot know which nonces
//     it has seen. The caller must record (Fingerprint, Nonce) in its
//     database in the same transaction as the action it authorizes, with a
//     unique constraint, and refuse the request if the pair is already
//     there. A record may be purged once its IssuedAt is more than maxSkew
//     in the past, since Parse refuses such a request as stale anyway. The
//     raw compact string is not a replay key: ECDSA signatures are
//     malleable, so one signed request has several valid encodings.
//   - Check that the action suits the endpoint and the signer: Parse accepts
//     every action kind at every audience, and every revocation reason.
//
// What this package must never do: accept an algorithm the certificate's
// key does not dictate (no "none", no HMAC, no key from "jwk" or a URL),
// read a private key file that other users could read, or print key
// material in an error.
package jwsauth
