// Package ca is the certificate authority: it turns an approved request into
// a certificate signed in the HSM, and keeps the status of every certificate
// it ever signed answerable.
//
// # Issuance order, and why
//
// Issue runs profile → template (subject only from RA-verified attributes,
// serial: the time, then 120 random bits) → zlint on a copy with a
// throw-away signature → intent row (serial, linted TBS) and audit event,
// committed → HSM signature → the signed TBS compared byte for byte with the
// linted one → certificate, pre-signed OCSP "good" response and audit event,
// committed.
//
// The intent is committed before the HSM signs, so no certificate can exist
// that the store does not know about: if the intent or its audit event
// cannot be written, nothing is signed. A crash after the signature leaves
// an intent without a certificate; such a certificate may exist (the HSM
// signed, the reply may even have left) but was never recorded; so does an
// issuance that fails in the process after its intent (an HSM error, a
// signature that does not verify, a failed commit). Recover therefore
// revokes every such serial with reason cessationOfOperation and signs a
// revoked OCSP response for it, so it can never be reported good. It runs
// at start-up before serving and at each OCSP scan of the Publisher, for
// intents older than a grace (an issuance may still be in flight); the
// store refuses to complete an intent recovery revoked. A crash after the
// final commit loses only the reply: the certificate is recorded, good,
// and its OCSP answer exists.
//
// The intent may commit in a transaction of the caller's (Prepare, then
// Intent.Record, then Issue with Request.Recorded): the RA records it with
// the proof that approves an enrollment of a profile without officers, on
// SQLite (ra.Deps.IntentWithProof), which saves the enrollment a commit to
// wait for. The order and the recovery are the same: Issue reads the
// intent back, committed, before the HSM signs.
//
// No certificate is signed unless its OCSP answer can be: the delegated
// responder's certificate must be valid for the whole of a response signed
// now (ocspsign.ErrResponderValidity), which CA.Ready reports. A
// revocation, or a recovery, is never refused for it: the issuing CA then
// signs the revoked answer itself (ocspsign.IssuerAsResponder), and the
// Publisher's refresh keeps the revoked answers fresh that way until a
// signer can sign again.
//
// # Keeping status fresh
//
// Publisher (publish.go) keeps what relying parties read current: the full
// CRL is rebuilt after revocations and recoveries (throttled, so a burst is
// one or two builds) and republished at least daily by default; every OCSP
// response is re-signed at its refresh point (ocspsign.RefreshAge), outside
// any transaction, and stored only if the certificate is still as it was
// read and the stored response is older, so a refresh can never replace a
// revocation's answer.
//
// # Status after expiry
//
// A signature made with a certificate is checked for years after the
// certificate expires, and the question is then whether it was revoked
// when the signature was made. So the status of a certificate stays
// answerable after it expires: its OCSP response keeps being re-signed,
// and one signed after the expiry carries archiveCutoff (RFC 6960 §4.4.4)
// set to the issuing CA certificate's notBefore, as ETSI EN 319 411-2
// (CSS-6.3.10-08) asks: the responder says it holds the status of
// everything the CA issued. A certificate revoked after it expired (a key
// compromise found later) answers revoked with its time and reason, signed
// at once; a relying party or a CDN may keep a "good" it cached for up to
// 4 days after its thisUpdate, as for a live certificate (the status
// tier's max-age stops there, before the 10-day response's nextUpdate),
// unless the CDN is purged on revocation. The
// CRL keeps to RFC 5280: an entry leaves it one CRL after its certificate
// expired, so the CRL stays the size of the live revocations and OCSP is
// the source for expired certificates.
//
// This lasts as long as the issuing CA can sign: an OCSP signer is
// certified by its issuing CA, and a relying party refuses a responder
// whose chain has expired, so the answers for an issuing CA's certificates
// end with that CA's own certificate (an issuing CA outlives the
// certificates it issued by their validity at least: IssuanceEnds). What
// remains after is the CA's archive and its last CRL.
//
// The cost grows with the CA's history: one HSM signature per expired
// certificate per refresh. Their responses last MaxValidity (10 days:
// their status changes only by a late revocation, which re-signs at once)
// and are re-signed every 4 days (ocspsign.Signer.ExpiredValidity), half
// as often as the live ones' at the default validity. At the sizing
// DESIGN.md writes down (20 to 250 million subjects, two certificates
// each, renewed every three years), ten years of history is 0.13 to 1.7
// billion certificates, of which 0.09 to 1.2 billion expired: 260 to
// 3 500 signatures a second for the expired, against 230 to 2 900 for the
// live ones. So each refresh pass re-signs the live certificates first,
// then answers those without a response, then the expired ones whose
// response is as close to its end as a due live one's (signed before the
// expiry, or capped by a responder near its end), and gives the other
// expired ones at most half a scan interval, their walk going on at the
// next pass where it stopped (Publisher.RefreshOCSP): a signer that falls
// behind delays the expired ones, not the live. A deployment of that size would also
// shorten the history kept (a retention period, RFC 6960 §4.4.4); that is
// not built yet.
//
// The CA never talks to the public and never holds key material: it asks
// the HSM to sign. A CSR contributes only its public key, after proof of
// possession; a CSR asking for another subject, names or CA rights is
// refused.
package ca
