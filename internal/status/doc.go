// Package status is the status tier: it answers relying parties' OCSP
// requests (RFC 6960, profiled by RFC 5019) with the responses the CA
// pre-signed, and serves each issuing CA's current CRL and certificate,
// all with HTTP caching headers (RFC 5019 §6).
//
// A Responder is stateless: it keeps a bounded cache of pre-signed
// responses, fills it from the store on a miss, and follows the store's
// ocsp_responses table by its updated_at cursor so that a re-signed
// response (a revocation) replaces the cached one within the sync
// interval. "Not in the store" answers are kept apart from the responses,
// so that requests for serials never issued, which anyone can send by the
// million, never push a certificate's response out of the cache. Any
// number of responders can share one database or its replicas.
//
// What it must never do: sign (it holds no key), answer "good" for a
// serial the store does not hold (that is "unauthorized"), answer from a
// response past its nextUpdate, block the hot path on the database for a
// serial it has seen, or log a client address or serial per request (an
// OCSP request says who is checking whose certificate; only aggregate
// metrics are kept, unless Config.LogRequests is switched on to debug).
//
// Requests carry one certificate each (RFC 5019 §2.1.1); a request list of
// several is answered malformedRequest. CertIDs hashed with SHA-1 are
// matched to the issuer, as the stored responses carry them (RFC 5019
// §2.1.1); one hashed with SHA-2 is answered unauthorized, since an answer
// names the certificate as the request did (RFC 6960 §4.1.1) and a client
// cannot match a SHA-1 CertID to its SHA-256 one. Nonces
// (RFC 8954) are checked for form and otherwise ignored, as RFC 5019 §4
// allows for pre-signed responses.
package status
